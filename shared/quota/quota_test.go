package quota

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livepack/livepack/shared/redistest"
)

type waiter interface{ Wait(context.Context) error }

// admitted counts the calls that several limiters (processes) admit within window, four
// goroutines each, and returns the time the whole run took: every admitted call happened
// within it.
func admitted(t *testing.T, lims []waiter, window time.Duration) (int64, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), window)
	defer cancel()
	var n atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for _, l := range lims {
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					err := l.Wait(ctx)
					if err != nil {
						if !errors.Is(err, ErrExhausted) {
							t.Errorf("Wait: %v", err)
						}
						return
					}
					n.Add(1)
				}
			}()
		}
	}
	wg.Wait()
	return n.Load(), time.Since(start)
}

// gcraBound is the most calls a budget may admit in elapsed: the burst, then one per interval.
func gcraBound(perMinute int, elapsed time.Duration) int64 {
	return int64(burst(perMinute)) + int64(math.Floor(elapsed.Seconds()*float64(perMinute)/60+1e-9))
}

func TestLocalBound(t *testing.T) {
	// 600/min: 10 per second, burst 10.
	n, elapsed := admitted(t, []waiter{NewLocal(600)}, time.Second)
	if limit := gcraBound(600, elapsed); n > limit || n < int64(burst(600)) {
		t.Fatalf("%d calls admitted in %s at 600/min, want %d to %d", n, elapsed, burst(600), limit)
	}
}

func TestLocalFailsFastPastDeadline(t *testing.T) {
	l := NewLocal(60) // one a second, burst 1
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	var err error
	calls := 0
	for ; calls < 5 && err == nil; calls++ {
		err = l.Wait(ctx)
	}
	if !errors.Is(err, ErrExhausted) {
		t.Fatalf("a burst of %d beyond the budget: %v, want ErrExhausted", calls, err)
	}
	if calls != 2 {
		t.Fatalf("exhausted at call %d, want 2 (burst 1)", calls)
	}
	if time.Since(start) > 150*time.Millisecond {
		t.Fatal("Wait slept although the call could not be due before the deadline")
	}
	// The refused reservation was cancelled: it did not push later calls further out.
	time.Sleep(1100 * time.Millisecond)
	if err := l.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestLocalZeroBudgetFailsFast(t *testing.T) {
	l := NewLocal(0) // treated as 1/min
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_ = l.Wait(ctx)
	if err := l.Wait(ctx); !errors.Is(err, ErrExhausted) {
		t.Fatalf("Wait = %v, want ErrExhausted", err)
	}
}

func TestRedisSharedBound(t *testing.T) {
	rdb := redistest.Start(t)
	// Two processes share 60/min: 1 per second, burst 1.
	const perMinute = 60
	lims := []waiter{NewRedis(rdb, "q", perMinute), NewRedis(rdb, "q", perMinute)}
	n, elapsed := admitted(t, lims, 2*time.Second)
	if limit := gcraBound(perMinute, elapsed); n > limit || n < 2 {
		t.Fatalf("%d calls admitted in %s by two processes sharing %d/min, want 2 to %d", n, elapsed, perMinute, limit)
	}
	// Another key is another budget.
	if err := NewRedis(rdb, "other", perMinute).Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestRedisFailsFastPastDeadline(t *testing.T) {
	q := NewRedis(redistest.Start(t), "q", 1) // one a minute
	if err := q.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	if err := q.Wait(ctx); !errors.Is(err, ErrExhausted) {
		t.Fatalf("Wait = %v, want ErrExhausted", err)
	}
	if time.Since(start) > 500*time.Millisecond {
		t.Fatal("Wait slept although the call could not be due before the deadline")
	}
}

func BenchmarkLocal(b *testing.B) {
	l := NewLocal(math.MaxInt32)
	ctx := context.Background()
	for b.Loop() {
		_ = l.Wait(ctx)
	}
}

func BenchmarkRedis(b *testing.B) {
	q := NewRedis(redistest.Start(b), "bench", math.MaxInt32)
	ctx := context.Background()
	for b.Loop() {
		if err := q.Wait(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
