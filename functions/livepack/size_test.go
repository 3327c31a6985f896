package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// maxBootstrapMB is the stripped bootstrap's budget on each architecture: every megabyte is
// uploaded with each deployment and mapped on each cold start.
const maxBootstrapMB = 20

// strippedSize builds pkg as `make build` does (CGO off, -trimpath, -s -w, lambda.norpc) for
// linux/arch and returns its size in MB (10^6 bytes).
func strippedSize(tb testing.TB, pkg, arch string) float64 {
	tb.Helper()
	out := filepath.Join(tb.TempDir(), filepath.Base(pkg)+"-"+arch)
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if msg, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("build %s for %s: %v\n%s", pkg, arch, err, msg)
	}
	st, err := os.Stat(out)
	if err != nil {
		tb.Fatal(err)
	}
	return float64(st.Size()) / 1e6
}

// TestBootstrapSize: the stripped bootstrap stays under its budget on both architectures the
// templates deploy (Lambda arm64, FC amd64).
func TestBootstrapSize(t *testing.T) {
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			t.Parallel()
			if mb := strippedSize(t, ".", arch); mb >= maxBootstrapMB {
				t.Errorf("the stripped bootstrap is %.1f MB on %s; the budget is under %d MB", mb, arch, maxBootstrapMB)
			}
		})
	}
}

// BenchmarkBootstrapSize reports the stripped bootstrap's size on both architectures beside a
// hello-world aws-lambda-go function built the same way: the deployment package and the bytes
// a cold start maps.
func BenchmarkBootstrapSize(b *testing.B) {
	for _, arch := range []string{"amd64", "arm64"} {
		b.Run(arch, func(b *testing.B) {
			var lp, hw float64
			for b.Loop() {
				lp, hw = strippedSize(b, ".", arch), strippedSize(b, "../../shared/lambdarie/testdata/hellolambda", arch)
			}
			b.ReportMetric(lp, "livepack-MB")
			b.ReportMetric(hw, "hello-MB")
			b.ReportMetric(lp/hw, "size-ratio")
		})
	}
}
