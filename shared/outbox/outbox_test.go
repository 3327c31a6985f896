package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/livepack/livepack/shared/notify"
	"github.com/livepack/livepack/shared/outbox"
	"github.com/livepack/livepack/shared/policy"
	"github.com/livepack/livepack/shared/store"
	"github.com/livepack/livepack/shared/store/everystore"
	"github.com/livepack/livepack/shared/store/storetest"
)

// sink records deliveries; fail decides per notice whether an attempt fails.
type sink struct {
	name string
	mu   sync.Mutex
	got  []string
	fail func(id string) error
	slow time.Duration
}

func (s *sink) Name() string { return s.name }

func (s *sink) Deliver(ctx context.Context, n notify.Notice) error {
	if s.slow > 0 {
		select {
		case <-time.After(s.slow):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		if err := s.fail(n.ID); err != nil {
			return err
		}
	}
	s.got = append(s.got, n.ID)
	return nil
}

func (s *sink) ids() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got...)
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

var target = policy.Target{DomainName: "play.example.com", AppName: "sports", StreamName: "*"}

func cfg(n int) *policy.Config {
	return &policy.Config{Protocol: "HLS_CMAF", SegmentNum: n, SegmentDuration: 5, IgnoreTranscode: true}
}

func notice(t testing.TB, in outbox.Intent) notify.Notice {
	n, err := notify.Build(notify.Change{ID: in.ID, Target: in.Target, Outcome: in.Outcome, Config: in.Desired, Previous: in.Previous, At: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// inPlace is a Settler that answers from a flag: the API's state as a test sets it.
func settler(t testing.TB, in func(outbox.Intent) bool) outbox.Settler {
	return func(_ context.Context, i outbox.Intent) (bool, notify.Notice, []notify.Stream, error) {
		if !in(i) {
			return false, notify.Notice{}, nil, nil
		}
		return true, notice(t, i), nil, nil
	}
}

func each(t *testing.T, f func(t *testing.T, mk func() store.Store)) {
	for name, mk := range everystore.Backends(t) {
		t.Run(name, func(t *testing.T) { f(t, mk) })
	}
}

// change runs one writer's protocol: intent, write (always lands), commit.
func change(t testing.TB, ctx context.Context, b *outbox.Outbox, c *policy.Config, holder string) (outbox.Change, []string) {
	t.Helper()
	in, ans, err := b.Begin(ctx, outbox.Intent{Target: target, Outcome: "updated", Desired: c}, holder)
	if err != nil || ans != outbox.Mine {
		t.Fatalf("Begin: %v, %v", ans, err)
	}
	ch, keys, err := b.Commit(ctx, in, notice(t, in), nil)
	if err != nil {
		t.Fatal(err)
	}
	return ch, keys
}

// TestRecurringChangesGetDistinctIDs: A→B→A→B is four occurrences, four ids, four notices.
func TestRecurringChangesGetDistinctIDs(t *testing.T) {
	each(t, func(t *testing.T, mk func() store.Store) {
		ctx := context.Background()
		sk := &sink{name: "s"}
		b := outbox.New(outbox.Options{Store: mk(), Sinks: []notify.Sink{sk}})
		var ids []string
		for i := range 4 {
			ch, keys := change(t, ctx, b, cfg(3+i%2), "run")
			ids = append(ids, ch.ID)
			if st := b.Deliver(ctx, keys, "run")[ch.ID]["s"]; st != outbox.Delivered {
				t.Fatalf("change %d: %q", i, st)
			}
		}
		got := sk.ids()
		if fmt.Sprint(got) != fmt.Sprint(ids) || len(distinct(got)) != 4 {
			t.Fatalf("delivered %v, want the four distinct ids %v", got, ids)
		}
	})
}

func distinct(ids []string) map[string]bool {
	m := map[string]bool{}
	for _, id := range ids {
		m[id] = true
	}
	return m
}

// TestOneOpenIntentPerTarget: racing runs share one intent for the same end state (one id),
// wait for a different one, and settle a lapsed one.
func TestOneOpenIntentPerTarget(t *testing.T) {
	each(t, func(t *testing.T, mk func() store.Store) {
		ctx := context.Background()
		clk := &clock{now: time.Now()}
		b := outbox.New(outbox.Options{Store: mk(), Now: clk.Now})
		const racers = 8
		var wg sync.WaitGroup
		var mu sync.Mutex
		answers := map[outbox.Begin]int{}
		ids := map[string]bool{}
		for i := range racers {
			wg.Go(func() {
				in, ans, err := b.Begin(ctx, outbox.Intent{Target: target, Outcome: "created", Desired: cfg(3)}, fmt.Sprint("run", i))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				answers[ans]++
				ids[in.ID] = true
				mu.Unlock()
			})
		}
		wg.Wait()
		if answers[outbox.Mine] != 1 || answers[outbox.Joined] != racers-1 || len(ids) != 1 {
			t.Fatalf("answers %v over %d ids, want one Mine and the rest Joined to its id", answers, len(ids))
		}
		if _, ans, _ := b.Begin(ctx, outbox.Intent{Target: target, Outcome: "created", Desired: cfg(4)}, "other"); ans != outbox.Busy {
			t.Fatalf("a different end state: %v, want Busy", ans)
		}
		clk.add(outbox.IntentTTL + time.Second)
		in, ans, _ := b.Begin(ctx, outbox.Intent{Target: target, Outcome: "created", Desired: cfg(4)}, "other")
		if ans != outbox.Lapsed {
			t.Fatalf("after the lease: %v, want Lapsed", ans)
		}
		// Settled as not in place: abandoned, no change recorded, the target free again.
		ch, _, err := b.Settle(ctx, in, "other", settler(t, func(outbox.Intent) bool { return false }))
		if err != nil || ch != nil {
			t.Fatalf("settle: %v, %v", ch, err)
		}
		if last, _ := b.Last(ctx, target); last != nil {
			t.Fatalf("an abandoned intent left a change: %+v", last)
		}
		if _, ans, _ := b.Begin(ctx, outbox.Intent{Target: target, Outcome: "created", Desired: cfg(4)}, "other"); ans != outbox.Mine {
			t.Fatalf("after settling: %v, want Mine", ans)
		}
	})
}

// TestCrashAfterWriteRelayAlone: a run that recorded its intent, wrote, and vanished (no
// redelivery) is announced by the next relay of any invocation; one that vanished before its
// write landed is abandoned without a notice.
func TestCrashAfterWriteRelayAlone(t *testing.T) {
	each(t, func(t *testing.T, mk func() store.Store) {
		ctx := context.Background()
		clk := &clock{now: time.Now()}
		sk := &sink{name: "s"}
		s := mk()
		b := outbox.New(outbox.Options{Store: s, Sinks: []notify.Sink{sk}, Now: clk.Now})
		landed, _, _ := b.Begin(ctx, outbox.Intent{Target: target, Outcome: "created", Desired: cfg(3)}, "crashed")
		other := policy.Target{DomainName: "play.example.com", AppName: "news", StreamName: "*"}
		lost, _, _ := b.Begin(ctx, outbox.Intent{Target: other, Outcome: "created", Desired: cfg(3)}, "crashed")
		// Before the leases lapse the relay leaves them to their holder.
		rep := b.Relay(ctx, outbox.RelayOptions{Holder: "relay", Settle: settler(t, func(i outbox.Intent) bool { return i.ID == landed.ID })})
		if rep.Settled+rep.Abandoned != 0 || len(sk.ids()) != 0 {
			t.Fatalf("a live intent was settled: %+v", rep)
		}
		clk.add(outbox.IntentTTL + time.Second)
		rep = b.Relay(ctx, outbox.RelayOptions{Holder: "relay", Settle: settler(t, func(i outbox.Intent) bool { return i.ID == landed.ID })})
		if rep.Settled != 1 || rep.Abandoned != 1 || rep.Delivered != 1 {
			t.Fatalf("relay: %+v, want one settled and delivered, one abandoned", rep)
		}
		if got := sk.ids(); len(got) != 1 || got[0] != landed.ID {
			t.Fatalf("delivered %v, want only %s", got, landed.ID)
		}
		if last, _ := b.Last(ctx, other); last != nil {
			t.Fatalf("the abandoned change is recorded: %+v (intent %s)", last, lost.ID)
		}
		// Nothing is left: another relay sends nothing.
		rep = b.Relay(ctx, outbox.RelayOptions{Holder: "relay2", Settle: settler(t, func(outbox.Intent) bool { return true })})
		if rep.Delivered+rep.Settled+rep.Owed != 0 || len(sk.ids()) != 1 {
			t.Fatalf("second relay: %+v", rep)
		}
	})
}

// TestOneSinkFailingForOneNotice: a notice its sink refuses is rescheduled with backoff; the
// other notices go out meanwhile, and it goes out once due and accepted.
func TestOneSinkFailingForOneNotice(t *testing.T) {
	each(t, func(t *testing.T, mk func() store.Store) {
		ctx := context.Background()
		clk := &clock{now: time.Now()}
		var bad string
		sk := &sink{name: "s", fail: func(id string) error {
			if id == bad {
				return errors.New("503 from the receiver")
			}
			return nil
		}}
		b := outbox.New(outbox.Options{Store: mk(), Sinks: []notify.Sink{sk}, Now: clk.Now})
		var ids []string
		for i := range 5 {
			tg := target
			tg.AppName = fmt.Sprint("app", i)
			in, _, _ := b.Begin(ctx, outbox.Intent{Target: tg, Outcome: "created", Desired: cfg(3)}, "run")
			if i == 0 {
				bad = in.ID
			}
			if _, _, err := b.Commit(ctx, in, notice(t, in), nil); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, in.ID)
		}
		rep := b.Relay(ctx, outbox.RelayOptions{Holder: "r"})
		if rep.Delivered != 4 || rep.Rescheduled != 1 || rep.Owed != 1 {
			t.Fatalf("first relay %+v, want 4 delivered, the bad one rescheduled and owed", rep)
		}
		// Not due yet: nothing is sent, the stuck one does not come first again.
		rep = b.Relay(ctx, outbox.RelayOptions{Holder: "r"})
		if rep.Delivered+rep.Rescheduled != 0 {
			t.Fatalf("relay before the backoff: %+v", rep)
		}
		bad = ""
		clk.add(time.Hour)
		rep = b.Relay(ctx, outbox.RelayOptions{Holder: "r"})
		if rep.Delivered != 1 || rep.Owed != 0 {
			t.Fatalf("relay after the backoff: %+v", rep)
		}
		got := sk.ids()
		sort.Strings(got)
		sort.Strings(ids)
		if fmt.Sprint(got) != fmt.Sprint(ids) {
			t.Fatalf("delivered %v, want each of %v once", got, ids)
		}
		// A receiver refusing for good: dead-lettered at once, never sent again.
		sk.fail = func(string) error { return fmt.Errorf("410: %w", notify.ErrPermanent) }
		in, _, _ := b.Begin(ctx, outbox.Intent{Target: target, Outcome: "created", Desired: cfg(3)}, "run")
		_, keys, _ := b.Commit(ctx, in, notice(t, in), nil)
		if st := b.Deliver(ctx, keys, "run")[in.ID]["s"]; outbox.State(st) != outbox.Failed {
			t.Fatalf("permanent refusal: %q", st)
		}
		if st := b.States(ctx, []string{in.ID}, []string{"s"})[in.ID]["s"]; outbox.State(st) != outbox.Failed {
			t.Fatalf("state of a dead letter: %q", st)
		}
	})
}

// TestDeadAfterEightDays: a delivery that keeps failing is dead-lettered once DeadAfter has
// passed since it became owed.
func TestDeadAfterEightDays(t *testing.T) {
	ctx := context.Background()
	clk := &clock{now: time.Now()}
	sk := &sink{name: "s", fail: func(string) error { return errors.New("down") }}
	b := outbox.New(outbox.Options{Store: everystore.Backends(t)["memory"](), Sinks: []notify.Sink{sk}, Now: clk.Now})
	in, _, _ := b.Begin(ctx, outbox.Intent{Target: target, Outcome: "created", Desired: cfg(3)}, "run")
	if _, _, err := b.Commit(ctx, in, notice(t, in), nil); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		rep := b.Relay(ctx, outbox.RelayOptions{Holder: "r"})
		if rep.Dead == 1 {
			if clk.Now().Sub(in.CreatedAt) < outbox.DeadAfter {
				t.Fatalf("dead-lettered after %s", clk.Now().Sub(in.CreatedAt))
			}
			break
		}
		if i > 1000 {
			t.Fatal("never dead-lettered")
		}
		clk.add(time.Hour)
	}
	if rep := b.Relay(ctx, outbox.RelayOptions{Holder: "r"}); rep.Owed != 0 {
		t.Fatalf("a dead letter is still owed: %+v", rep)
	}
}

// TestClaimOutlivesAttempt: a slow delivery keeps its claim (renewed while it sends), so a
// second relay meanwhile never sends the same notice.
func TestClaimOutlivesAttempt(t *testing.T) {
	each(t, func(t *testing.T, mk func() store.Store) {
		ctx := context.Background()
		s := mk()
		sk := &sink{name: "s", slow: 900 * time.Millisecond}
		claim := 400 * time.Millisecond
		b := outbox.New(outbox.Options{Store: s, Sinks: []notify.Sink{sk}, ClaimTTL: claim, AttemptTimeout: 2 * time.Second})
		in, _, _ := b.Begin(ctx, outbox.Intent{Target: target, Outcome: "created", Desired: cfg(3)}, "run")
		_, keys, err := b.Commit(ctx, in, notice(t, in), nil)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan string)
		go func() { done <- b.Deliver(ctx, keys, "first")[in.ID]["s"] }()
		time.Sleep(claim + 200*time.Millisecond) // past the first claim's end: only renewal keeps it
		second := outbox.New(outbox.Options{Store: s, Sinks: []notify.Sink{sk}, ClaimTTL: claim})
		rep := second.Relay(ctx, outbox.RelayOptions{Holder: "second", Budget: time.Second})
		if st := <-done; st != outbox.Delivered {
			t.Fatalf("first sender: %q", st)
		}
		if got := sk.ids(); len(got) != 1 {
			t.Fatalf("sent %d times, want once (second relay: %+v)", len(got), rep)
		}
	})
}

