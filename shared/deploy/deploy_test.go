package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func render(t *testing.T) SYAML {
	t.Helper()
	s, err := Render(readFile(t, "../../s.yaml"), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestTemplateCfnLint runs cfn-lint, which applies the real SAM transform offline.
func TestTemplateCfnLint(t *testing.T) {
	bin, err := exec.LookPath("cfn-lint")
	if err != nil {
		if os.Getenv("LIVEPACK_REQUIRE_CFNLINT") == "1" {
			t.Fatal("cfn-lint is not installed")
		}
		t.Skip("cfn-lint is not installed; the template is not checked")
	}
	out, err := exec.Command(bin, "--format", "json", "../../template.yaml").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "[]" {
		t.Fatalf("cfn-lint: %v\n%s", err, out)
	}
}

// TestTemplateCfnLintCatchesErrors: the lint is not vacuous.
func TestTemplateCfnLintCatchesErrors(t *testing.T) {
	bin, err := exec.LookPath("cfn-lint")
	if err != nil {
		t.Skip("cfn-lint is not installed")
	}
	bad := bytes.Replace(readFile(t, "../../template.yaml"), []byte("MaximumRetryAttempts: 2\n        MaximumEventAgeInSeconds: 3600"), []byte("MaximumRetryAttempts: 7\n        MaximumEventAgeInSeconds: 3600"), 1)
	path := t.TempDir() + "/template.yaml"
	if err := os.WriteFile(path, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, path).CombinedOutput(); err == nil || !strings.Contains(string(out), "E3034") {
		t.Fatalf("cfn-lint accepted MaximumRetryAttempts 7: %s", out)
	}
}

// schemaPath is the fc3 component's schema beside the checkout (third-party data, read there).
func schemaPath() string {
	if p := os.Getenv("LIVEPACK_FC3_SCHEMA"); p != "" {
		return p
	}
	return "../../../shared/reference/fc3-schema.json"
}

func fc3Schema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	path := schemaPath()
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		t.Skipf("the fc3 schema is absent (looked for %s; set LIVEPACK_FC3_SCHEMA): s.yaml's function props are NOT validated", path)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("fc3-schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("fc3-schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

// toJSONValue turns YAML-decoded props into the values the validator expects.
func toJSONValue(t *testing.T, v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSYAMLSchema(t *testing.T) {
	sch := fc3Schema(t)
	s := render(t)
	if s.Edition != "3.0.0" {
		t.Fatalf("edition %q", s.Edition)
	}
	n := 0
	for name, r := range s.Resources {
		if r.Component != "fc3" {
			continue
		}
		n++
		if err := sch.Validate(toJSONValue(t, r.Props)); err != nil {
			t.Errorf("%s props: %v", name, err)
		}
		if r.Props["runtime"] != "go1" || r.Props["handler"] != "bootstrap" {
			t.Errorf("%s: runtime %v handler %v", name, r.Props["runtime"], r.Props["handler"])
		}
		var kinds []string
		for _, tr := range r.Props["triggers"].([]any) {
			kinds = append(kinds, tr.(map[string]any)["triggerType"].(string))
		}
		slices.Sort(kinds)
		if strings.Join(kinds, ",") != "eventbridge,http,timer" {
			t.Errorf("%s triggers %v", name, kinds)
		}
		if r.Props["asyncInvokeConfig"] == nil {
			t.Errorf("%s: no async invocation config", name)
		}
	}
	if n != 1 {
		t.Fatalf("%d fc3 functions, want 1", n)
	}
	// The schema catches a broken function: the check is not vacuous.
	for _, r := range s.Resources {
		if r.Component == "fc3" {
			r.Props["memorySize"] = 100
			if err := sch.Validate(toJSONValue(t, r.Props)); err == nil {
				t.Fatal("the schema accepted memorySize 100")
			}
		}
	}
}

func TestRAMPolicyActions(t *testing.T) {
	want := []string{"live:AddLivePackageConfig", "live:DeleteLivePackageConfig", "live:DescribeLiveDomainDetail",
		"live:DescribeLivePackageConfig", "live:DescribeLiveStreamsOnlineList", "live:DescribeLiveUserDomains", "live:UpdateLivePackageConfig"}
	var role *ResourceConfig
	for _, r := range render(t).Resources {
		if r.Component == "ram" {
			role = &r
		}
	}
	if role == nil {
		t.Fatal("no ram role resource")
	}
	b, _ := json.Marshal(role.Props["policies"])
	var policies []struct {
		Statement []struct {
			Effect   string
			Action   []string
			Resource []string
		}
	}
	if err := json.Unmarshal(b, &policies); err != nil {
		t.Fatal(err)
	}
	var actions []string
	kms := 0
	for _, p := range policies {
		for _, st := range p.Statement {
			if slices.Equal(st.Action, []string{"kms:GetSecretValue"}) {
				// The secret of this deployment, and no other.
				kms++
				if st.Effect != "Allow" || !slices.Equal(st.Resource, []string{"acs:kms:cn-shanghai:1234567890123456:secret/livepack"}) {
					t.Errorf("statement %+v: want kms:GetSecretValue on livepack's secret only", st)
				}
				continue
			}
			if st.Effect != "Allow" || !slices.Equal(st.Resource, []string{"acs:cdn:*:*:domain/*"}) {
				t.Errorf("statement %+v: want Allow on acs:cdn:*:*:domain/*", st)
			}
			actions = append(actions, st.Action...)
		}
	}
	if kms != 1 {
		t.Errorf("%d statements grant kms:GetSecretValue, want 1", kms)
	}
	slices.Sort(actions)
	if !slices.Equal(actions, want) {
		t.Fatalf("actions %v, want exactly %v", actions, want)
	}
}

func TestTemplateSecretsNotPlain(t *testing.T) {
	var tpl struct {
		Resources map[string]struct {
			Type       string `yaml:"Type"`
			Properties struct {
				Environment struct {
					Variables map[string]any `yaml:"Variables"`
				} `yaml:"Environment"`
				Layers []any `yaml:"Layers"`
			} `yaml:"Properties"`
		} `yaml:"Resources"`
	}
	if err := yaml.Unmarshal(readFile(t, "../../template.yaml"), &tpl); err != nil {
		t.Fatal(err)
	}
	fn := tpl.Resources["LivepackFunction"]
	vars := fn.Properties.Environment.Variables
	for _, secret := range []string{"ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_SECURITY_TOKEN", "LIVEPACK_WEBHOOK_SECRET", "LIVEPACK_NOTIFY_SECRET"} {
		if _, ok := vars[secret]; ok {
			t.Errorf("%s is an environment value; secrets come from Secrets Manager", secret)
		}
	}
	if vars["LIVEPACK_SECRET_ID"] == nil || len(fn.Properties.Layers) == 0 {
		t.Fatal("the function does not read its secret through the Secrets Manager extension")
	}
}

func TestRender(t *testing.T) {
	src := []byte("vars:\n  r: ${env('R', 'cn-shanghai')}\nresources:\n  f:\n    component: fc3\n    props:\n      region: ${vars.r}\n      x: ${env('X', '')}\n")
	s, err := Render(src, func(k string) string { return map[string]string{"X": "1"}[k] })
	if err != nil || s.Resources["f"].Props["region"] != "cn-shanghai" || s.Resources["f"].Props["x"] != 1 {
		t.Fatalf("%+v %v", s, err)
	}
	for _, bad := range []string{"a: ${config('AccountID')}\n", "a: ${env('NOPE')}\n", "a: ${vars.nope}\n"} {
		if _, err := Render([]byte(bad), func(string) string { return "" }); err == nil {
			t.Errorf("%q rendered", bad)
		}
	}
}
