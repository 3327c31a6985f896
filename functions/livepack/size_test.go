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

// cloudArtifact is one deployed bootstrap as `make build` builds it: its tags and architecture.
type cloudArtifact struct{ name, tags, arch string }

// cloudArtifacts are the two bootstraps the templates deploy: Lambda on arm64 without the
// Alibaba-only code, FC on amd64 without the AWS-only code.
var cloudArtifacts = []cloudArtifact{
	{"lambda", "lambda,lambda.norpc", "arm64"},
	{"fc", "fc", "amd64"},
}

// strippedSize builds pkg as `make build` does (CGO off, -trimpath, -s -w) with tags for
// linux/arch and returns its size in MB (10^6 bytes).
func strippedSize(tb testing.TB, pkg, tags, arch string) float64 {
	tb.Helper()
	out := filepath.Join(tb.TempDir(), filepath.Base(pkg)+"-"+arch)
	cmd := exec.Command("go", "build", "-tags", tags, "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
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

// TestBootstrapSize: each stripped cloud bootstrap stays under its budget, built with its own
// tags for the architecture its template deploys (Lambda arm64, FC amd64).
func TestBootstrapSize(t *testing.T) {
	for _, a := range cloudArtifacts {
		t.Run(a.name, func(t *testing.T) {
			t.Parallel()
			mb := strippedSize(t, ".", a.tags, a.arch)
			t.Logf("the stripped %s bootstrap (-tags %s, %s) is %.1f MB", a.name, a.tags, a.arch, mb)
			if mb >= maxBootstrapMB {
				t.Errorf("the stripped %s bootstrap is %.1f MB on %s; the budget is under %d MB", a.name, mb, a.arch, maxBootstrapMB)
			}
		})
	}
}

// BenchmarkBootstrapSize reports each stripped cloud bootstrap's size beside a hello-world
// aws-lambda-go function built the same way: the deployment package and the bytes a cold
// start maps.
func BenchmarkBootstrapSize(b *testing.B) {
	for _, a := range cloudArtifacts {
		b.Run(a.name+"-"+a.arch, func(b *testing.B) {
			var lp, hw float64
			for b.Loop() {
				lp, hw = strippedSize(b, ".", a.tags, a.arch), strippedSize(b, "../../shared/lambdarie/testdata/hellolambda", "lambda.norpc", a.arch)
			}
			b.ReportMetric(lp, "livepack-MB")
			b.ReportMetric(hw, "hello-MB")
			b.ReportMetric(lp/hw, "size-ratio")
		})
	}
}
