package quota

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livepack/livepack/shared/redistest"
	"github.com/livepack/livepack/shared/store"
	"github.com/livepack/livepack/shared/store/boltstore"
	"github.com/livepack/livepack/shared/store/memstore"
	"github.com/livepack/livepack/shared/store/redisstore"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Unix(1_800_000_000, 0)} }

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// admitAt asks the limiter's backend to admit one call of action in lane now.
func admitAt(l *Limiter, action string, lane Lane) time.Duration {
	group, lim := l.limitsFor(action, lane)
	d, _ := l.st.admit(context.Background(), group, lim)
	return d
}

func TestWindow(t *testing.T) {
	type step struct {
		after  time.Duration // clock advance before the call
		lane   Lane
		action string
		// want is the wait the limiter answers: 0 admits.
		want time.Duration
		// throttle reports a throttle (with this retry-after) instead of asking to admit.
		throttle time.Duration
	}
	w := DefaultWindow
	tests := []struct {
		name  string
		rate  int
		steps []step
	}{
		{"a full budget goes at once, the next waits for the oldest to leave", 3, []step{
			{0, Interactive, "AddLivePackageConfig", 0, 0},
			{time.Second, Interactive, "UpdateLivePackageConfig", 0, 0},
			{time.Second, Interactive, "DescribeLivePackageConfig", 0, 0},
			{0, Interactive, "DeleteLivePackageConfig", w - 2*time.Second, 0},
			{w - 2*time.Second - time.Millisecond, Interactive, "AddLivePackageConfig", time.Millisecond, 0},
			{time.Millisecond, Interactive, "AddLivePackageConfig", 0, 0},
			{0, Interactive, "AddLivePackageConfig", time.Second, 0},
		}},
		{"actions with their own documented quota do not spend the package budget", 1, []step{
			{0, Interactive, "AddLivePackageConfig", 0, 0},
			{0, Interactive, "AddLivePackageConfig", w, 0},
			{0, Interactive, "DescribeLiveDomainDetail", 0, 0},
			{0, Interactive, "DescribeLiveStreamsOnlineList", 0, 0},
		}},
		{"the scheduled lane leaves the reserve to interactive calls", 5, []step{
			{0, Scheduled, "AddLivePackageConfig", 0, 0},
			{0, Scheduled, "AddLivePackageConfig", 0, 0},
			{0, Scheduled, "AddLivePackageConfig", 0, 0},
			{0, Scheduled, "AddLivePackageConfig", 0, 0},
			{0, Scheduled, "AddLivePackageConfig", w, 0}, // 80% of 5 = 4
			{0, Interactive, "AddLivePackageConfig", 0, 0},
			{0, Interactive, "AddLivePackageConfig", w, 0},
		}},
		{"a throttle pauses, then caps calls per second at half the last second's", 100, []step{
			{0, Interactive, "AddLivePackageConfig", 0, 0},
			{0, Interactive, "AddLivePackageConfig", 0, 0},
			{0, Interactive, "AddLivePackageConfig", 0, 0},
			{0, Interactive, "AddLivePackageConfig", 0, 0},
			{0, 0, "AddLivePackageConfig", 0, 500 * time.Millisecond}, // 4 in the last second: cap 2/s
			{0, Interactive, "AddLivePackageConfig", 500 * time.Millisecond, 0},
			{0, 0, "AddLivePackageConfig", 0, 200 * time.Millisecond}, // within a second: no second halving
			{600 * time.Millisecond, Interactive, "AddLivePackageConfig", 400 * time.Millisecond, 0},
			{400 * time.Millisecond, Interactive, "AddLivePackageConfig", 0, 0},
			{0, Interactive, "AddLivePackageConfig", 0, 0},
			{0, Interactive, "AddLivePackageConfig", time.Second, 0}, // cap 2.9: two per second
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			l := NewLocal(tt.rate, WithClock(c.now))
			for i, s := range tt.steps {
				c.add(s.after)
				if s.throttle > 0 {
					l.st.throttled(context.Background(), "package", tt.rate, s.throttle) //nolint:errcheck // local never fails
					continue
				}
				if got := admitAt(l, s.action, s.lane); got != s.want {
					t.Fatalf("step %d (%s %s): wait %s, want %s", i, s.lane, s.action, got, s.want)
				}
			}
		})
	}
}

