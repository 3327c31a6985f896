package apply_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aliyun/credentials-go/credentials"

	"github.com/livepack/livepack/shared/apply"
	"github.com/livepack/livepack/shared/emulator"
	"github.com/livepack/livepack/shared/liveapi"
	"github.com/livepack/livepack/shared/notify"
	"github.com/livepack/livepack/shared/quota"
	"github.com/livepack/livepack/shared/store/memstore"
)

// The scale benchmark's account: scaleDomains play domains with scaleApps configs each, in
// place as the default policies want except one per domain (10% of the configs), which
// differs.
const (
	scaleDomains = 1000
	scaleApps    = 10
	// scaleRate is the client's budget per one-second window: LIVEPACK_RATE's default of 250
	// calls per minute at sixty times the speed, so a pass takes seconds and the budget, not
	// livepack, should set its pace. The scheduled reconcile may fill scaleShare of it.
	scaleRate  = 250
	scaleShare = scaleRate * (1 - quota.DefaultReserve)
	childEnv   = "LIVEPACK_SCALE_CHILD"
)

func scaleDefaults() string {
	var ps []string
	for j := range scaleApps {
		ps = append(ps, fmt.Sprintf(`{"DomainName":"*","AppName":"app%d","StreamName":"*","Protocol":"HLS_CMAF"}`, j))
	}
	return "[" + strings.Join(ps, ",") + "]"
}

func scaleSeed(domains int) emulator.Seed {
	seed := emulator.Seed{}
	for i := range domains {
		d := fmt.Sprintf("d%04d.example.com", i)
		seed.Domains = append(seed.Domains, emulator.Domain{DomainName: d, LiveDomainType: "liveVideo", DomainStatus: "online", Region: "cn-shanghai", Scope: "domestic"})
		for j := range scaleApps {
			c := emulator.PackageConfig{DomainName: d, AppName: fmt.Sprintf("app%d", j), StreamName: "*", Protocol: "HLS_CMAF",
				SegmentNum: 3, SegmentDuration: 5, IgnoreTranscode: true}
			if j == i%scaleApps {
				c.SegmentNum = 4
			}
			seed.PackageConfigs = append(seed.PackageConfigs, c)
		}
	}
	return seed
}

// scaleRun is what the child reports.
type scaleRun struct {
	Summary apply.ReconcileSummary `json:"summary"`
	Package int                    `json:"package"`
	Listed  int                    `json:"listed"`
	Bytes   int                    `json:"bytes"`
	Wall    time.Duration          `json:"wall"`
	// Conns is the TCP connections the child opened to the emulator (counted by the server).
	Conns int `json:"-"`
}

// TestReconcileScaleChild is the child process of BenchmarkReconcileScale: one full reconcile
// pass, alone in its process so that the process's peak RSS is livepack's own.
func TestReconcileScaleChild(t *testing.T) {
	spec := os.Getenv(childEnv)
	if spec == "" {
		t.Skip("runs only as the child process of BenchmarkReconcileScale")
	}
	var mode, endpoint, sink string
	if _, err := fmt.Sscan(strings.ReplaceAll(spec, "|", " "), &mode, &endpoint, &sink); err != nil {
		t.Fatal(err)
	}
	cred, err := credentials.NewCredential(&credentials.Config{Type: ptr("access_key"),
		AccessKeyId: ptr(emulator.AccessKeyID), AccessKeySecret: ptr(emulator.AccessKeySecret)})
	if err != nil {
		t.Fatal(err)
	}
	api, err := liveapi.New(liveapi.Options{Endpoint: endpoint, Credential: cred, Limiter: quota.NewLocal(scaleRate, quota.WithWindow(time.Second))})
	if err != nil {
		t.Fatal(err)
	}
	sinks, err := notify.ParseSinks(sink, notifySecret)
	if err != nil {
		t.Fatal(err)
	}
	defaults, _ := parse(t, scaleDefaults())
	eng := apply.New(apply.Options{API: api, Store: memstore.New(nil), Sinks: sinks, Defaults: defaults})
	if mode == "idle" {
		fmt.Printf("SCALE {}\n") // the anchor: the same process, without the pass
		return
	}
	start := time.Now()
	res, err := eng.Reconcile(context.Background(), "schedule", "scale", mode, nil)
	if err != nil {
		t.Fatal(err)
	}
	wall := time.Since(start)
	doc, _ := json.Marshal(res)
	out, _ := json.Marshal(scaleRun{Summary: *res.Reconcile, Listed: len(res.Results), Bytes: len(doc), Wall: wall})
	fmt.Printf("SCALE %s\n", out)
}

