package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/livepack/livepack/shared/apply"
)

// TestProgressBar: the bar draws the pass, its count, the pace and the estimated end, and ends
// its line; stderr that is not a terminal gets no bar at all.
func TestProgressBar(t *testing.T) {
	var buf bytes.Buffer
	b := &bar{w: &buf}
	eta := time.Date(2026, 11, 24, 8, 30, 0, 0, time.Local)
	b.update(apply.Progress{Pass: 3, Checked: 1, PassChecked: 41, Domains: 120, Rate: 90, ETA: eta})
	b.update(apply.Progress{Pass: 3, Checked: 2, PassChecked: 42, Domains: 120, Rate: 95, ETA: eta, Done: true})
	b.done()
	out := buf.String()
	for _, want := range []string{"reconcile pass 3", "95 domains/min", "done ~08:30", "42/120"} {
		if !strings.Contains(out, want) {
			t.Fatalf("bar lacks %q: %q", want, out)
		}
	}
	if !strings.HasSuffix(out, "\n") {
		t.Fatalf("bar does not end its line: %q", out)
	}

	var stderr bytes.Buffer
	ctx := context.Background()
	got, done := withProgressBar(ctx, IO{Stderr: &stderr})
	done()
	if got != ctx || stderr.Len() != 0 {
		t.Fatalf("a bar on a non-terminal stderr: %q", stderr.String())
	}
}