// TestWindowProperties drives random traffic in both lanes through a budget and checks the two
// promises: never more than the budget in any window (nor the scheduled lane past its share),
// and a call refused only when the window is full for its lane.
func TestWindowProperties(t *testing.T) {
	const rate = 40
	for seed := range int64(5) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rnd := rand.New(rand.NewSource(seed))
			c := newClock()
			l := NewLocal(rate, WithClock(c.now), WithReserve(0.25))
			var admitted []time.Time
			var scheduled []time.Time
			for range 2000 {
				c.add(time.Duration(rnd.Intn(4000)) * time.Millisecond)
				lane := Lane(rnd.Intn(2))
				now := c.now()
				inWindow := func(ts []time.Time) int {
					n := 0
					for _, a := range ts {
						if a.After(now.Add(-DefaultWindow)) {
							n++
						}
					}
					return n
				}
				wait := admitAt(l, "AddLivePackageConfig", lane)
				limit := rate
				if lane == Scheduled {
					limit = 30
				}
				if wait > 0 {
					if n := inWindow(admitted); n < limit {
						t.Fatalf("a %s call waited %s with %d calls in the window, limit %d", lane, wait, n, limit)
					}
					continue
				}
				admitted = append(admitted, now)
				if lane == Scheduled {
					scheduled = append(scheduled, now)
				}
				if n := inWindow(admitted); n > rate {
					t.Fatalf("%d calls in a window, budget %d", n, rate)
				}
				if n := inWindow(scheduled); n > 30 {
					t.Fatalf("%d scheduled calls in a window, share 30", n)
				}
			}
			if len(scheduled) == 0 || len(scheduled) == len(admitted) {
				t.Fatalf("%d of %d calls scheduled: the run did not exercise both lanes", len(scheduled), len(admitted))
			}
		})
	}
}

// stores returns a store of each backend a shared limiter runs on: memory, a bbolt file and a
// real redis-server (skipped without one).
func stores(t *testing.T) map[string]store.Store {
	t.Helper()
	bs, err := boltstore.Open(filepath.Join(t.TempDir(), "state.db"), "quota")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]store.Store{"memory": memstore.New(nil), "bolt": bs}
	if _, err := exec.LookPath("redis-server"); err == nil || os.Getenv("LIVEPACK_REQUIRE_REDIS") == "1" {
		out["redis"] = redisstore.New(redistest.Start(t), "quota")
	}
	return out
}

// TestSharedMatchesLocal holds the shared limiter to the local one, step by step on one clock,
// through throttles and idle periods long enough for the AIMD state to be forgotten: the rules
// are written once, and a stored window must come back as it went in.
func TestSharedMatchesLocal(t *testing.T) {
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			steps := 1500
			if name == "bolt" {
				steps = 300 // every admission is a write to disk
			}
			rnd := rand.New(rand.NewSource(7))
			c := newClock()
			loc := NewLocal(20, WithClock(c.now))
			sh := NewShared(st, "match", 20, WithClock(c.now))
			ctx := context.Background()
			for i := range steps {
				c.add(time.Duration(rnd.Intn(3000)) * time.Millisecond)
				if rnd.Intn(100) == 0 {
					c.add(DefaultWindow + time.Duration(rnd.Intn(3000))*time.Millisecond)
				}
				action := []string{"AddLivePackageConfig", "DescribeLiveDomainDetail"}[rnd.Intn(2)]
				lane := Lane(rnd.Intn(2))
				group, lim := loc.limitsFor(action, lane)
				if rnd.Intn(40) == 0 {
					retry := time.Duration(rnd.Intn(2000)) * time.Millisecond
					_ = loc.st.throttled(ctx, group, lim.capacity, retry)
					if err := sh.st.throttled(ctx, group, lim.capacity, retry); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, _ := loc.st.admit(ctx, group, lim)
				got, err := sh.st.admit(ctx, group, lim)
				if err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Fatalf("step %d (%s %s): shared waits %s, local %s", i, lane, action, got, want)
				}
			}
		})
	}
}

