package liveapi_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aliyun/credentials-go/credentials"

	"github.com/livepack/livepack/shared/emulator"
	"github.com/livepack/livepack/shared/liveapi"
)

func cred(t testing.TB, id, secret string) credentials.Credential {
	t.Helper()
	typ := "access_key"
	c, err := credentials.NewCredential(&credentials.Config{Type: &typ, AccessKeyId: &id, AccessKeySecret: &secret})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newClient(t testing.TB, url string, o liveapi.Options) *liveapi.Client {
	t.Helper()
	o.Endpoint = url
	if o.Credential == nil {
		o.Credential = cred(t, emulator.AccessKeyID, emulator.AccessKeySecret)
	}
	c, err := liveapi.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func serve(t testing.TB, opts emulator.Options) (*emulator.Server, string) {
	if opts.Seed.Domains == nil {
		opts.Seed = emulator.DefaultSeed()
	}
	s := emulator.New(opts)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv.URL
}

func TestSequence(t *testing.T) {
	for _, v1 := range []bool{false, true} {
		t.Run(fmt.Sprintf("SignatureV1=%v", v1), func(t *testing.T) {
			s, url := serve(t, emulator.Options{})
			c := newClient(t, url, liveapi.Options{SignatureV1: v1})
			ctx := context.Background()
			pc := liveapi.PackageConfig{DomainName: "play.example.com", AppName: "sports", StreamName: "*", Protocol: "LLHLS_CMAF", SegmentNum: 3, SegmentDuration: 2, PartDuration: 700, IgnoreTranscode: true}
			if err := c.AddPackageConfig(ctx, pc); err != nil {
				t.Fatal(err)
			}
			if err := c.AddPackageConfig(ctx, pc); !errors.Is(err, liveapi.ErrConfigExists) {
				t.Fatalf("duplicate add: %v", err)
			}
			got, err := c.DescribePackageConfigs(ctx, "play.example.com")
			if err != nil || len(got) != 1 || got[0] != pc {
				t.Fatalf("describe: %+v, %v", got, err)
			}
			pc.Protocol, pc.SegmentDuration, pc.PartDuration = "HLS_CMAF", 6, 0
			if err := c.UpdatePackageConfig(ctx, pc); err != nil {
				t.Fatal(err)
			}
			if got, _ := c.DescribePackageConfigs(ctx, "play.example.com"); len(got) != 1 || got[0] != pc {
				t.Fatalf("describe after update: %+v", got)
			}
			if err := c.DeletePackageConfig(ctx, "play.example.com", "sports", "*"); err != nil {
				t.Fatal(err)
			}
			if err := c.DeletePackageConfig(ctx, "play.example.com", "sports", "*"); !errors.Is(err, liveapi.ErrNotFound) {
				t.Fatalf("second delete: %v", err)
			}
			for _, call := range s.Calls() {
				if strings.HasPrefix(call.Action, "Update") && call.Params["PartDuration"] != "" {
					t.Fatalf("PartDuration sent with a non-LL protocol: %v", call.Params)
				}
			}
		})
	}
}

func TestDomainsAndStreams(t *testing.T) {
	seed := emulator.DefaultSeed()
	for i := range 70 {
		seed.Domains = append(seed.Domains, emulator.Domain{DomainName: fmt.Sprintf("d%02d.example.com", i), LiveDomainType: "liveVideo", DomainStatus: "online", Region: "cn-shanghai", Scope: "domestic"})
	}
	for i := range 65 {
		seed.PackageConfigs = append(seed.PackageConfigs, emulator.PackageConfig{DomainName: "play.example.com", AppName: fmt.Sprintf("a%02d", i), StreamName: "*", Protocol: "HLS_CMAF", SegmentNum: 3, SegmentDuration: 5, IgnoreTranscode: true})
	}
	s, url := serve(t, emulator.Options{Seed: seed})
	c := newClient(t, url, liveapi.Options{})
	ctx := context.Background()
	ds, err := c.ListDomains(ctx, "liveVideo", "online")
	if err != nil || len(ds) != 73 {
		t.Fatalf("ListDomains: %d, %v", len(ds), err)
	}
	cs, err := c.DescribePackageConfigs(ctx, "play.example.com")
	if err != nil || len(cs) != 65 {
		t.Fatalf("DescribePackageConfigs: %d, %v", len(cs), err)
	}
	pages := map[string]int{}
	for _, call := range s.Calls() {
		pages[call.Action]++
	}
	if pages["DescribeLiveUserDomains"] != 2 || pages["DescribeLivePackageConfig"] != 3 {
		t.Fatalf("pages read: %v, want 2 domain pages (50 each) and 3 config pages (30 each)", pages)
	}
	d, err := c.DescribeDomain(ctx, "global.example.com")
	if err != nil || d.Scope != "global" || d.LiveDomainType != "liveVideo" {
		t.Fatalf("DescribeDomain: %+v, %v", d, err)
	}
	if _, err := c.DescribeDomain(ctx, "nowhere.example.com"); !errors.Is(err, liveapi.ErrNotFound) || liveapi.IsRetryable(err) {
		t.Fatalf("unknown domain: %v", err)
	}
	on, err := c.OnlineStreams(ctx, "play.example.com")
	if err != nil || len(on) != 2 || on[0].PublishURL == "" {
		t.Fatalf("OnlineStreams: %+v, %v", on, err)
	}
}

func TestErrorClassification(t *testing.T) {
	_, url := serve(t, emulator.Options{})
	bad := newClient(t, url, liveapi.Options{Credential: cred(t, emulator.AccessKeyID, "wrong")})
	ctx := context.Background()
	_, err := bad.DescribeDomain(ctx, "play.example.com")
	var ae *liveapi.Error
	if !errors.As(err, &ae) || ae.Code != "SignatureDoesNotMatch" || ae.Status != 400 || ae.RequestID == "" || liveapi.IsRetryable(err) {
		t.Fatalf("bad signature: %#v", err)
	}
	c := newClient(t, url, liveapi.Options{})
	err = c.AddPackageConfig(ctx, liveapi.PackageConfig{DomainName: "play.example.com", AppName: "a", StreamName: "*", Protocol: "HLS_CMAF", SegmentNum: 2, SegmentDuration: 5})
	if !errors.As(err, &ae) || ae.Code != "InvalidSegmentNum" || liveapi.IsRetryable(err) {
		t.Fatalf("validation error: %v", err)
	}
	for code, want := range map[string]bool{"Throttling.User": true, "Throttling": true, "ServiceUnavailable": true, "InternalErr": true,
		"InternalError": true, "DomainConfigFailed": true, "ConfigConflicts": false, liveapi.CodeNetwork: true,
		"InvalidParams": false, "Forbidden": false, "InvalidDomain.NotFound": false, "ConfigAlreadyExists": false} {
		if got := liveapi.IsRetryable(&liveapi.Error{Code: code, Status: 400}); got != want {
			t.Errorf("IsRetryable(%s) = %v", code, got)
		}
	}
	if !liveapi.IsRetryable(&liveapi.Error{Code: "Whatever", Status: 502}) {
		t.Error("a 5xx is retryable")
	}
	if liveapi.IsRetryable(fmt.Errorf("x: %w", context.DeadlineExceeded)) {
		t.Error("an expired context is terminal")
	}
	// A network failure is typed and retryable.
	dead := newClient(t, "http://127.0.0.1:1", liveapi.Options{MaxAttempts: 1})
	_, err = dead.DescribeDomain(ctx, "play.example.com")
	if !errors.As(err, &ae) || ae.Code != liveapi.CodeNetwork || !liveapi.IsRetryable(err) {
		t.Fatalf("network error: %v", err)
	}
}

func TestRetriesTransientFaults(t *testing.T) {
	s, url := serve(t, emulator.Options{FailRate: 0.5, FailSeed: 3})
	c := newClient(t, url, liveapi.Options{MaxAttempts: 8})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range 10 {
		if _, err := c.DescribeDomain(ctx, "play.example.com"); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	failed := 0
	for _, call := range s.Calls() {
		if call.Status != 200 {
			failed++
		}
	}
	if failed == 0 {
		t.Fatal("no fault was injected: the test proves nothing")
	}
}

// TestRetryHonoursDeadline: a server that always answers 503 must not hold the caller past
// its deadline.
func TestRetryHonoursDeadline(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(503)
		_, _ = w.Write([]byte(`{"Code":"ServiceUnavailable","Message":"busy","RequestId":"r"}`))
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, liveapi.Options{MaxAttempts: 100})
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.DescribeDomain(ctx, "play.example.com")
	// The deadline cancels a call in flight; a little scheduling slack is allowed on top.
	if !liveapi.IsRetryable(err) || time.Since(start) > 1800*time.Millisecond {
		t.Fatalf("err %v after %s", err, time.Since(start))
	}
	if calls.Load() < 2 {
		t.Fatalf("%d calls: no retry happened", calls.Load())
	}
}

// TestThrottleHint: the client waits at least the TimeLeft the API announces.
func TestThrottleHint(t *testing.T) {
	var calls atomic.Int32
	var first time.Time
	var gap time.Duration
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if calls.Add(1) == 1 {
			first = time.Now()
			w.Header().Set("x-ratelimit-user", "Limit:300,Remain:0,TimeLeft:900")
			w.WriteHeader(400)
			_, _ = w.Write([]byte(`{"Code":"Throttling.User","Message":"flow control","RequestId":"r"}`))
			return
		}
		gap = time.Since(first)
		_, _ = w.Write([]byte(`{"RequestId":"r2","DomainDetail":{"DomainName":"play.example.com"}}`))
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, liveapi.Options{})
	var st liveapi.Stats
	if _, err := c.DescribeDomain(liveapi.WithStats(context.Background(), &st), "play.example.com"); err != nil {
		t.Fatal(err)
	}
	if gap < 850*time.Millisecond {
		t.Fatalf("retried after %s, before the 900 ms the API asked for", gap)
	}
	if st.Calls.Load() != 2 || st.Throttles.Load() != 1 || st.Retries.Load() != 1 {
		t.Fatalf("stats: calls %d throttles %d retries %d, want 2 1 1", st.Calls.Load(), st.Throttles.Load(), st.Retries.Load())
	}
}

func BenchmarkClient(b *testing.B) {
	_, url := serve(b, emulator.Options{Rate: 1 << 30})
	for _, v1 := range []bool{false, true} {
		c := newClient(b, url, liveapi.Options{SignatureV1: v1})
		b.Run(map[bool]string{false: "DescribeDomain/V3", true: "DescribeDomain/V1"}[v1], func(b *testing.B) {
			ctx := context.Background()
			for b.Loop() {
				if _, err := c.DescribeDomain(ctx, "play.example.com"); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
		})
	}
}

// TestConcurrentCalls: one Client serves concurrent calls (livepack serve and the webhook share
// one), so the SDK's per-call state must not be shared between them; -race checks it.
func TestConcurrentCalls(t *testing.T) {
	_, url := serve(t, emulator.Options{Rate: 1 << 30})
	c := newClient(t, url, liveapi.Options{})
	var wg sync.WaitGroup
	errs := make(chan error, 8*10)
	for range 8 {
		wg.Go(func() {
			for range 10 {
				if _, err := c.DescribeDomain(context.Background(), "play.example.com"); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
