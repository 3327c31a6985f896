package apply_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livepack/livepack/shared/apply"
	"github.com/livepack/livepack/shared/emulator"
	"github.com/livepack/livepack/shared/liveapi"
	"github.com/livepack/livepack/shared/notify"
	"github.com/livepack/livepack/shared/store"
)

// offsetClock is the real clock moved ahead by a settable offset: time passes as usual (leases
// lapse, heartbeats renew) while a test jumps hours ahead.
type offsetClock struct{ d atomic.Int64 }

func (c *offsetClock) Now() time.Time          { return time.Now().Add(time.Duration(c.d.Load())) }
func (c *offsetClock) advance(d time.Duration) { c.d.Add(int64(d)) }

// lateOnly are default policies for late.example.com alone, so an enforce pass has nothing else
// to write.
const lateOnly = `[{"DomainName":"late.example.com","AppName":"sports","StreamName":"*","Protocol":"LLHLS_CMAF"}]`

// deferEnv is an environment whose engines share one store and one offset clock, and whose
// emulator has a clock of its own, which emuClk moves (less than the signatures' 15 minutes of
// tolerated skew) to bring a hidden domain out.
type deferClocks struct{ clk, emuClk *offsetClock }

func deferEnv(t *testing.T, st store.Store, defaultPolicies string) (*env, deferClocks) {
	t.Helper()
	c := deferClocks{clk: &offsetClock{}, emuClk: &offsetClock{}}
	e := newEnv(t, st, func(o *emulator.Options, _ *liveapi.Options) { o.Now = c.emuClk.Now })
	defaults, _ := parse(t, defaultPolicies)
	e.opts.Defaults, e.opts.Now = defaults, c.clk.Now
	return e, c
}

// engineOwnClient is an engine with a Live API client of its own, as another instance has.
func (e *env) engineOwnClient(t *testing.T) *apply.Engine {
	opts := e.opts
	opts.API = newClient(t, e.url)
	return apply.New(opts)
}

func deferredRecord(t *testing.T, st store.Store, domain string) bool {
	t.Helper()
	_, err := st.Get(context.Background(), "deferred/"+domain)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

// noticesOfType counts the notices the receiver took, by id, whose type is typ.
func (r *receiver) noticesOfType(typ string) (distinct, total int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, body := range r.bodies {
		var ev struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(body, &ev) == nil && ev.Type == typ {
			distinct++
			total += r.ids[id]
		}
	}
	return distinct, total
}

func writesOK(e *env) int {
	n := 0
	for _, c := range e.emu.Calls() {
		if (strings.HasPrefix(c.Action, "Add") || strings.HasPrefix(c.Action, "Update")) && strings.HasSuffix(c.Action, "PackageConfig") && c.Status == 200 {
			n++
		}
	}
	return n
}

// bringOnline moves the emulator's clock until domain is online.
func bringOnline(t *testing.T, e *env, c deferClocks, domain string) {
	t.Helper()
	c.emuClk.advance(11 * time.Minute)
	for _, d := range e.emu.State().Domains {
		if d.DomainName == domain && d.DomainStatus == "online" {
			return
		}
	}
	t.Fatalf("%s is not online", domain)
}

// TestDomainCreatedDeferred: a domain-created event whose domain the API does not show yet, or
// shows as configuring, succeeds with the outcome deferred and records the domain once; its
// redelivery replays. An event older than apply.DeferFor whose domain is still not there fails.
func TestDomainCreatedDeferred(t *testing.T) {
	tests := []struct {
		name     string
		domain   string
		age      time.Duration
		outcome  string
		recorded bool
	}{
		{"hidden", "late.example.com", time.Minute, apply.Deferred, true},
		{"configuring", "staging.example.com", time.Minute, apply.Deferred, true},
		{"hidden past the deferral", "late.example.com", apply.DeferFor + time.Minute, apply.Failed, false},
		{"ready", "new.example.com", time.Minute, apply.Created, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, _ := deferEnv(t, nil, `[{"DomainName":"*.example.com","AppName":"sports","StreamName":"*","Protocol":"LLHLS_CMAF"}]`)
			if _, err := e.emu.AddDomain(emulator.NewDomain{DomainName: "late.example.com", HiddenFor: "1h"}); err != nil {
				t.Fatal(err)
			}
			at := time.Now().Add(-tt.age)
			res, err := e.engine().DomainCreated(ctxT(t, 20*time.Second), "domain-created", "evt-1", tt.domain, at)
			if err != nil || len(res.Results) != 1 || res.Results[0].Outcome != tt.outcome || res.Results[0].Reason == "" && tt.outcome != apply.Created {
				t.Fatalf("err %v, results %+v", err, res.Results)
			}
			if got := deferredRecord(t, e.store, tt.domain); got != tt.recorded {
				t.Fatalf("deferred record %v, want %v", got, tt.recorded)
			}
			again, err := e.engine().DomainCreated(ctxT(t, 20*time.Second), "domain-created", "evt-1", tt.domain, at)
			if err != nil || !again.Replayed || again.Results[0].Outcome != tt.outcome {
				t.Fatalf("redelivery: %v %+v", err, again)
			}
			if tt.recorded {
				// Another event for the same domain keeps the first record (and its time).
				before, _ := e.store.Get(context.Background(), "deferred/"+tt.domain)
				if _, err := e.engine().DomainCreated(ctxT(t, 20*time.Second), "domain-created", "evt-2", tt.domain, time.Now()); err != nil {
					t.Fatal(err)
				}
				after, _ := e.store.Get(context.Background(), "deferred/"+tt.domain)
				if before.Version != after.Version {
					t.Fatal("a second event rewrote the deferral record")
				}
			}
		})
	}
}