// BenchmarkReconcileScale runs one full pass over 1,000 domains × 10 configs with 10% drift,
// in report and in enforce mode, each in a child process (this test binary, running
// TestReconcileScaleChild) against the emulator served from this process. It reports the
// child's peak RSS (getrusage's ru_maxrss, which covers the whole process: runtime, SDK,
// buffers), the calls made against the minimum a pass needs, wall time against the quota
// bound, and throttles.
//
// The idle case is the anchor: the same child building the same engine without running a pass;
// report at a quarter of the domains shows that peak RSS does not follow the account's size.
func BenchmarkReconcileScale(b *testing.B) {
	for _, tc := range []struct {
		mode    string
		domains int
	}{{"idle", scaleDomains}, {apply.Report, scaleDomains / 4}, {apply.Report, scaleDomains}, {apply.Enforce, scaleDomains}} {
		mode := tc.mode
		b.Run(fmt.Sprintf("%s-%d", mode, tc.domains), func(b *testing.B) {
			var rss, ratio, wallRatio, throttles, bytes, conns float64
			n := 0
			for b.Loop() {
				r, peak := scaleOnce(b, mode, tc.domains)
				if mode == "idle" {
					rss += peak
					n++
					continue
				}
				sum := r.Summary
				// Minimum: the listing pages, one config page per domain, and per changed
				// domain its write, online-stream listing and domain detail (the notice).
				minimum := (tc.domains+liveapi.DomainPageSize-1)/liveapi.DomainPageSize + tc.domains
				if mode == apply.Enforce {
					minimum += 3 * sum.Drift
				}
				if !sum.Complete || sum.PassChecked != tc.domains || sum.Drift != tc.domains || r.Listed != min(tc.domains, apply.ListCap) {
					b.Fatalf("%s: %+v, %d listed", mode, sum, r.Listed)
				}
				// Each window admits the reconcile's share of the package-config budget at once;
				// every further share waits a window (the other actions' budgets are larger).
				bound := float64((r.Package-1)/int(scaleShare)) * time.Second.Seconds()
				rss += peak
				ratio += float64(sum.Calls) / float64(minimum)
				wallRatio += r.Wall.Seconds() / bound
				throttles += float64(sum.Throttles)
				bytes += float64(r.Bytes)
				conns += float64(r.Conns)
				n++
			}
			b.ReportMetric(rss/float64(n), "peak-RSS-MB")
			if mode == "idle" {
				return
			}
			b.ReportMetric(ratio/float64(n), "calls/minimum")
			b.ReportMetric(wallRatio/float64(n), "wall/quota-bound")
			b.ReportMetric(throttles/float64(n), "throttles")
			b.ReportMetric(bytes/float64(n), "result-bytes")
			b.ReportMetric(conns/float64(n), "tcp-connections")
		})
	}
}

// scaleOnce serves a fresh emulator and notice receiver, runs the child and returns its report
// and its peak RSS in MB.
func scaleOnce(b *testing.B, mode string, domains int) (scaleRun, float64) {
	b.StopTimer()
	defer b.StartTimer()
	emu := emulator.New(emulator.Options{Seed: scaleSeed(domains), Rate: 1 << 30})
	srv := httptest.NewUnstartedServer(emu)
	var conns atomic.Int64
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	var notices atomic.Int64
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		notices.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestReconcileScaleChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+mode+"|"+srv.URL+"|"+recv.URL+"/notices")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	b.StartTimer()
	err := cmd.Run()
	b.StopTimer()
	if err != nil {
		b.Fatalf("child: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	var r scaleRun
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	found := false
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), "SCALE "); ok {
			found = json.Unmarshal([]byte(line), &r) == nil
		}
	}
	if !found {
		b.Fatalf("child printed no result:\n%s%s", stdout.String(), stderr.String())
	}
	for _, c := range emu.Calls() {
		if g, _ := quota.Budget(c.Action, scaleRate); g == "package" {
			r.Package++
		}
	}
	if served := len(emu.Calls()); int64(served) != r.Summary.Calls {
		b.Fatalf("the emulator served %d calls, the result counts %d", served, r.Summary.Calls)
	}
	if mode == apply.Enforce && notices.Load() != int64(r.Summary.Drift) {
		b.Fatalf("%d notices for %d changes", notices.Load(), r.Summary.Drift)
	}
	r.Conns = int(conns.Load())
	ru, _ := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return r, float64(ru.Maxrss) / 1024 // ru_maxrss is in KiB on Linux
}
