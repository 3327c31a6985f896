package apply_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livepack/livepack/shared/apply"
	"github.com/livepack/livepack/shared/emulator"
	"github.com/livepack/livepack/shared/liveapi"
	"github.com/livepack/livepack/shared/store"
)

// clock is a test clock that the API advances by one second per call, so a deadline allows an
// exact number of calls whatever the machine's load.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) tick() {
	c.mu.Lock()
	c.now = c.now.Add(time.Second)
	c.mu.Unlock()
}

// passAPI is the emulator seen through an account that changes: hidden domains are not listed
// until revealed (created after the listing), deleted ones answer InvalidDomain.NotFound (the
// emulator's own answer for a name it does not know). Block, when set, holds the first config
// read until it is closed.
type passAPI struct {
	liveapi.API
	clock   *clock
	mu      sync.Mutex
	hidden  map[string]bool
	deleted map[string]bool
	block   chan struct{}
	entered chan struct{}
}

func (a *passAPI) DomainsPage(ctx context.Context, typ, status string, n int) (liveapi.DomainPage, error) {
	a.clock.tick()
	p, err := a.API.DomainsPage(ctx, typ, status, n)
	a.mu.Lock()
	defer a.mu.Unlock()
	kept := p.Domains[:0]
	for _, d := range p.Domains {
		if a.hidden[d.DomainName] {
			p.Total--
			continue
		}
		kept = append(kept, d)
	}
	p.Domains = kept
	return p, err
}

func (a *passAPI) DescribePackageConfigs(ctx context.Context, domain string) ([]liveapi.PackageConfig, error) {
	a.clock.tick()
	a.mu.Lock()
	block, gone := a.block, a.deleted[domain]
	a.block = nil
	a.mu.Unlock()
	if block != nil {
		close(a.entered)
		<-block
	}
	if gone {
		domain = "deleted-" + domain
	}
	return a.API.DescribePackageConfigs(ctx, domain)
}

func (a *passAPI) AddPackageConfig(ctx context.Context, c liveapi.PackageConfig) error {
	a.clock.tick()
	return a.API.AddPackageConfig(ctx, c)
}

func (a *passAPI) DescribeDomain(ctx context.Context, domain string) (liveapi.Domain, error) {
	a.clock.tick()
	return a.API.DescribeDomain(ctx, domain)
}

func (a *passAPI) OnlineStreams(ctx context.Context, domain string) ([]liveapi.Stream, error) {
	a.clock.tick()
	return a.API.OnlineStreams(ctx, domain)
}

// passEnv is an account of n play domains d00…, reconciled with one catch-all policy.
func passEnv(t *testing.T, n int, store store.Store) (*env, *passAPI, *clock) {
	t.Helper()
	seed := emulator.Seed{}
	for i := range n {
		seed.Domains = append(seed.Domains, emulator.Domain{DomainName: fmt.Sprintf("d%02d.example.com", i), LiveDomainType: "liveVideo",
			DomainStatus: "online", Region: "cn-shanghai", Scope: "domestic"})
	}
	e := newEnv(t, store, func(o *emulator.Options, _ *liveapi.Options) { o.Seed = seed })
	clk := &clock{now: time.Now()}
	api := &passAPI{API: e.api, clock: clk, hidden: map[string]bool{}, deleted: map[string]bool{}}
	defaults, _ := parse(t, `[{"DomainName":"*","AppName":"*","StreamName":"*","Protocol":"HLS_CMAF"}]`)
	e.opts.API, e.opts.Defaults, e.opts.Now = api, defaults, clk.Now
	return e, api, clk
}

// run reconciles once with a deadline allowing `calls` one-second calls past the reserve.
func run(t *testing.T, e *env, clk *clock, key, mode string, calls int) apply.Result {
	t.Helper()
	// The reserve is 3 s, checked before each call; half a second keeps the boundary off a tick.
	ctx, cancel := context.WithDeadline(context.Background(), clk.Now().Add(time.Duration(calls)*time.Second+2500*time.Millisecond))
	defer cancel()
	res, err := apply.New(e.opts).Reconcile(ctx, "schedule", key, mode, nil)
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return res
}

