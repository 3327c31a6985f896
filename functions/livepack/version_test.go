package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestVersion: the binary names its module and the commit it was built from.
func TestVersion(t *testing.T) {
	out, err := exec.Command(bootstrap, "version").Output()
	if err != nil {
		t.Fatalf("livepack version: %v", err)
	}
	line := string(out)
	if !strings.HasPrefix(line, "livepack github.com/livepack/livepack ") || !strings.Contains(line, " revision ") {
		t.Fatalf("livepack version: %q", line)
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not a git checkout, no revision to compare: %v", err)
	}
	if st, err := os.Stat("../../.git"); err == nil && !st.IsDir() && strings.Contains(line, "revision unknown") {
		t.Skip("a git worktree (.git is a file): the go command stamps no VCS information there")
	}
	if rev := strings.TrimSpace(string(head)); !strings.Contains(line, " revision "+rev) {
		t.Fatalf("livepack version %q does not name HEAD %s", line, rev)
	}
}
