package host

import (
	"strings"
	"testing"

	"github.com/livepack/livepack/shared/artifact"
	"github.com/livepack/livepack/shared/config"
)

// TestRunRefusesRuntimeLeftOut: each cloud artifact carries its own runtime only; asked for the
// other, it stops at start with one line naming the runtime's variable and the build. The full
// build carries both.
func TestRunRefusesRuntimeLeftOut(t *testing.T) {
	for _, tc := range []struct {
		host    config.Host
		name    string
		carried bool
	}{
		{config.FC, "FC_RUNTIME_API", fcRuntime.start != nil},
		{config.Lambda, "AWS_LAMBDA_RUNTIME_API", lambdaRuntime.start != nil},
	} {
		want := !strings.Contains(artifact.Name, "-tags") || strings.Contains(artifact.Name, "-tags "+string(tc.host))
		if tc.carried != want {
			t.Fatalf("%s carries the %s runtime: %v, want %v", artifact.Name, tc.host, tc.carried, want)
		}
		if tc.carried {
			continue
		}
		var out strings.Builder
		if code := Run(tc.host, func(string) string { return "" }, &out); code != 2 {
			t.Fatalf("%s: exit %d, want 2", tc.host, code)
		}
		if lines := strings.Split(strings.TrimSpace(out.String()), "\n"); len(lines) != 1 ||
			!strings.HasPrefix(lines[0], tc.name+": "+artifact.Name+" leaves the ") || !strings.Contains(lines[0], "runtime out: deploy the") {
			t.Fatalf("%s: want one line naming %s and the build, got:\n%s", tc.host, tc.name, out.String())
		}
	}
}