// configReads counts DescribeLivePackageConfig calls per domain since call index from.
func configReads(e *env, from int) map[string]int {
	out := map[string]int{}
	for _, c := range e.emu.Calls()[from:] {
		if c.Action == "DescribeLivePackageConfig" {
			out[c.Params["DomainName"]]++
		}
	}
	return out
}

// TestReconcilePasses: with a deadline that allows about a third of the domains per run, runs
// resume where the last one stopped, every domain is read exactly once per pass, the calls are
// the minimum (one listing page, one config read per domain), and a report notices drift only
// when it changes, plus once at each pass's end. The cursor lives in each store.
func TestReconcilePasses(t *testing.T) {
	const n = 30
	for name, mk := range stores(t) {
		t.Run(name, func(t *testing.T) {
			e, _, clk := passEnv(t, n, mk())
			type want struct {
				pass, passChecked int
				complete          bool
				notices           int
			}
			wants := []want{
				// Pass 1: all drift is new, so each run notices it; the last run ends the pass.
				{1, 10, false, 1}, {1, 21, false, 1}, {1, 30, true, 1},
				// Pass 2: the same drift, so only the pass's end is noticed.
				{2, 10, false, 0}, {2, 21, false, 0}, {2, 30, true, 1},
			}
			from := 0
			var calls int64
			for i, w := range wants {
				res := run(t, e, clk, fmt.Sprint("r", i), apply.Report, 11)
				sum := res.Reconcile
				if sum.Pass != w.pass || sum.PassChecked != w.passChecked || sum.Complete != w.complete || len(res.Notices) != w.notices ||
					sum.Domains != n || sum.Drift != sum.Checked {
					t.Fatalf("run %d: %+v, %d notices; want %+v", i, sum, len(res.Notices), w)
				}
				if !w.complete && (sum.ETA == nil || sum.Rate <= 0) {
					t.Fatalf("run %d: no ETA or rate: %+v", i, sum)
				}
				calls += sum.Calls
				if !w.complete {
					continue
				}
				reads := configReads(e, from)
				for d := range n {
					if got := reads[fmt.Sprintf("d%02d.example.com", d)]; got != 1 {
						t.Fatalf("pass %d read d%02d %d times, want once", w.pass, d, got)
					}
				}
				// The minimum: one DescribeLiveUserDomains page and one config read per domain.
				if served := len(e.emu.Calls()) - from; served != 1+n || calls != int64(served) || sum.PassCalls != int64(served) {
					t.Fatalf("pass %d: %d calls served, %d counted by the runs, %d by the pass; minimum %d", w.pass, served, calls, sum.PassCalls, 1+n)
				}
				from, calls = len(e.emu.Calls()), 0
			}
		})
	}
}

// TestReconcileExclusive: a reconcile that starts while another holds the cursor says so and
// stops without a call; the first one finishes undisturbed.
func TestReconcileExclusive(t *testing.T) {
	e, api, clk := passEnv(t, 5, nil)
	block := make(chan struct{})
	api.block, api.entered = block, make(chan struct{})
	first := make(chan apply.Result)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		res, _ := apply.New(e.opts).Reconcile(ctx, "schedule", "first", apply.Report, nil)
		first <- res
	}()
	<-api.entered
	before := len(e.emu.Calls())
	second := run(t, e, clk, "second", apply.Report, 100)
	if !second.Reconcile.Busy || second.Reconcile.Checked != 0 || second.Reconcile.Calls != 0 || len(e.emu.Calls()) != before ||
		!strings.Contains(second.Reconcile.Note, "another reconcile") {
		t.Fatalf("second run: %+v, %d calls", second.Reconcile, len(e.emu.Calls())-before)
	}
	close(block)
	res := <-first
	if res.Reconcile.Busy || !res.Reconcile.Complete || res.Reconcile.Checked != 5 {
		t.Fatalf("first run: %+v", res.Reconcile)
	}
	// With the cursor released, the next run starts the next pass.
	if third := run(t, e, clk, "third", apply.Report, 100); third.Reconcile.Busy || third.Reconcile.Pass != 2 {
		t.Fatalf("third run: %+v", third.Reconcile)
	}
}

