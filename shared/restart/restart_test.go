package restart_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livepack/livepack/shared/liveapi"
	"github.com/livepack/livepack/shared/notify"
	"github.com/livepack/livepack/shared/outbox"
	"github.com/livepack/livepack/shared/policy"
	"github.com/livepack/livepack/shared/probe"
	"github.com/livepack/livepack/shared/restart"
	"github.com/livepack/livepack/shared/store"
	"github.com/livepack/livepack/shared/store/everystore"
	"github.com/livepack/livepack/shared/store/memstore"
	"github.com/livepack/livepack/shared/store/storetest"
)

const apiTime = "2006-01-02T15:04:05Z"

// fakeAPI serves online pages from a table and counts the calls per domain.
type fakeAPI struct {
	mu       sync.Mutex
	online   map[string][]liveapi.OnlineStream
	pageSize int
	calls    map[string]int
	configs  map[string][]liveapi.PackageConfig
	// during runs inside a listing call (a change committing meanwhile).
	during func()
	fail   error
}

func newAPI() *fakeAPI {
	return &fakeAPI{online: map[string][]liveapi.OnlineStream{}, calls: map[string]int{}, pageSize: liveapi.OnlinePageSize, configs: map[string][]liveapi.PackageConfig{}}
}

func (f *fakeAPI) set(domain, app, stream string, published time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	list := f.online[domain]
	for i, s := range list {
		if s.AppName == app && s.StreamName == stream {
			list[i].PublishTime = published.UTC().Format(apiTime)
			return
		}
	}
	f.online[domain] = append(list, liveapi.OnlineStream{AppName: app, StreamName: stream, PublishTime: published.UTC().Format(apiTime)})
}

func (f *fakeAPI) OnlinePage(_ context.Context, domain string, page int) (liveapi.OnlinePage, error) {
	f.mu.Lock()
	f.calls[domain]++
	during, fail := f.during, f.fail
	f.during = nil
	all := append([]liveapi.OnlineStream(nil), f.online[domain]...)
	f.mu.Unlock()
	if during != nil {
		during()
	}
	if fail != nil {
		return liveapi.OnlinePage{}, fail
	}
	lo, hi := min((page-1)*f.pageSize, len(all)), min(page*f.pageSize, len(all))
	return liveapi.OnlinePage{Streams: all[lo:hi], Total: len(all), Pages: (len(all) + f.pageSize - 1) / f.pageSize}, nil
}

func (f *fakeAPI) DescribePackageConfigs(_ context.Context, domain string) ([]liveapi.PackageConfig, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.configs[domain], nil
}

func (f *fakeAPI) total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		n += c
	}
	return n
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// sink records the notices it receives.
type sink struct {
	mu  sync.Mutex
	got []notify.Notice
}

func (s *sink) Name() string { return "s" }
func (s *sink) Deliver(_ context.Context, n notify.Notice) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, n)
	return nil
}

// of returns the notices of type typ.
func (s *sink) of(typ string) []notify.Notice {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []notify.Notice
	for _, n := range s.got {
		var ev struct{ Type string }
		_ = json.Unmarshal(n.JSON, &ev)
		if ev.Type == typ {
			out = append(out, n)
		}
	}
	return out
}

func each(t *testing.T, f func(t *testing.T, mk func() store.Store)) {
	for name, mk := range everystore.Backends(t) {
		t.Run(name, func(t *testing.T) { f(t, mk) })
	}
}

var cfg = &policy.Config{Protocol: "HLS_CMAF", SegmentNum: 4, SegmentDuration: 5, IgnoreTranscode: true}

