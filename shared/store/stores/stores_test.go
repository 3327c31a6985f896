package stores

import (
	"context"
	"strings"
	"testing"

	"github.com/livepack/livepack/shared/artifact"
)

// TestBackendsPerArtifact: the Lambda artifact opens DynamoDB but not Tablestore, the FC
// artifact the other way round, the full build both; every build opens memory, file: and
// Redis. A backend left out is refused with an error naming the build. Run it with -tags lambda
// and -tags fc too.
func TestBackendsPerArtifact(t *testing.T) {
	dynamo, ots := true, true
	switch {
	case strings.Contains(artifact.Name, "-tags lambda"):
		ots = false
	case strings.Contains(artifact.Name, "-tags fc"):
		dynamo = false
	}
	for _, tc := range []struct {
		spec, form string
		carried    bool
	}{
		{"memory", "memory", true},
		{"file:/x", "file:PATH", true},
		{"redis://127.0.0.1:1/0", "redis://…", true},
		{"dynamodb://t", "dynamodb://TABLE", dynamo},
		{"tablestore://i/t", "tablestore://INSTANCE/TABLE", ots},
	} {
		if Carries(tc.spec) != tc.carried || strings.Contains(Specs(), tc.form) != tc.carried {
			t.Errorf("%s: carries %s: %v, lists %s: %q; want %v", artifact.Name, tc.spec, Carries(tc.spec), tc.form, Specs(), tc.carried)
		}
		if tc.carried {
			continue
		}
		_, err := Open(context.Background(), tc.spec, "ns", nil)
		if err == nil || !strings.Contains(err.Error(), artifact.Name+" leaves the") {
			t.Errorf("%s: open %s: %v, want a refusal naming the build", artifact.Name, tc.spec, err)
		}
	}
}