// TestReconcileAccountChanges: a domain deleted mid-pass is counted gone, not failed; one
// created mid-pass is left to the next pass, which checks it.
func TestReconcileAccountChanges(t *testing.T) {
	e, api, clk := passEnv(t, 6, nil)
	api.hidden["d05.example.com"] = true
	r1 := run(t, e, clk, "r1", apply.Report, 3) // the listing and two domains
	if r1.Reconcile.Domains != 5 || r1.Reconcile.Checked != 2 {
		t.Fatalf("run 1: %+v", r1.Reconcile)
	}
	api.mu.Lock()
	api.deleted["d03.example.com"] = true
	delete(api.hidden, "d05.example.com")
	api.mu.Unlock()
	from := len(e.emu.Calls())
	r2 := run(t, e, clk, "r2", apply.Report, 10)
	sum := r2.Reconcile
	if !sum.Complete || sum.PassChecked != 5 || sum.Gone != 1 || sum.Outcomes[apply.Failed] != 0 || configReads(e, from)["d05.example.com"] != 0 {
		t.Fatalf("run 2: %+v, reads %v", sum, configReads(e, from))
	}
	for _, r := range r2.Results {
		if r.DomainName == "d03.example.com" {
			t.Fatalf("a deleted domain is listed: %+v", r)
		}
	}
	from = len(e.emu.Calls())
	r3 := run(t, e, clk, "r3", apply.Report, 10)
	if r3.Reconcile.Pass != 2 || !r3.Reconcile.Complete || r3.Reconcile.Domains != 6 || r3.Reconcile.Gone != 1 || configReads(e, from)["d05.example.com"] != 1 {
		t.Fatalf("run 3: %+v", r3.Reconcile)
	}
}

// TestReconcileResultCap: past ListCap configs worth listing, the result counts the rest.
func TestReconcileResultCap(t *testing.T) {
	e, _, clk := passEnv(t, 30, nil)
	e.opts.Defaults, _ = parse(t, `[{"DomainName":"*","AppName":"a0","StreamName":"*","Protocol":"HLS_CMAF"},
		{"DomainName":"*","AppName":"a1","StreamName":"*","Protocol":"HLS_CMAF"},
		{"DomainName":"*","AppName":"a2","StreamName":"*","Protocol":"HLS_CMAF"},
		{"DomainName":"*","AppName":"a3","StreamName":"*","Protocol":"HLS_CMAF"},
		{"DomainName":"*","AppName":"old","StreamName":"*","Delete":true}]`)
	res := run(t, e, clk, "cap", apply.Report, 100)
	sum := res.Reconcile
	if len(res.Results) != apply.ListCap || sum.Truncated != 4*30-apply.ListCap || sum.Outcomes["drift"] != 120 || sum.Outcomes[apply.Unchanged] != 30 {
		t.Fatalf("%d listed: %+v", len(res.Results), sum)
	}
}

