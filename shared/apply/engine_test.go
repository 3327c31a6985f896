package apply_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aliyun/credentials-go/credentials"

	"github.com/livepack/livepack/shared/apply"
	"github.com/livepack/livepack/shared/emulator"
	"github.com/livepack/livepack/shared/eventkey"
	"github.com/livepack/livepack/shared/liveapi"
	"github.com/livepack/livepack/shared/notify"
	"github.com/livepack/livepack/shared/policy"
	"github.com/livepack/livepack/shared/quota"
	"github.com/livepack/livepack/shared/store"
	"github.com/livepack/livepack/shared/store/everystore"
	"github.com/livepack/livepack/shared/store/memstore"
	"github.com/livepack/livepack/shared/webhooksig"
)

const notifySecret = "whsec_bm90aWZ5LXNlY3JldC1mb3ItdGVzdHMtMDEyMzQ1Njc4OQ=="

// receiver is a notice endpoint that verifies every signature and counts each notice id, the
// way a deduplicating consumer would see duplicates.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	ids      map[string]int
	bodies   map[string][]byte
	bad      int
	failNext int
}

func newReceiver(t testing.TB) *receiver {
	v, err := webhooksig.NewVerifier(notifySecret)
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{ids: map[string]int{}, bodies: map[string][]byte{}}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.failNext > 0 {
			r.failNext--
			http.Error(w, "try later", http.StatusServiceUnavailable)
			return
		}
		if err := v.Verify(req.Header, body); err != nil {
			r.bad++
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		id := req.Header.Get("webhook-id")
		r.ids[id]++
		r.bodies[id] = body
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) counts() (distinct, total, bad int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.ids {
		total += n
	}
	return len(r.ids), total, r.bad
}

func (r *receiver) duplicates() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var d []string
	for id, n := range r.ids {
		if n > 1 {
			d = append(d, id)
		}
	}
	return d
}

type env struct {
	emu   *emulator.Server
	url   string
	api   *liveapi.Client
	store store.Store
	recv  *receiver
	opts  apply.Options
}

type envOption func(*emulator.Options, *liveapi.Options)

func newEnv(t testing.TB, store store.Store, eo ...envOption) *env {
	t.Helper()
	eopts := emulator.Options{Seed: emulator.DefaultSeed()}
	copts := liveapi.Options{}
	for _, o := range eo {
		o(&eopts, &copts)
	}
	emu := emulator.New(eopts)
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	cred, err := credentials.NewCredential(&credentials.Config{Type: ptr("access_key"),
		AccessKeyId: ptr(emulator.AccessKeyID), AccessKeySecret: ptr(emulator.AccessKeySecret)})
	if err != nil {
		t.Fatal(err)
	}
	copts.Endpoint, copts.Credential = srv.URL, cred
	api, err := liveapi.New(copts)
	if err != nil {
		t.Fatal(err)
	}
	recv := newReceiver(t)
	sinks, err := notify.ParseSinks(recv.URL+"/notices", notifySecret)
	if err != nil {
		t.Fatal(err)
	}
	if store == nil {
		store = memstore.New(nil)
	}
	t.Cleanup(func() { _ = store.Close() })
	return &env{emu: emu, url: srv.URL, api: api, store: store, recv: recv,
		opts: apply.Options{API: api, Store: store, Sinks: sinks}}
}

func ptr(s string) *string { return &s }

func (e *env) engine() *apply.Engine { return apply.New(e.opts) }

func (e *env) writes() int {
	n := 0
	for _, c := range e.emu.Calls() {
		if strings.HasPrefix(c.Action, "Add") || strings.HasPrefix(c.Action, "Update") || strings.HasPrefix(c.Action, "Delete") {
			n++
		}
	}
	return n
}

