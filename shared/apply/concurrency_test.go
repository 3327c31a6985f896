package apply_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livepack/livepack/shared/apply"
	"github.com/livepack/livepack/shared/emulator"
	"github.com/livepack/livepack/shared/liveapi"
	"github.com/livepack/livepack/shared/quota"
)

// domainsSeed is a seed of n play domains d000…, and the ingest domain push.example.com.
func domainsSeed(n int) emulator.Seed {
	seed := emulator.DefaultSeed()
	seed.Domains = []emulator.Domain{{DomainName: "push.example.com", LiveDomainType: "liveEdge", DomainStatus: "online",
		Region: "cn-shanghai", Scope: "domestic"}}
	seed.OnlineStreams = nil
	for d := range n {
		seed.Domains = append(seed.Domains, emulator.Domain{DomainName: fmt.Sprintf("d%03d.example.com", d),
			LiveDomainType: "liveVideo", DomainStatus: "online", Region: "cn-shanghai", Scope: "domestic"})
	}
	return seed
}

// domainAPI wraps the Live API per domain: a domain's calls can be slowed down (so domains
// finish in another order than the document's) or its writes refused, and it counts the most
// domains that had a call in flight at once.
type domainAPI struct {
	liveapi.API
	slow     map[string]time.Duration
	failAdds map[string]error

	mu       sync.Mutex
	inFlight map[string]int
	most     int
}

func (a *domainAPI) enter(domain string) func() {
	a.mu.Lock()
	a.inFlight[domain]++
	a.most = max(a.most, len(a.inFlight))
	a.mu.Unlock()
	time.Sleep(a.slow[domain])
	return func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.inFlight[domain]--; a.inFlight[domain] == 0 {
			delete(a.inFlight, domain)
		}
	}
}

func (a *domainAPI) AddPackageConfig(ctx context.Context, c liveapi.PackageConfig) error {
	defer a.enter(c.DomainName)()
	if err := a.failAdds[c.DomainName]; err != nil {
		return err
	}
	return a.API.AddPackageConfig(ctx, c)
}

func (a *domainAPI) DescribePackageConfigs(ctx context.Context, domain string) ([]liveapi.PackageConfig, error) {
	defer a.enter(domain)()
	return a.API.DescribePackageConfigs(ctx, domain)
}

func (a *domainAPI) DescribeDomain(ctx context.Context, domain string) (liveapi.Domain, error) {
	defer a.enter(domain)()
	return a.API.DescribeDomain(ctx, domain)
}

func (a *domainAPI) OnlineStreams(ctx context.Context, domain string) ([]liveapi.Stream, error) {
	defer a.enter(domain)()
	return a.API.OnlineStreams(ctx, domain)
}

