package emulator

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestNodeSDKConformance runs the official Node SDK core against the emulator (see
// testdata/node/conformance.js). `make test` installs its npm packages and requires it.
func TestNodeSDKConformance(t *testing.T) {
	required := os.Getenv("LIVEPACK_REQUIRE_NODE") == "1"
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat("testdata/node/node_modules/@alicloud/openapi-client")
	}
	if err != nil {
		if required {
			t.Fatalf("node or the npm packages are missing (make deps installs them): %v", err)
		}
		t.Skipf("node or testdata/node/node_modules missing: %v", err)
	}
	_, url := start(t, Options{})
	out, err := exec.Command(node, "testdata/node/conformance.js", url).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("conformance: %v\n%s", err, out)
	}
}