// commit records a committed change of target with a restart list of streams (app/stream).
func commit(t testing.TB, b *outbox.Outbox, target policy.Target, c *policy.Config, streams ...string) outbox.Change {
	t.Helper()
	ctx := context.Background()
	in, ans, err := b.Begin(ctx, outbox.Intent{Target: target, Outcome: "updated", Desired: c}, "writer")
	if err != nil || ans != outbox.Mine {
		t.Fatalf("Begin: %v, %v", ans, err)
	}
	var restart []notify.Stream
	for _, s := range streams {
		app, name, _ := strings.Cut(s, "/")
		restart = append(restart, notify.Stream{AppName: app, StreamName: name})
	}
	n, err := notify.Build(notify.Change{ID: in.ID, Target: target, Outcome: "updated", Config: c, At: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	ch, _, err := b.Commit(ctx, in, n, restart)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

var target = policy.Target{DomainName: "play.example.com", AppName: "sports", StreamName: "*"}

func states(ch outbox.Change) map[string]string {
	m := map[string]string{}
	for _, s := range ch.Track().Streams {
		m[s.Name()] = s.State
	}
	return m
}

// TestStreamStates: each stream of a change awaits until it publishes after the commit (at the
// commit's second or later), goes offline, or stays on an ingest from before the commit (one
// restarted before the commit still awaits); the change's tracking ends when none awaits.
func TestStreamStates(t *testing.T) {
	each(t, func(t *testing.T, mk func() store.Store) {
		ctx := context.Background()
		s := mk()
		defer s.Close()
		clk := &clock{now: time.Now().UTC().Truncate(time.Second).Add(600 * time.Millisecond)}
		b := outbox.New(outbox.Options{Store: s, Now: clk.Now})
		api := newAPI()
		// Before the change: every stream online since long before, one restarted 5 s before it.
		for _, n := range []string{"old", "early", "later", "gone", "same"} {
			api.set("play.example.com", "sports", n, clk.Now().Add(-time.Hour))
		}
		api.set("play.example.com", "sports", "early", clk.Now().Add(-5*time.Second))
		ch := commit(t, b, target, cfg, "sports/old", "sports/early", "sports/later", "sports/gone", "sports/same")
		if !ch.Open() || ch.Track().Count(outbox.Awaiting) != 5 {
			t.Fatalf("a new change awaits all five streams: %+v", ch.Track())
		}
		// After it: one publishes 10 s later, one in the commit's own second (the API drops the
		// fraction), one goes offline.
		api.set("play.example.com", "sports", "later", clk.Now().Add(10*time.Second))
		api.set("play.example.com", "sports", "same", clk.Now().Truncate(time.Second))
		api.mu.Lock()
		list := api.online["play.example.com"]
		for i, x := range list {
			if x.StreamName == "gone" {
				api.online["play.example.com"] = append(list[:i], list[i+1:]...)
				break
			}
		}
		api.mu.Unlock()
		clk.add(time.Minute)
		o := restart.Options{Box: b, API: api, Now: clk.Now}
		changes, sum, err := restart.Refresh(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"sports/old": "awaiting", "sports/early": "awaiting", "sports/later": "restarted", "sports/gone": "offline", "sports/same": "restarted"}
		if len(changes) != 1 || fmt.Sprint(states(changes[0])) != fmt.Sprint(want) {
			t.Fatalf("states %v, want %v", states(changes[0]), want)
		}
		if sum.Changes != 1 || sum.Open != 1 || sum.Awaiting != 2 || sum.Restarted != 2 || sum.Offline != 1 || sum.Calls != 1 || sum.Domains != 1 {
			t.Fatalf("summary %+v", sum)
		}
		if sum.OldestAwaitingSince == nil || !sum.OldestAwaitingSince.Equal(ch.CommittedAt) {
			t.Fatalf("oldest awaiting since %v, want the commit %v", sum.OldestAwaitingSince, ch.CommittedAt)
		}
		last, _ := b.Last(ctx, target)
		for _, st := range last.Tracking.Streams {
			if st.Name() == "sports/later" && !st.At.Equal(clk.Now().Add(-time.Minute).Add(10*time.Second).Truncate(time.Second)) {
				t.Fatalf("restarted at %v", st.At)
			}
		}
		// The two left restart: the tracking is done, and the next refresh calls nothing.
		api.set("play.example.com", "sports", "old", clk.Now())
		api.set("play.example.com", "sports", "early", clk.Now())
		_, sum, _ = restart.Refresh(ctx, o)
		if sum.Open != 0 || sum.Done != 1 || sum.Awaiting != 0 || sum.Restarted != 4 {
			t.Fatalf("summary %+v", sum)
		}
		last, _ = b.Last(ctx, target)
		if last.Open() || last.Tracking.DoneAt.IsZero() {
			t.Fatalf("tracking not done: %+v", last.Tracking)
		}
		calls := api.total()
		_, sum, _ = restart.Refresh(ctx, o)
		if api.total() != calls || sum.Calls != 0 || sum.Changes != 0 {
			t.Fatalf("a refresh with nothing open called the API: %d calls, %+v", api.total()-calls, sum)
		}
	})
}

// TestFewestCalls: one online-list call per domain page, however many changes the domain has;
// none for a domain whose changes await nothing.
func TestFewestCalls(t *testing.T) {
	ctx := context.Background()
	clk := &clock{now: time.Now().UTC().Truncate(time.Second)}
	b := outbox.New(outbox.Options{Store: memstore.New(nil), Now: clk.Now})
	api := newAPI()
	api.pageSize = 3000
	for i := range 7000 {
		api.set("big.example.com", "live", fmt.Sprintf("s%d", i), clk.Now().Add(-time.Hour))
	}
	api.set("small.example.com", "live", "a", clk.Now().Add(-time.Hour))
	for i := range 3 {
		commit(t, b, policy.Target{DomainName: "big.example.com", AppName: "live", StreamName: fmt.Sprintf("s%d", i*3000)}, cfg, fmt.Sprintf("live/s%d", i*3000))
	}
	commit(t, b, policy.Target{DomainName: "small.example.com", AppName: "live", StreamName: "*"}, cfg, "live/a")
	commit(t, b, policy.Target{DomainName: "quiet.example.com", AppName: "live", StreamName: "*"}, cfg) // nothing online: nothing to track
	_, sum, err := restart.Refresh(ctx, restart.Options{Box: b, API: api, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if api.calls["big.example.com"] != 3 || api.calls["small.example.com"] != 1 || api.calls["quiet.example.com"] != 0 {
		t.Fatalf("calls %v, want 3 pages of the big domain, 1 of the small, none of the quiet", api.calls)
	}
	if sum.Calls != 4 || sum.Domains != 2 || sum.Changes != 4 || sum.Awaiting != 4 {
		t.Fatalf("summary %+v", sum)
	}
}

// TestSupersededWhileAwaiting: a newer change of the target replaces the record; the old
// change's tracking ends (noted on the new record), it is never reminded of, and a refresh
// that read the old change before the newer one committed records nothing over it.
func TestSupersededWhileAwaiting(t *testing.T) {
	each(t, func(t *testing.T, mk func() store.Store) {
		ctx := context.Background()
		s := mk()
		defer s.Close()
		clk := &clock{now: time.Now().UTC().Truncate(time.Second)}
		sk := &sink{}
		b := outbox.New(outbox.Options{Store: s, Now: clk.Now, Sinks: []notify.Sink{sk}})
		api := newAPI()
		api.set("play.example.com", "sports", "final", clk.Now().Add(-time.Hour))
		first := commit(t, b, target, cfg, "sports/final")
		clk.add(time.Hour) // past the grace
		var second outbox.Change
		api.during = func() {
			second = commit(t, b, target, &policy.Config{Protocol: "HLS_CMAF", SegmentNum: 5, SegmentDuration: 5, IgnoreTranscode: true})
		}
		_, sum, err := restart.Refresh(ctx, restart.Options{Box: b, API: api, Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		if sum.Superseded != 1 || sum.Reminders != 0 || sum.Open != 0 || sum.Awaiting != 0 {
			t.Fatalf("summary %+v", sum)
		}
		last, _ := b.Last(ctx, target)
		if last.ID != second.ID || last.Supersedes == nil || last.Supersedes.ID != first.ID || last.Supersedes.Awaiting != 1 || last.Tracking != nil {
			t.Fatalf("record %+v, supersedes %+v", last, last.Supersedes)
		}
		b.Relay(ctx, outbox.RelayOptions{Holder: "relay"})
		if got := sk.of(notify.TypeOverdue); len(got) != 0 {
			t.Fatalf("a superseded change was reminded of: %d", len(got))
		}
		// Nothing open now: no call.
		calls := api.total()
		if _, sum, _ = restart.Refresh(ctx, restart.Options{Box: b, API: api, Now: clk.Now}); api.total() != calls || sum.Changes != 0 {
			t.Fatalf("calls after the newer change: %d, %+v", api.total()-calls, sum)
		}
	})
}

// TestReminderOnceAcrossRacingRuns: schedules racing on several instances (each its own
// outbox on the shared store) owe a change's reminder once; the relays send it once; it lists
// the overdue streams and since when, and only those.
func TestReminderOnceAcrossRacingRuns(t *testing.T) {
	each(t, func(t *testing.T, mk func() store.Store) {
		ctx := context.Background()
		s := mk()
		defer s.Close()
		clk := &clock{now: time.Now().UTC().Truncate(time.Second)}
		sk := &sink{}
		api := newAPI()
		for _, n := range []string{"a", "b", "c"} {
			api.set("play.example.com", "sports", n, clk.Now().Add(-time.Hour))
		}
		ch := commit(t, outbox.New(outbox.Options{Store: s, Now: clk.Now, Sinks: []notify.Sink{sk}}), target, cfg, "sports/a", "sports/b", "sports/c")
		api.set("play.example.com", "sports", "c", clk.Now().Add(time.Minute))
		clk.add(29 * time.Minute)
		o := restart.Options{API: api, Now: clk.Now, Settings: restart.Settings{Grace: 30 * time.Minute}}
		o.Box = outbox.New(outbox.Options{Store: s, Now: clk.Now, Sinks: []notify.Sink{sk}})
		if _, sum, _ := restart.Refresh(ctx, o); sum.Reminders != 0 || sum.Overdue != 0 {
			t.Fatalf("reminded within the grace: %+v", sum)
		}
		clk.add(2 * time.Minute)
		var wg sync.WaitGroup
		var mu sync.Mutex
		reminders := 0
		for i := range 6 {
			wg.Go(func() {
				o := o
				o.Holder = fmt.Sprintf("run%d", i)
				o.Box = outbox.New(outbox.Options{Store: s, Now: clk.Now, Sinks: []notify.Sink{sk}})
				_, sum, err := restart.Refresh(ctx, o)
				if err != nil {
					t.Error(err)
				}
				o.Box.Relay(ctx, outbox.RelayOptions{Holder: o.Holder})
				mu.Lock()
				reminders += sum.Reminders
				mu.Unlock()
			})
		}
		wg.Wait()
		for range 2 {
			_, sum, _ := restart.Refresh(ctx, o)
			reminders += sum.Reminders
			o.Box.Relay(ctx, outbox.RelayOptions{Holder: "late"})
		}
		got := sk.of(notify.TypeOverdue)
		if reminders != 1 || len(got) != 1 {
			t.Fatalf("reminders owed %d, delivered %d; want 1 and 1", reminders, len(got))
		}
		if got[0].ID != notify.OverdueID(ch.ID) {
			t.Fatalf("reminder id %s, want the one fixed by the change", got[0].ID)
		}
		var ev struct {
			Data struct {
				Change  string
				Overdue []notify.OverdueStream
				Count   int
			}
		}
		if err := json.Unmarshal(got[0].JSON, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Data.Change != ch.ID || ev.Data.Count != 2 || len(ev.Data.Overdue) != 2 || !ev.Data.Overdue[0].Since.Equal(ch.CommittedAt) {
			t.Fatalf("reminder data %+v", ev.Data)
		}
		last, _ := o.Box.Last(ctx, target)
		if r := last.Tracking.Reminder; r == nil || !r.Queued || len(r.Streams) != 2 {
			t.Fatalf("reminder mark %+v", r)
		}
	})
}

// TestReminderDecidedNotQueued: a run that decided the reminder and stopped before queueing it
// leaves it to the next refresh, which queues it under the same key: sent once.
func TestReminderDecidedNotQueued(t *testing.T) {
	ctx := context.Background()
	clk := &clock{now: time.Now().UTC().Truncate(time.Second)}
	sk := &sink{}
	var failing sync.Once
	f := &storetest.Faulty{Store: memstore.New(nil)}
	f.Fail = func(_ int, op, key string) storetest.When {
		w := storetest.When(0)
		if op == "create" && strings.HasPrefix(key, "due/") {
			failing.Do(func() { w = storetest.Before })
		}
		return w
	}
	b := outbox.New(outbox.Options{Store: f, Now: clk.Now, Sinks: []notify.Sink{sk}})
	api := newAPI()
	api.set("play.example.com", "sports", "a", clk.Now().Add(-time.Hour))
	ch := commit(t, outbox.New(outbox.Options{Store: f.Store, Now: clk.Now, Sinks: []notify.Sink{sk}}), target, cfg, "sports/a")
	clk.add(time.Hour)
	o := restart.Options{Box: b, API: api, Now: clk.Now}
	_, sum, _ := restart.Refresh(ctx, o)
	last, _ := b.Last(ctx, target)
	if len(sum.Failed) != 1 || last.Tracking.Reminder == nil || last.Tracking.Reminder.Queued {
		t.Fatalf("first run: %+v, mark %+v", sum, last.Tracking.Reminder)
	}
	_, sum, _ = restart.Refresh(ctx, o)
	b.Relay(ctx, outbox.RelayOptions{Holder: "relay"})
	_, _, _ = restart.Refresh(ctx, o)
	b.Relay(ctx, outbox.RelayOptions{Holder: "relay"})
	if got := sk.of(notify.TypeOverdue); len(got) != 1 || got[0].ID != notify.OverdueID(ch.ID) || sum.Reminders != 0 {
		t.Fatalf("delivered %d reminders (summary %+v)", len(got), sum)
	}
}

// prober answers match for the streams in ok.
type prober struct {
	mu     sync.Mutex
	ok     map[string]bool
	probed []string
}

func (p *prober) Check(_ context.Context, t probe.Target, c *policy.Config) (probe.Verdict, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.probed = append(p.probed, t.StreamName)
	v := probe.Verdict{Target: t, Match: p.ok[t.StreamName]}
	if c != nil {
		v.Protocol = c.Protocol
	}
	if !v.Match {
		v.Checks = []probe.Check{{Manifest: "hls", Name: "container", Expected: "fMP4 (EXT-X-MAP)", Found: "TS"}}
	}
	return v, nil
}

// TestProbeConfirmsRestart: with a prober, a stream published after the change counts as
// restarted only when its manifest matches the config in force; one that does not stays
// awaiting and is reported as drift; a refresh probes at most ProbeLimit streams.
func TestProbeConfirmsRestart(t *testing.T) {
	ctx := context.Background()
	clk := &clock{now: time.Now().UTC().Truncate(time.Second)}
	b := outbox.New(outbox.Options{Store: memstore.New(nil), Now: clk.Now})
	api := newAPI()
	api.configs["play.example.com"] = []liveapi.PackageConfig{{DomainName: "play.example.com", AppName: "sports", StreamName: "*", Protocol: "HLS_CMAF", SegmentNum: 4, SegmentDuration: 5}}
	for _, n := range []string{"a", "b", "c"} {
		api.set("play.example.com", "sports", n, clk.Now().Add(-time.Hour))
	}
	commit(t, b, target, cfg, "sports/a", "sports/b", "sports/c")
	for _, n := range []string{"a", "b", "c"} {
		api.set("play.example.com", "sports", n, clk.Now().Add(time.Minute))
	}
	clk.add(2 * time.Minute)
	p := &prober{ok: map[string]bool{"a": true, "c": true}}
	o := restart.Options{Box: b, API: api, Now: clk.Now, Settings: restart.Settings{Prober: p, ProbeLimit: 2}}
	changes, sum, err := restart.Refresh(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"sports/a": "restarted", "sports/b": "awaiting", "sports/c": "awaiting"}
	if fmt.Sprint(states(changes[0])) != fmt.Sprint(want) || sum.Probed != 2 || len(sum.Drift) != 1 || sum.Drift[0].Target.StreamName != "b" {
		t.Fatalf("states %v, summary %+v", states(changes[0]), sum)
	}
	for _, s := range changes[0].Tracking.Streams {
		if s.StreamName == "b" && (s.Probe == nil || s.Probe.Match || len(s.Probe.Failed) != 1 || s.Probe.Protocol != "HLS_CMAF") {
			t.Fatalf("probe note of b: %+v", s.Probe)
		}
	}
	// The next refresh probes the two left: c matches now, b still does not.
	changes, sum, _ = restart.Refresh(ctx, o)
	want["sports/c"] = "restarted"
	if fmt.Sprint(states(changes[0])) != fmt.Sprint(want) || sum.Probed != 2 {
		t.Fatalf("states %v, summary %+v", states(changes[0]), sum)
	}
}

// TestListingFailure: a domain whose listing fails keeps its changes as they were and says so.
func TestListingFailure(t *testing.T) {
	ctx := context.Background()
	clk := &clock{now: time.Now().UTC().Truncate(time.Second)}
	b := outbox.New(outbox.Options{Store: memstore.New(nil), Now: clk.Now})
	api := newAPI()
	api.set("play.example.com", "sports", "a", clk.Now().Add(-time.Hour))
	commit(t, b, target, cfg, "sports/a")
	api.fail = fmt.Errorf("boom")
	clk.add(time.Minute)
	changes, sum, err := restart.Refresh(ctx, restart.Options{Box: b, API: api, Now: clk.Now})
	if err != nil || len(sum.Failed) != 1 || sum.Awaiting != 1 || changes[0].Tracking != nil {
		t.Fatalf("err %v, summary %+v", err, sum)
	}
}

func TestPublished(t *testing.T) {
	commit := time.Date(2026, 3, 1, 12, 0, 0, 700e6, time.UTC)
	for _, tt := range []struct {
		pub  time.Time
		want bool
	}{
		{commit.Add(-2 * time.Second).Truncate(time.Second), false},
		{commit.Add(-time.Second).Truncate(time.Second), false},
		{commit.Truncate(time.Second), true},
		{commit.Add(time.Second).Truncate(time.Second), true},
		{time.Time{}, false},
	} {
		if got := restart.Published(tt.pub, commit); got != tt.want {
			t.Errorf("Published(%v) = %v, want %v", tt.pub, got, tt.want)
		}
	}
}
