package apply

import (
	"context"
	"time"
)

// progressEvery is how many domains a reconcile checks between two progress log lines; the
// watcher WithProgress installs hears of every domain.
const progressEvery = 100

// Progress is where a reconcile pass stands, as reported while it runs.
type Progress struct {
	Pass int
	// Checked is the domains this run checked, PassChecked those of the pass so far, Domains
	// the pass's total.
	Checked, PassChecked, Domains int
	// Rate is domains per minute in this run; ETA the pass's completion at that rate (zero
	// when unknown).
	Rate float64
	ETA  time.Time
	// Done marks the run's last report.
	Done bool
}

type progressKey struct{}

// WithProgress returns ctx whose reconcile runs call fn after every domain and once when they
// end: `livepack invoke` draws its progress bar from it. fn runs on the reconcile's goroutine
// and must return quickly.
func WithProgress(ctx context.Context, fn func(Progress)) context.Context {
	return context.WithValue(ctx, progressKey{}, fn)
}

// report calls the context's progress watcher and, every progressEvery domains, logs the
// pass's progress with this run's rate and the pass's estimated end.
func (r *reconciler) report(ctx context.Context, done bool) {
	sum := *r.sum
	sum.PassChecked, sum.Pass = r.st.Checked, r.st.Pass
	sum.Domains = r.st.Total
	if !r.st.Listed {
		sum.Domains = int(max(r.st.Expected, int64(r.st.Total)))
	}
	sum.Complete = r.st.Done
	sum.ETA = nil
	r.fillRate(&sum)
	p := Progress{Pass: sum.Pass, Checked: sum.Checked, PassChecked: sum.PassChecked, Domains: sum.Domains, Rate: sum.Rate, Done: done}
	if sum.ETA != nil {
		p.ETA = *sum.ETA
	}
	if !done && p.Checked%progressEvery == 0 {
		r.s.log.Info("reconcile progress", "pass", p.Pass, "checked", p.Checked, "passChecked", p.PassChecked, "domains", p.Domains,
			"perMinute", int(p.Rate), "eta", sum.ETA)
	}
	if fn, ok := ctx.Value(progressKey{}).(func(Progress)); ok {
		fn(p)
	}
}
