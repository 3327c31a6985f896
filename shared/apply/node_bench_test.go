package apply_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livepack/livepack/shared/apply"
	"github.com/livepack/livepack/shared/emulator"
	"github.com/livepack/livepack/shared/liveapi"
	"github.com/livepack/livepack/shared/policy"
	"github.com/livepack/livepack/shared/quota"
)

// nodeDir holds the naive script and its npm packages (`make deps` installs them).
const nodeDir = "../emulator/testdata/node"

// nodeOrSkip returns the node binary, or skips when node or the npm packages are missing
// (fails instead when LIVEPACK_REQUIRE_NODE=1).
func nodeOrSkip(b *testing.B) string {
	b.Helper()
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(nodeDir, "node_modules", "@alicloud", "openapi-client"))
	}
	if err != nil {
		if os.Getenv("LIVEPACK_REQUIRE_NODE") == "1" {
			b.Fatalf("node or the npm packages are missing (make deps installs them): %v", err)
		}
		b.Skipf("node or %s/node_modules missing: %v", nodeDir, err)
	}
	return node
}

// contest is one workload run twice from the same starting state, each side against its own
// emulator with the same quota: livepack's engine applying the policies as one direct document
// (as `invoke` does) through the liveapi client, and the naive per-policy Node script.
type contest struct {
	domains, policies int
	rate              int           // the package-config quota, calls per window
	window            time.Duration // the quota's window (shortened: time compressed)
	pause             time.Duration // the Node script's pause after a throttle
}

// side is what one side did: wall time, every call the emulator answered, the throttled ones,
// and the configs present afterwards.
type side struct {
	wall                      time.Duration
	calls, throttles, applied int
}

func (c contest) emulatorOptions() emulator.Options {
	seed := emulator.DefaultSeed()
	seed.Domains = nil
	for d := range c.domains {
		seed.Domains = append(seed.Domains, emulator.Domain{DomainName: fmt.Sprintf("d%03d.example.com", d),
			LiveDomainType: "liveVideo", DomainStatus: "online", Region: "cn-shanghai", Scope: "domestic"})
	}
	return emulator.Options{Seed: seed, Rate: c.rate, Window: c.window}
}

func (c contest) document() []byte {
	var ps []string
	for i := range c.policies {
		ps = append(ps, fmt.Sprintf(`{"DomainName":"d%03d.example.com","AppName":"app%04d","StreamName":"*","Protocol":"HLS_CMAF"}`, i%c.domains, i))
	}
	return []byte("[" + strings.Join(ps, ",") + "]")
}

func tally(emu *emulator.Server, wall time.Duration) side {
	s := side{wall: wall, applied: len(emu.State().PackageConfigs)}
	for _, call := range emu.Calls() {
		s.calls++
		if strings.HasPrefix(call.Code, "Throttling") {
			s.throttles++
		}
	}
	return s
}

func (c contest) livepack(b *testing.B, run int) side {
	b.Helper()
	d, err := policy.Parse(c.document())
	if err != nil {
		b.Fatal(err)
	}
	e := newEnv(b, nil, func(o *emulator.Options, co *liveapi.Options) {
		*o = c.emulatorOptions()
		// The limiter's window exceeds the API's by the same sixtieth as in production
		// (quota.DefaultWindow, 61 s for the API's minute): the slack for the time between
		// admitting a call and the API receiving it.
		co.Limiter = quota.NewLocal(c.rate, quota.WithWindow(c.window*61/60))
	})
	opts := e.opts
	opts.Sinks = nil // invoke without LIVEPACK_NOTIFY; the script notifies nobody either
	start := time.Now()
	res, err := apply.New(opts).Apply(context.Background(), "direct", fmt.Sprint("bench-", run), policy.Hash(d), d.Policies)
	wall := time.Since(start)
	if err != nil {
		b.Fatal(err)
	}
	for _, r := range res.Results {
		if r.Outcome != apply.Created {
			b.Fatalf("%s/%s: %s %s", r.DomainName, r.AppName, r.Outcome, r.Reason)
		}
	}
	return tally(e.emu, wall)
}