// TestReconcileEnforcePasses: an enforce pass split over runs repairs every domain once, with
// one notice per change; the report pass after it finds nothing and notices only its end.
func TestReconcileEnforcePasses(t *testing.T) {
	const n = 12
	e, _, clk := passEnv(t, n, nil)
	runs := 0
	for i := 0; ; i++ {
		runs++
		// Per domain a config read, its detail and stream listing for the notice, one write.
		res := run(t, e, clk, fmt.Sprint("e", i), apply.Enforce, 20)
		if res.Reconcile.Complete {
			break
		}
		if i > n {
			t.Fatalf("no pass end after %d runs: %+v", i, res.Reconcile)
		}
	}
	if distinct, total, _ := e.recv.counts(); distinct != n || total != n || e.writes() != n || runs < 3 {
		t.Fatalf("%d runs, %d writes, %d notices (%d distinct), want %d each", runs, e.writes(), total, distinct, n)
	}
	for i := 0; ; i++ {
		res := run(t, e, clk, fmt.Sprint("r", i), apply.Report, 20)
		if res.Reconcile.Drift != 0 || (len(res.Notices) != 0) != res.Reconcile.Complete {
			t.Fatalf("report run %d: %+v, %d notices", i, res.Reconcile, len(res.Notices))
		}
		if res.Reconcile.Complete {
			break
		}
	}
}

// TestReconcileProgress: the watcher hears of every domain with the pass's numbers, then once
// more at the end; the log has a line per hundred domains with the rate and the ETA.
func TestReconcileProgress(t *testing.T) {
	const n = 120
	e, _, clk := passEnv(t, n, nil)
	var logs bytes.Buffer
	e.opts.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	var got []apply.Progress
	ctx, cancel := context.WithDeadline(context.Background(), clk.Now().Add(110*time.Second+2500*time.Millisecond))
	defer cancel()
	res, err := apply.New(e.opts).Reconcile(apply.WithProgress(ctx, func(p apply.Progress) { got = append(got, p) }), "schedule", "p1", apply.Report, nil)
	if err != nil {
		t.Fatal(err)
	}
	checked := res.Reconcile.Checked
	if checked < 2 || checked >= n || len(got) != checked+1 {
		t.Fatalf("%d reports for %d domains: %+v", len(got), checked, res.Reconcile)
	}
	for i, p := range got[:checked] {
		if p.Pass != 1 || p.PassChecked != i+1 || p.Checked != i+1 || p.Domains != n || p.Done || p.Rate <= 0 || p.ETA.IsZero() {
			t.Fatalf("report %d: %+v", i, p)
		}
	}
	if last := got[checked]; !last.Done || last.PassChecked != checked {
		t.Fatalf("last report: %+v", last)
	}
	var lines int
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, `"msg":"reconcile progress"`) {
			lines++
			if !strings.Contains(l, `"perMinute"`) || !strings.Contains(l, `"eta"`) || !strings.Contains(l, `"passChecked":100`) {
				t.Fatalf("progress line: %s", l)
			}
		}
	}
	if want := checked / 100; lines != want || want != 1 {
		t.Fatalf("%d progress lines for %d domains, want %d", lines, checked, want)
	}
}

// TestReconcileListingSpansRuns: a listing longer than a run resumes at the next page, and the
// pass still reads each domain once.
func TestReconcileListingSpansRuns(t *testing.T) {
	const n = 2*liveapi.DomainPageSize + 20
	e, _, clk := passEnv(t, n, nil)
	r1 := run(t, e, clk, "l1", apply.Report, 2)
	if r1.Reconcile.Checked != 0 || r1.Reconcile.Domains != n || !strings.Contains(r1.Reconcile.Note, "deadline") {
		t.Fatalf("run 1: %+v", r1.Reconcile)
	}
	for i := 2; ; i++ {
		res := run(t, e, clk, fmt.Sprint("l", i), apply.Report, 60)
		if res.Reconcile.Complete {
			break
		}
		if i > 5 {
			t.Fatalf("no pass end: %+v", res.Reconcile)
		}
	}
	reads := configReads(e, 0)
	lists := 0
	for _, c := range e.emu.Calls() {
		if c.Action == "DescribeLiveUserDomains" {
			lists++
		}
	}
	if len(reads) != n || lists != 3 {
		t.Fatalf("%d domains read, %d listing pages", len(reads), lists)
	}
	for d, k := range reads {
		if k != 1 {
			t.Fatalf("%s read %d times", d, k)
		}
	}
}
