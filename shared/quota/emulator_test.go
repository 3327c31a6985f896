package quota_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aliyun/credentials-go/credentials"

	"github.com/livepack/livepack/shared/emulator"
	"github.com/livepack/livepack/shared/liveapi"
	"github.com/livepack/livepack/shared/quota"
	"github.com/livepack/livepack/shared/redistest"
	"github.com/livepack/livepack/shared/store/redisstore"
)

// against starts an emulator counting its quota in shape and returns it with a client spending
// lim.
func against(t *testing.T, shape string, rate int, lim liveapi.Limiter) (*emulator.Server, *liveapi.Client) {
	t.Helper()
	s := emulator.New(emulator.Options{Seed: emulator.DefaultSeed(), Rate: rate, Quota: shape})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	typ, id, secret := "access_key", emulator.AccessKeyID, emulator.AccessKeySecret
	cred, err := credentials.NewCredential(&credentials.Config{Type: &typ, AccessKeyId: &id, AccessKeySecret: &secret})
	if err != nil {
		t.Fatal(err)
	}
	c, err := liveapi.New(liveapi.Options{Endpoint: srv.URL, Credential: cred, Limiter: lim, MaxAttempts: 10})
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

func throttles(s *emulator.Server) int {
	n := 0
	for _, c := range s.Calls() {
		if strings.HasPrefix(c.Code, "Throttling") {
			n++
		}
	}
	return n
}

// limiters returns a per-process limiter and a Redis-shared one of the same budget.
func limiters(t *testing.T, rate int) map[string]*quota.Limiter {
	return map[string]*quota.Limiter{"local": quota.NewLocal(rate), "redis": quota.NewShared(redisstore.New(redistest.Start(t), t.Name()), "quota", rate)}
}

// TestWindowQuotaBurstsWithoutThrottle: against a per-minute window, the whole budget goes at
// once without one throttle, and the call past it fails fast instead of drawing one.
func TestWindowQuotaBurstsWithoutThrottle(t *testing.T) {
	const rate = 40
	for name, lim := range limiters(t, rate) {
		t.Run(name, func(t *testing.T) {
			s, c := against(t, emulator.QuotaWindow, rate, lim)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			for i := range rate {
				if _, err := c.DescribePackageConfigs(ctx, "play.example.com"); err != nil {
					t.Fatalf("call %d of a budget of %d: %v", i, rate, err)
				}
			}
			if _, err := c.DescribePackageConfigs(ctx, "play.example.com"); !errors.Is(err, quota.ErrExhausted) {
				t.Fatalf("the call past the budget: %v, want ErrExhausted", err)
			}
			if n := throttles(s); n != 0 {
				t.Fatalf("%d calls throttled", n)
			}
		})
	}
}

// TestBucketQuotaWithoutStorm: against a token bucket (one second's worth at once), the
// minute's budget over-runs the first second; the limiter backs off and lowers its per-second
// cap, so every call completes with a handful of throttles rather than a storm.
func TestBucketQuotaWithoutStorm(t *testing.T) {
	const rate, calls = 1200, 60 // 20 per second
	for name, lim := range limiters(t, rate) {
		t.Run(name, func(t *testing.T) {
			s, c := against(t, emulator.QuotaBucket, rate, lim)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			var st liveapi.Stats
			ctx = liveapi.WithStats(ctx, &st)
			for i := range calls {
				if _, err := c.DescribePackageConfigs(ctx, "play.example.com"); err != nil {
					t.Fatalf("call %d: %v", i, err)
				}
			}
			if n := throttles(s); n == 0 || n > 5 {
				t.Fatalf("%d calls throttled, want 1 to 5: the bucket must bite once, then the limiter adapts", n)
			}
			if int(st.Calls.Load()) != len(s.Calls()) {
				t.Fatalf("stats count %d calls, the emulator %d", st.Calls.Load(), len(s.Calls()))
			}
		})
	}
}

// TestScheduledLaneLeavesReserve: while the scheduled lane saturates the budget, interactive
// calls still go out at once from the reserve.
func TestScheduledLaneLeavesReserve(t *testing.T) {
	const rate = 100 // the scheduled lane may fill 80
	for name, lim := range limiters(t, rate) {
		t.Run(name, func(t *testing.T) {
			s, c := against(t, emulator.QuotaWindow, rate, lim)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			sched := quota.WithLane(ctx, quota.Scheduled)
			var wg sync.WaitGroup
			var scheduled int
			saturated := make(chan struct{})
			wg.Go(func() {
				defer close(saturated)
				for {
					if _, err := c.DescribePackageConfigs(sched, "play.example.com"); err != nil {
						if !errors.Is(err, quota.ErrExhausted) {
							t.Errorf("scheduled call: %v", err)
						}
						return
					}
					scheduled++
				}
			})
			<-saturated
			wg.Wait()
			if scheduled != 80 {
				t.Fatalf("the scheduled lane made %d calls, want 80 of 100", scheduled)
			}
			// A 10-policy webhook: one Describe, ten writes.
			if _, err := c.DescribePackageConfigs(ctx, "play.example.com"); err != nil {
				t.Fatal(err)
			}
			for i := range 10 {
				pc := liveapi.PackageConfig{DomainName: "play.example.com", AppName: fmt.Sprintf("app%d", i), StreamName: "*",
					Protocol: "HLS_CMAF", SegmentNum: 3, SegmentDuration: 5, IgnoreTranscode: true}
				if err := c.AddPackageConfig(ctx, pc); err != nil {
					t.Fatalf("interactive write %d: %v", i, err)
				}
			}
			if n := throttles(s); n != 0 {
				t.Fatalf("%d calls throttled", n)
			}
		})
	}
}

// BenchmarkWebhookDuringReconcile: the scheduled lane has filled its share of a 300/min window
// (it keeps asking, and waits); a 10-policy webhook's calls (one Describe, ten writes) are
// timed: they come from the reserve at once, not after the window moves.
func BenchmarkWebhookDuringReconcile(b *testing.B) {
	const rate = 300
	for b.Loop() {
		b.StopTimer()
		lim := quota.NewLocal(rate)
		s := emulator.New(emulator.Options{Seed: emulator.DefaultSeed(), Rate: rate})
		srv := httptest.NewServer(s)
		typ, id, secret := "access_key", emulator.AccessKeyID, emulator.AccessKeySecret
		cred, _ := credentials.NewCredential(&credentials.Config{Type: &typ, AccessKeyId: &id, AccessKeySecret: &secret})
		c, err := liveapi.New(liveapi.Options{Endpoint: srv.URL, Credential: cred, Limiter: lim})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		sched := quota.WithLane(ctx, quota.Scheduled)
		for range rate * 8 / 10 {
			if _, err := c.DescribePackageConfigs(sched, "play.example.com"); err != nil {
				b.Fatal(err)
			}
		}
		done := make(chan struct{})
		go func() { // the reconcile keeps waiting for its lane
			defer close(done)
			_, _ = c.DescribePackageConfigs(sched, "play.example.com")
		}()
		b.StartTimer()
		if _, err := c.DescribePackageConfigs(ctx, "play.example.com"); err != nil {
			b.Fatal(err)
		}
		for i := range 10 {
			pc := liveapi.PackageConfig{DomainName: "play.example.com", AppName: fmt.Sprintf("app%d", i), StreamName: "*",
				Protocol: "HLS_CMAF", SegmentNum: 3, SegmentDuration: 5, IgnoreTranscode: true}
			if err := c.AddPackageConfig(ctx, pc); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		cancel()
		<-done
		srv.Close()
		if n := throttles(s); n != 0 {
			b.Fatalf("%d calls throttled", n)
		}
		b.StartTimer()
	}
}