func parse(t testing.TB, doc string) ([]policy.Policy, string) {
	t.Helper()
	d, err := policy.Parse([]byte(doc))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return d.Policies, policy.Hash(d)
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

const sportsLL = `{"DomainName":"play.example.com","AppName":"sports","StreamName":"*","Protocol":"LLHLS_CMAF"}`

func TestApplyCreateThenReplay(t *testing.T) {
	e := newEnv(t, nil)
	ps, hash := parse(t, sportsLL)
	res, err := e.engine().Apply(ctxT(t, 20*time.Second), "direct", "k1", hash, ps)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Results) != 1 || res.Results[0].Outcome != apply.Created || res.Replayed {
		t.Fatalf("first run: %+v", res)
	}
	if len(res.Notices) != 1 || res.Notices[0].Sinks[sinkName(e)] != "delivered" {
		t.Fatalf("notice not delivered: %+v", res.Notices)
	}
	var ev struct {
		Data struct {
			RestartIngest  []map[string]string `json:"restartIngest"`
			EffectiveAfter string              `json:"effectiveAfter"`
		} `json:"data"`
	}
	_ = json.Unmarshal(e.recv.bodies[res.Notices[0].ID], &ev)
	if len(ev.Data.RestartIngest) != 1 || ev.Data.RestartIngest[0]["StreamName"] != "final" || ev.Data.EffectiveAfter == "" {
		t.Fatalf("notice lacks the online stream sports/final or effectiveAfter: %s", e.recv.bodies[res.Notices[0].ID])
	}
	calls := len(e.emu.Calls())
	again, err := e.engine().Apply(ctxT(t, 20*time.Second), "direct", "k1", hash, ps)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Replayed || again.Results[0].Outcome != apply.Created {
		t.Fatalf("replay: %+v", again)
	}
	if got := len(e.emu.Calls()) - calls; got != 0 {
		t.Fatalf("replay made %d API calls", got)
	}
	if _, total, _ := e.recv.counts(); total != 1 {
		t.Fatalf("receiver got %d notices, want 1", total)
	}
}

func sinkName(e *env) string { return e.opts.Sinks[0].Name() }

func TestPlanOutcomes(t *testing.T) {
	e := newEnv(t, nil)
	eng := e.engine()
	run := func(key, doc string) apply.Result {
		ps, hash := parse(t, doc)
		res, err := eng.Apply(ctxT(t, 20*time.Second), "direct", key, hash, ps)
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		return res
	}
	outcomes := func(res apply.Result) string {
		var out []string
		for _, r := range res.Results {
			out = append(out, r.AppName+"="+r.Outcome)
		}
		return strings.Join(out, ",")
	}
	steps := []struct{ key, doc, want string }{
		{"a", `[` + sportsLL + `,{"DomainName":"play.example.com","AppName":"news","StreamName":"*","Protocol":"HLS_CMAF"}]`, "sports=created,news=created"},
		{"b", `[` + sportsLL + `,{"DomainName":"play.example.com","AppName":"news","StreamName":"*","Protocol":"HLS_CMAF","SegmentNum":4}]`, "sports=unchanged,news=updated"},
		{"c", `[{"DomainName":"play.example.com","AppName":"news","StreamName":"*","Delete":true},{"DomainName":"play.example.com","AppName":"gone","StreamName":"*","Delete":true}]`, "news=deleted,gone=unchanged"},
		{"d", `[{"DomainName":"push.example.com","AppName":"a","StreamName":"*","Protocol":"HLS_CMAF"}]`, "a=skipped"},
		{"e", `[{"DomainName":"nowhere.example.com","AppName":"a","StreamName":"*","Protocol":"HLS_CMAF"}]`, "a=failed"},
		{"f", `[{"DomainName":"*.example.com","AppName":"a","StreamName":"*","Protocol":"HLS_CMAF"}]`, "a=invalid"},
	}
	for _, s := range steps {
		before := e.writes()
		res := run(s.key, s.doc)
		if got := outcomes(res); got != s.want {
			t.Fatalf("%s: outcomes %s, want %s (%+v)", s.key, got, s.want, res.Results)
		}
		if (s.key == "d" || s.key == "e" || s.key == "f") && e.writes() != before {
			t.Fatalf("%s: a skipped or failed policy made a write call", s.key)
		}
		for _, r := range res.Results {
			if (r.Outcome == apply.Skipped || r.Outcome == apply.Failed) && r.Reason == "" {
				t.Fatalf("%s: %s without a reason", s.key, r.Outcome)
			}
		}
	}
	if n, _, _ := e.recv.counts(); n != 4 {
		t.Fatalf("%d distinct notices, want 4 (2 created, 1 updated, 1 deleted)", n)
	}
}