// TestDeferredAppliedBySchedule: a domain hidden for longer than the platform retries its
// event (EventBridge keeps it an hour) is deferred, and a report-mode schedule two hours later
// applies the default policies once it is visible: one write, one notice, the record removed;
// the next schedule finds nothing deferred. On every backend.
func TestDeferredAppliedBySchedule(t *testing.T) {
	for name, mk := range stores(t) {
		t.Run(name, func(t *testing.T) {
			e, c := deferEnv(t, mk(), lateOnly)
			if _, err := e.emu.AddDomain(emulator.NewDomain{DomainName: "late.example.com", HiddenFor: "5m", ConfiguringFor: "5m"}); err != nil {
				t.Fatal(err)
			}
			res, err := e.engine().DomainCreated(ctxT(t, 20*time.Second), "domain-created", "evt-1", "late.example.com", time.Now())
			if err != nil || res.Results[0].Outcome != apply.Deferred {
				t.Fatalf("%v %+v", err, res.Results)
			}
			c.clk.advance(2 * time.Hour)
			bringOnline(t, e, c, "late.example.com")
			res, err = e.engine().Reconcile(ctxT(t, 30*time.Second), "schedule", "s1", apply.Report, nil)
			if err != nil || res.Deferred == nil || res.Deferred.Applied != 1 || res.Results[0].DomainName != "late.example.com" || res.Results[0].Outcome != apply.Created {
				t.Fatalf("%v deferred %+v results %+v", err, res.Deferred, res.Results)
			}
			if deferredRecord(t, e.store, "late.example.com") || writesOK(e) != 1 {
				t.Fatalf("record left %v, %d writes", deferredRecord(t, e.store, "late.example.com"), writesOK(e))
			}
			if n, total := e.recv.noticesOfType(notify.TypeRestart); n != 1 || total != 1 {
				t.Fatalf("%d/%d restart notices, want 1", n, total)
			}
			res, err = e.engine().Reconcile(ctxT(t, 30*time.Second), "schedule", "s2", apply.Report, nil)
			if err != nil || res.Deferred != nil || writesOK(e) != 1 {
				t.Fatalf("second schedule: %v %+v, %d writes", err, res.Deferred, writesOK(e))
			}
		})
	}
}

