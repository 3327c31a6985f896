package deploy

import (
	"fmt"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/livepack/livepack/shared/config"
	"github.com/livepack/livepack/shared/host"
)

// quotaSafe runs a deployment's rendered environment through the function's own start-up
// check: with the template's defaults, instances x rate cannot exceed the account quota.
func quotaSafe(t *testing.T, h config.Host, env map[string]string) {
	t.Helper()
	cfg, err := config.FromEnv(h, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxInstances == 0 {
		t.Fatal("LIVEPACK_MAX_INSTANCES is not set: the function cannot check its quota arithmetic")
	}
	if warn, msg := host.QuotaSafety(cfg); warn {
		t.Fatalf("the default deployment can exceed the quota: %s", msg)
	}
}

func TestSYAMLDefaultsWithinQuota(t *testing.T) {
	for _, r := range render(t).Resources {
		if r.Component != "fc3" {
			continue
		}
		env := map[string]string{}
		for k, v := range r.Props["environmentVariables"].(map[string]any) {
			env[k] = fmt.Sprint(v)
		}
		conc, _ := r.Props["concurrencyConfig"].(map[string]any)
		if r.Props["instanceConcurrency"] != 1 || conc == nil || fmt.Sprint(conc["reservedConcurrency"]) != env["LIVEPACK_MAX_INSTANCES"] {
			t.Fatalf("instances are not bounded by LIVEPACK_MAX_INSTANCES: instanceConcurrency %v, concurrencyConfig %v, env %s",
				r.Props["instanceConcurrency"], conc, env["LIVEPACK_MAX_INSTANCES"])
		}
		quotaSafe(t, config.FC, env)
	}
}

func TestTemplateDefaultsWithinQuota(t *testing.T) {
	var tpl struct {
		Parameters map[string]struct {
			Default any `yaml:"Default"`
		} `yaml:"Parameters"`
		Resources map[string]struct {
			Properties struct {
				ReservedConcurrentExecutions any `yaml:"ReservedConcurrentExecutions"`
				Environment                  struct {
					Variables map[string]any `yaml:"Variables"`
				} `yaml:"Environment"`
			} `yaml:"Properties"`
		} `yaml:"Resources"`
	}
	// A !Ref decodes as its scalar, the parameter's name: resolved against the defaults below.
	if err := yaml.Unmarshal(readFile(t, "../../template.yaml"), &tpl); err != nil {
		t.Fatal(err)
	}
	fn := tpl.Resources["LivepackFunction"].Properties
	param := func(v any) string {
		if p, ok := tpl.Parameters[fmt.Sprint(v)]; ok {
			return fmt.Sprint(p.Default)
		}
		return fmt.Sprint(v)
	}
	env := map[string]string{}
	for k, v := range fn.Environment.Variables {
		env[k] = param(v)
	}
	if fn.ReservedConcurrentExecutions != "MaxInstances" || fn.Environment.Variables["LIVEPACK_MAX_INSTANCES"] != "MaxInstances" {
		t.Fatalf("reserved concurrency %v and LIVEPACK_MAX_INSTANCES %v: want both from MaxInstances",
			fn.ReservedConcurrentExecutions, fn.Environment.Variables["LIVEPACK_MAX_INSTANCES"])
	}
	quotaSafe(t, config.Lambda, env)
}

// TestTemplateRateUncapped: an account can have its quota raised, so the template accepts any
// LIVEPACK_RATE the function does (at least one call per minute, no upper cap).
func TestTemplateRateUncapped(t *testing.T) {
	var tpl struct {
		Parameters map[string]map[string]any `yaml:"Parameters"`
	}
	if err := yaml.Unmarshal(readFile(t, "../../template.yaml"), &tpl); err != nil {
		t.Fatal(err)
	}
	p := tpl.Parameters["Rate"]
	if _, capped := p["MaxValue"]; capped || fmt.Sprint(p["MinValue"]) != "1" {
		t.Fatalf("Rate parameter %v: want MinValue 1 and no MaxValue", p)
	}
}