// TestDomainsConcurrently: the domains of one document are applied alongside each other, at
// most apply.DomainWorkers at once; results come back in document order and notices in the
// order of the writes, whichever domain finishes first; a domain that fails (not found, an
// ingest domain, writes refused for now) leaves the others applied.
func TestDomainsConcurrently(t *testing.T) {
	unavailable := &liveapi.Error{Action: "AddLivePackageConfig", Code: "ServiceUnavailable", Status: 503,
		Message: "The request has failed due to a temporary failure of the server."}
	for _, tc := range []struct {
		name string
		// domains lists each policy's domain, in document order (app<i> on the i-th).
		domains  []string
		slow     map[string]time.Duration
		failAdds map[string]error
		// want maps a domain to its policies' outcome (Created when absent).
		want      map[string]string
		retry     bool
		busiestAt int // the most domains in flight must reach at least this
	}{
		{name: "interleaved, the first domain slowest",
			domains: []string{"d000", "d001", "d002", "d000", "d001", "d002", "d000", "d001", "d002"},
			slow:    map[string]time.Duration{"d000": 30 * time.Millisecond, "d001": 10 * time.Millisecond}, busiestAt: 2},
		{name: "an unknown domain fails alone",
			domains: []string{"d000", "nowhere", "d001", "nowhere", "d000"},
			want:    map[string]string{"nowhere": apply.Failed}},
		{name: "an ingest domain is skipped alone",
			domains: []string{"push", "d000", "push", "d001"},
			want:    map[string]string{"push": apply.Skipped}},
		{name: "a domain whose writes fail for now leaves the others applied",
			domains: []string{"d000", "d001", "d002", "d001", "d000"},
			// The failing domain fails first: the others still have writes to make.
			slow:     map[string]time.Duration{"d000": 20 * time.Millisecond, "d002": 20 * time.Millisecond},
			failAdds: map[string]error{"d001.example.com": unavailable},
			want:     map[string]string{"d001": apply.Failed}, retry: true},
		{name: "more domains than workers",
			domains:   []string{"d000", "d001", "d002", "d003", "d004", "d005", "d006", "d007", "d008", "d009", "d010", "d011", "d012", "d013", "d014", "d015", "d016", "d017", "d018", "d019"},
			slow:      map[string]time.Duration{"*": 20 * time.Millisecond},
			busiestAt: apply.DomainWorkers},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil, func(o *emulator.Options, _ *liveapi.Options) { o.Seed = domainsSeed(20) })
			full := func(d string) string { return d + ".example.com" }
			slow := map[string]time.Duration{}
			for d, v := range tc.slow {
				slow[full(d)] = v
			}
			var ps []string
			for i, d := range tc.domains {
				if v, ok := tc.slow["*"]; ok {
					slow[full(d)] = v
				}
				ps = append(ps, fmt.Sprintf(`{"DomainName":%q,"AppName":"app%02d","StreamName":"*","Protocol":"HLS_CMAF"}`, full(d), i))
			}
			api := &domainAPI{API: e.api, slow: slow, failAdds: tc.failAdds, inFlight: map[string]int{}}
			e.opts.API = api
			policies, hash := parse(t, "["+strings.Join(ps, ",")+"]")
			res, err := e.engine().Apply(ctxT(t, 30*time.Second), "direct", "k-"+tc.name, hash, policies)
			if tc.retry != errors.Is(err, apply.ErrRetryLater) || (!tc.retry && err != nil) {
				t.Fatalf("error %v, want retry later: %v", err, tc.retry)
			}
			if len(res.Results) != len(tc.domains) {
				t.Fatalf("%d results for %d policies", len(res.Results), len(tc.domains))
			}
			var created []string
			for i, r := range res.Results {
				want := tc.want[tc.domains[i]]
				if want == "" {
					want = apply.Created
				}
				if r.DomainName != full(tc.domains[i]) || r.AppName != fmt.Sprintf("app%02d", i) || r.Outcome != want {
					t.Errorf("result %d: %s/%s %s (%s), want %s/app%02d %s", i, r.DomainName, r.AppName, r.Outcome, r.Reason, full(tc.domains[i]), i, want)
				}
				if r.Outcome == apply.Created {
					created = append(created, r.DomainName+"/"+r.AppName+"/*")
				}
			}
			// Every policy here is a create: the order of the writes is the document's.
			var subjects []string
			for _, n := range res.Notices {
				var ev struct {
					Subject string `json:"subject"`
				}
				if err := json.Unmarshal(e.recv.bodies[n.ID], &ev); err != nil {
					t.Fatalf("notice %s: %v", n.ID, err)
				}
				subjects = append(subjects, ev.Subject)
			}
			if strings.Join(subjects, " ") != strings.Join(created, " ") {
				t.Errorf("notices\n%v\nwant, in document order,\n%v", subjects, created)
			}
			if api.most > apply.DomainWorkers || api.most < tc.busiestAt {
				t.Errorf("at most %d domains in flight at once, want %d to %d", api.most, tc.busiestAt, apply.DomainWorkers)
			}
		})
	}
}

// TestDomainsKeepTheQuota: domains racing each other still spend one budget, in the caller's
// lane: in no window does the emulator see more package-config calls than the lane may fill,
// and it throttles none.
func TestDomainsKeepTheQuota(t *testing.T) {
	const (
		rate    = 8
		window  = time.Second
		domains = 6
		perDom  = 2
	)
	for _, tc := range []struct {
		lane  quota.Lane
		limit int // package-config calls the lane may fill of a window
	}{
		{quota.Interactive, rate},
		{quota.Scheduled, rate / 2},
	} {
		t.Run(tc.lane.String(), func(t *testing.T) {
			e := newEnv(t, nil, func(o *emulator.Options, co *liveapi.Options) {
				o.Seed, o.Rate, o.Window = domainsSeed(domains), rate, window
				// A quarter of a window of slack between admitting a call and the emulator
				// counting it, so a loaded machine's scheduling cannot fail the test.
				co.Limiter = quota.NewLocal(rate, quota.WithWindow(window*5/4), quota.WithReserve(0.5))
			})
			var ps []string
			for i := range domains * perDom {
				ps = append(ps, fmt.Sprintf(`{"DomainName":"d%03d.example.com","AppName":"app%02d","StreamName":"*","Protocol":"HLS_CMAF"}`, i%domains, i))
			}
			policies, hash := parse(t, "["+strings.Join(ps, ",")+"]")
			ctx := quota.WithLane(ctxT(t, 60*time.Second), tc.lane)
			res, err := e.engine().Apply(ctx, "direct", "k", hash, policies)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res.Results {
				if r.Outcome != apply.Created {
					t.Fatalf("%s/%s: %s %s", r.DomainName, r.AppName, r.Outcome, r.Reason)
				}
			}
			var times []time.Time
			for _, c := range e.emu.Calls() {
				if strings.HasPrefix(c.Code, "Throttling") {
					t.Errorf("throttled: %s at %s", c.Action, c.Time.Format(time.StampMilli))
				}
				if strings.Contains(c.Action, "PackageConfig") {
					times = append(times, c.Time)
				}
			}
			if len(times) != domains*(perDom+1) {
				t.Fatalf("%d package-config calls, want %d", len(times), domains*(perDom+1))
			}
			most := 0
			for i, t0 := range times {
				n := 0
				for _, t1 := range times[i:] {
					if t1.Sub(t0) < window {
						n++
					}
				}
				most = max(most, n)
			}
			if most > tc.limit {
				t.Fatalf("%d package-config calls within one window, the lane may fill %d", most, tc.limit)
			}
			t.Logf("at most %d package-config calls in a window (limit %d)", most, tc.limit)
		})
	}
}
