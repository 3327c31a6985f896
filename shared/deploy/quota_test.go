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
	for fn, props := range functions(t, render(t)) {
		env := envOf(props)
		conc, _ := props["concurrencyConfig"].(map[string]any)
		if props["instanceConcurrency"] != 1 || conc == nil || fmt.Sprint(conc["reservedConcurrency"]) != env["LIVEPACK_MAX_INSTANCES"] {
			t.Fatalf("%s: instances are not bounded by LIVEPACK_MAX_INSTANCES: instanceConcurrency %v, concurrencyConfig %v, env %s",
				fn, props["instanceConcurrency"], conc, env["LIVEPACK_MAX_INSTANCES"])
		}
		quotaSafe(t, config.FC, env)
	}
}

// TestTemplateDefaultsWithinQuota: each function's environment, with the parameters' defaults
// (and the required Notify), passes the function's own start-up check; the reserved
// concurrency and LIVEPACK_MAX_INSTANCES agree, and the webhook's function defaults to more
// than one instance, the budget being shared through the state table.
func TestTemplateDefaultsWithinQuota(t *testing.T) {
	tpl := loadTemplate(t)
	for _, fn := range []string{"LivepackFunction", "ReconcileFunction"} {
		env := tpl.env(t, fn, map[string]string{"Notify": "none"})
		quotaSafe(t, config.Lambda, env)
		reserved := fmt.Sprint(tpl.eval(t, tpl.props(t, fn)["ReservedConcurrentExecutions"], map[string]string{"Notify": "none"}))
		if reserved != env["LIVEPACK_MAX_INSTANCES"] {
			t.Fatalf("%s: reserved concurrency %s and LIVEPACK_MAX_INSTANCES %s differ", fn, reserved, env["LIVEPACK_MAX_INSTANCES"])
		}
		if fn == "LivepackFunction" && reserved == "1" {
			t.Fatalf("%s defaults to one instance", fn)
		}
	}
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
