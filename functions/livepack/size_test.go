package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// BenchmarkBootstrapSize reports the stripped cloud binary's size as `make build` produces it
// (CGO off, -trimpath, -s -w, lambda.norpc) for both architectures the templates deploy, beside
// a hello-world aws-lambda-go function built the same way: the deployment package and the
// bytes a cold start maps.
func BenchmarkBootstrapSize(b *testing.B) {
	dir := b.TempDir()
	size := func(pkg, arch string) float64 {
		out := filepath.Join(dir, filepath.Base(pkg)+"-"+arch)
		cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
		if msg, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("build %s for %s: %v\n%s", pkg, arch, err, msg)
		}
		st, err := os.Stat(out)
		if err != nil {
			b.Fatal(err)
		}
		return float64(st.Size()) / 1e6
	}
	for _, arch := range []string{"amd64", "arm64"} {
		b.Run(arch, func(b *testing.B) {
			var lp, hw float64
			for b.Loop() {
				lp, hw = size(".", arch), size("../../shared/lambdarie/testdata/hellolambda", arch)
			}
			b.ReportMetric(lp, "livepack-MB")
			b.ReportMetric(hw, "hello-MB")
			b.ReportMetric(lp/hw, "size-ratio")
		})
	}
}