// TestDescribeOncePerDomain: planning many policies of one domain reads its configs once.
func TestDescribeOncePerDomain(t *testing.T) {
	e := newEnv(t, nil)
	var ps []string
	for i := range 8 {
		ps = append(ps, fmt.Sprintf(`{"DomainName":"play.example.com","AppName":"app%d","StreamName":"*","Protocol":"HLS_CMAF"}`, i))
	}
	pol, hash := parse(t, "["+strings.Join(ps, ",")+"]")
	if _, err := e.engine().Apply(ctxT(t, 30*time.Second), "direct", "many", hash, pol); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, c := range e.emu.Calls() {
		counts[c.Action]++
	}
	if counts["DescribeLivePackageConfig"] != 1 || counts["DescribeLiveDomainDetail"] != 1 || counts["AddLivePackageConfig"] != 8 {
		t.Fatalf("calls %v: want 1 Describe, 1 domain detail, 8 Adds", counts)
	}
}

func TestPayloadMismatch(t *testing.T) {
	e := newEnv(t, nil)
	ps, hash := parse(t, sportsLL)
	if _, err := e.engine().Apply(ctxT(t, 20*time.Second), "direct", "k", hash, ps); err != nil {
		t.Fatal(err)
	}
	ps2, hash2 := parse(t, `{"DomainName":"play.example.com","AppName":"sports","StreamName":"*","Protocol":"HLS_CMAF"}`)
	calls := len(e.emu.Calls())
	_, err := e.engine().Apply(ctxT(t, 20*time.Second), "direct", "k", hash2, ps2)
	if !errors.Is(err, eventkey.ErrPayloadMismatch) {
		t.Fatalf("err = %v, want ErrPayloadMismatch", err)
	}
	if len(e.emu.Calls()) != calls {
		t.Fatal("a mismatched payload reached the API")
	}
}

func stores(t *testing.T) map[string]func() store.Store { return everystore.Backends(t) }

func TestConcurrentDeliveriesApplyOnce(t *testing.T) {
	for name, mk := range stores(t) {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, mk())
			ps, hash := parse(t, sportsLL)
			var wg sync.WaitGroup
			var mu sync.Mutex
			outcomes := map[string]int{}
			for range 50 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					defer cancel()
					res, err := e.engine().Apply(ctx, "cms-webhook", "msg_1", hash, ps)
					mu.Lock()
					defer mu.Unlock()
					switch {
					case errors.Is(err, eventkey.ErrInProgress):
						outcomes["in-progress"]++
					case err != nil:
						outcomes["error: "+err.Error()]++
					case res.Replayed:
						outcomes["replayed"]++
					default:
						outcomes[res.Results[0].Outcome]++
					}
				}()
			}
			wg.Wait()
			if outcomes[apply.Created] != 1 || e.writes() != 1 {
				t.Fatalf("outcomes %v, %d writes: want exactly one apply", outcomes, e.writes())
			}
			if _, total, _ := e.recv.counts(); total != 1 {
				t.Fatalf("%d notices delivered, want 1", total)
			}
		})
	}
}

// crashingAPI writes through to the API, then dies before the engine can record anything:
// the process crash between apply and notice.
type crashingAPI struct {
	liveapi.API
}

type crash struct{}

func (c crashingAPI) AddPackageConfig(ctx context.Context, pc liveapi.PackageConfig) error {
	if err := c.API.AddPackageConfig(ctx, pc); err != nil {
		return err
	}
	panic(crash{})
}

