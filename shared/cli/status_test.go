package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livepack/livepack/shared/emulator"
)

type statusOut struct {
	Targets []struct {
		DomainName, AppName, StreamName string
		Config                          struct{ Protocol string }
		Change                          struct {
			ID     string
			Notice map[string]string
		}
		Tracking string
		Streams  []struct {
			AppName, StreamName, State string
			Since, At                  time.Time
			Probe                      *struct{ Match bool }
		}
	}
	Summary struct {
		Awaiting, Restarted, Offline, Calls, Probed int
	}
}

func decodeStatus(t *testing.T, out string) statusOut {
	t.Helper()
	var s statusOut
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("status output is not JSON: %v\n%s", err, out)
	}
	return s
}

func streamChange(t *testing.T, url, action, app, stream string) {
	t.Helper()
	resp, err := http.Post(url+"/_emulator/streams", "application/json",
		strings.NewReader(`{"action":"`+action+`","DomainName":"play.example.com","AppName":"`+app+`","StreamName":"`+stream+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d", action, resp.StatusCode)
	}
}

func states(s statusOut) map[string]string {
	m := map[string]string{}
	for _, t := range s.Targets {
		for _, st := range t.Streams {
			m[st.AppName+"/"+st.StreamName] = st.State
		}
	}
	return m
}

// TestStatusLoop is `make demo`'s loop: a change with two online streams, one restarted, status
// showing one restarted and one awaiting (JSON when piped, text on a terminal), then the other
// going offline ends the tracking, and status calls nothing more. With a playback base the
// restarted stream carries the probe's verdict. A failed call exits 1.
func TestStatusLoop(t *testing.T) {
	srv := httptest.NewServer(emulator.New(emulator.Options{Seed: emulator.DefaultSeed()}))
	env := probeEnv(t, srv.URL)
	env["LIVEPACK_PLAYBACK_BASE"] = srv.URL
	streamChange(t, srv.URL, "start", "sports", "highlights")
	time.Sleep(1100 * time.Millisecond)
	doc := filepath.Join(t.TempDir(), "policies.json")
	if err := os.WriteFile(doc, []byte(`{"policies":[{"DomainName":"play.example.com","AppName":"sports","StreamName":"*","Protocol":"LLHLS_CMAF"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := run(t, env, "", "apply", "-f", doc, "-o", "json"); code != 0 || !strings.Contains(out, "sports/final, sports/highlights") {
		t.Fatalf("apply: exit %d\n%s\n%s", code, out, errs)
	}
	code, out, errs := run(t, env, "", "status")
	s := decodeStatus(t, out)
	if code != 0 || len(s.Targets) != 1 || s.Targets[0].Tracking != "open" || s.Summary.Awaiting != 2 || s.Summary.Calls != 1 ||
		s.Targets[0].Change.Notice["stdout"] != "delivered" || s.Targets[0].Config.Protocol != "LLHLS_CMAF" {
		t.Fatalf("before any restart: exit %d\n%s\n%s", code, out, errs)
	}
	streamChange(t, srv.URL, "restart", "sports", "final")
	code, out, errs = run(t, env, "", "status", "-domain", "play.*")
	s = decodeStatus(t, out)
	if code != 0 || states(s)["sports/final"] != "restarted" || states(s)["sports/highlights"] != "awaiting" || s.Summary.Probed != 1 {
		t.Fatalf("after one restart: exit %d\n%s\n%s", code, out, errs)
	}
	for _, st := range s.Targets[0].Streams {
		if st.StreamName == "final" && (st.Probe == nil || !st.Probe.Match || st.At.IsZero()) {
			t.Fatalf("final: %+v", st)
		}
	}
	env["NO_COLOR"] = "1"
	code, out, _ = runTTY(t, env, true, "status")
	if code != 0 || !strings.Contains(out, "restarted") || !strings.Contains(out, "awaiting restart  sports/highlights") ||
		!strings.Contains(out, "1 restarted, 1 awaiting restart (0 overdue), 0 offline") {
		t.Fatalf("text: exit %d\n%s", code, out)
	}
	if code, out, _ := run(t, env, "", "status", "-domain", "other.*"); code != 0 || len(decodeStatus(t, out).Targets) != 0 {
		t.Fatalf("-domain other.*: exit %d\n%s", code, out)
	}
	streamChange(t, srv.URL, "stop", "sports", "highlights")
	code, out, _ = run(t, env, "", "status")
	if s = decodeStatus(t, out); code != 0 || states(s)["sports/highlights"] != "offline" || s.Targets[0].Tracking != "done" {
		t.Fatalf("after the stop: exit %d\n%s", code, out)
	}
	if code, out, _ = run(t, env, "", "status"); code != 0 || decodeStatus(t, out).Summary.Calls != 0 {
		t.Fatalf("nothing open, yet calls: %s", out)
	}
	// A change awaiting a stream, and the API gone: exit 1, the failure on stderr.
	streamChange(t, srv.URL, "start", "sports", "highlights")
	time.Sleep(1100 * time.Millisecond)
	if err := os.WriteFile(doc, []byte(`{"policies":[{"DomainName":"play.example.com","AppName":"sports","StreamName":"*","Protocol":"HLS_CMAF"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := run(t, env, "", "apply", "-f", doc, "-o", "json"); code != 0 {
		t.Fatalf("apply: exit %d\n%s\n%s", code, out, errs)
	}
	srv.Close()
	code, out, errs = run(t, env, "", "status")
	if code != 1 || !strings.Contains(errs, "listing online streams") || decodeStatus(t, out).Summary.Awaiting != 2 {
		t.Fatalf("API gone: exit %d\n%s\n%s", code, out, errs)
	}
}
