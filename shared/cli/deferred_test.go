package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livepack/livepack/shared/emulator"
)

// TestInvokeDeferredExitsZero: `livepack invoke` of a domain-created event whose domain the
// API does not show yet prints the outcome deferred and exits 0, as the event succeeded.
func TestInvokeDeferredExitsZero(t *testing.T) {
	seed := emulator.DefaultSeed()
	seed.Arriving = []emulator.NewDomain{{DomainName: "late.example.com", HiddenFor: "1h"}}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	u, err := emulator.Serve(ctx, "127.0.0.1:0", emulator.Options{Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	event := filepath.Join(t.TempDir(), "event.json")
	body := `{"specversion":"1.0","id":"late-1","source":"livepack.console","type":"livepack.domain.created","time":"` +
		time.Now().UTC().Format(time.RFC3339) + `","data":{"DomainName":"late.example.com"}}`
	if err := os.WriteFile(event, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"LIVEPACK_ENDPOINT": u, "LIVEPACK_STATE": "file:" + filepath.Join(t.TempDir(), "state.db"), "HOME": t.TempDir(),
		"LIVEPACK_POLICIES": `[{"DomainName":"*.example.com","AppName":"sports","StreamName":"*","Protocol":"HLS_CMAF"}]`}
	code, out, errs := run(t, env, "", "invoke", "-event", event, "-o", "json")
	if code != 0 || !strings.Contains(out, `"outcome": "deferred"`) {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
}
