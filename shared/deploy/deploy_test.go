package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/livepack/livepack/shared/config"
)

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// required is the one variable s.yaml cannot do without: s deploy stops until it is set.
var required = map[string]string{"LIVEPACK_NOTIFY": "none"}

// full sets every variable s.yaml reads, as a deployer's shell would.
var full = map[string]string{
	"LIVEPACK_FC_REGION": "cn-hangzhou", "ALIYUN_ACCOUNT_ID": "5555666677778888", "LIVEPACK_SECRET_NAME": "prod-livepack",
	"LIVEPACK_TABLESTORE_INSTANCE": "lp-prod", "LIVEPACK_TABLESTORE_TABLE": "lp_state", "LIVEPACK_MAX_INSTANCES": "4",
	"LIVEPACK_FAILURE_TOPIC": "lp-failures", "LIVEPACK_REGION": "cn-beijing", "LIVEPACK_RATE": "120",
	"LIVEPACK_POLICIES": `[{"DomainName": "*", "AppName": "*", "StreamName": "*", "Protocol": "HLS_CMAF"}]`,
	"LIVEPACK_NOTIFY":   "https://hooks.example.com/livepack", "LIVEPACK_WEBHOOK_DOMAINS": "*.example.com",
}

func renderWith(t *testing.T, env map[string]string) SYAML {
	t.Helper()
	s, err := Render(readFile(t, "../../s.yaml"), func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func render(t *testing.T) SYAML { return renderWith(t, required) }

// functions returns s.yaml's fc3 functions by name.
func functions(t *testing.T, s SYAML) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, r := range s.Resources {
		if r.Component == "fc3" {
			out[fmt.Sprint(r.Props["functionName"])] = r.Props
		}
	}
	return out
}

func envOf(props map[string]any) map[string]string {
	out := map[string]string{}
	for k, v := range props["environmentVariables"].(map[string]any) {
		out[k] = fmt.Sprint(v)
	}
	return out
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

// TestSYAMLSchema renders s.yaml as Serverless Devs does, with only its required variable and
// with every variable set, and validates each function against the fc3 component's schema:
// a value the real renderer leaves a string (reservedConcurrency from env()) fails it.
func TestSYAMLSchema(t *testing.T) {
	sch := fc3Schema(t)
	for name, env := range map[string]map[string]string{"required only": required, "every variable": full} {
		t.Run(name, func(t *testing.T) {
			s := renderWith(t, env)
			if s.Edition != "3.0.0" {
				t.Fatalf("edition %q", s.Edition)
			}
			fns := functions(t, s)
			if len(fns) != 2 {
				t.Fatalf("%d fc3 functions, want 2 (the webhook's and the reconcile's)", len(fns))
			}
			for fn, props := range fns {
				if err := sch.Validate(toJSONValue(t, props)); err != nil {
					t.Errorf("%s props: %v", fn, err)
				}
				if props["runtime"] != "go1" || props["handler"] != "bootstrap" {
					t.Errorf("%s: runtime %v handler %v", fn, props["runtime"], props["handler"])
				}
				if props["asyncInvokeConfig"] == nil {
					t.Errorf("%s: no async invocation config", fn)
				}
			}
			if got := triggerKinds(fns["livepack"]); got != "eventbridge,http" {
				t.Errorf("livepack triggers %s, want eventbridge,http", got)
			}
			if got := triggerKinds(fns["livepack-reconcile"]); got != "timer" {
				t.Errorf("livepack-reconcile triggers %s, want timer", got)
			}
		})
	}
	// The schema catches a broken function, and reservedConcurrency as env() renders it.
	for _, bad := range []struct {
		name string
		edit func(map[string]any)
	}{
		{"memorySize 100", func(p map[string]any) { p["memorySize"] = 100 }},
		{"reservedConcurrency '10'", func(p map[string]any) { p["concurrencyConfig"] = map[string]any{"reservedConcurrency": "10"} }},
	} {
		props := functions(t, render(t))["livepack"]
		bad.edit(props)
		if err := sch.Validate(toJSONValue(t, props)); err == nil {
			t.Errorf("the schema accepted %s", bad.name)
		}
	}
}

func triggerKinds(props map[string]any) string {
	var kinds []string
	for _, tr := range props["triggers"].([]any) {
		kinds = append(kinds, tr.(map[string]any)["triggerType"].(string))
	}
	slices.Sort(kinds)
	return strings.Join(kinds, ",")
}

// TestSYAMLRequiresNotify: s.yaml asks for LIVEPACK_NOTIFY: rendering stops, naming it, until
// it is set; none is accepted on purpose.
func TestSYAMLRequiresNotify(t *testing.T) {
	_, err := Render(readFile(t, "../../s.yaml"), func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), "env('LIVEPACK_NOTIFY') not found") {
		t.Fatalf("s.yaml rendered without LIVEPACK_NOTIFY: %v", err)
	}
	for fn, props := range functions(t, render(t)) {
		if envOf(props)["LIVEPACK_NOTIFY"] != "none" {
			t.Errorf("%s: LIVEPACK_NOTIFY %q", fn, envOf(props)["LIVEPACK_NOTIFY"])
		}
	}
}

// TestSYAMLReconcileHasItsOwnInstances: the timer runs in a function of its own with its own
// reserved concurrency, so a reconcile never takes an instance the webhook needs (FC would
// answer the CMS 429); both functions share one environment (state store, namespace, so one
// budget and one set of records) and the role. The webhook's function defaults to more than
// one instance.
func TestSYAMLReconcileHasItsOwnInstances(t *testing.T) {
	for name, env := range map[string]map[string]string{"required only": required, "every variable": full} {
		fns := functions(t, renderWith(t, env))
		web, rec := fns["livepack"], fns["livepack-reconcile"]
		if web == nil || rec == nil {
			t.Fatalf("%s: functions %v", name, fns)
		}
		reserved := func(p map[string]any) int {
			n, _ := p["concurrencyConfig"].(map[string]any)["reservedConcurrency"].(int)
			return n
		}
		want := 10
		if name == "every variable" {
			want = 4
		}
		if reserved(web) != want || reserved(rec) != 1 {
			t.Errorf("%s: reserved concurrency webhook %d, reconcile %d; want %d and 1", name, reserved(web), reserved(rec), want)
		}
		we, re := envOf(web), envOf(rec)
		if we["LIVEPACK_MAX_INSTANCES"] != fmt.Sprint(want) || re["LIVEPACK_MAX_INSTANCES"] != "1" {
			t.Errorf("%s: LIVEPACK_MAX_INSTANCES %s and %s", name, we["LIVEPACK_MAX_INSTANCES"], re["LIVEPACK_MAX_INSTANCES"])
		}
		delete(we, "LIVEPACK_MAX_INSTANCES")
		delete(re, "LIVEPACK_MAX_INSTANCES")
		if !maps.Equal(we, re) || we["LIVEPACK_NAMESPACE"] == "" || !strings.HasPrefix(we["LIVEPACK_STATE"], "tablestore://") {
			t.Errorf("%s: the functions do not share one state and namespace:\n%v\n%v", name, we, re)
		}
		if web["role"] != rec["role"] {
			t.Errorf("%s: roles %v and %v", name, web["role"], rec["role"])
		}
	}
}

// TestSYAMLState: the functions keep their state in the Tablestore table the variables name,
// and the function's own start-up check accepts it.
func TestSYAMLState(t *testing.T) {
	for name, env := range map[string]map[string]string{"required only": required, "every variable": full} {
		for fn, props := range functions(t, renderWith(t, env)) {
			e := envOf(props)
			e["FC_REGION"] = fmt.Sprint(props["region"])
			cfg, err := config.FromEnv(config.FC, func(k string) string { return e[k] })
			if err != nil {
				t.Fatalf("%s %s: %v", name, fn, err)
			}
			inst, table := "livepack", "livepack_state"
			if name == "every variable" {
				inst, table = "lp-prod", "lp_state"
			}
			if cfg.StateKind != config.StateTablestore || cfg.StateInstance != inst || cfg.StateTable != table ||
				cfg.StateEndpoint != "https://"+inst+"."+e["FC_REGION"]+".ots.aliyuncs.com" {
				t.Errorf("%s %s: state %+v", name, fn, cfg.StateSpec)
			}
		}
	}
}

// TestRAMPolicy: the role grants exactly what the functions use, each on the resources RAM
// evaluates it on: the Live actions on the account's domains, DescribeLiveUserDomains on *
// (an account-level action), the Tablestore actions of the state backend on its table, the
// secret, and publishing to each function's failure destination.
func TestRAMPolicy(t *testing.T) {
	for name, env := range map[string]map[string]string{"required only": required, "every variable": full} {
		t.Run(name, func(t *testing.T) {
			s := renderWith(t, env)
			var role *ResourceConfig
			for _, r := range s.Resources {
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
			region, account := fmt.Sprint(s.Vars["region"]), fmt.Sprint(s.Vars["accountId"])
			fns := functions(t, s)
			state, err := config.ParseState(envOf(fns["livepack"])["LIVEPACK_STATE"], config.FC, func(k string) string {
				return map[string]string{"FC_REGION": region}[k]
			})
			if err != nil {
				t.Fatal(err)
			}
			var failures []string
			for _, props := range fns {
				failures = append(failures, props["asyncInvokeConfig"].(map[string]any)["destinationConfig"].(map[string]any)["onFailure"].(map[string]any)["destination"].(string))
			}
			slices.Sort(failures)
			failures = slices.Compact(failures)
			want := map[string][]string{}
			for _, a := range liveDomainActions {
				want[a] = []string{"acs:cdn:*:" + account + ":domain/*"}
			}
			want["live:DescribeLiveUserDomains"] = []string{"*"}
			for _, a := range []string{"GetRow", "PutRow", "UpdateRow", "DeleteRow", "GetRange", "DescribeTable", "CreateTable"} {
				want["ots:"+a] = []string{"acs:ots:" + region + ":" + account + ":instance/" + state.StateInstance + "/table/" + state.StateTable}
			}
			want["kms:GetSecretValue"] = []string{"acs:kms:" + region + ":" + account + ":secret/" + fmt.Sprint(s.Vars["secretName"])}
			want["mns:PublishMessage"] = failures
			got := map[string][]string{}
			for _, p := range policies {
				for _, st := range p.Statement {
					if st.Effect != "Allow" {
						t.Errorf("statement %+v is not Allow", st)
					}
					for _, a := range st.Action {
						got[a] = append(got[a], st.Resource...)
					}
				}
			}
			if !maps.EqualFunc(got, want, slices.Equal) {
				t.Fatalf("the role grants\n%v\nwant\n%v", got, want)
			}
		})
	}
}

// liveDomainActions are the Live actions livepack calls on a domain (every one but
// DescribeLiveUserDomains, which lists the account's domains).
var liveDomainActions = []string{"live:AddLivePackageConfig", "live:UpdateLivePackageConfig", "live:DeleteLivePackageConfig",
	"live:DescribeLivePackageConfig", "live:DescribeLiveDomainDetail", "live:DescribeLiveStreamsOnlineList"}

// TestDocsRAMPolicy: the RAM policy docs/deploy.md gives a Lambda deployment's RAM user grants
// the same Live actions on the same resources as the FC role.
func TestDocsRAMPolicy(t *testing.T) {
	doc := string(readFile(t, "../../docs/deploy.md"))
	start := strings.Index(doc, "```json\n{\n  \"Version\": \"1\"")
	if start < 0 {
		t.Fatal("docs/deploy.md has no RAM policy block")
	}
	block := doc[start+len("```json\n"):]
	block = block[:strings.Index(block, "```")]
	var p struct {
		Statement []struct {
			Effect   string
			Action   []string
			Resource []string
		}
	}
	if err := json.Unmarshal([]byte(block), &p); err != nil {
		t.Fatalf("the RAM policy in docs/deploy.md: %v", err)
	}
	got := map[string][]string{}
	for _, st := range p.Statement {
		for _, a := range st.Action {
			got[a] = append(got[a], st.Resource...)
		}
	}
	want := map[string][]string{"live:DescribeLiveUserDomains": {"*"}}
	for _, a := range liveDomainActions {
		want[a] = []string{"acs:cdn:*:*:domain/*"}
	}
	if !maps.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("docs/deploy.md grants\n%v\nwant\n%v", got, want)
	}
}

// TestRender: values keep the type Serverless Devs gives them: env() is a string even when it
// looks like a number, json() and a number default are numbers, vars keep their type, and a
// reference inside other text is spliced in as text.
func TestRender(t *testing.T) {
	src := []byte("vars:\n  r: ${env('R', 'cn-shanghai')}\n  n: ${json(env('N', '10'))}\n  k: 3\nresources:\n  f:\n    component: fc3\n    props:\n" +
		"      region: ${vars.r}\n      x: ${env('X', '')}\n      n: ${vars.n}\n      k: ${vars.k}\n      d: ${env('D', 5)}\n      arn: acs:x:${vars.r}:${vars.n}\n      q: \"${env('X', '')}\"\n")
	for _, tt := range []struct {
		env  map[string]string
		want map[string]any
	}{
		{nil, map[string]any{"region": "cn-shanghai", "x": "", "n": 10, "k": 3, "d": 5, "arn": "acs:x:cn-shanghai:10", "q": ""}},
		{map[string]string{"X": "1", "N": "4", "D": "7", "R": "cn-beijing"},
			map[string]any{"region": "cn-beijing", "x": "1", "n": 4, "k": 3, "d": "7", "arn": "acs:x:cn-beijing:4", "q": "1"}},
	} {
		s, err := Render(src, func(k string) string { return tt.env[k] })
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Resources["f"].Props; !maps.Equal(got, tt.want) {
			t.Errorf("env %v: props %#v, want %#v", tt.env, got, tt.want)
		}
	}
	for _, bad := range []string{"a: ${config('AccountID')}\n", "a: ${env('NOPE')}\n", "a: ${vars.nope}\n", "a: ${json(env('J', 'x'))}\n"} {
		if _, err := Render([]byte(bad), func(string) string { return "" }); err == nil {
			t.Errorf("%q rendered", bad)
		}
	}
}

// TestRenderMatchesServerlessDevs renders s.yaml with the real `s preview` when
// LIVEPACK_S_CLI names Serverless Devs' s binary, and compares it with Render, types
// included, with and without the variables set.
func TestRenderMatchesServerlessDevs(t *testing.T) {
	bin := os.Getenv("LIVEPACK_S_CLI")
	if bin == "" {
		t.Skip("LIVEPACK_S_CLI is unset: Render is not compared with Serverless Devs' own rendering (npm install @serverless-devs/s@3 and set it to node_modules/.bin/s)")
	}
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	for name, env := range map[string]map[string]string{"required only": required, "every variable": full} {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(bin, "preview", "-t", "s.yaml", "-o", "json")
			cmd.Dir = dir
			cmd.Env = []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}
			for k, v := range env {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("s preview: %v\n%s", err, out)
			}
			// s prints a warning line before the JSON when run as root.
			if i := strings.Index(string(out), "\n{"); i >= 0 && !strings.HasPrefix(string(out), "{") {
				out = out[i+1:]
			}
			var real SYAML
			if err := json.Unmarshal(out, &real); err != nil {
				t.Fatalf("s preview output: %v\n%s", err, out)
			}
			numbers(real.Vars)
			for _, r := range real.Resources {
				numbers(r.Props)
			}
			ours := renderWith(t, env)
			a, _ := json.Marshal(real)
			b, _ := json.Marshal(ours)
			if string(a) != string(b) {
				t.Fatalf("Render differs from s preview:\n s: %s\nus: %s", a, b)
			}
		})
	}
}
