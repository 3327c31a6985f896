package deploy

import (
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestSYAMLKeepsLocalEndpointOut: a deployer whose shell points LIVEPACK_ENDPOINT at a local
// emulator (and allows plain HTTP for it) deploys a function that still calls the HTTPS
// endpoint of its region.
func TestSYAMLKeepsLocalEndpointOut(t *testing.T) {
	shell := map[string]string{"LIVEPACK_ENDPOINT": "http://127.0.0.1:8080", "LIVEPACK_INSECURE_ENDPOINT": "1", "LIVEPACK_REGION": "ap-southeast-1", "LIVEPACK_NOTIFY": "none"}
	s, err := Render(readFile(t, "../../s.yaml"), func(k string) string { return shell[k] })
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for name, r := range s.Resources {
		if r.Component != "fc3" {
			continue
		}
		n++
		vars, _ := r.Props["environmentVariables"].(map[string]any)
		if vars["LIVEPACK_REGION"] != "ap-southeast-1" {
			t.Errorf("%s: LIVEPACK_REGION %v, want the deployer's region", name, vars["LIVEPACK_REGION"])
		}
		for k, v := range vars {
			if k == "LIVEPACK_ENDPOINT" || k == "LIVEPACK_INSECURE_ENDPOINT" || strings.Contains(strings.ToLower(toString(v)), "http://") {
				t.Errorf("%s: %s=%v reaches the function", name, k, v)
			}
		}
	}
	if n == 0 {
		t.Fatal("no fc3 function in s.yaml")
	}
}

// TestTemplateEndpointPattern: the template's Endpoint parameter accepts the HTTPS forms only.
func TestTemplateEndpointPattern(t *testing.T) {
	var tpl struct {
		Parameters map[string]struct {
			Default        any    `yaml:"Default"`
			AllowedPattern string `yaml:"AllowedPattern"`
		} `yaml:"Parameters"`
	}
	if err := yaml.Unmarshal(readFile(t, "../../template.yaml"), &tpl); err != nil {
		t.Fatal(err)
	}
	p := tpl.Parameters["Endpoint"]
	re, err := regexp.Compile(p.AllowedPattern)
	if err != nil || p.AllowedPattern == "" {
		t.Fatalf("Endpoint AllowedPattern %q: %v", p.AllowedPattern, err)
	}
	for v, ok := range map[string]bool{"": true, "live.aliyuncs.com": true, "https://live.eu-central-1.aliyuncs.com": true,
		"http://127.0.0.1:8080": false, "live.aliyuncs.com/x": false, "ftp://x": false} {
		if re.MatchString(v) != ok {
			t.Errorf("Endpoint %q: allowed %v, want %v", v, !ok, ok)
		}
	}
	if p.Default != "" {
		t.Errorf("Endpoint default %v: want empty (the region's endpoint)", p.Default)
	}
}

func toString(v any) string {
	s, _ := v.(string)
	return s
}

// TestSYAMLSecretsNotPlain: on Function Compute the secrets come from KMS, never from the
// function's environment, even when the deployer's shell has them.
func TestSYAMLSecretsNotPlain(t *testing.T) {
	shell := map[string]string{"LIVEPACK_WEBHOOK_SECRET": "whsec_c2hlbGw=", "LIVEPACK_NOTIFY_SECRET": "whsec_c2hlbGw=",
		"ALIBABA_CLOUD_ACCESS_KEY_SECRET": "shell-secret", "LIVEPACK_SECRET_NAME": "prod-livepack", "LIVEPACK_NOTIFY": "none"}
	s, err := Render(readFile(t, "../../s.yaml"), func(k string) string { return shell[k] })
	if err != nil {
		t.Fatal(err)
	}
	for name, r := range s.Resources {
		if r.Component != "fc3" {
			continue
		}
		vars, _ := r.Props["environmentVariables"].(map[string]any)
		for _, secret := range []string{"ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_SECURITY_TOKEN", "LIVEPACK_WEBHOOK_SECRET", "LIVEPACK_NOTIFY_SECRET"} {
			if _, ok := vars[secret]; ok {
				t.Errorf("%s: %s is an environment value; secrets come from KMS", name, secret)
			}
		}
		for k, v := range vars {
			if strings.Contains(toString(v), "c2hlbGw") || strings.Contains(toString(v), "shell-secret") {
				t.Errorf("%s: %s carries a secret from the deployer's shell", name, k)
			}
		}
		if vars["LIVEPACK_SECRET_NAME"] != "prod-livepack" {
			t.Errorf("%s: LIVEPACK_SECRET_NAME %v, want the deployment's secret", name, vars["LIVEPACK_SECRET_NAME"])
		}
	}
}