// TestManyOwedNoStarvation: 1,000 owed deliveries go out oldest first across bounded relay
// runs, each once, while a notice that keeps failing never holds up the rest.
func TestManyOwedNoStarvation(t *testing.T) {
	ctx := context.Background()
	clk := &clock{now: time.Now()}
	sk := &sink{name: "s"}
	var stuck string
	sk.fail = func(id string) error {
		if id == stuck {
			return errors.New("always failing")
		}
		return nil
	}
	s := everystore.Backends(t)["memory"]()
	b := outbox.New(outbox.Options{Store: s, Sinks: []notify.Sink{sk}, Now: clk.Now})
	var order []string
	for i := range 1000 {
		tg := target
		tg.AppName = fmt.Sprintf("a%04d", i)
		in, _, _ := b.Begin(ctx, outbox.Intent{Target: tg, Outcome: "created", Desired: cfg(3)}, "run")
		if i == 0 {
			stuck = in.ID
		}
		if _, _, err := b.Commit(ctx, in, notice(t, in), nil); err != nil {
			t.Fatal(err)
		}
		order = append(order, in.ID)
		clk.add(time.Millisecond)
	}
	rep := b.Relay(ctx, outbox.RelayOptions{Holder: "r"})
	if rep.Owed == 0 {
		t.Fatalf("relay: %+v", rep)
	}
	for range 20 {
		if len(sk.ids()) == 999 {
			break
		}
		b.Relay(ctx, outbox.RelayOptions{Holder: "r"})
	}
	got := sk.ids()
	if len(got) != 999 {
		t.Fatalf("delivered %d, want 999 (all but the stuck one)", len(got))
	}
	for i, id := range got {
		if id != order[i+1] {
			t.Fatalf("delivery %d is %s, want %s: not oldest first", i, id, order[i+1])
		}
	}
}

