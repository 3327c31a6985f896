package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/livepack/livepack/shared/emulator"
)

// probeEnv points the CLI at a running emulator, as `make demo` does.
func probeEnv(t *testing.T, url string) map[string]string {
	return map[string]string{"LIVEPACK_ENDPOINT": url, "LIVEPACK_STATE": "file:" + filepath.Join(t.TempDir(), "state.db"),
		"HOME": t.TempDir(), "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true", "LIVEPACK_NOTIFY": "stdout"}
}

type probeOut struct {
	Match    bool
	Streams  int
	Verdicts []struct {
		StreamName string
		Protocol   string
		Match      bool
		Checks     []struct {
			Manifest, Name, Found string
			OK                    bool
		}
		Fetches []struct {
			URL       string
			Status    int
			LatencyMs int64
		}
	}
}

func decodeProbe(t *testing.T, out string) probeOut {
	t.Helper()
	var p probeOut
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("probe output is not JSON: %v\n%s", err, out)
	}
	return p
}

func restartStream(t *testing.T, url, app, stream string) {
	t.Helper()
	streamChange(t, url, "restart", app, stream)
}

// TestProbeUntilRestart: a config applied to an online stream is a mismatch until the stream's
// ingest restarts, then a match, for one stream and for a document's streams.
func TestProbeUntilRestart(t *testing.T) {
	srv := httptest.NewServer(emulator.New(emulator.Options{Seed: emulator.DefaultSeed()}))
	defer srv.Close()
	env := probeEnv(t, srv.URL)
	one := []string{"probe", "-domain", "play.example.com", "-app", "sports", "-stream", "final"}

	code, out, errs := run(t, env, "", one...)
	if p := decodeProbe(t, out); code != 0 || !p.Match || p.Verdicts[0].Protocol != "" {
		t.Fatalf("before any config (plain HLS expected and served): exit %d\n%s\n%s", code, out, errs)
	}
	doc := filepath.Join(t.TempDir(), "policies.json")
	if err := os.WriteFile(doc, []byte(`{"policies":[{"DomainName":"play.example.com","AppName":"sports","StreamName":"*","Protocol":"LLHLS_CMAF"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := run(t, env, "", "apply", "-f", doc, "-o", "json"); code != 0 {
		t.Fatalf("apply: exit %d\n%s\n%s", code, out, errs)
	}

	code, out, _ = run(t, env, "", one...)
	p := decodeProbe(t, out)
	if code != 1 || p.Match || p.Verdicts[0].Protocol != "LLHLS_CMAF" {
		t.Fatalf("before the restart: exit %d, want 1 (old packaging)\n%s", code, out)
	}
	failed := map[string]bool{}
	for _, c := range p.Verdicts[0].Checks {
		if !c.OK {
			failed[c.Manifest+" "+c.Name] = true
		}
	}
	if !failed["hls container"] || !failed["hls part target"] || !failed["hls server control"] {
		t.Fatalf("the old packaging's failed checks: %v", failed)
	}
	if code, _, _ := run(t, env, "", "probe", "-f", doc, "-o", "json"); code != 1 {
		t.Fatalf("probe -f before the restart: exit %d, want 1", code)
	}

	restartStream(t, srv.URL, "sports", "final")
	code, out, errs = run(t, env, "", one...)
	if p := decodeProbe(t, out); code != 0 || !p.Match || len(p.Verdicts[0].Checks) < 5 || p.Verdicts[0].Fetches[0].Status != 200 ||
		p.Verdicts[0].Fetches[0].URL != "https://play.example.com/sports/final.m3u8" {
		t.Fatalf("after the restart: exit %d, want 0\n%s\n%s", code, out, errs)
	}
	code, out, _ = run(t, env, "", "probe", "-f", doc, "-o", "json")
	if p := decodeProbe(t, out); code != 0 || p.Streams != 1 || p.Verdicts[0].StreamName != "final" {
		t.Fatalf("probe -f after the restart: exit %d\n%s", code, out)
	}
	code, out, _ = run(t, env, "", "probe", "-f", doc, "-o", "text")
	if code != 0 || !strings.Contains(out, "match  play.example.com/sports/final  LLHLS_CMAF") || !strings.Contains(out, "hls part target") ||
		!strings.Contains(out, "1 of 1 stream matches its config.") ||
		!strings.Contains(out, "https://play.example.com/sports/final.m3u8 200 in ") {
		t.Fatalf("text output:\n%s", out)
	}
}

func TestProbeUsage(t *testing.T) {
	for _, args := range [][]string{
		{"probe"},
		{"probe", "-domain", "play.example.com"},
		{"probe", "-domain", "play.example.com", "-app", "sports", "-stream", "final", "-f", "x.json"},
		{"probe", "-domain", "play.example.com", "-app", "sports", "-stream", "*"},
		{"probe", "-f", "nope.json"},
		{"probe", "-domain", "play.example.com", "-app", "sports", "-stream", "final", "-o", "yaml"},
		{"probe", "-domain", "play.example.com", "-app", "sports", "-stream", "final", "-timeout", "0s"},
	} {
		if code, out, errs := run(t, nil, "", args...); code != 2 {
			t.Errorf("%v: exit %d, want 2\n%s%s", args, code, out, errs)
		}
	}
	env := map[string]string{"LIVEPACK_PROBE": "many", "HOME": t.TempDir()}
	if code, _, errs := run(t, env, "", "probe", "-domain", "play.example.com", "-app", "sports", "-stream", "final"); code != 2 || !strings.Contains(errs, "LIVEPACK_PROBE") {
		t.Fatalf("bad LIVEPACK_PROBE: exit %d %s", code, errs)
	}
	code, out, _ := run(t, nil, "", "help", "probe")
	if code != 0 || !strings.Contains(out, "-timeout") || !strings.Contains(out, "1 a mismatch") {
		t.Fatalf("help probe:\n%s", out)
	}
	if _, out, _ := run(t, nil, "", "help"); !strings.Contains(out, "  probe ") {
		t.Fatalf("probe is not in the command list:\n%s", out)
	}
}

// TestProbeEmbeddedEmulator: without LIVEPACK_ENDPOINT the probe reads the embedded emulator's
// playback, so it works out of the box.
func TestProbeEmbeddedEmulator(t *testing.T) {
	env := map[string]string{"HOME": t.TempDir()}
	code, out, errs := run(t, env, "", "probe", "-domain", "play.example.com", "-app", "sports", "-stream", "final", "-o", "json")
	if p := decodeProbe(t, out); code != 0 || !p.Match || p.Verdicts[0].Fetches[0].Status != 200 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	// A stream that is not online: its manifest is not found.
	code, out, _ = run(t, env, "", "probe", "-domain", "play.example.com", "-app", "sports", "-stream", "gone", "-o", "json")
	if p := decodeProbe(t, out); code != 1 || p.Verdicts[0].Fetches[0].Status != 404 {
		t.Fatalf("offline stream: exit %d\n%s", code, out)
	}
}

// TestProbePlayAuthKey: with LIVEPACK_PLAY_AUTH_KEY the URLs are signed (type A) and the
// domain serves them; without, it refuses; the key never appears in the output.
func TestProbePlayAuthKey(t *testing.T) {
	seed := emulator.DefaultSeed()
	seed.Domains[0].PlayAuthKey = "demo-play-key-0123"
	srv := httptest.NewServer(emulator.New(emulator.Options{Seed: seed}))
	defer srv.Close()
	env := probeEnv(t, srv.URL)
	args := []string{"probe", "-domain", "play.example.com", "-app", "sports", "-stream", "final", "-o", "json"}
	if code, out, _ := run(t, env, "", args...); code != 1 || decodeProbe(t, out).Verdicts[0].Fetches[0].Status != 403 {
		t.Fatalf("unsigned: exit %d\n%s", code, out)
	}
	env["LIVEPACK_PLAY_AUTH_KEY"] = "demo-play-key-0123"
	code, out, errs := run(t, env, "", args...)
	if code != 0 || strings.Contains(out+errs, "demo-play-key") || strings.Contains(out+errs, "auth_key=") {
		t.Fatalf("signed: exit %d (the key or a signed URL must not show)\n%s\n%s", code, out, errs)
	}
	// LIVEPACK_PLAYBACK_BASE overrides the endpoint's: an address nothing listens on.
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	env["LIVEPACK_PLAYBACK_BASE"] = dead.URL
	if code, out, _ := run(t, env, "", args...); code != 1 || !strings.Contains(out, "refused") {
		t.Fatalf("dead playback base: exit %d\n%s", code, out)
	}
}
