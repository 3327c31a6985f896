package main

import (
	"bufio"
	"bytes"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// TestCloudStartSkipsCLIOnlyInit: on a cloud host the packages only the CLI runs (the emulator,
// the command line) do no work at start, measured with GODEBUG=inittrace=1. The bootstrap is
// made to stop right after initialization by a bad configuration value.
func TestCloudStartSkipsCLIOnlyInit(t *testing.T) {
	cmd := exec.Command(bootstrap)
	cmd.Env = []string{"GODEBUG=inittrace=1", "AWS_LAMBDA_RUNTIME_API=127.0.0.1:1", "LIVEPACK_RATE=0", "HOME=" + t.TempDir()}
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
		if pkg != "github.com/livepack/livepack/shared/emulator" && pkg != "github.com/livepack/livepack/shared/cli" {
			continue
		}
		seen++
		if b, err := strconv.Atoi(f[7]); err != nil || b > 1024 {
			t.Errorf("%s allocates %s bytes at start on a cloud host, want at most 1 KiB: %s", pkg, f[7], sc.Text())
		}
	}
	if !strings.Contains(string(out), "init ") {
		t.Fatalf("no inittrace output: %s", out)
	}
	t.Logf("%d CLI-only packages traced", seen)
}
