package liveapi_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livepack/livepack/shared/emulator"
	"github.com/livepack/livepack/shared/liveapi"
)

// TestOneTransport: calls made with a deadline reuse one connection. The SDK pools HTTP
// clients by their timeout values, so timeouts derived from the time left would dial anew for
// every call and leave a transport (and its goroutines) behind each time.
func TestOneTransport(t *testing.T) {
	var opened atomic.Int64
	srv := httptest.NewUnstartedServer(emulator.New(emulator.Options{Seed: emulator.DefaultSeed(), Rate: 1 << 30}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	// Two clients, as a host building one per invocation would: they share the transport.
	a := newClient(t, srv.URL, liveapi.Options{})
	b := newClient(t, srv.URL, liveapi.Options{})
	call := func(c *liveapi.Client, i int) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(30+i%7)*time.Second)
		defer cancel()
		if _, err := c.DescribeDomain(ctx, "play.example.com"); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	call(a, 0)
	call(b, 1)
	runtime.GC()
	base := runtime.NumGoroutine()
	const n = 1000
	for i := range n {
		if i%2 == 0 {
			call(a, i)
		} else {
			call(b, i)
		}
	}
	if got := opened.Load(); got > 2 {
		t.Fatalf("%d calls with a deadline opened %d TCP connections, want at most 2", n+2, got)
	}
	// Goroutines settle: a call's timer and request goroutines end with it.
	var now int
	for range 50 {
		if now = runtime.NumGoroutine(); now <= base+2 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("goroutines grew from %d to %d over %d calls", base, now, n)
}

// TestReserveBeforeDeadline: a call gives up before the caller's deadline, leaving the caller
// time to record its result.
func TestReserveBeforeDeadline(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer srv.Close()
	for _, tt := range []struct {
		name     string
		reserve  time.Duration
		deadline time.Duration
		// leftAtLeast is the least time the caller must have left when the call returns.
		leftAtLeast time.Duration
	}{
		{"fixed reserve", 400 * time.Millisecond, 2 * time.Second, 300 * time.Millisecond},
		{"quarter of a short deadline", time.Minute, 800 * time.Millisecond, 150 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, srv.URL, liveapi.Options{Reserve: tt.reserve, MaxAttempts: 1})
			ctx, cancel := context.WithTimeout(context.Background(), tt.deadline)
			defer cancel()
			_, err := c.DescribeDomain(ctx, "play.example.com")
			if err == nil {
				t.Fatal("a call to a server that never answers succeeded")
			}
			dl, _ := ctx.Deadline()
			if left := time.Until(dl); left < tt.leftAtLeast {
				t.Fatalf("call returned %s before the deadline, want at least %s", left, tt.leftAtLeast)
			}
			if ctx.Err() != nil {
				t.Fatal("the caller's own context ended")
			}
		})
	}
}

// recordingLimiter admits every call and records the throttles reported to it.
type recordingLimiter struct {
	mu        sync.Mutex
	waits     []string
	throttled []time.Duration
}

func (r *recordingLimiter) Wait(_ context.Context, action string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.waits = append(r.waits, action)
	return nil
}

func (r *recordingLimiter) Throttled(action string, retryAfter time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.throttled = append(r.throttled, retryAfter)
}

// TestThrottleFeedsLimiter: a throttled attempt tells the limiter, with the API's hint, so every
// caller slows down; every attempt spends the budget of its own action.
func TestThrottleFeedsLimiter(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if calls.Add(1) == 1 {
			w.Header().Set("x-ratelimit-user", "Limit:300,Remain:0,TimeLeft:300")
			w.WriteHeader(400)
			_, _ = w.Write([]byte(`{"Code":"Throttling.User","Message":"flow control","RequestId":"r"}`))
			return
		}
		_, _ = w.Write([]byte(`{"RequestId":"r2","DomainDetail":{"DomainName":"play.example.com"}}`))
	}))
	defer srv.Close()
	lim := &recordingLimiter{}
	c := newClient(t, srv.URL, liveapi.Options{Limiter: lim})
	if _, err := c.DescribeDomain(context.Background(), "play.example.com"); err != nil {
		t.Fatal(err)
	}
	if len(lim.waits) != 2 || lim.waits[0] != "DescribeLiveDomainDetail" {
		t.Fatalf("budget spent for %v, want two DescribeLiveDomainDetail attempts", lim.waits)
	}
	if len(lim.throttled) != 1 || lim.throttled[0] != 300*time.Millisecond {
		t.Fatalf("throttles reported %v, want one with the API's 300 ms", lim.throttled)
	}
}

// TestWritesNotRetriedWhenAmbiguous: a write whose failure may hide a commit (a 5xx, a cut
// connection) goes back to the caller after one attempt; a read, or a write the API provably
// refused (throttled, or never connected), is retried.
func TestWritesNotRetriedWhenAmbiguous(t *testing.T) {
	pc := liveapi.PackageConfig{DomainName: "play.example.com", AppName: "sports", StreamName: "*", Protocol: "HLS_CMAF", SegmentNum: 3, SegmentDuration: 5, IgnoreTranscode: true}
	for _, tt := range []struct {
		name  string
		kind  string
		write bool
		// attempts is how many calls the emulator must see (the fault strikes every call).
		attempts int
	}{
		{"write committed then 500", emulator.FaultCommitThenFail, true, 1},
		{"write refused with 500", emulator.FaultInternal, true, 1},
		{"write refused with 503", emulator.FaultUnavailable, true, 1},
		{"write throttled", emulator.FaultThrottling, true, 3},
		{"read refused with 503", emulator.FaultUnavailable, false, 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, url := serve(t, emulator.Options{FailRate: 1, FailKinds: []string{tt.kind}})
			c := newClient(t, url, liveapi.Options{MaxAttempts: 3})
			c.SetSleep(func(context.Context, time.Duration) error { return nil })
			var err error
			if tt.write {
				err = c.AddPackageConfig(context.Background(), pc)
			} else {
				_, err = c.DescribeDomain(context.Background(), "play.example.com")
			}
			if err == nil || !liveapi.IsRetryable(err) {
				t.Fatalf("err %v, want a retryable failure for the caller", err)
			}
			if n := len(s.Calls()); n != tt.attempts {
				t.Fatalf("%d attempts, want %d", n, tt.attempts)
			}
		})
	}
	// A dial that never connected sent nothing: the write is retried.
	c := newClient(t, "http://127.0.0.1:1", liveapi.Options{MaxAttempts: 2})
	c.SetSleep(func(context.Context, time.Duration) error { return nil })
	var st liveapi.Stats
	if err := c.AddPackageConfig(liveapi.WithStats(context.Background(), &st), pc); err == nil {
		t.Fatal("a write to a closed port succeeded")
	}
	if st.Retries.Load() != 1 {
		t.Fatalf("%d retries of a write that never connected, want 1", st.Retries.Load())
	}
}
