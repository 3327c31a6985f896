package deploy

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/livepack/livepack/shared/apply"
	"github.com/livepack/livepack/shared/quota"
)

// paces reads the scheduled reconcile's timeout and schedule interval from both templates, at
// the default LIVEPACK_RATE and LIVEPACK_RESERVE.
func paces(t *testing.T) map[string]apply.Pace {
	t.Helper()
	tpl := loadTemplate(t)
	rec := tpl.props(t, "ReconcileFunction")
	sched := rec["Events"].(map[string]any)["Reconcile"].(map[string]any)["Properties"].(map[string]any)["ScheduleExpression"]
	rate, err := strconv.Atoi(tpl.env(t, "ReconcileFunction", map[string]string{"Notify": "none"})["LIVEPACK_RATE"])
	if err != nil {
		t.Fatal(err)
	}
	lambda := apply.Pace{Rate: rate, Reserve: quota.DefaultReserve, Timeout: seconds(t, rec["Timeout"]), Interval: rateInterval(t, fmt.Sprint(sched))}

	fn := functions(t, render(t))["livepack-reconcile"]
	cron := fn["triggers"].([]any)[0].(map[string]any)["triggerConfig"].(map[string]any)["cronExpression"]
	frate, err := strconv.Atoi(envOf(fn)["LIVEPACK_RATE"])
	if err != nil {
		t.Fatal(err)
	}
	fc := apply.Pace{Rate: frate, Reserve: quota.DefaultReserve, Timeout: seconds(t, fn["timeout"]), Interval: cronInterval(t, fmt.Sprint(cron))}
	return map[string]apply.Pace{"template.yaml": lambda, "s.yaml": fc}
}

func seconds(t *testing.T, v any) time.Duration {
	t.Helper()
	n, err := strconv.Atoi(fmt.Sprint(v))
	if err != nil {
		t.Fatalf("timeout %v: %v", v, err)
	}
	return time.Duration(n) * time.Second
}

// rateInterval reads an EventBridge Scheduler rate expression.
func rateInterval(t *testing.T, expr string) time.Duration {
	t.Helper()
	m := regexp.MustCompile(`^rate\((\d+) (minutes?|hours?)\)$`).FindStringSubmatch(expr)
	if m == nil {
		t.Fatalf("schedule %q is not a rate in minutes or hours", expr)
	}
	n, _ := strconv.Atoi(m[1])
	if strings.HasPrefix(m[2], "hour") {
		return time.Duration(n) * time.Hour
	}
	return time.Duration(n) * time.Minute
}

// cronInterval reads an FC timer's six-field cron expression firing every N minutes.
func cronInterval(t *testing.T, expr string) time.Duration {
	t.Helper()
	f := strings.Fields(expr)
	if len(f) != 6 || f[0] != "0" || !strings.HasPrefix(f[1], "*/") || f[2] != "*" || f[3] != "*" || f[4] != "*" || f[5] != "*" {
		t.Fatalf("cron %q is not `0 */N * * * *`", expr)
	}
	n, err := strconv.Atoi(strings.TrimPrefix(f[1], "*/"))
	if err != nil || 60%n != 0 {
		t.Fatalf("cron %q: every %q minutes does not divide the hour", expr, f[1])
	}
	return time.Duration(n) * time.Minute
}

// TestReconcileScheduleCoversAPass: in both templates the reconcile's timeout and schedule let
// runs continue one another's pass (the cursor free and the quota window empty when a run
// starts), so a pass over any number of domains takes at most 1.06× its quota bound (within the 1.1× asked), in report
// and in enforce mode (one more call per change).
func TestReconcileScheduleCoversAPass(t *testing.T) {
	for name, p := range paces(t) {
		if !p.Covers() {
			t.Errorf("%s: timeout %s, interval %s: a run may still hold the cursor, or the quota window, when the next starts", name, p.Timeout, p.Interval)
		}
		for domains := 1; domains <= 2_000_000; domains = domains*3/2 + 1 {
			for _, calls := range []int{apply.ReportCallsPerDomain, 2} {
				bound, pass := p.Bound(domains, calls), p.PassTime(domains, calls)
				if float64(pass) > 1.06*float64(bound) {
					t.Fatalf("%s: %d domains × %d calls: pass %s > 1.06 × bound %s", name, domains, calls, pass, bound)
				}
			}
		}
	}
}

// TestReadmeReconcilePace: the README's table of pass times is what the templates give.
func TestReadmeReconcilePace(t *testing.T) {
	readme := string(readFile(t, "../../README.md"))
	ps := paces(t)
	p := ps["template.yaml"]
	if p != ps["s.yaml"] {
		t.Fatalf("the templates differ (%+v, %+v): the README's one table fits only one", ps["template.yaml"], ps["s.yaml"])
	}
	for _, domains := range []int{1_000, 10_000, 100_000} {
		bound, pass := p.Bound(domains, apply.ReportCallsPerDomain), p.PassTime(domains, apply.ReportCallsPerDomain)
		row := fmt.Sprintf("| %s | %s | %s | %d | %.2f |", commas(domains), bound, pass, p.Runs(domains, apply.ReportCallsPerDomain), pass.Seconds()/bound.Seconds())
		if !strings.Contains(readme, row) {
			t.Errorf("README lacks the row %q", row)
		}
	}
	head := fmt.Sprintf("timeout %d s, a run every %d minutes", int(p.Timeout.Seconds()), int(p.Interval.Minutes()))
	if !strings.Contains(readme, head) {
		t.Errorf("README does not say %q", head)
	}
}

func commas(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
