package idempotency

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livepack/livepack/shared/redistest"
)

func constructors(t *testing.T) map[string]func(t *testing.T) Store {
	return map[string]func(t *testing.T) Store{
		"memory": func(t *testing.T) Store { return NewMemory() },
		"file": func(t *testing.T) Store {
			s, err := NewFile(t.TempDir() + "/state.db")
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		"redis": func(t *testing.T) Store { return NewRedis(redistest.Start(t), "test:") },
	}
}

func TestStoreContract(t *testing.T) {
	ctx := context.Background()
	for name, mk := range constructors(t) {
		t.Run(name, func(t *testing.T) {
			s := mk(t)
			defer s.Close()
			now := time.Now()
			live, lapsed := now.Add(time.Minute), now.Add(-time.Second)

			// Fresh key.
			if rec, err := s.Acquire(ctx, "k", "h1", live); rec != nil || err != nil {
				t.Fatalf("fresh: %+v, %v", rec, err)
			}
			// A live lease blocks, and the payload is checked first.
			if _, err := s.Acquire(ctx, "k", "h1", live); !errors.Is(err, ErrInProgress) {
				t.Fatalf("live lease: %v", err)
			}
			if _, err := s.Acquire(ctx, "k", "h2", live); !errors.Is(err, ErrPayloadMismatch) {
				t.Fatalf("in progress, other payload: %v", err)
			}
			// A lapsed lease is taken over, keeping the planned notices.
			planned := []PendingNotice{{ID: "n1", Event: []byte(`{"id":"n1"}`), Sinks: []string{"stdout"}}}
			if err := s.Put(ctx, Record{Key: "k", Status: InProgress, PayloadHash: "h1", LeaseUntil: lapsed, Pending: planned}); err != nil {
				t.Fatal(err)
			}
			rec, err := s.Acquire(ctx, "k", "h1", live)
			if err != nil || rec == nil || rec.Status != InProgress || len(rec.Pending) != 1 || rec.Pending[0].ID != "n1" {
				t.Fatalf("takeover: %+v, %v", rec, err)
			}
			if _, err := s.Acquire(ctx, "k", "h1", live); !errors.Is(err, ErrInProgress) {
				t.Fatalf("after takeover: %v", err)
			}
			// Applied without a lease: taken once, then held.
			if err := s.Put(ctx, Record{Key: "k", Status: Applied, PayloadHash: "h1", Result: []byte(`{"r":1}`), Pending: planned}); err != nil {
				t.Fatal(err)
			}
			pend, err := s.Pending(ctx)
			if err != nil || len(pend) != 1 || pend[0].Key != "k" {
				t.Fatalf("Pending: %+v, %v", pend, err)
			}
			if _, err := s.Acquire(ctx, "k", "h2", live); !errors.Is(err, ErrPayloadMismatch) {
				t.Fatalf("applied, other payload: %v", err)
			}
			rec, err = s.Acquire(ctx, "k", "h1", live)
			if err != nil || rec == nil || rec.Status != Applied || string(rec.Result) != `{"r":1}` {
				t.Fatalf("applied: %+v, %v", rec, err)
			}
			if _, err := s.Acquire(ctx, "k", "h1", live); !errors.Is(err, ErrInProgress) {
				t.Fatalf("applied and held: %v", err)
			}
			if pend, _ := s.Pending(ctx); len(pend) != 0 {
				t.Fatalf("a held record is listed as pending: %+v", pend)
			}
			// Completed: returned as is, every time, and checked for payload.
			if err := s.Put(ctx, Record{Key: "k", Status: Completed, PayloadHash: "h1", Result: []byte(`{"r":2}`)}); err != nil {
				t.Fatal(err)
			}
			for range 2 {
				rec, err = s.Acquire(ctx, "k", "h1", live)
				if err != nil || rec == nil || rec.Status != Completed || string(rec.Result) != `{"r":2}` {
					t.Fatalf("completed: %+v, %v", rec, err)
				}
			}
			if _, err := s.Acquire(ctx, "k", "h2", live); !errors.Is(err, ErrPayloadMismatch) {
				t.Fatalf("completed, other payload: %v", err)
			}
			// Delete releases the key.
			if err := s.Delete(ctx, "k"); err != nil {
				t.Fatal(err)
			}
			if rec, err := s.Acquire(ctx, "k", "h2", live); rec != nil || err != nil {
				t.Fatalf("after delete: %+v, %v", rec, err)
			}
			// An expired record counts as absent.
			if err := s.Put(ctx, Record{Key: "old", Status: Completed, PayloadHash: "h1", ExpiresAt: now.Add(50 * time.Millisecond)}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
			if rec, err := s.Acquire(ctx, "old", "h9", live); rec != nil || err != nil {
				t.Fatalf("expired: %+v, %v", rec, err)
			}
		})
	}
}

func TestConcurrentAcquire(t *testing.T) {
	for name, mk := range constructors(t) {
		t.Run(name, func(t *testing.T) {
			s := mk(t)
			defer s.Close()
			var wg sync.WaitGroup
			var mu sync.Mutex
			winners, busy := 0, 0
			for range 50 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rec, err := s.Acquire(context.Background(), "same", "h", time.Now().Add(time.Minute))
					mu.Lock()
					defer mu.Unlock()
					switch {
					case rec == nil && err == nil:
						winners++
					case errors.Is(err, ErrInProgress):
						busy++
					default:
						t.Errorf("unexpected %+v, %v", rec, err)
					}
				}()
			}
			wg.Wait()
			if winners != 1 || busy != 49 {
				t.Fatalf("%d winners, %d in progress; want 1 and 49", winners, busy)
			}
		})
	}
}

func TestLeaseUntil(t *testing.T) {
	now := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		deadline time.Time
		ok       bool
		want     time.Time
	}{
		{"deadline ahead", now.Add(30 * time.Second), true, now.Add(31 * time.Second)},
		{"deadline passed", now.Add(-time.Second), true, now.Add(10 * time.Second)},
		{"deadline now", now, true, now.Add(10 * time.Second)},
		{"no deadline", time.Time{}, false, now.Add(5 * time.Minute)},
	}
	for _, tt := range tests {
		if got := LeaseUntil(now, tt.deadline, tt.ok); !got.Equal(tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	for _, spec := range []string{"memory", "file:" + t.TempDir() + "/x/state.db"} {
		s, err := Open(ctx, spec)
		if err != nil {
			t.Fatalf("%s: %v", spec, err)
		}
		_ = s.Close()
	}
	for _, spec := range []string{"", "file:", "postgres://x", "redis://user:hunter2@127.0.0.1:1/0"} {
		_, err := Open(ctx, spec)
		if err == nil {
			t.Fatalf("%q accepted", spec)
		}
		if contains(err.Error(), "hunter2") {
			t.Fatalf("error shows the password: %v", err)
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