// TestIdleForgetsAIMD: a throttle lowers the per-second cap; while calls keep coming the cap
// holds, and after a window without calls both limiters forget it alike and let a burst go.
func TestIdleForgetsAIMD(t *testing.T) {
	const rate = 100
	ctx := context.Background()
	c := newClock()
	lims := map[string]*Limiter{"local": NewLocal(rate, WithClock(c.now)), "shared": NewShared(memstore.New(nil), "idle", rate, WithClock(c.now))}
	burst := func() map[string]int {
		out := map[string]int{}
		for name, l := range lims {
			for out[name] < 10 && admitAt(l, "AddLivePackageConfig", Interactive) == 0 {
				out[name]++
			}
		}
		return out
	}
	throttle := func() {
		for _, l := range lims {
			if err := l.st.throttled(ctx, "package", rate, time.Second); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := burst(); got["local"] != 10 || got["shared"] != 10 {
		t.Fatalf("a fresh budget let %v calls go at once, want 10 each", got)
	}
	throttle() // 10 in the last second: the cap becomes 5 per second
	c.add(time.Second)
	if got := burst(); got["local"] != 5 || got["shared"] != 5 {
		t.Fatalf("after a throttle %v calls went at once, want the halved cap of 5 each", got)
	}
	// Less than a window and its grace: the cap still holds.
	c.add(DefaultWindow)
	if got := burst(); got["local"] != 6 || got["shared"] != 6 {
		t.Fatalf("%s after the last call %v calls went at once, want the cap, grown to 6, still", DefaultWindow, got)
	}
	// A window and its grace without a call: the state is forgotten.
	c.add(DefaultWindow + idleGrace)
	if got := burst(); got["local"] != 10 || got["shared"] != 10 {
		t.Fatalf("after an idle window %v calls went at once, want a fresh budget's 10 each", got)
	}
	// A long pause keeps the state past the window until it ends.
	throttle()
	for _, l := range lims {
		if err := l.st.throttled(ctx, "package", rate, 2*DefaultWindow); err != nil {
			t.Fatal(err)
		}
	}
	c.add(DefaultWindow + idleGrace)
	if w := admitAt(lims["local"], "AddLivePackageConfig", Interactive); w <= 0 {
		t.Fatal("the local limiter forgot a pause still running")
	}
	if w := admitAt(lims["shared"], "AddLivePackageConfig", Interactive); w <= 0 {
		t.Fatal("the shared limiter forgot a pause still running")
	}
}

func TestWindowEncoding(t *testing.T) {
	w := &window{span: DefaultWindow, cwnd: 2.75, pause: time.Unix(1_800_000_000, 5), touched: time.Unix(1_800_000_001, 0)}
	for i := range 300 {
		w.log = append(w.log, time.Unix(1_800_000_000, int64(i)*123_456_789))
	}
	got, err := decodeWindow(encodeWindow(w), DefaultWindow)
	if err != nil {
		t.Fatal(err)
	}
	if got.cwnd != w.cwnd || !got.pause.Equal(w.pause) || !got.decreased.IsZero() || !got.touched.Equal(w.touched) || len(got.log) != len(w.log) {
		t.Fatalf("decoded %+v", got)
	}
	for i := range w.log {
		if !got.log[i].Equal(w.log[i]) {
			t.Fatalf("log[%d] = %v, want %v", i, got.log[i], w.log[i])
		}
	}
	if n := len(encodeWindow(w)); n > 33+300*5 {
		t.Fatalf("a window of 300 calls takes %d bytes", n)
	}
	for _, bad := range [][]byte{nil, {2}, encodeWindow(w)[:40]} {
		if _, err := decodeWindow(bad, DefaultWindow); err == nil {
			t.Fatalf("decoded %x", bad)
		}
	}
}

type waiter interface {
	Wait(context.Context, string) error
}

// admitted counts the calls several limiters (processes) admit within d, four goroutines each.
func admitted(t *testing.T, lims []waiter, d time.Duration) (int64, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var n atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for _, l := range lims {
		for range 4 {
			wg.Go(func() {
				for {
					if err := l.Wait(ctx, "AddLivePackageConfig"); err != nil {
						if !errors.Is(err, ErrExhausted) {
							t.Errorf("Wait: %v", err)
						}
						return
					}
					n.Add(1)
				}
			})
		}
	}
	wg.Wait()
	return n.Load(), time.Since(start)
}

func TestSharedBound(t *testing.T) {
	rdb := redistest.Start(t)
	// Two instances share 5 calls per (shortened) 500 ms window.
	const budget, window = 5, 500 * time.Millisecond
	lims := []waiter{NewShared(redisstore.New(rdb, "ns"), "q", budget, WithWindow(window)), NewShared(redisstore.New(rdb, "ns"), "q", budget, WithWindow(window))}
	n, elapsed := admitted(t, lims, 1200*time.Millisecond)
	windows := int64(elapsed/window) + 1
	if n > budget*windows || n < budget {
		t.Fatalf("%d calls admitted in %s by two processes sharing %d per %s, want %d to %d", n, elapsed, budget, window, budget, budget*windows)
	}
	// Another key is another budget.
	if err := NewShared(redisstore.New(rdb, "ns"), "other", budget).Wait(context.Background(), "AddLivePackageConfig"); err != nil {
		t.Fatal(err)
	}
}

func TestFailsFastPastDeadline(t *testing.T) {
	rdb := redistest.Start(t)
	for name, l := range map[string]*Limiter{"local": NewLocal(2), "redis": NewShared(redisstore.New(rdb, "ns"), "q", 2)} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			// The budget goes at once...
			for i := range 2 {
				if err := l.Wait(ctx, "AddLivePackageConfig"); err != nil {
					t.Fatalf("call %d: %v", i, err)
				}
			}
			// ...and the next call, due only when the window moves past the first, fails now.
			done := make(chan error, 1)
			go func() { done <- l.Wait(ctx, "AddLivePackageConfig") }()
			select {
			case err := <-done:
				if !errors.Is(err, ErrExhausted) {
					t.Fatalf("Wait = %v, want ErrExhausted", err)
				}
			case <-ctx.Done():
				t.Fatal("Wait slept although the call could not be due before the deadline")
			}
		})
	}
}

