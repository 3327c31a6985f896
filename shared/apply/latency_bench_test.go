package apply_test

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/aliyun/credentials-go/credentials"

	"github.com/livepack/livepack/shared/apply"
	"github.com/livepack/livepack/shared/campaign"
	"github.com/livepack/livepack/shared/emulator"
	"github.com/livepack/livepack/shared/liveapi"
	"github.com/livepack/livepack/shared/policy"
	"github.com/livepack/livepack/shared/quota"
)

// linkDelay is the one-way delay BenchmarkDocumentLatency puts between livepack and the API:
// a function in one region calling the Live API of another.
const linkDelay = 50 * time.Millisecond

// viaProxy points e's engine at the emulator through a loopback proxy that holds every byte
// for delay each way, keeping every other option (the limiter included).
func viaProxy(tb testing.TB, e *env, delay time.Duration, co liveapi.Options) {
	tb.Helper()
	u, err := url.Parse(e.url)
	if err != nil {
		tb.Fatal(err)
	}
	p, err := campaign.NewProxy(u.Host, campaign.WithDelay(delay))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(p.Close)
	cred, err := credentials.NewCredential(&credentials.Config{Type: ptr("access_key"),
		AccessKeyId: ptr(emulator.AccessKeyID), AccessKeySecret: ptr(emulator.AccessKeySecret)})
	if err != nil {
		tb.Fatal(err)
	}
	co.Endpoint, co.Credential = "http://"+p.Addr(), cred
	api, err := liveapi.New(co)
	if err != nil {
		tb.Fatal(err)
	}
	e.api, e.opts.API = api, api
}

// minCalls is the fewest calls that apply a document of new configs: per domain its detail,
// its configs and its online streams (the notice's), and one Add per policy.
func (c contest) minCalls() int { return 3*c.domains + c.policies }

// BenchmarkDocumentLatency: one direct document of 100 new policies over 10 domains, applied
// through a loopback proxy adding 50 ms each way (every call a 100 ms round trip) under a
// generous quota: the wall time of the document, and its calls against the minimum. A
// document applied one call after another would take its calls × 100 ms.
func BenchmarkDocumentLatency(b *testing.B) {
	c := contest{domains: 10, policies: 100, rate: 1 << 20, window: time.Minute}
	d, err := policy.Parse(c.document())
	if err != nil {
		b.Fatal(err)
	}
	var wall time.Duration
	calls := 0
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		e := newEnv(b, nil, func(o *emulator.Options, _ *liveapi.Options) { *o = c.emulatorOptions() })
		viaProxy(b, e, linkDelay, liveapi.Options{Limiter: quota.NewLocal(c.rate)})
		opts := e.opts
		opts.Sinks = nil
		eng := apply.New(opts)
		b.StartTimer()
		start := time.Now()
		res, err := eng.Apply(context.Background(), "direct", fmt.Sprint("latency-", i), policy.Hash(d), d.Policies)
		wall += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res.Results {
			if r.Outcome != apply.Created {
				b.Fatalf("%s/%s: %s %s", r.DomainName, r.AppName, r.Outcome, r.Reason)
			}
		}
		n := len(e.emu.Calls())
		if n != c.minCalls() {
			b.Fatalf("%d calls, the minimum is %d", n, c.minCalls())
		}
		calls += n
	}
	b.ReportMetric(float64(wall.Milliseconds())/float64(b.N), "ms/doc")
	b.ReportMetric(float64(calls)/float64(b.N), "calls/doc")
	b.ReportMetric(float64(c.minCalls()), "min-calls")
}
