package apply_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/livepack/livepack/shared/apply"
	"github.com/livepack/livepack/shared/emulator"
	"github.com/livepack/livepack/shared/liveapi"
	"github.com/livepack/livepack/shared/store"
	"github.com/livepack/livepack/shared/store/everystore"
	"github.com/livepack/livepack/shared/store/storetest"
)

// opsBackends are the backends in the order BenchmarkStoreOps runs them: memory first, the
// anchor of every other backend's added latency, and redis before dynamodb, the anchor of
// their ratio.
var opsBackends = []string{"memory", "file", "redis", "dynamodb", "tablestore"}

// opsWorkload is one kind of event the store-operation figures are taken on.
type opsWorkload struct {
	name string
	// policies is the document's size: each policy is one change, one notice.
	policies int
	// replay: the same event id again, after a first delivery completed.
	replay bool
}

var opsWorkloads = []opsWorkload{
	{name: "first", policies: 1},
	{name: "replay", policies: 1, replay: true},
	{name: "doc10", policies: 10},
}

// opsRig drives CMS-webhook events through the real engine, against the emulator over HTTP,
// with a notice receiver as the one sink, on a store that counts its operations.
type opsRig struct {
	e     *env
	c     *storetest.Counting
	eng   *apply.Engine
	apps  int
	round int
}

func newOpsRig(tb testing.TB, open func() store.Store, apps int) *opsRig {
	c := storetest.NewCounting(open())
	// A quota the events never reach: the figures are the store's, not the throttle's.
	e := newEnv(tb, c, func(o *emulator.Options, _ *liveapi.Options) { o.Rate = 1 << 30 })
	r := &opsRig{e: e, c: c, eng: e.engine(), apps: apps}
	r.deliver(tb, "msg_warm") // the configs exist: every later event is one update per policy
	return r
}

// deliver sends a first delivery of a webhook under key that changes every policy of the rig's
// document (SegmentNum 3 and 4 by turns), and checks it did: one change and one notice
// delivered per policy.
func (r *opsRig) deliver(tb testing.TB, key string) apply.Result {
	tb.Helper()
	r.round++
	var ps []string
	for i := range r.apps {
		ps = append(ps, fmt.Sprintf(`{"DomainName":"play.example.com","AppName":"app%d","StreamName":"*","Protocol":"HLS_CMAF","SegmentNum":%d}`, i, 3+r.round%2))
	}
	res := r.apply(tb, key, "["+strings.Join(ps, ",")+"]")
	if res.Replayed || len(res.Results) != r.apps || len(res.Notices) != r.apps {
		tb.Fatalf("%s: not one change and one notice per policy: %+v", key, res)
	}
	for i, pr := range res.Results {
		if pr.Outcome != apply.Created && pr.Outcome != apply.Updated {
			tb.Fatalf("%s: policy %d %s: %s", key, i, pr.Outcome, pr.Reason)
		}
	}
	for _, n := range res.Notices {
		if n.Sinks[sinkName(r.e)] != "delivered" || n.Relayed {
			tb.Fatalf("%s: notice %s: %v", key, n.ID, n.Sinks)
		}
	}
	return res
}