func (c contest) node(b *testing.B, node string) side {
	b.Helper()
	emu := emulator.New(c.emulatorOptions())
	srv := httptest.NewServer(emu)
	defer srv.Close()
	doc := filepath.Join(b.TempDir(), "policies.json")
	if err := os.WriteFile(doc, c.document(), 0o600); err != nil {
		b.Fatal(err)
	}
	out, err := exec.Command(node, filepath.Join(nodeDir, "naive.js"), srv.URL, doc, fmt.Sprint(c.pause.Milliseconds())).Output()
	if err != nil {
		b.Fatalf("naive.js: %v\n%s", err, out)
	}
	// The script times its own calls, so Node's start and module loading are not counted.
	var r struct {
		Applied int     `json:"applied"`
		MS      float64 `json:"ms"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		b.Fatalf("naive.js output %q: %v", out, err)
	}
	if r.Applied != c.policies {
		b.Fatalf("naive.js applied %d of %d", r.Applied, c.policies)
	}
	return tally(emu, time.Duration(r.MS*float64(time.Millisecond)))
}

// both runs the contest b.N times and returns the sums of each side.
func (c contest) both(b *testing.B) (lp, nd side) {
	node := nodeOrSkip(b)
	for i := 0; b.Loop(); i++ {
		l, n := c.livepack(b, i), c.node(b, node)
		if l.applied != c.policies || n.applied != c.policies {
			b.Fatalf("configs present: livepack %d, node %d, want %d", l.applied, n.applied, c.policies)
		}
		lp.wall, lp.calls, lp.throttles = lp.wall+l.wall, lp.calls+l.calls, lp.throttles+l.throttles
		nd.wall, nd.calls, nd.throttles = nd.wall+n.wall, nd.calls+n.calls, nd.throttles+n.throttles
		lp.applied, nd.applied = lp.applied+l.applied, nd.applied+n.applied
	}
	return lp, nd
}

// BenchmarkDocumentVsNode: 100 policies over 10 domains in one document under a generous
// quota, livepack's wall time and calls ÷ those of a naive per-policy Describe-then-write
// script on the official Node SDK, against the same emulator.
func BenchmarkDocumentVsNode(b *testing.B) {
	c := contest{domains: 10, policies: 100, rate: 1 << 20, window: time.Minute, pause: 100 * time.Millisecond}
	lp, nd := c.both(b)
	b.ReportMetric(lp.wall.Seconds()/nd.wall.Seconds(), "wall-ratio")
	b.ReportMetric(float64(lp.calls)/float64(nd.calls), "calls-ratio")
	b.ReportMetric(float64(lp.wall.Milliseconds())/float64(b.N), "livepack-ms")
	b.ReportMetric(float64(nd.wall.Milliseconds())/float64(b.N), "node-ms")
	b.ReportMetric(float64(lp.calls)/float64(b.N), "livepack-calls")
	b.ReportMetric(float64(nd.calls)/float64(b.N), "node-calls")
}

// BenchmarkSustainedVsNode: 600 policies over 20 domains under an enforced quota of 100
// package-config calls per one-second window (the API's 3,000 policies over 100 domains at
// 3,000/min, scaled down and time-compressed), policies applied per window, livepack ÷ the
// naive Node script retrying each throttled call after a fixed pause; throttles of each.
func BenchmarkSustainedVsNode(b *testing.B) {
	c := contest{domains: 20, policies: 600, rate: 100, window: time.Second, pause: 100 * time.Millisecond}
	lp, nd := c.both(b)
	perWindow := func(s side) float64 { return float64(s.applied) / (s.wall.Seconds() / c.window.Seconds()) }
	b.ReportMetric(perWindow(lp), "livepack-policies/window")
	b.ReportMetric(perWindow(nd), "node-policies/window")
	b.ReportMetric(perWindow(lp)/perWindow(nd), "throughput-ratio")
	b.ReportMetric(float64(lp.throttles)/float64(b.N), "livepack-throttles")
	b.ReportMetric(float64(nd.throttles)/float64(b.N), "node-throttles")
}