func TestCrashBetweenApplyAndNotice(t *testing.T) {
	e := newEnv(t, nil)
	ps, hash := parse(t, sportsLL)
	crashed := e.opts
	crashed.API = crashingAPI{e.api}
	func() {
		defer func() {
			if r := recover(); r == nil {
				t.Fatal("the crashing run did not crash")
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, _ = apply.New(crashed).Apply(ctx, "cms-webhook", "msg_crash", hash, ps)
	}()
	if _, total, _ := e.recv.counts(); total != 0 {
		t.Fatal("the crashed run delivered a notice")
	}
	// The platform retries once the crashed run's lease has lapsed: within seconds, since the
	// lease is short and no heartbeat renews it any more.
	var res apply.Result
	var err error
	crashedAt := time.Now()
	defer func() { t.Logf("the retry succeeded %s after the crash", time.Since(crashedAt).Round(time.Second)) }()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		res, err = e.engine().Apply(ctxT(t, 20*time.Second), "cms-webhook", "msg_crash", hash, ps)
		if !errors.Is(err, eventkey.ErrInProgress) {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if res.Results[0].Outcome != apply.Unchanged || e.writes() != 1 {
		t.Fatalf("retry: %+v, %d writes; want unchanged and no second write", res.Results, e.writes())
	}
	if _, total, _ := e.recv.counts(); total != 1 {
		t.Fatalf("%d notices after the retry, want exactly 1", total)
	}
	// And once more: a replay, nothing new.
	if _, err := e.engine().Apply(ctxT(t, 20*time.Second), "cms-webhook", "msg_crash", hash, ps); err != nil {
		t.Fatal(err)
	}
	if _, total, _ := e.recv.counts(); total != 1 {
		t.Fatalf("%d notices after a replay, want 1", total)
	}
}

// TestUndeliveredNoticeGoesOutWithTheNextInvocation: a notice its sink refused is rescheduled
// with backoff, and the first invocation of any trigger after that time delivers it; a replay
// of the first event then reads its notice as delivered.
func TestUndeliveredNoticeGoesOutWithTheNextInvocation(t *testing.T) {
	e := newEnv(t, nil)
	clk := &clock{now: time.Now()}
	e.opts.Now = clk.Now
	e.recv.mu.Lock()
	e.recv.failNext = 1000
	e.recv.mu.Unlock()
	ps, hash := parse(t, sportsLL)
	res, err := e.engine().Apply(ctxT(t, 2*time.Second), "direct", "k1", hash, ps)
	if err != nil {
		t.Fatal(err)
	}
	if st := res.Notices[0].Sinks[sinkName(e)]; !strings.HasPrefix(st, "pending") {
		t.Fatalf("notice state %q, want pending", st)
	}
	if res.Backlog == nil || res.Backlog.Owed != 1 {
		t.Fatalf("backlog %+v, want 1 owed", res.Backlog)
	}
	e.recv.mu.Lock()
	e.recv.failNext = 0
	e.recv.mu.Unlock()
	// Before its next attempt is due, another invocation leaves it alone...
	ps2, hash2 := parse(t, `{"DomainName":"play.example.com","AppName":"news","StreamName":"*","Protocol":"HLS_CMAF"}`)
	if _, err := e.engine().Apply(ctxT(t, 20*time.Second), "direct", "k2", hash2, ps2); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := e.recv.counts(); n != 1 {
		t.Fatalf("receiver got %d notices, want only the second run's", n)
	}
	// ...and once it is due, any invocation delivers it.
	clk.mu.Lock()
	clk.now = clk.now.Add(2 * time.Minute)
	clk.mu.Unlock()
	ps3, hash3 := parse(t, `{"DomainName":"play.example.com","AppName":"extra","StreamName":"*","Protocol":"HLS_CMAF"}`)
	third, err := e.engine().Apply(ctxT(t, 20*time.Second), "direct", "k3", hash3, ps3)
	if err != nil {
		t.Fatal(err)
	}
	if n, total, _ := e.recv.counts(); n != 3 || total != 3 {
		t.Fatalf("receiver got %d distinct / %d total, want 3 / 3", n, total)
	}
	if third.Backlog == nil || third.Backlog.Owed != 0 || len(third.Notices) != 2 || !third.Notices[1].Relayed {
		t.Fatalf("third result: notices %+v backlog %+v, want its own and the relayed one, nothing owed", third.Notices, third.Backlog)
	}
	// A replay of the first key reads its notice as delivered now, and sends nothing.
	again, err := e.engine().Apply(ctxT(t, 20*time.Second), "direct", "k1", hash, ps)
	if err != nil || !again.Replayed {
		t.Fatalf("replay: %+v, %v", again, err)
	}
	if st := again.Notices[0].Sinks[sinkName(e)]; st != "delivered" {
		t.Fatalf("replayed notice state %q, want delivered", st)
	}
	if _, total, _ := e.recv.counts(); total != 3 {
		t.Fatalf("%d notices after the replay, want 3", total)
	}
}

// TestFaultyAPIConverges runs many events, each delivered more than once, against an emulator
// that fails 30% of calls; every event is retried until it succeeds, as the platforms do.
func TestFaultyAPIConverges(t *testing.T) {
	// One attempt per call hands every ambiguous write to the engine's retry across
	// invocations; three let the client's own retry meet its committed write.
	for _, attempts := range []int{1, 3} {
		t.Run(fmt.Sprintf("attempts=%d", attempts), func(t *testing.T) { faultyConverges(t, attempts) })
	}
}

func faultyConverges(t *testing.T, attempts int) {
	e := newEnv(t, nil, func(o *emulator.Options, c *liveapi.Options) {
		o.FailRate, o.FailSeed = 0.3, int64(7+attempts)
		c.MaxAttempts = attempts
	})
	want := map[string]policy.Config{}
	type event struct {
		key  string
		ps   []policy.Policy
		hash string
	}
	deliver := func(ev event) {
		for attempt := 0; attempt < 50; attempt++ {
			_, err := e.engine().Apply(ctxT(t, 20*time.Second), "policy-bus", ev.key, ev.hash, ev.ps)
			if err == nil {
				return
			}
			if !errors.Is(err, apply.ErrRetryLater) && !errors.Is(err, eventkey.ErrInProgress) {
				t.Fatalf("%s: %v", ev.key, err)
			}
		}
		t.Fatalf("%s never succeeded", ev.key)
	}
	committed := func() int {
		n := 0
		for _, c := range e.emu.Calls() {
			if c.Committed {
				n++
			}
		}
		return n
	}
	// Forty events at least, and more until a write has failed after committing: a domain's
	// reads go out together, so which call draws which fault varies from run to run.
	events := 0
	for ; events < 40 || (committed() == 0 && events < 400); events++ {
		app := fmt.Sprintf("app%d", events%8)
		seg := 1 + events%10
		doc := fmt.Sprintf(`{"DomainName":"play.example.com","AppName":%q,"StreamName":"*","Protocol":"HLS_CMAF","SegmentDuration":%d}`, app, seg)
		ps, hash := parse(t, doc)
		want[app] = ps[0].Config()
		ev := event{fmt.Sprintf("evt-%d", events), ps, hash}
		deliver(ev)
		deliver(ev) // the duplicate delivery
	}
	// Read the result from the emulator's state, not through the faulty API.
	cfgs := e.emu.State().PackageConfigs
	got := map[string]policy.Config{}
	for _, c := range cfgs {
		got[c.AppName] = policy.Config{Protocol: c.Protocol, SegmentNum: c.SegmentNum, SegmentDuration: c.SegmentDuration, IgnoreTranscode: c.IgnoreTranscode}
	}
	for app, c := range want {
		if got[app] != c {
			t.Errorf("%s: API has %+v, want %+v", app, got[app], c)
		}
	}
	if committed() == 0 {
		t.Fatal("no write failed after committing: the test misses the ambiguous case")
	}
	if d := e.recv.duplicates(); len(d) > 0 {
		t.Fatalf("duplicate notices: %v", d)
	}
	// Every event changed its app's config (each event's segment differs from the previous
	// one's for that app), so each owes exactly one notice.
	if n, _, bad := e.recv.counts(); n != events || bad != 0 {
		t.Fatalf("%d distinct notices (%d badly signed), want %d", n, bad, events)
	}
}

// TestQuotaNeverThrottled: with the client limiter at the emulator's quota, no call is answered
// with Throttling.User; the budget goes at once, and calls it cannot cover before the deadline
// fail fast instead.
func TestQuotaNeverThrottled(t *testing.T) {
	e := newEnv(t, nil, func(o *emulator.Options, c *liveapi.Options) {
		o.Rate = 10
		c.Limiter = quota.NewLocal(10)
	})
	ctx := ctxT(t, 1500*time.Millisecond)
	var exhausted, ok int
	for range 20 {
		_, err := e.api.DescribePackageConfigs(ctx, "play.example.com")
		switch {
		case err == nil:
			ok++
		case errors.Is(err, quota.ErrExhausted):
			exhausted++
		default:
			t.Fatalf("unexpected error: %v", err)
		}
	}
	for _, c := range e.emu.Calls() {
		if strings.HasPrefix(c.Code, "Throttling") {
			t.Fatalf("the emulator throttled a call: %+v", c)
		}
	}
	if ok != 10 || exhausted != 10 {
		t.Fatalf("ok %d, exhausted %d: the budget of 10 should admit 10 calls at once and refuse the rest", ok, exhausted)
	}
}
