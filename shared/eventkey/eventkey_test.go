package eventkey_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/livepack/livepack/shared/eventkey"
	"github.com/livepack/livepack/shared/store/everystore"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

// TestProtocol: one holder at a time, a completed key replays its result for one read, a
// payload mismatch is refused, a lapsed lease is taken over and fences the old holder.
func TestProtocol(t *testing.T) {
	for name, mk := range everystore.Backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			clk := &clock{now: time.Now()}
			k := eventkey.New(mk(), clk.Now)
			l, done, err := k.Acquire(ctx, "webhook:1", "h", "run1")
			if err != nil || done != nil || l.TookOver {
				t.Fatalf("first acquire: %+v %+v %v", l, done, err)
			}
			_, _, err = k.Acquire(ctx, "webhook:1", "h", "run2")
			if !errors.Is(err, eventkey.ErrInProgress) || eventkey.RetryAfter(err).IsZero() {
				t.Fatalf("second acquire: %v", err)
			}
			if _, _, err := k.Acquire(ctx, "webhook:1", "other", "run2"); !errors.Is(err, eventkey.ErrPayloadMismatch) {
				t.Fatalf("other payload: %v", err)
			}
			if err := k.Renew(ctx, l); err != nil {
				t.Fatal(err)
			}
			// The holder vanishes; past its lease another run takes over, and the old holder's
			// writes are fenced off.
			clk.mu.Lock()
			clk.now = clk.now.Add(eventkey.LeaseTTL + time.Second)
			clk.mu.Unlock()
			l2, _, err := k.Acquire(ctx, "webhook:1", "h", "run2")
			if err != nil || !l2.TookOver || l2.Fence <= l.Fence {
				t.Fatalf("takeover: %+v, %v", l2, err)
			}
			if err := k.Renew(ctx, l); !errors.Is(err, eventkey.ErrFenced) {
				t.Fatalf("old holder renews: %v", err)
			}
			if err := k.Complete(ctx, l, []byte(`{"x":1}`)); !errors.Is(err, eventkey.ErrFenced) {
				t.Fatalf("old holder completes: %v", err)
			}
			if err := k.Complete(ctx, l2, []byte(`{"x":2}`)); err != nil {
				t.Fatal(err)
			}
			l3, done, err := k.Acquire(ctx, "webhook:1", "h", "run3")
			if err != nil || l3 != nil || done == nil || string(done.Result) != `{"x":2}` {
				t.Fatalf("replay: %+v %+v %v", l3, done, err)
			}
			// A released key starts afresh.
			l4, _, _ := k.Acquire(ctx, "webhook:2", "h", "run4")
			if err := k.Release(ctx, l4); err != nil {
				t.Fatal(err)
			}
			if l5, done, err := k.Acquire(ctx, "webhook:2", "h", "run5"); err != nil || done != nil || l5.TookOver {
				t.Fatalf("after release: %+v %+v %v", l5, done, err)
			}
		})
	}
}

// TestRacingAcquire: of many runs racing for one key, exactly one holds it.
func TestRacingAcquire(t *testing.T) {
	for name, mk := range everystore.Backends(t) {
		t.Run(name, func(t *testing.T) {
			k := eventkey.New(mk(), nil)
			var wg sync.WaitGroup
			var mu sync.Mutex
			held := 0
			for range 10 {
				wg.Go(func() {
					l, _, err := k.Acquire(context.Background(), "k", "h", eventkey.NewHolder())
					if err == nil && l != nil {
						mu.Lock()
						held++
						mu.Unlock()
					} else if !errors.Is(err, eventkey.ErrInProgress) {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			if held != 1 {
				t.Fatalf("%d runs hold the key", held)
			}
		})
	}
}