func (r *opsRig) apply(tb testing.TB, key, doc string) apply.Result {
	tb.Helper()
	ps, hash := parse(tb, doc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := r.eng.Apply(ctx, "cms-webhook", key, hash, ps)
	if err != nil {
		tb.Fatalf("%s: %v", key, err)
	}
	return res
}

// replayDoc is the document of the rig's replayed event: one policy, applied once.
const replayDoc = `[{"DomainName":"play.example.com","AppName":"replayed","StreamName":"*","Protocol":"HLS_CMAF"}]`

// replay delivers the replayed event again and checks it is a replay that called no API.
func (r *opsRig) replay(tb testing.TB) {
	tb.Helper()
	calls := len(r.e.emu.Calls())
	if res := r.apply(tb, "msg_replayed", replayDoc); !res.Replayed {
		tb.Fatalf("not a replay: %+v", res)
	}
	if n := len(r.e.emu.Calls()) - calls; n != 0 {
		tb.Fatalf("a replay made %d API calls", n)
	}
}

// event runs one event of w (a fresh key each time, unless w replays).
func (r *opsRig) event(tb testing.TB, w opsWorkload, i int) {
	if w.replay {
		r.replay(tb)
		return
	}
	r.deliver(tb, fmt.Sprintf("msg_%s_%d", w.name, i))
}

// prepare readies the rig for w: the replayed event's first delivery.
func (r *opsRig) prepare(tb testing.TB, w opsWorkload) {
	if w.replay {
		if res := r.apply(tb, "msg_replayed", replayDoc); res.Replayed || len(res.Notices) != 1 {
			tb.Fatalf("first delivery of the replayed event: %+v", res)
		}
	}
}

// BenchmarkStoreOps measures, per backend and per kind of event, the store operations an event
// costs (reads/event, writes/event) and its wall time (ns/event), driven through the engine
// against the emulator over HTTP with one notice sink. Every backend after memory also reports
// added-ms/event, its time over memory's for the same events in the same run; dynamodb on the
// 10-policy document reports x-redis, its time ÷ redis's.
func BenchmarkStoreOps(b *testing.B) {
	backends := everystore.Backends(b)
	for _, w := range opsWorkloads {
		b.Run(w.name, func(b *testing.B) {
			perEvent := map[string]float64{}
			for _, name := range opsBackends {
				b.Run(name, func(b *testing.B) {
					r := newOpsRig(b, backends[name], w.policies)
					r.prepare(b, w)
					r.c.Reset()
					n := 0
					for b.Loop() {
						r.event(b, w, n)
						n++
					}
					ops := r.c.Ops()
					ns := float64(b.Elapsed().Nanoseconds()) / float64(n)
					perEvent[name] = ns
					b.ReportMetric(float64(ops.Reads())/float64(n), "reads/event")
					b.ReportMetric(float64(ops.Writes())/float64(n), "writes/event")
					b.ReportMetric(ns, "ns/event")
					if base, ok := perEvent["memory"]; ok && name != "memory" {
						b.ReportMetric((ns-base)/1e6, "added-ms/event")
					}
					if redis, ok := perEvent["redis"]; ok && name == "dynamodb" && w.policies == 10 {
						b.ReportMetric(ns/redis, "x-redis")
					}
				})
			}
		})
	}
}

// TestStoreOpsPerEvent pins what an event costs the store on every backend: a replay is its
// event key's one read plus the relay's two lists, and no write; a first delivery and a 10-policy document stay within the counts
// BenchmarkStoreOps measured (README, Performance).
func TestStoreOpsPerEvent(t *testing.T) {
	limits := map[string]storetest.Ops{
		"first": {Get: 3, List: 2, Create: 4, Update: 3, Delete: 2},
		"doc10": {Get: 21, List: 2, Create: 31, Update: 21, Delete: 20},
	}
	for name, open := range everystore.Backends(t) {
		t.Run(name, func(t *testing.T) {
			r := newOpsRig(t, open, 1)
			r10 := newOpsRig(t, open, 10)
			for _, w := range opsWorkloads {
				rig := r
				if w.policies == 10 {
					rig = r10
				}
				rig.prepare(t, w)
				rig.c.Reset()
				rig.event(t, w, 0)
				got := rig.c.Ops()
				t.Logf("%s: %v (%s)", w.name, got, rig.c.Trace())
				if w.replay {
					// The event key's one get, then the relay every invocation runs: one list
					// of the open intents and one of the due index, nothing owed, no write.
					if got != (storetest.Ops{Get: 1, List: 2}) {
						t.Errorf("a replay cost %v (%s), want one get, the relay's two lists and no write", got, rig.c.Trace())
					}
					continue
				}
				if max := limits[w.name]; got.Reads() > max.Reads() || got.Writes() > max.Writes() {
					t.Errorf("%s: %v (%s), want at most %d reads and %d writes", w.name, got, rig.c.Trace(), max.Reads(), max.Writes())
				}
			}
		})
	}
}

// TestReplayRunsTheRelay: every invocation runs the relay, a replay included. A replay of an
// event whose notices were all delivered still delivers what another event left owed, once.
func TestReplayRunsTheRelay(t *testing.T) {
	e := newEnv(t, nil)
	now := time.Now()
	opts := e.opts
	opts.Now = func() time.Time { return now }
	eng := apply.New(opts)
	settled, settledHash := parse(t, replayDoc)
	if res, err := eng.Apply(ctxT(t, 20*time.Second), "cms-webhook", "msg_settled", settledHash, settled); err != nil || len(res.Notices) != 1 {
		t.Fatalf("first event: %v %+v", err, res)
	}
	e.recv.mu.Lock()
	e.recv.failNext = 1000 // every try of the first attempt, the sink's own retries included
	e.recv.mu.Unlock()
	ps, hash := parse(t, sportsLL)
	owed, err := eng.Apply(ctxT(t, 20*time.Second), "cms-webhook", "msg_owed", hash, ps)
	if err != nil || len(owed.Notices) != 1 || !strings.HasPrefix(owed.Notices[0].Sinks[sinkName(e)], "pending") {
		t.Fatalf("second event: %v %+v", err, owed.Notices)
	}
	e.recv.mu.Lock()
	e.recv.failNext = 0
	e.recv.mu.Unlock()
	now = now.Add(2 * time.Hour) // past the delivery's backoff
	res, err := eng.Apply(ctxT(t, 20*time.Second), "cms-webhook", "msg_settled", settledHash, settled)
	if err != nil || !res.Replayed {
		t.Fatalf("replay: %v %+v", err, res)
	}
	if n, total, _ := e.recv.counts(); n != 2 || total != 2 {
		t.Fatalf("after the settled event's replay: %d notices delivered (%d deliveries), want both, once each", n, total)
	}
	// Another replay finds nothing owed and sends nothing again.
	if _, err := eng.Apply(ctxT(t, 20*time.Second), "cms-webhook", "msg_owed", hash, ps); err != nil {
		t.Fatal(err)
	}
	if n, total, _ := e.recv.counts(); n != 2 || total != 2 {
		t.Fatalf("after a second replay: %d notices, %d deliveries, want 2 and 2", n, total)
	}
}