// TestDeferredExpires: a domain still hidden apply.DeferFor after its event is failed by the
// next schedule, with one failure notice to the sinks, however many schedules race or follow.
// On every backend.
func TestDeferredExpires(t *testing.T) {
	for name, mk := range stores(t) {
		t.Run(name, func(t *testing.T) {
			e, c := deferEnv(t, mk(), lateOnly)
			clk := c.clk
			if _, err := e.emu.AddDomain(emulator.NewDomain{DomainName: "late.example.com", HiddenFor: "100h"}); err != nil {
				t.Fatal(err)
			}
			if res, err := e.engine().DomainCreated(ctxT(t, 20*time.Second), "domain-created", "evt-1", "late.example.com", time.Now()); err != nil || res.Results[0].Outcome != apply.Deferred {
				t.Fatalf("%v %+v", err, res.Results)
			}
			clk.advance(apply.DeferFor - time.Minute)
			res, err := e.engine().Reconcile(ctxT(t, 30*time.Second), "schedule", "s0", apply.Report, nil)
			if err != nil || res.Deferred == nil || res.Deferred.Waiting != 1 || !deferredRecord(t, e.store, "late.example.com") {
				t.Fatalf("before the deferral ends: %v %+v", err, res.Deferred)
			}
			clk.advance(2 * time.Minute)
			var wg sync.WaitGroup
			var failed atomic.Int64
			for i, mode := range []string{apply.Report, apply.Enforce, apply.Report} {
				wg.Go(func() {
					res, err := e.engineOwnClient(t).Reconcile(ctxT(t, 30*time.Second), "schedule", "s1-"+string(rune('a'+i)), mode, nil)
					if err != nil {
						t.Errorf("%s: %v", mode, err)
					}
					if res.Deferred != nil {
						failed.Add(int64(res.Deferred.Failed))
					}
				})
			}
			wg.Wait()
			if _, err := e.engine().Reconcile(ctxT(t, 30*time.Second), "schedule", "s2", apply.Report, nil); err != nil {
				t.Fatal(err)
			}
			if n, total := e.recv.noticesOfType(notify.TypeDeferredFailed); n != 1 || total != 1 || failed.Load() != 1 {
				t.Fatalf("%d/%d failure notices, %d runs failed it; want one", n, total, failed.Load())
			}
			if deferredRecord(t, e.store, "late.example.com") || writesOK(e) != 0 {
				t.Fatal("the failed deferral is still recorded, or something was written")
			}
		})
	}
}

// TestDeferredRacingSchedules: schedules of both modes, on instances of their own sharing one
// store, racing over a deferred domain that is ready apply its policies once: one write, one
// notice. On every backend.
func TestDeferredRacingSchedules(t *testing.T) {
	for name, mk := range stores(t) {
		t.Run(name, func(t *testing.T) {
			e, c := deferEnv(t, mk(), lateOnly)
			if _, err := e.emu.AddDomain(emulator.NewDomain{DomainName: "late.example.com", HiddenFor: "10m", ConfiguringFor: "0s"}); err != nil {
				t.Fatal(err)
			}
			if res, err := e.engine().DomainCreated(ctxT(t, 20*time.Second), "domain-created", "evt-1", "late.example.com", time.Now()); err != nil || res.Results[0].Outcome != apply.Deferred {
				t.Fatalf("%v %+v", err, res.Results)
			}
			bringOnline(t, e, c, "late.example.com")
			var wg sync.WaitGroup
			var applied atomic.Int64
			start := make(chan struct{})
			for i, mode := range []string{apply.Report, apply.Enforce, apply.Report, apply.Enforce} {
				wg.Go(func() {
					en := e.engineOwnClient(t)
					<-start
					res, err := en.Reconcile(ctxT(t, 30*time.Second), "schedule", "r-"+string(rune('a'+i)), mode, nil)
					if err != nil && !errors.Is(err, apply.ErrRetryLater) {
						t.Errorf("%s: %v", mode, err)
					}
					if res.Deferred != nil {
						applied.Add(int64(res.Deferred.Applied))
					}
				})
			}
			close(start)
			wg.Wait()
			if writesOK(e) != 1 || applied.Load() != 1 || deferredRecord(t, e.store, "late.example.com") {
				t.Fatalf("%d writes, applied by %d runs, record left %v", writesOK(e), applied.Load(), deferredRecord(t, e.store, "late.example.com"))
			}
			if n, total := e.recv.noticesOfType(notify.TypeRestart); n != 1 || total != 1 {
				t.Fatalf("%d/%d restart notices, want 1", n, total)
			}
		})
	}
}
