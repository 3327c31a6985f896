package quota

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livepack/livepack/shared/redistest"
)

type waiter interface{ Wait(context.Context) error }

// admitted counts the calls that several limiters (processes) admit within window.
func admitted(t *testing.T, lims []waiter, window time.Duration) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), window)
	defer cancel()
	var n atomic.Int64
	var wg sync.WaitGroup
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
	return n.Load()
}

func TestLocalBound(t *testing.T) {
	// 600/min: 10 per second, burst 10. In 1 s at most burst + 10 calls.
	n := admitted(t, []waiter{NewLocal(600)}, time.Second)
	if n > 21 || n < 10 {
		t.Fatalf("%d calls admitted in 1 s at 600/min, want 10 to 21", n)
	}
}

func TestLocalFailsFastPastDeadline(t *testing.T) {
	l := NewLocal(1) // one call per minute
	if err := l.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	if err := l.Wait(ctx); !errors.Is(err, ErrExhausted) {
		t.Fatalf("Wait = %v, want ErrExhausted", err)
	}
	if time.Since(start) > 500*time.Millisecond {
		t.Fatal("Wait slept although the call could not be due before the deadline")
	}
}

func TestRedisSharedBound(t *testing.T) {
	rdb := redistest.Start(t)
	// Two processes share 120/min: 2 per second, burst 2. In 2 s, at most 2 + 4 (+1 edge).
	lims := []waiter{NewRedis(rdb, "q", 120), NewRedis(rdb, "q", 120)}
	n := admitted(t, lims, 2*time.Second)
	if n > 7 || n < 4 {
		t.Fatalf("%d calls admitted in 2 s by two processes sharing 120/min, want 4 to 7", n)
	}
}

func BenchmarkLocal(b *testing.B) {
	l := NewLocal(1 << 30)
	ctx := context.Background()
	for b.Loop() {
		_ = l.Wait(ctx)
	}
}

func BenchmarkRedis(b *testing.B) {
	q := NewRedis(redistest.Start(b), "bench", 1<<30)
	ctx := context.Background()
	for b.Loop() {
		if err := q.Wait(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
