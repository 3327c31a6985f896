package quota

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livepack/livepack/shared/redistest"
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

// admitAt asks the local limiter's store to admit one call of action in lane now.
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

// TestRedisMatchesLocal holds the Lua script to the local model, step by step, on one clock.
func TestRedisMatchesLocal(t *testing.T) {
	rdb := redistest.Start(t)
	rnd := rand.New(rand.NewSource(7))
	c := newClock()
	loc := NewLocal(20, WithClock(c.now))
	red := NewRedis(rdb, "match", 20)
	red.st.(*shared).now = c.now
	ctx := context.Background()
	for i := range 3000 {
		c.add(time.Duration(rnd.Intn(3000)) * time.Millisecond)
		action := []string{"AddLivePackageConfig", "DescribeLiveDomainDetail"}[rnd.Intn(2)]
		lane := Lane(rnd.Intn(2))
		if rnd.Intn(40) == 0 {
			retry := time.Duration(rnd.Intn(2000)) * time.Millisecond
			group, lim := loc.limitsFor(action, lane)
			_ = loc.st.throttled(ctx, group, lim.capacity, retry)
			if err := red.st.throttled(ctx, group, lim.capacity, retry); err != nil {
				t.Fatal(err)
			}
			continue
		}
		group, lim := loc.limitsFor(action, lane)
		want, _ := loc.st.admit(ctx, group, lim)
		got, err := red.st.admit(ctx, group, lim)
		if err != nil {
			t.Fatal(err)
		}
		// Redis answers in whole milliseconds, rounded up.
		if wantRounded := time.Duration(math.Ceil(float64(want)/float64(time.Millisecond))) * time.Millisecond; got != wantRounded {
			t.Fatalf("step %d (%s %s): redis waits %s, local %s", i, lane, action, got, want)
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

func TestRedisSharedBound(t *testing.T) {
	rdb := redistest.Start(t)
	// Two processes share 5 calls per (shortened) 500 ms window.
	const budget, window = 5, 500 * time.Millisecond
	lims := []waiter{NewRedis(rdb, "q", budget, WithWindow(window)), NewRedis(rdb, "q", budget, WithWindow(window))}
	n, elapsed := admitted(t, lims, 1200*time.Millisecond)
	windows := int64(elapsed/window) + 1
	if n > budget*windows || n < budget {
		t.Fatalf("%d calls admitted in %s by two processes sharing %d per %s, want %d to %d", n, elapsed, budget, window, budget, budget*windows)
	}
	// Another key is another budget.
	if err := NewRedis(rdb, "other", budget).Wait(context.Background(), "AddLivePackageConfig"); err != nil {
		t.Fatal(err)
	}
}

func TestFailsFastPastDeadline(t *testing.T) {
	rdb := redistest.Start(t)
	for name, l := range map[string]*Limiter{"local": NewLocal(2), "redis": NewRedis(rdb, "q", 2)} {
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

func BenchmarkRedis(b *testing.B) {
	q := NewRedis(redistest.Start(b), "bench", math.MaxInt32, WithWindow(time.Second))
	ctx := context.Background()
	for b.Loop() {
		if err := q.Wait(ctx, "AddLivePackageConfig"); err != nil {
			b.Fatal(err)
		}
	}
}
