package apply_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/livepack/livepack/shared/apply"
	"github.com/livepack/livepack/shared/emulator"
	"github.com/livepack/livepack/shared/liveapi"
	"github.com/livepack/livepack/shared/policy"
	"github.com/livepack/livepack/shared/quota"
)

// racingAPI lets another writer create the same config just before livepack's Add.
type racingAPI struct {
	liveapi.API
	other liveapi.PackageConfig
	done  bool
}

func (r *racingAPI) AddPackageConfig(ctx context.Context, pc liveapi.PackageConfig) error {
	if !r.done {
		r.done = true
		if err := r.API.AddPackageConfig(ctx, r.other); err != nil {
			return err
		}
	}
	return r.API.AddPackageConfig(ctx, pc)
}

func TestConcurrentWriterReplans(t *testing.T) {
	ps, hash := parse(t, sportsLL)
	want := packageConfigOf(ps[0])
	tests := []struct {
		name    string
		other   liveapi.PackageConfig
		outcome string
	}{
		// The API cannot tell a concurrent writer from this run's own retried write: the
		// change is reported, and its notice sent, rather than risk losing it.
		{"same config", want, apply.Created},
		{"other config", func() liveapi.PackageConfig { c := want; c.SegmentNum = 7; return c }(), apply.Updated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			opts := e.opts
			opts.API = &racingAPI{API: e.api, other: tt.other}
			res, err := apply.New(opts).Apply(ctxT(t, 20*time.Second), "direct", "race", hash, ps)
			if err != nil {
				t.Fatal(err)
			}
			if res.Results[0].Outcome != tt.outcome {
				t.Fatalf("outcome %s, want %s: %+v", res.Results[0].Outcome, tt.outcome, res.Results[0])
			}
			st := e.emu.State().PackageConfigs
			if len(st) != 1 || st[0].SegmentNum != 3 {
				t.Fatalf("state %+v, want livepack's config", st)
			}
			if n, total, _ := e.recv.counts(); n != 1 || total != 1 {
				t.Fatalf("%d notices, want 1", total)
			}
		})
	}
}

func packageConfigOf(p policy.Policy) liveapi.PackageConfig {
	c := p.Config()
	return liveapi.PackageConfig{DomainName: p.DomainName, AppName: p.AppName, StreamName: p.StreamName, Protocol: c.Protocol,
		SegmentNum: c.SegmentNum, SegmentDuration: c.SegmentDuration, PartDuration: c.PartDuration, IgnoreTranscode: c.IgnoreTranscode}
}

func TestDomainCreated(t *testing.T) {
	defaults, _ := parse(t, `[{"DomainName":"*.example.com","AppName":"*","StreamName":"*","Protocol":"HLS_CMAF"},
		{"DomainName":"new.example.com","AppName":"sports","StreamName":"*","Protocol":"LLHLS_TS"},
		{"DomainName":"*.other.com","AppName":"*","StreamName":"*","Protocol":"DASH_CMAF"}]`)
	tests := []struct {
		domain   string
		outcomes string
		retry    bool
		note     bool
	}{
		{"new.example.com", "created,created", false, false},
		{"push.example.com", "skipped", false, false},
		{"staging.example.com", "deferred", false, false},
		{"nowhere.example.com", "deferred", false, false},
		{"play.elsewhere.net", "", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.domain, func(t *testing.T) {
			e := newEnv(t, nil)
			opts := e.opts
			opts.Defaults = defaults
			res, err := apply.New(opts).DomainCreated(ctxT(t, 20*time.Second), "domain-created", "evt-"+tt.domain, tt.domain, time.Time{})
			if errors.Is(err, apply.ErrRetryLater) != tt.retry || (err != nil && !tt.retry) {
				t.Fatalf("err %v, retry want %v", err, tt.retry)
			}
			var got []string
			for _, r := range res.Results {
				got = append(got, r.Outcome)
				if r.Outcome != apply.Created && r.Reason == "" {
					t.Errorf("%s without a reason", r.Outcome)
				}
			}
			if strings.Join(got, ",") != tt.outcomes || (res.Note != "") != tt.note {
				t.Fatalf("outcomes %v note %q", got, res.Note)
			}
		})
	}
}