// TestRelayShortDeadline: the relay ends before a short deadline, whatever is owed.
func TestRelayShortDeadline(t *testing.T) {
	ctx := context.Background()
	sk := &sink{name: "s", slow: 50 * time.Millisecond}
	b := outbox.New(outbox.Options{Store: everystore.Backends(t)["memory"](), Sinks: []notify.Sink{sk}})
	for i := range 100 {
		tg := target
		tg.AppName = fmt.Sprint("a", i)
		in, _, _ := b.Begin(ctx, outbox.Intent{Target: tg, Outcome: "created", Desired: cfg(3)}, "run")
		if _, _, err := b.Commit(ctx, in, notice(t, in), nil); err != nil {
			t.Fatal(err)
		}
	}
	dctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	defer cancel()
	start := time.Now()
	rep := b.Relay(dctx, outbox.RelayOptions{Holder: "r", Budget: time.Minute})
	if el := time.Since(start); el > 1400*time.Millisecond {
		t.Fatalf("the relay took %s under a 1.5 s deadline", el)
	}
	if rep.Delivered == 0 || rep.Delivered == 100 || rep.Owed != 100-rep.Delivered {
		t.Fatalf("relay %+v: want some delivered, the rest counted as owed", rep)
	}
}

// TestStoreFailureAtEveryStep: whichever store operation fails, before or after it takes
// effect, the protocol never announces a change that was not committed, and once the store
// is healthy again every committed change is delivered exactly once.
func TestStoreFailureAtEveryStep(t *testing.T) {
	each(t, func(t *testing.T, mk func() store.Store) {
		for _, when := range []storetest.When{storetest.Before, storetest.After} {
			for step := 1; step <= 14; step++ {
				t.Run(fmt.Sprintf("%v/%d", when, step), func(t *testing.T) {
					ctx := context.Background()
					clk := &clock{now: time.Now()}
					f := &storetest.Faulty{Store: mk(), Fail: func(n int, op, key string) storetest.When {
						if n == step {
							return when
						}
						return 0
					}}
					sk := &sink{name: "s"}
					b := outbox.New(outbox.Options{Store: f, Sinks: []notify.Sink{sk}, Now: clk.Now})
					written := false // the API's state: the write lands only after an intent is mine
					var committed string
					in, ans, err := b.Begin(ctx, outbox.Intent{Target: target, Outcome: "created", Desired: cfg(3)}, "run")
					if err == nil && ans == outbox.Mine {
						written = true
						ch, keys, err := b.Commit(ctx, in, notice(t, in), nil)
						if err == nil {
							committed = ch.ID
							b.Deliver(ctx, keys, "run")
						}
					}
					// The store heals; time passes; relays run until nothing is owed.
					f.Fail = nil
					for range 5 {
						clk.add(2 * time.Hour)
						b.Relay(ctx, outbox.RelayOptions{Holder: "relay", Settle: settler(t, func(outbox.Intent) bool { return written })})
					}
					got := sk.ids()
					switch {
					case !written && len(got) != 0:
						t.Fatalf("no write was made, yet %v was announced", got)
					case written && len(got) != 1:
						t.Fatalf("one write, %d notices %v (committed %q)", len(got), got, committed)
					case committed != "" && got[0] != committed:
						t.Fatalf("announced %s, committed %s", got[0], committed)
					}
					if last, _ := b.Last(ctx, target); written && (last == nil || last.ID != got[0]) {
						t.Fatalf("last change %+v, want %s", last, got[0])
					}
				})
			}
		}
	})
}

