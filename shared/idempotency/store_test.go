package idempotency

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/livepack/livepack/shared/redistest"
	bolterrors "go.etcd.io/bbolt/errors"
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
			if _, rec, err := s.Acquire(ctx, "k", "h1", live); rec != nil || err != nil {
				t.Fatalf("fresh: %+v, %v", rec, err)
			}
			// A live lease blocks, and the payload is checked first.
			if _, _, err := s.Acquire(ctx, "k", "h1", live); !errors.Is(err, ErrInProgress) {
				t.Fatalf("live lease: %v", err)
			}
			if _, _, err := s.Acquire(ctx, "k", "h2", live); !errors.Is(err, ErrPayloadMismatch) {
				t.Fatalf("in progress, other payload: %v", err)
			}
			// A lapsed lease is taken over, keeping the planned notices.
			planned := []PendingNotice{{ID: "n1", Event: []byte(`{"id":"n1"}`), Sinks: []string{"stdout"}}}
			if err := s.Put(ctx, Record{Key: "k", Status: InProgress, PayloadHash: "h1", LeaseUntil: lapsed, Pending: planned}); err != nil {
				t.Fatal(err)
			}
			_, rec, err := s.Acquire(ctx, "k", "h1", live)
			if err != nil || rec == nil || rec.Status != InProgress || len(rec.Pending) != 1 || rec.Pending[0].ID != "n1" {
				t.Fatalf("takeover: %+v, %v", rec, err)
			}
			if _, _, err := s.Acquire(ctx, "k", "h1", live); !errors.Is(err, ErrInProgress) {
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
			if _, _, err := s.Acquire(ctx, "k", "h2", live); !errors.Is(err, ErrPayloadMismatch) {
				t.Fatalf("applied, other payload: %v", err)
			}
			_, rec, err = s.Acquire(ctx, "k", "h1", live)
			if err != nil || rec == nil || rec.Status != Applied || string(rec.Result) != `{"r":1}` {
				t.Fatalf("applied: %+v, %v", rec, err)
			}
			if _, _, err := s.Acquire(ctx, "k", "h1", live); !errors.Is(err, ErrInProgress) {
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
				_, rec, err = s.Acquire(ctx, "k", "h1", live)
				if err != nil || rec == nil || rec.Status != Completed || string(rec.Result) != `{"r":2}` {
					t.Fatalf("completed: %+v, %v", rec, err)
				}
			}
			if _, _, err := s.Acquire(ctx, "k", "h2", live); !errors.Is(err, ErrPayloadMismatch) {
				t.Fatalf("completed, other payload: %v", err)
			}
			// Delete releases the key.
			if err := s.Delete(ctx, "k", ""); err != nil {
				t.Fatal(err)
			}
			if _, rec, err := s.Acquire(ctx, "k", "h2", live); rec != nil || err != nil {
				t.Fatalf("after delete: %+v, %v", rec, err)
			}
			// An expired record counts as absent.
			if err := s.Put(ctx, Record{Key: "old", Status: Completed, PayloadHash: "h1", ExpiresAt: now.Add(50 * time.Millisecond)}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
			if _, rec, err := s.Acquire(ctx, "old", "h9", live); rec != nil || err != nil {
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
					_, rec, err := s.Acquire(context.Background(), "same", "h", time.Now().Add(time.Minute))
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
	if got := LeaseUntil(now); !got.Equal(now.Add(LeaseTTL)) || LeaseTTL > 15*time.Second {
		t.Fatalf("lease until %v (TTL %s): a crashed run must free its key within seconds", got, LeaseTTL)
	}
}

// TestFencing: every write of a holder carries its token; once another run took the key over
// (the lease lapsed), the old holder's renewals, puts and deletes fail with ErrFenced and
// change nothing.
func TestFencing(t *testing.T) {
	ctx := context.Background()
	for name, mk := range constructors(t) {
		t.Run(name, func(t *testing.T) {
			s := mk(t)
			defer s.Close()
			now := time.Now()
			old, prev, err := s.Acquire(ctx, "k", "h", now.Add(-time.Millisecond)) // already lapsed
			if err != nil || prev != nil || old == "" {
				t.Fatalf("acquire: %q %+v %v", old, prev, err)
			}
			if err := s.Renew(ctx, "k", old, now.Add(-time.Millisecond)); err != nil {
				t.Fatalf("renew by the holder: %v", err)
			}
			if err := s.Put(ctx, Record{Key: "k", Status: InProgress, PayloadHash: "h", LeaseUntil: now.Add(-time.Millisecond), Token: old,
				Pending: []PendingNotice{{ID: "n1", Sinks: []string{"s"}}}}); err != nil {
				t.Fatalf("put by the holder: %v", err)
			}
			fresh, prev, err := s.Acquire(ctx, "k", "h", now.Add(time.Minute))
			if err != nil || prev == nil || fresh == "" || fresh == old || len(prev.Pending) != 1 {
				t.Fatalf("takeover: %q %+v %v", fresh, prev, err)
			}
			if err := s.Renew(ctx, "k", old, now.Add(time.Hour)); !errors.Is(err, ErrFenced) {
				t.Fatalf("renew by the old holder: %v", err)
			}
			if err := s.Put(ctx, Record{Key: "k", Status: Completed, PayloadHash: "h", Token: old}); !errors.Is(err, ErrFenced) {
				t.Fatalf("put by the old holder: %v", err)
			}
			if err := s.Delete(ctx, "k", old); !errors.Is(err, ErrFenced) {
				t.Fatalf("delete by the old holder: %v", err)
			}
			if _, _, err := s.Acquire(ctx, "k", "h", now.Add(time.Minute)); !errors.Is(err, ErrInProgress) {
				t.Fatalf("the new holder lost the key: %v", err)
			}
			if err := s.Put(ctx, Record{Key: "k", Status: Completed, PayloadHash: "h", Token: fresh, Result: []byte(`{}`)}); err != nil {
				t.Fatalf("put by the new holder: %v", err)
			}
			if err := s.Delete(ctx, "gone", fresh); !errors.Is(err, ErrFenced) {
				t.Fatalf("delete of a key the token never held: %v", err)
			}
			if err := s.Renew(ctx, "k", "", now); !errors.Is(err, ErrFenced) {
				t.Fatalf("renew without a token: %v", err)
			}
		})
	}
}

// TestDeliveredNotices: the delivered-notices record lets one claimer send a notice to a sink,
// answers InFlight to others meanwhile, and AlreadyDelivered to everyone once it went out; a
// failed send frees it for the next run.
func TestDeliveredNotices(t *testing.T) {
	ctx := context.Background()
	for name, mk := range constructors(t) {
		t.Run(name, func(t *testing.T) {
			s := mk(t)
			defer s.Close()
			until := time.Now().Add(time.Minute)
			check := func(token string, want Claim) {
				t.Helper()
				if got, err := s.ClaimNotice(ctx, "n1", "hook", token, until); err != nil || got != want {
					t.Fatalf("claim by %s: %v %v, want %v", token, got, err, want)
				}
			}
			check("a", Claimed)
			check("b", InFlight)
			check("a", Claimed) // a claimer may claim again
			if err := s.SettleNotice(ctx, "n1", "t", "hook", "b", false); err != nil {
				t.Fatal(err)
			}
			check("b", InFlight) // another's failure does not free a's claim
			if err := s.SettleNotice(ctx, "n1", "t", "hook", "a", false); err != nil {
				t.Fatal(err)
			}
			check("b", Claimed)
			if err := s.SettleNotice(ctx, "n1", "t", "hook", "b", true); err != nil {
				t.Fatal(err)
			}
			check("c", AlreadyDelivered)
			check("b", AlreadyDelivered)
			// Per sink, per id.
			if got, _ := s.ClaimNotice(ctx, "n1", "stdout", "c", until); got != Claimed {
				t.Fatalf("other sink: %v", got)
			}
			if got, _ := s.ClaimNotice(ctx, "n2", "hook", "c", until); got != Claimed {
				t.Fatalf("other id: %v", got)
			}
			// Another change of the same target makes n1 a past occurrence: made again, it is
			// announced again.
			if got, _ := s.ClaimNotice(ctx, "n4", "hook", "d", until); got != Claimed {
				t.Fatalf("n4: %v", got)
			}
			if err := s.SettleNotice(ctx, "n4", "t", "hook", "d", true); err != nil {
				t.Fatal(err)
			}
			check("e", Claimed)
			// A claim whose holder died lapses.
			if got, _ := s.ClaimNotice(ctx, "n3", "hook", "dead", time.Now().Add(30*time.Millisecond)); got != Claimed {
				t.Fatalf("n3: %v", got)
			}
			time.Sleep(80 * time.Millisecond)
			if got, _ := s.ClaimNotice(ctx, "n3", "hook", "alive", until); got != Claimed {
				t.Fatalf("after the claim lapsed: %v", got)
			}
		})
	}
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	for _, spec := range []string{"memory", "file:" + t.TempDir() + "/x/state.db"} {
		s, err := Open(ctx, spec, "t")
		if err != nil {
			t.Fatalf("%s: %v", spec, err)
		}
		_ = s.Close()
	}
	for _, spec := range []string{"", "file:", "postgres://x", "redis://user:hunter2@127.0.0.1:1/0"} {
		_, err := Open(ctx, spec, "t")
		if err == nil {
			t.Fatalf("%q accepted", spec)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Fatalf("error shows the password: %v", err)
		}
	}
}

func near(got, want time.Time) bool {
	d := got.Sub(want)
	return d > -5*time.Second && d < 5*time.Second
}

func TestPutFillsExpiry(t *testing.T) {
	ctx := context.Background()
	for name, mk := range constructors(t) {
		t.Run(name, func(t *testing.T) {
			s := mk(t)
			defer s.Close()
			now := time.Now()
			live, lapsed := now.Add(time.Minute), now.Add(-time.Second)
			if err := s.Put(ctx, Record{Key: "c", Status: Completed, PayloadHash: "h"}); err != nil {
				t.Fatal(err)
			}
			_, rec, err := s.Acquire(ctx, "c", "h", live)
			if err != nil || rec == nil || !near(rec.ExpiresAt, now.Add(24*time.Hour)) {
				t.Fatalf("completed: %+v, %v; want expiry in 24 h", rec, err)
			}
			if err := s.Put(ctx, Record{Key: "a", Status: Applied, PayloadHash: "h", LeaseUntil: lapsed}); err != nil {
				t.Fatal(err)
			}
			pend, err := s.Pending(ctx)
			if err != nil || len(pend) != 1 || !near(pend[0].ExpiresAt, now.Add(7*24*time.Hour)) {
				t.Fatalf("applied: %+v, %v; want expiry in 7 days", pend, err)
			}
			if err := s.Put(ctx, Record{Key: "i", Status: InProgress, PayloadHash: "h", LeaseUntil: lapsed}); err != nil {
				t.Fatal(err)
			}
			_, rec, err = s.Acquire(ctx, "i", "h", live)
			if err != nil || rec == nil || !near(rec.ExpiresAt, now.Add(7*24*time.Hour)) {
				t.Fatalf("in progress: %+v, %v; want expiry in 7 days", rec, err)
			}
			// An explicit expiry is kept.
			at := now.Add(time.Hour).Truncate(time.Millisecond)
			if err := s.Put(ctx, Record{Key: "x", Status: Completed, PayloadHash: "h", ExpiresAt: at}); err != nil {
				t.Fatal(err)
			}
			if _, rec, err := s.Acquire(ctx, "x", "h", live); err != nil || !rec.ExpiresAt.Equal(at) {
				t.Fatalf("explicit expiry: %+v, %v", rec, err)
			}
			if r, ok := s.(*Redis); ok {
				ms, err := redis.Int64(r.rdb.Do(ctx, "PTTL", r.prefix+"c"))
				ttl := time.Duration(ms) * time.Millisecond
				if err != nil || ttl < 23*time.Hour || ttl > 24*time.Hour {
					t.Fatalf("redis TTL %s, %v; want 24 h", ttl, err)
				}
			}
		})
	}
}

func TestPendingListsLapsedAppliedOnly(t *testing.T) {
	ctx := context.Background()
	for name, mk := range constructors(t) {
		t.Run(name, func(t *testing.T) {
			s := mk(t)
			defer s.Close()
			now := time.Now()
			live, lapsed := now.Add(time.Minute), now.Add(-time.Second)
			notice := []PendingNotice{{ID: "n", Event: []byte(`{"id":"n"}`), Sinks: []string{"slack"}}}
			for _, r := range []Record{
				{Key: "applied-lapsed", Status: Applied, LeaseUntil: lapsed, Pending: notice},
				{Key: "applied-nolease", Status: Applied, Pending: notice},
				{Key: "applied-live", Status: Applied, LeaseUntil: live, Pending: notice},
				{Key: "inprogress-lapsed", Status: InProgress, LeaseUntil: lapsed, Pending: notice},
				{Key: "inprogress-live", Status: InProgress, LeaseUntil: live},
				{Key: "completed", Status: Completed},
				{Key: "applied-expired", Status: Applied, LeaseUntil: lapsed, ExpiresAt: now.Add(-time.Millisecond), Pending: notice},
			} {
				r.PayloadHash = "h"
				if err := s.Put(ctx, r); err != nil {
					t.Fatal(err)
				}
			}
			pend, err := s.Pending(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]bool{}
			for _, r := range pend {
				got[r.Key] = true
				if len(r.Pending) != 1 || r.Pending[0].Sinks[0] != "slack" || string(r.Pending[0].Event) != `{"id":"n"}` {
					t.Fatalf("pending notice lost: %+v", r)
				}
			}
			if len(got) != 2 || !got["applied-lapsed"] || !got["applied-nolease"] {
				t.Fatalf("Pending = %v, want applied-lapsed and applied-nolease", got)
			}
		})
	}
}

func TestOpenRedis(t *testing.T) {
	ctx := context.Background()
	addr := redistest.Start(t).Addr()
	s, err := Open(ctx, "redis://"+addr+"/0", "t")
	if err != nil {
		t.Fatal(err)
	}
	if _, rec, err := s.Acquire(ctx, "k", "h", time.Now().Add(time.Minute)); rec != nil || err != nil {
		t.Fatalf("acquire: %+v, %v", rec, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.(*Redis).rdb.Do(ctx, "PING"); err == nil {
		t.Fatal("Close left the client Open created open")
	}
	// A store on a caller's client leaves it open.
	rdb := redistest.Start(t)
	if err := NewRedis(rdb, "p:").Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := rdb.Do(ctx, "PING"); err != nil {
		t.Fatalf("Close closed the caller's client: %v", err)
	}
}

func TestFileLockedByAnotherProcess(t *testing.T) {
	defer func(d time.Duration) { lockTimeout = d }(lockTimeout)
	lockTimeout = 200 * time.Millisecond
	path := filepath.Join(t.TempDir(), "state.db")
	first, err := Open(context.Background(), "file:"+path, "t")
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	// bbolt's flock is per open file, so a second open in this process stands in for a second
	// process.
	_, err = NewFile(path)
	if !errors.Is(err, bolterrors.ErrTimeout) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("second open: %v; want a clear lock timeout naming the file", err)
	}
}

// TestPlanAppends: planned notices are appended one by one under the lease, returned to the run
// that takes the key over, replaced by the holder's Put, and refused to a fenced token.
func TestPlanAppends(t *testing.T) {
	ctx := context.Background()
	for name, mk := range constructors(t) {
		t.Run(name, func(t *testing.T) {
			s := mk(t)
			defer s.Close()
			tok, _, err := s.Acquire(ctx, "k", "h", time.Now().Add(-time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range []string{"a", "b", "c"} {
				if err := s.Plan(ctx, "k", tok, PendingNotice{ID: id, Event: []byte(`{"id":"` + id + `"}`), Sinks: []string{"s"}}); err != nil {
					t.Fatal(err)
				}
			}
			tok2, prev, err := s.Acquire(ctx, "k", "h", time.Now().Add(time.Minute))
			if err != nil || prev == nil || len(prev.Pending) != 3 {
				t.Fatalf("takeover: %+v %v", prev, err)
			}
			if err := s.Plan(ctx, "k", tok, PendingNotice{ID: "late"}); !errors.Is(err, ErrFenced) {
				t.Fatalf("plan by the old holder: %v", err)
			}
			if err := s.Put(ctx, Record{Key: "k", Status: InProgress, PayloadHash: "h", Token: tok2, Pending: []PendingNotice{{ID: "only"}}}); err != nil {
				t.Fatal(err)
			}
			if err := s.Renew(ctx, "k", tok2, time.Now().Add(-time.Millisecond)); err != nil {
				t.Fatal(err)
			}
			_, prev, err = s.Acquire(ctx, "k", "h", time.Now().Add(time.Minute))
			if err != nil || prev == nil || len(prev.Pending) != 1 || prev.Pending[0].ID != "only" {
				t.Fatalf("after put: %+v %v", prev, err)
			}
		})
	}
}

// TestPlanWritesLinear: 190 planned notices of 1.5 KB write about their own size to the state
// file, not the square of their number (rewriting the list each time wrote 28 MB).
func TestPlanWritesLinear(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := NewFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tok, _, err := s.Acquire(ctx, "k", "h", time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	ev := []byte(`{"data":"` + strings.Repeat("x", 1500) + `"}`)
	before := wchar(t)
	for i := range 190 {
		if err := s.Plan(ctx, "k", tok, PendingNotice{ID: fmt.Sprint("n", i), Event: ev, Sinks: []string{"s"}}); err != nil {
			t.Fatal(err)
		}
	}
	written := wchar(t) - before
	if written > 8<<20 {
		t.Fatalf("%d bytes written for 190 notices of 1.5 KB", written)
	}
}

// wchar is the bytes this process has written so far (Linux /proc/self/io).
func wchar(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Skip("no /proc/self/io to count the bytes written")
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "wchar: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	t.Skip("no wchar in /proc/self/io")
	return 0
}