// TestReconcileCallBound: a reconcile makes at most domains × pages + changes calls, and a
// report writes nothing.
func TestReconcileCallBound(t *testing.T) {
	seed := emulator.DefaultSeed()
	for i := range 12 {
		seed.Domains = append(seed.Domains, emulator.Domain{DomainName: fmt.Sprintf("d%02d.example.com", i), LiveDomainType: "liveVideo", DomainStatus: "online", Region: "cn-shanghai", Scope: "domestic"})
	}
	e := newEnv(t, nil, func(o *emulator.Options, _ *liveapi.Options) { o.Seed = seed })
	defaults, _ := parse(t, `[{"DomainName":"*","AppName":"*","StreamName":"*","Protocol":"HLS_CMAF"}]`)
	opts := e.opts
	opts.Defaults = defaults
	eng := apply.New(opts)
	report, err := eng.Reconcile(ctxT(t, 30*time.Second), "schedule", "r1", apply.Report, nil)
	if err != nil {
		t.Fatal(err)
	}
	domains := report.Reconcile.Domains
	if domains != 15 || report.Reconcile.Drift != 15 || !report.Reconcile.Complete || e.writes() != 0 || len(report.Notices) != 1 {
		t.Fatalf("report: %+v, %d writes, %d notices", report.Reconcile, e.writes(), len(report.Notices))
	}
	// One page of domains, one page of configs per domain.
	if bound := 1 + domains; len(e.emu.Calls()) > bound || report.Reconcile.Calls != int64(len(e.emu.Calls())) {
		t.Fatalf("report made %d calls (counted %d), bound %d", len(e.emu.Calls()), report.Reconcile.Calls, bound)
	}
	before := len(e.emu.Calls())
	enforce, err := eng.Reconcile(ctxT(t, 30*time.Second), "schedule", "r2", apply.Enforce, nil)
	if err != nil {
		t.Fatal(err)
	}
	changes := e.writes()
	// Per changed domain one online-stream listing and one scope lookup feed the notice.
	bound := 1 + domains + changes + 2*changes
	if changes != 15 || len(e.emu.Calls())-before > bound {
		t.Fatalf("enforce: %d changes, %d calls, bound %d: %+v", changes, len(e.emu.Calls())-before, bound, enforce.Reconcile)
	}
	// The report's own cursor saw drift on every domain; now it sees none: that change is
	// announced once (the domains cleared), and the next clean pass is quiet (the pass's end
	// goes out only when it found drift or failures, or once a day).
	again, _ := eng.Reconcile(ctxT(t, 30*time.Second), "schedule", "r3", apply.Report, nil)
	if again.Reconcile.Drift != 0 || len(again.Notices) != 1 || !again.Reconcile.Complete {
		t.Fatalf("after enforce: %+v, %d notices", again.Reconcile, len(again.Notices))
	}
	quiet, _ := eng.Reconcile(ctxT(t, 30*time.Second), "schedule", "r4", apply.Report, nil)
	if quiet.Reconcile.Drift != 0 || len(quiet.Notices) != 0 || !quiet.Reconcile.Complete {
		t.Fatalf("a clean pass after a clean pass: %+v, %d notices", quiet.Reconcile, len(quiet.Notices))
	}
}

// TestReconcileStopsBeforeDeadline: with too little time left the run stops, says how far it
// got, and the next run continues.
func TestReconcileStopsBeforeDeadline(t *testing.T) {
	e := newEnv(t, nil)
	defaults, _ := parse(t, `[{"DomainName":"*","AppName":"*","StreamName":"*","Protocol":"HLS_CMAF"}]`)
	opts := e.opts
	opts.Defaults = defaults
	res, err := apply.New(opts).Reconcile(ctxT(t, 2*time.Second), "schedule", "short", apply.Enforce, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Reconcile.Complete || res.Reconcile.Checked != 0 || !strings.Contains(res.Reconcile.Note, "deadline") {
		t.Fatalf("%+v", res.Reconcile)
	}
}

// BenchmarkApplyCalls reports Live API calls per applied policy for a typical document (a
// domain with several apps) against the emulator.
func BenchmarkApplyCalls(b *testing.B) {
	var ps []string
	for i := range 10 {
		ps = append(ps, fmt.Sprintf(`{"DomainName":"play.example.com","AppName":"app%d","StreamName":"*","Protocol":"HLS_CMAF","SegmentNum":%%d}`, i))
	}
	calls, applied := 0, 0
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		e := newEnv(b, nil)
		doc := "[" + fmt.Sprintf(strings.Join(ps, ","), 3, 3, 3, 3, 3, 3, 3, 3, 3, 3) + "]"
		d, err := policy.Parse([]byte(doc))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		res, err := e.engine().Apply(context.Background(), "direct", fmt.Sprint(i), policy.Hash(d), d.Policies)
		if err != nil {
			b.Fatal(err)
		}
		calls += len(e.emu.Calls())
		applied += len(res.Results)
	}
	b.ReportMetric(float64(calls)/float64(applied), "calls/policy")
}

// BenchmarkReconcileQuota runs an enforce reconcile of 20 domains under a budget of 20 calls
// per (shortened) one-second window, of which the scheduled reconcile may fill 80%, and reports
// its wall time against the quota bound (the windows its calls need): near 1 means the budget,
// not livepack, sets the pace.
func BenchmarkReconcileQuota(b *testing.B) {
	const rate, share = 20, 16
	seed := emulator.DefaultSeed()
	for i := range 17 {
		seed.Domains = append(seed.Domains, emulator.Domain{DomainName: fmt.Sprintf("d%02d.example.com", i), LiveDomainType: "liveVideo", DomainStatus: "online", Region: "cn-shanghai", Scope: "domestic"})
	}
	defaults, _ := parse(b, `[{"DomainName":"*","AppName":"*","StreamName":"*","Protocol":"HLS_CMAF"}]`)
	var ratio float64
	n := 0
	for b.Loop() {
		b.StopTimer()
		e := newEnv(b, nil, func(o *emulator.Options, c *liveapi.Options) {
			o.Seed, o.Rate = seed, 1<<30
			c.Limiter = quota.NewLocal(rate, quota.WithWindow(time.Second))
		})
		opts := e.opts
		opts.Defaults = defaults
		b.StartTimer()
		start := time.Now()
		if _, err := apply.New(opts).Reconcile(context.Background(), "schedule", fmt.Sprint(n), apply.Enforce, nil); err != nil {
			b.Fatal(err)
		}
		wall := time.Since(start)
		calls := 0
		for _, c := range e.emu.Calls() {
			if g, _ := quota.Budget(c.Action, rate); g == "package" {
				calls++
			}
		}
		// Each window admits the reconcile's share at once; every further share waits a window.
		bound := time.Duration((calls-1)/share) * time.Second
		ratio += wall.Seconds() / bound.Seconds()
		n++
	}
	b.ReportMetric(ratio/float64(n), "wall/quota-bound")
}
