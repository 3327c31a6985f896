package apply_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/livepack/livepack/shared/apply"
)

// TestPassCompleteOncePerDayWhenClean: a report pass that finds neither drift nor failures
// announces its end once a day, not once per pass (96 a day at 15 minutes); the first pass
// always announces it, and a pass with drift always does.
func TestPassCompleteOncePerDayWhenClean(t *testing.T) {
	e, _, clk := passEnv(t, 3, nil)
	clean, _ := parse(t, `[{"DomainName":"elsewhere.example.org","AppName":"*","StreamName":"*","Protocol":"HLS_CMAF"}]`)
	e.opts.Defaults = clean
	start := clk.Now()
	pass := func(i int, after time.Duration) int {
		clk.mu.Lock()
		clk.now = start.Add(after)
		clk.mu.Unlock()
		res := run(t, e, clk, fmt.Sprint("p", i), apply.Report, 20)
		if !res.Reconcile.Complete || res.Reconcile.Drift != 0 {
			t.Fatalf("run %d: %+v", i, res.Reconcile)
		}
		return len(res.Notices)
	}
	for i, w := range []struct {
		after   time.Duration
		notices int
	}{
		{0, 1},                             // the first pass
		{15 * time.Minute, 0},              // clean, announced a quarter of an hour ago
		{23*time.Hour + 45*time.Minute, 0}, // still within the day
		{24 * time.Hour, 1},                // a day since the last announcement
		{24*time.Hour + 15*time.Minute, 0},
	} {
		if got := pass(i, w.after); got != w.notices {
			t.Fatalf("pass at +%v: %d notices, want %d", w.after, got, w.notices)
		}
	}
	// Drift is announced at the next pass's end, whenever the last announcement was.
	drift, _ := parse(t, `[{"DomainName":"*","AppName":"*","StreamName":"*","Protocol":"HLS_CMAF"}]`)
	e.opts.Defaults = drift
	clk.mu.Lock()
	clk.now = start.Add(24*time.Hour + 30*time.Minute)
	clk.mu.Unlock()
	for i := 0; ; i++ {
		res := run(t, e, clk, fmt.Sprint("d", i), apply.Report, 20)
		if res.Reconcile.Complete {
			if res.Reconcile.Drift == 0 || len(res.Notices) != 1 {
				t.Fatalf("a pass with drift: %+v, %d notices", res.Reconcile, len(res.Notices))
			}
			break
		}
		if i > 3 {
			t.Fatal("no pass end")
		}
	}
}
