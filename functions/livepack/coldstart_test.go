package main

import (
	"bufio"
	"bytes"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// cliOnly: the packages only the command line and `serve` use: livepack's own (the emulator, the
// commands), which must stay cheap at start even where linked, and the Prometheus exposition's.
// A cloud artifact links none of them.
func cliOnly(pkg string) (own, linked bool) {
	own = pkg == "github.com/livepack/livepack/shared/emulator" || pkg == "github.com/livepack/livepack/shared/cli"
	return own, own || strings.HasPrefix(pkg, "github.com/prometheus/")
}

// TestCloudStartSkipsCLIOnlyInit: on a cloud host the packages only the CLI runs (the emulator,
// the command line, client_golang for `serve`) do no work at start, measured with
// GODEBUG=inittrace=1: in the full build livepack's own allocate at most 1 KiB at init, and the
// cloud artifacts link none of them. The bootstrap is made to stop right after initialization by a bad configuration value.
func TestCloudStartSkipsCLIOnlyInit(t *testing.T) {
	for _, tc := range []struct {
		name, bin, runtime string
		linked             bool
	}{
		{"full build", bootstrap, "AWS_LAMBDA_RUNTIME_API", true},
		{"Lambda artifact", lambdaBootstrap, "AWS_LAMBDA_RUNTIME_API", false},
		{"FC artifact", fcBootstrap, "FC_RUNTIME_API", false},
	} {
		cmd := exec.Command(tc.bin)
		cmd.Env = []string{"GODEBUG=inittrace=1", tc.runtime + "=127.0.0.1:1", "LIVEPACK_RATE=0", "HOME=" + t.TempDir()}
		out, _ := cmd.CombinedOutput()
		seen := 0
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			// init PKG @T ms, C ms clock, B bytes, A allocs
			f := strings.Fields(sc.Text())
			if len(f) < 10 || f[0] != "init" {
				continue
			}
			pkg := f[1]
			own, linked := cliOnly(pkg)
			if !linked {
				continue
			}
			seen++
			if b, err := strconv.Atoi(f[7]); own && (err != nil || b > 1024) {
				t.Errorf("%s: %s allocates %s bytes at start on a cloud host, want at most 1 KiB: %s", tc.name, pkg, f[7], sc.Text())
			}
		}
		if !strings.Contains(string(out), "init ") {
			t.Fatalf("%s: no inittrace output: %s", tc.name, out)
		}
		if tc.linked != (seen > 0) {
			t.Errorf("%s: %d CLI-only packages traced, want them linked: %v", tc.name, seen, tc.linked)
		}
		t.Logf("%s: %d CLI-only packages traced", tc.name, seen)
	}
}

// stopAtMain are the runs that stop as soon as main runs: hello-world without the runtime
// API's variable (aws-lambda-go exits in main) and the Lambda artifact refusing its
// configuration.
var stopAtMain = []struct {
	name string
	bin  func(*testing.B) string
	env  []string
}{
	{"hello", helloLambda, nil},
	// The Lambda artifact as deployed, stopped in main by a bad value once it has read its
	// configuration: the cloud start's cost before any work, not the command line's.
	{"livepack", func(*testing.B) string { return lambdaBootstrap }, []string{"AWS_LAMBDA_RUNTIME_API=127.0.0.1:1", "LIVEPACK_RATE=0"}},
}

// BenchmarkStartToMain measures process start to exit of the stopAtMain runs. The difference is what the binary pays before any of livepack's own
// code: the runtime's start over a larger binary and every linked package's initialization.
func BenchmarkStartToMain(b *testing.B) {
	for _, f := range stopAtMain {
		b.Run(f.name, func(b *testing.B) {
			bin, home := f.bin(b), b.TempDir()
			for b.Loop() {
				cmd := exec.Command(bin)
				cmd.Env = append([]string{"HOME=" + home}, f.env...)
				out, _ := cmd.CombinedOutput()
				if f.name == "livepack" && !strings.Contains(string(out), "LIVEPACK_RATE: want") {
					b.Fatalf("the Lambda artifact did not stop at its configuration: %s", out)
				}
			}
		})
	}
}

// BenchmarkPackageInit reports package initialization under GODEBUG=inittrace=1 (clock time,
// its page faults included): the total, livepack's own packages, and the packages that take the
// most, for livepack and hello-world.
func BenchmarkPackageInit(b *testing.B) {
	for _, f := range stopAtMain {
		b.Run(f.name, func(b *testing.B) {
			bin, home := f.bin(b), b.TempDir()
			per := map[string]float64{}
			runs := 0
			for b.Loop() {
				cmd := exec.Command(bin)
				cmd.Env = append([]string{"GODEBUG=inittrace=1", "HOME=" + home}, f.env...)
				out, _ := cmd.CombinedOutput()
				for _, line := range strings.Split(string(out), "\n") {
					// init PKG @T ms, C ms clock, B bytes, A allocs
					if fs := strings.Fields(line); len(fs) >= 6 && fs[0] == "init" {
						if ms, err := strconv.ParseFloat(fs[4], 64); err == nil {
							per[fs[1]] += ms
						}
					}
				}
				runs++
			}
			total, own := 0.0, 0.0
			pkgs := make([]string, 0, len(per))
			for p, ms := range per {
				total += ms
				pkgs = append(pkgs, p)
				if strings.HasPrefix(p, "github.com/livepack/livepack/") {
					own += ms
				}
			}
			if total == 0 {
				b.Fatal("no inittrace output")
			}
			sort.Slice(pkgs, func(i, j int) bool { return per[pkgs[i]] > per[pkgs[j]] })
			b.ReportMetric(total/float64(runs), "init-ms")
			b.ReportMetric(own/float64(runs), "livepack-pkgs-ms")
			for _, p := range pkgs[:min(3, len(pkgs))] {
				b.ReportMetric(per[p]/float64(runs), "ms:"+p)
			}
		})
	}
}