// TestLapsedBehindLiveIntents: a lapsed intent listed after more than a page of live ones is
// still settled by the relay (the open intents are paged, not cut at the first page).
func TestLapsedBehindLiveIntents(t *testing.T) {
	defer outbox.SetOpenPage(2)()
	each(t, func(t *testing.T, mk func() store.Store) {
		ctx := context.Background()
		clk := &clock{now: time.Now()}
		sk := &sink{name: "s"}
		b := outbox.New(outbox.Options{Store: mk(), Sinks: []notify.Sink{sk}, Now: clk.Now})
		// "zz" sorts after every live intent's key.
		lapsed, _, err := b.Begin(ctx, outbox.Intent{Target: policy.Target{DomainName: "play.example.com", AppName: "zz", StreamName: "*"}, Outcome: "created", Desired: cfg(3)}, "crashed")
		if err != nil {
			t.Fatal(err)
		}
		clk.add(outbox.IntentTTL + time.Second)
		for i := range 5 {
			tg := policy.Target{DomainName: "play.example.com", AppName: fmt.Sprintf("a%d", i), StreamName: "*"}
			if _, ans, err := b.Begin(ctx, outbox.Intent{Target: tg, Outcome: "created", Desired: cfg(3)}, "live"); err != nil || ans != outbox.Mine {
				t.Fatalf("Begin %s: %v %v", tg, ans, err)
			}
		}
		rep := b.Relay(ctx, outbox.RelayOptions{Holder: "relay", Settle: settler(t, func(i outbox.Intent) bool { return i.ID == lapsed.ID })})
		if rep.Settled != 1 || rep.Abandoned != 0 {
			t.Fatalf("relay: %+v, want the lapsed intent behind five live ones settled", rep)
		}
		if got := sk.ids(); len(got) != 1 || got[0] != lapsed.ID {
			t.Fatalf("delivered %v, want %s", got, lapsed.ID)
		}
	})
}