func TestLaneContext(t *testing.T) {
	ctx := context.Background()
	if LaneOf(ctx) != Interactive || LaneOf(WithLane(ctx, Scheduled)) != Scheduled {
		t.Fatal("lanes do not ride on the context")
	}
}

func TestBudget(t *testing.T) {
	for _, tt := range []struct {
		action string
		rate   int
		group  string
		want   int
	}{
		{"AddLivePackageConfig", 250, "package", 250},
		{"DescribeLivePackageConfig", 250, "package", 250},
		{"DescribeLiveDomainDetail", 250, "DescribeLiveDomainDetail", 3000},
		{"DescribeLiveStreamsOnlineList", 250, "DescribeLiveStreamsOnlineList", 10000},
		{"DescribeLiveUserDomains", 20000, "DescribeLiveUserDomains", 20000},
		{"AddLivePackageConfig", 0, "package", 1},
	} {
		if g, n := Budget(tt.action, tt.rate); g != tt.group || n != tt.want {
			t.Errorf("Budget(%s, %d) = %s, %d; want %s, %d", tt.action, tt.rate, g, n, tt.group, tt.want)
		}
	}
}

func BenchmarkLocal(b *testing.B) {
	l := NewLocal(math.MaxInt32, WithWindow(time.Second))
	ctx := context.Background()
	for b.Loop() {
		_ = l.Wait(ctx, "AddLivePackageConfig")
	}
}

func BenchmarkShared(b *testing.B) {
	q := NewShared(redisstore.New(redistest.Start(b), "bench"), "q", math.MaxInt32, WithWindow(time.Second))
	ctx := context.Background()
	for b.Loop() {
		if err := q.Wait(ctx, "AddLivePackageConfig"); err != nil {
			b.Fatal(err)
		}
	}
}

// slowStore answers every Get only when the caller's context ends, as a store does whose reply
// is still on its way at the deadline.
type slowStore struct{ store.Store }

func (s slowStore) Get(ctx context.Context, key string) (store.Item, error) {
	<-ctx.Done()
	return store.Item{}, fmt.Errorf("slow store: get %s: %w", key, ctx.Err())
}

// TestDeadlineDuringSharedRead: a deadline that cuts the shared budget's read short is the
// quota's answer (ErrExhausted, retry later), not a store failure.
func TestDeadlineDuringSharedRead(t *testing.T) {
	l := NewShared(slowStore{memstore.New(nil)}, "slow", 10)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := l.Wait(ctx, "DescribeLivePackageConfig")
	if !errors.Is(err, ErrExhausted) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait = %v, want ErrExhausted wrapping the deadline", err)
	}
}
