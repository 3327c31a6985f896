package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/livepack/livepack/shared/apply"
	"github.com/livepack/livepack/shared/config"
	"github.com/livepack/livepack/shared/emulator"
	"github.com/livepack/livepack/shared/eventkey"
	"github.com/livepack/livepack/shared/intake"
	"github.com/livepack/livepack/shared/notify"
	"github.com/livepack/livepack/shared/policy"
	"github.com/livepack/livepack/shared/store/boltstore"
	"github.com/livepack/livepack/shared/webhooksig"
)

// runTTY runs a command with stdout and stderr taken for terminals when tty is set.
func runTTY(t *testing.T, env map[string]string, tty bool, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, IO{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb,
		Getenv: func(k string) string { return env[k] }, IsTerminal: func() bool { return tty }, StderrIsTerminal: func() bool { return tty }})
	return code, out.String(), errb.String()
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestAdoptWalkthrough is the README's "Adopt an existing account", on a domain with configs
// and on one without: export, validate, plan -prune -detailed-exitcode (no change), an edit,
// plan, apply, and plan -prune again (no change). The export of a domain without configs
// records the domain, so pruning by it deletes a config added there since.
func TestAdoptWalkthrough(t *testing.T) {
	base := seeded(t, emulator.PackageConfig{DomainName: "play.example.com", AppName: "sports", StreamName: "*", Protocol: "LLHLS_CMAF",
		SegmentNum: 3, SegmentDuration: 1, PartDuration: 350, IgnoreTranscode: true})
	env := map[string]string{"LIVEPACK_ENDPOINT": base, "LIVEPACK_STATE": "file:" + filepath.Join(t.TempDir(), "state.db"), "HOME": t.TempDir()}
	for _, tt := range []struct {
		domain, edit string
		configs      int
	}{
		{"play.example.com", `{"DomainName": "play.example.com", "AppName": "sports", "StreamName": "*", "Protocol": "LLHLS_CMAF", "SegmentNum": 4}`, 1},
		{"new.example.com", `{"DomainName": "new.example.com", "AppName": "live", "StreamName": "*", "Protocol": "HLS_CMAF"}`, 0},
	} {
		t.Run(tt.domain, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "policies.json")
			code, _, errs := run(t, env, "", "export", "-domain", tt.domain, "-out", file)
			if code != 0 || !strings.Contains(errs, fmt.Sprintf("%s of 1 play domain", plural(tt.configs, "config"))) {
				t.Fatalf("export: exit %d\n%s", code, errs)
			}
			var doc struct {
				Domains  []string          `json:"domains"`
				Policies []json.RawMessage `json:"policies"`
			}
			if err := json.Unmarshal([]byte(readFile(t, file)), &doc); err != nil || len(doc.Domains) != 1 || doc.Domains[0] != tt.domain ||
				doc.Policies == nil || len(doc.Policies) != tt.configs {
				t.Fatalf("exported document: %v\n%s", err, readFile(t, file))
			}
			if code, out, _ := run(t, env, "", "validate", "-f", file); code != 0 || !strings.Contains(out, `"valid": true`) {
				t.Fatalf("validate of the export: exit %d\n%s", code, out)
			}
			code, out, errs := run(t, env, "", "plan", "-f", file, "-prune", "-detailed-exitcode")
			if code != 0 || !strings.Contains(out, `"changes": 0`) {
				t.Fatalf("plan -prune of the export: exit %d\n%s\n%s", code, out, errs)
			}
			edited := fmt.Sprintf(`{"domains": [%q], "policies": [%s]}`, tt.domain, tt.edit)
			if err := os.WriteFile(file, []byte(edited), 0o600); err != nil {
				t.Fatal(err)
			}
			if code, out, _ := run(t, env, "", "plan", "-f", file); code != 0 || !strings.Contains(out, `"changes": 1`) {
				t.Fatalf("plan of the edit: exit %d\n%s", code, out)
			}
			if code, _, _ := run(t, env, "", "plan", "-f", file, "-detailed-exitcode"); code != ExitChanges {
				t.Fatalf("plan -detailed-exitcode of the edit: exit %d", code)
			}
			if code, out, errs := run(t, env, "", "apply", "-f", file); code != 0 || !json.Valid([]byte(out)) {
				t.Fatalf("apply: exit %d\n%s\n%s", code, out, errs)
			}
			if code, out, _ := run(t, env, "", "plan", "-f", file, "-prune", "-detailed-exitcode"); code != 0 {
				t.Fatalf("plan -prune after apply: exit %d\n%s", code, out)
			}
		})
	}
	// The export of a domain without configs covers it: a config added there since is pruned.
	file := filepath.Join(t.TempDir(), "empty.json")
	if code, _, errs := run(t, env, "", "export", "-domain", "staging-less.example.com"); code != 1 || !strings.Contains(errs, "no play domain") {
		t.Fatalf("export of an unknown domain: exit %d %s", code, errs)
	}
	seededEmpty := seeded(t)
	env2 := map[string]string{"LIVEPACK_ENDPOINT": seededEmpty, "LIVEPACK_STATE": "memory", "HOME": t.TempDir()}
	if code, _, errs := run(t, env2, "", "export", "-domain", "global.example.com", "-out", file); code != 0 {
		t.Fatalf("export: %d %s", code, errs)
	}
	if got := strings.Join(strings.Fields(readFile(t, file)), " "); got != `{ "domains": [ "global.example.com" ], "policies": [] }` {
		t.Fatalf("export of a domain without configs: %s", got)
	}
	if code, _, errs := run(t, env2, `{"DomainName":"global.example.com","AppName":"added","StreamName":"*","Protocol":"HLS_CMAF"}`, "apply"); code != 0 {
		t.Fatalf("adding a config: %d %s", code, errs)
	}
	code, out, _ := run(t, env2, "", "plan", "-f", file, "-prune", "-detailed-exitcode", "-o", "text")
	if code != ExitChanges || !strings.Contains(out, "delete  global.example.com/added/*") || !strings.Contains(out, "[-prune: not in the document]") {
		t.Fatalf("plan -prune of the empty export: exit %d\n%s", code, out)
	}
	if code, out, errs := run(t, env2, "", "apply", "-f", file, "-prune"); code != 0 || !strings.Contains(out, `"outcome": "deleted"`) {
		t.Fatalf("apply -prune of the empty export: exit %d\n%s\n%s", code, out, errs)
	}
	if code, _, _ := run(t, env2, "", "plan", "-f", file, "-prune", "-detailed-exitcode"); code != 0 {
		t.Fatalf("plan -prune after pruning: exit %d", code)
	}
}

// TestServeAnswersWithinDeadline: under `livepack serve` a webhook whose calls the quota cannot
// serve within 30 s is answered 429 with Retry-After at once, not late.
func TestServeAnswersWithinDeadline(t *testing.T) {
	const secret = "whsec_c2VydmUtZGVhZGxpbmUtdGVzdC1zZWNyZXQtMDEyMzQ1Njc4"
	env := map[string]string{"LIVEPACK_ENDPOINT": startEmulator(t), "LIVEPACK_WEBHOOK_SECRET": secret, "LIVEPACK_STATE": "memory",
		"LIVEPACK_NOTIFY": "", "LIVEPACK_RATE": "4", "HOME": t.TempDir()}
	base := startServe(t, env)
	var statuses []int
	for i := range 4 {
		body := fmt.Sprintf(`{"policies": [{"DomainName": "play.example.com", "AppName": "app%d", "StreamName": "*", "Protocol": "HLS_CMAF"}]}`, i)
		h, err := webhooksig.Sign(secret, fmt.Sprintf("msg_deadline_%d", i), time.Now(), []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPost, base, strings.NewReader(body))
		req.Header = h
		req.Header.Set("Content-Type", "application/json")
		start := time.Now()
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Fatalf("webhook %d: no answer within 10 s (the quota wait outlived the answer's deadline): %v", i, err)
		}
		_ = resp.Body.Close()
		if took := time.Since(start); took > 5*time.Second {
			t.Fatalf("webhook %d answered %d after %s: the quota wait outlived the answer's deadline", i, resp.StatusCode, took)
		}
		if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
			t.Fatalf("webhook %d: 429 without Retry-After", i)
		}
		statuses = append(statuses, resp.StatusCode)
	}
	if statuses[0] != http.StatusOK || statuses[2] != http.StatusTooManyRequests || statuses[3] != http.StatusTooManyRequests {
		t.Fatalf("statuses %v: want the first 200 and, the quota spent, the third and fourth 429", statuses)
	}
}

// TestExitCodes: one table, commands × failure kinds: 1 for errors, 2 for usage and
// configuration, and with plan -detailed-exitcode 1 for every error, 2 only for changes.
func TestExitCodes(t *testing.T) {
	base := seeded(t)
	good := writeFile(t, "good.json", `{"DomainName":"play.example.com","AppName":"a","StreamName":"*","Protocol":"HLS_CMAF"}`)
	invalid := writeFile(t, "invalid.json", `{"DomainName":"play.example.com","AppName":"a","StreamName":"*","Protocol":"HLS"}`)
	unknown := writeFile(t, "unknown.json", `{"DomainName":"nowhere.example.com","AppName":"a","StreamName":"*","Protocol":"HLS_CMAF"}`)
	env := map[string]string{"LIVEPACK_ENDPOINT": base, "LIVEPACK_STATE": "memory", "HOME": t.TempDir()}
	badVar := map[string]string{"LIVEPACK_ENDPOINT": base, "LIVEPACK_STATE": "memory", "HOME": t.TempDir(), "LIVEPACK_RATE": "lots"}
	type kind struct {
		name string
		env  map[string]string
		args []string
	}
	kinds := func(fileFlag string) []kind {
		return []kind{
			{"unknown flag", env, []string{"-nope"}},
			{"bad -o", env, []string{fileFlag, good, "-o", "yaml"}},
			{"unexpected argument", env, []string{fileFlag, good, "extra"}},
			{"missing file", env, []string{fileFlag, "/nonexistent/policies.json"}},
			{"bad variable", badVar, []string{fileFlag, good}},
			{"invalid document", env, []string{fileFlag, invalid}},
			{"unknown domain", env, []string{fileFlag, unknown}},
		}
	}
	want := map[string]map[string]int{
		"invoke":                  {"unknown flag": 2, "bad -o": 2, "unexpected argument": 2, "missing file": 2, "bad variable": 2, "invalid document": 1, "unknown domain": 1},
		"apply":                   {"unknown flag": 2, "bad -o": 2, "unexpected argument": 2, "missing file": 2, "bad variable": 2, "invalid document": 1, "unknown domain": 1},
		"plan":                    {"unknown flag": 2, "bad -o": 2, "unexpected argument": 2, "missing file": 2, "bad variable": 2, "invalid document": 1, "unknown domain": 1},
		"plan -detailed-exitcode": {"unknown flag": 1, "bad -o": 1, "unexpected argument": 1, "missing file": 1, "bad variable": 1, "invalid document": 1, "unknown domain": 1},
		"validate":                {"unknown flag": 2, "bad -o": 2, "unexpected argument": 2, "missing file": 2, "bad variable": 0, "invalid document": 1, "unknown domain": 0},
	}
	for cmd, codes := range want {
		fileFlag := "-f"
		if cmd == "invoke" {
			fileFlag = "-event"
		}
		argv := strings.Fields(cmd)
		for _, k := range kinds(fileFlag) {
			t.Run(cmd+"/"+k.name, func(t *testing.T) {
				args := append(append([]string{}, argv...), k.args...)
				code, out, errs := run(t, k.env, "", args...)
				if code != codes[k.name] {
					t.Fatalf("livepack %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, codes[k.name], out, errs)
				}
			})
		}
	}
	// The flag may come after the failing one, or as -detailed-exitcode=true.
	if code, _, _ := run(t, env, "", "plan", "-nope", "-detailed-exitcode=true"); code != 1 {
		t.Errorf("plan -nope -detailed-exitcode=true: exit %d, want 1", code)
	}
	if code, _, _ := run(t, env, "", "plan", "-nope", "-detailed-exitcode=false"); code != 2 {
		t.Errorf("plan -nope -detailed-exitcode=false: exit %d, want 2", code)
	}
	for _, tt := range []struct {
		args []string
		code int
	}{
		{[]string{"export", "-domain", "nomatch.example.com"}, 1},
		{[]string{"export", "-domain", "[x"}, 1},
		{[]string{"export", "-o", "policies.json"}, 2},
		{[]string{"export", "-nope"}, 2},
		{[]string{"schema", "extra"}, 2},
		{[]string{"emulator", "-rate", "0"}, 2},
		{[]string{"serve", "-addr", "256.0.0.1:1"}, 2},
		{[]string{"help", "nope"}, 2},
	} {
		if code, _, errs := run(t, env, "", tt.args...); code != tt.code {
			t.Errorf("livepack %s: exit %d, want %d\n%s", strings.Join(tt.args, " "), code, tt.code, errs)
		}
	}
}

// TestRefusedEventExitsOne: an event that is not applied (its key reused with another payload,
// or a call refused for bad credentials) exits 1, and the result and stderr say why.
func TestRefusedEventExitsOne(t *testing.T) {
	env := map[string]string{"LIVEPACK_ENDPOINT": startEmulator(t), "LIVEPACK_STATE": "memory", "HOME": t.TempDir()}
	state := "file:" + filepath.Join(t.TempDir(), "state.db")
	env["LIVEPACK_STATE"] = state
	first := writeFile(t, "first.json", `{"id": "k1", "policies": [{"DomainName":"play.example.com","AppName":"a","StreamName":"*","Protocol":"HLS_CMAF"}]}`)
	other := writeFile(t, "other.json", `{"id": "k1", "policies": [{"DomainName":"play.example.com","AppName":"b","StreamName":"*","Protocol":"HLS_CMAF"}]}`)
	if code, out, errs := run(t, env, "", "apply", "-f", first); code != 0 {
		t.Fatalf("first: exit %d\n%s\n%s", code, out, errs)
	}
	for _, cmd := range []string{"apply", "invoke"} {
		flag := "-f"
		if cmd == "invoke" {
			flag = "-event"
		}
		code, out, errs := run(t, env, "", cmd, flag, other)
		var res apply.Result
		if code != 1 || json.Unmarshal([]byte(out), &res) != nil || !strings.Contains(res.Note, "not applied") ||
			!strings.Contains(errs, "\nlivepack "+cmd+": not applied: ") || !strings.Contains(errs, "different payload") {
			t.Fatalf("%s of a reused key: exit %d\n%s\n%s", cmd, code, out, errs)
		}
	}
	env["ALIBABA_CLOUD_ACCESS_KEY_ID"], env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] = "someone-else", "wrong"
	code, _, errs := run(t, env, "", "apply", "-f", writeFile(t, "third.json", `{"DomainName":"play.example.com","AppName":"c","StreamName":"*","Protocol":"HLS_CMAF"}`))
	if code != 1 || !strings.Contains(errs, "\nlivepack apply: ") || strings.Contains(errs, "livepack invoke") {
		t.Fatalf("apply refused by the API: exit %d\n%s", code, errs)
	}
}

// TestNoReplayAcrossEmulators: the same document applied against a fresh emulator with the same
// state file is applied there, not replayed from the first emulator's record.
func TestNoReplayAcrossEmulators(t *testing.T) {
	state := "file:" + filepath.Join(t.TempDir(), "state.db")
	for i := range 2 {
		env := map[string]string{"LIVEPACK_ENDPOINT": startEmulator(t), "LIVEPACK_STATE": state, "HOME": t.TempDir()}
		code, out, errs := run(t, env, "", "apply", "-f", "../../events/policies.json")
		if code != 0 || !strings.Contains(out, `"replayed": false`) || !strings.Contains(out, `"outcome": "created"`) {
			t.Fatalf("emulator %d: exit %d\n%s\n%s", i, code, out, errs)
		}
		// The same emulator replays.
		if code, out, _ := run(t, env, "", "apply", "-f", "../../events/policies.json"); code != 0 || !strings.Contains(out, `"replayed": true`) {
			t.Fatalf("emulator %d again: exit %d\n%s", i, code, out)
		}
	}
}

// TestMissingCredentials: against a real endpoint without credentials the command line fails
// at once, naming the variables of the credential chain, without a Live API call.
func TestMissingCredentials(t *testing.T) {
	t.Setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
	home := t.TempDir()
	t.Setenv("HOME", home)
	for _, v := range append([]string{"ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_SECURITY_TOKEN"}, chainVariablesForTest...) {
		t.Setenv(v, "")
	}
	env := map[string]string{"LIVEPACK_ENDPOINT": "https://127.0.0.1:1", "LIVEPACK_STATE": "memory", "HOME": home}
	for _, args := range [][]string{{"export"}, {"plan", "-f", "../../events/policies.json", "-o", "json"}, {"invoke", "-event", "../../events/policies.json"}} {
		start := time.Now()
		code, out, errs := run(t, env, "", args...)
		if code != 2 || time.Since(start) > 2*time.Second || out != "" {
			t.Fatalf("%v: exit %d after %s\nstdout: %s\nstderr: %s", args, code, time.Since(start), out, errs)
		}
		for _, w := range []string{"no Alibaba Cloud credentials for https://127.0.0.1:1", "ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
			"ALIBABA_CLOUD_SECURITY_TOKEN", "ALIBABA_CLOUD_PROFILE", "ALIBABA_CLOUD_ROLE_ARN", "ALIBABA_CLOUD_OIDC_TOKEN_FILE", "ALIBABA_CLOUD_ECS_METADATA_DISABLED"} {
			if !strings.Contains(errs, w) {
				t.Errorf("%v: stderr lacks %q:\n%s", args, w, errs)
			}
		}
		if strings.Contains(errs, "NetworkError") || strings.Contains(errs, "100.100.100.200") || strings.Count(errs, "\n") != 1 {
			t.Errorf("%v: not one line, or reads like a network failure:\n%s", args, errs)
		}
	}
	if code, _, _ := run(t, env, "", "plan", "-f", "../../events/policies.json", "-detailed-exitcode"); code != 1 {
		t.Errorf("plan -detailed-exitcode without credentials: exit %d, want 1", code)
	}
}

// chainVariablesForTest are the variables that point the default chain elsewhere; the test
// clears them so that only the missing keys decide.
var chainVariablesForTest = []string{"ALIBABA_CLOUD_ROLE_ARN", "ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
	"ALIBABA_CLOUD_PROFILE", "ALIBABA_CLOUD_CREDENTIALS_FILE", "ALIBABA_CLOUD_CREDENTIALS_URI", "ALIBABA_CLOUD_ECS_METADATA"}

// TestExportOutputFlags: -out is the file, -o the format as elsewhere; the old -o FILE is
// refused with a hint naming -out.
func TestExportOutputFlags(t *testing.T) {
	base := seeded(t, emulator.PackageConfig{DomainName: "play.example.com", AppName: "sports", StreamName: "*", Protocol: "HLS_CMAF",
		SegmentNum: 3, SegmentDuration: 5, IgnoreTranscode: true})
	env := map[string]string{"LIVEPACK_ENDPOINT": base, "LIVEPACK_STATE": "memory", "HOME": t.TempDir()}
	t.Chdir(t.TempDir())
	code, out, _ := runTTY(t, env, true, "export", "-o", "json")
	if code != 0 || !json.Valid([]byte(out)) || !strings.Contains(out, `"policies"`) {
		t.Fatalf("export -o json: exit %d\n%s", code, out)
	}
	if _, err := os.Stat("json"); err == nil {
		t.Fatal("export -o json wrote a file named json")
	}
	code, out, _ = runTTY(t, env, true, "export")
	out = stripANSI(out)
	if code != 0 || !strings.Contains(out, "play.example.com/sports/*  HLS_CMAF SegmentNum=3") || !regexp.MustCompile(`new\.example\.com +\(no config\)`).MatchString(out) || json.Valid([]byte(out)) {
		t.Fatalf("export on a terminal: exit %d\n%s", code, out)
	}
	if code, out, _ := run(t, env, "", "export"); code != 0 || !json.Valid([]byte(out)) {
		t.Fatalf("export piped: exit %d\n%s", code, out)
	}
	code, out, errs := run(t, env, "", "export", "-out", "policies.json")
	if code != 0 || out != "" || !strings.Contains(readFile(t, "policies.json"), `"AppName": "sports"`) || !strings.Contains(errs, "to policies.json") {
		t.Fatalf("export -out: exit %d\n%s\n%s", code, out, errs)
	}
	code, _, errs = run(t, env, "", "export", "-o", "adopt.json")
	if code != 2 || !strings.Contains(errs, "-out adopt.json") {
		t.Fatalf("export -o FILE: exit %d\n%s", code, errs)
	}
}

// TestMessages: every message of apply names apply; no doubled prefix; help cites no document
// outside the repository.
func TestMessages(t *testing.T) {
	env := map[string]string{"LIVEPACK_ENDPOINT": startEmulator(t), "LIVEPACK_STATE": "memory", "HOME": t.TempDir()}
	code, _, errs := run(t, env, "", "export", "-domain", "[x")
	if code != 1 || !strings.HasPrefix(errs, "livepack export: domain pattern") {
		t.Fatalf("export with a bad pattern: exit %d %q", code, errs)
	}
	code, _, errs = run(t, env, "{\"policies\": nul}", "apply", "-o", "text")
	if code != 1 || !strings.Contains(errs, "livepack apply: ") || strings.Contains(errs, "livepack invoke") {
		t.Fatalf("apply of malformed JSON: exit %d %q", code, errs)
	}
	for _, c := range commands {
		_, out, _ := run(t, nil, "", "help", c.name)
		if strings.Contains(out, "DESIGN") || strings.Contains(out, "§") {
			t.Errorf("help %s cites a document outside the repository:\n%s", c.name, out)
		}
	}
}

// TestTerminalOutput: on a terminal only warnings and errors are logged (-v adds INFO); piped,
// invoke prints one JSON document carrying the stdout sink's notices, and a webhook's status.
func TestTerminalOutput(t *testing.T) {
	env := map[string]string{"HOME": t.TempDir()}
	code, out, errs := runTTY(t, env, true, "invoke", "-event", "../../events/policies.json")
	if code != 0 || strings.Contains(errs, "level=INFO") || !strings.Contains(out, "trigger direct") {
		t.Fatalf("terminal: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	if code, _, errs := runTTY(t, env, true, "invoke", "-v", "-event", "../../events/policies.json"); code != 0 || !strings.Contains(errs, "level=INFO") {
		t.Fatalf("terminal -v: exit %d\n%s", code, errs)
	}
	code, out, errs = run(t, env, "", "invoke", "-event", "../../events/policies.json")
	var res apply.Result
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || !strings.Contains(errs, "level=INFO") {
		t.Fatalf("piped: exit %d\n%s\n%s", code, out, errs)
	}
	dec := json.NewDecoder(strings.NewReader(out))
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		t.Fatalf("piped output is not one JSON document:\n%s", out)
	}
	if len(res.Notices) != 2 {
		t.Fatalf("notices: %+v", res.Notices)
	}
	for _, n := range res.Notices {
		var ev struct{ ID, Type string }
		if json.Unmarshal(n.Event, &ev) != nil || ev.ID != n.ID || ev.Type != "livepack.ingest.restart-required" || n.Sinks["stdout"] != "delivered" {
			t.Fatalf("a notice does not carry its event: %+v", n)
		}
	}
	const secret = "whsec_bGl2ZXBhY2stZGVtby1zZWNyZXQtMDEyMzQ1Njc4OWFi"
	env["LIVEPACK_WEBHOOK_SECRET"] = secret
	code, out, _ = run(t, env, "", "invoke", "-sign", "-event", "../../events/fc-http-webhook.json", "-o", "json")
	var wh struct {
		Status  int                  `json:"status"`
		Trigger string               `json:"trigger"`
		Notices []apply.NoticeResult `json:"notices"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &wh) != nil || wh.Status != 200 || wh.Trigger != "cms-webhook" || len(wh.Notices) == 0 || len(wh.Notices[0].Event) == 0 {
		t.Fatalf("webhook -o json: exit %d\n%s", code, out)
	}
	delete(env, "LIVEPACK_WEBHOOK_SECRET")
	code, out, _ = run(t, env, "", "invoke", "-event", "../../events/fc-http-webhook.json", "-o", "json")
	if code != 1 || !strings.Contains(out, `"status": 401`) || !strings.Contains(out, `"error": "the webhook has no secret configured`) {
		t.Fatalf("refused webhook -o json: exit %d\n%s", code, out)
	}
}

// TestValidateRefusesPatterns: a DomainName pattern is refused with the API's code, as apply
// would refuse it; malformed and empty documents are named as such.
func TestValidateRefusesPatterns(t *testing.T) {
	code, out, _ := run(t, nil, `{"DomainName":"*.example.com","AppName":"a","StreamName":"*","Protocol":"HLS_CMAF"}`, "validate")
	if code != 1 || !strings.Contains(out, `"code": "InvalidParams"`) || !strings.Contains(out, "is a pattern") {
		t.Fatalf("validate of a pattern: exit %d\n%s", code, out)
	}
	env := map[string]string{"LIVEPACK_ENDPOINT": startEmulator(t), "LIVEPACK_STATE": "memory", "HOME": t.TempDir()}
	code, out, errs := run(t, env, `{"DomainName":"*.example.com","AppName":"a","StreamName":"*","Protocol":"HLS_CMAF"}`, "plan", "-o", "text")
	if code != 1 || !strings.Contains(out, "is a pattern") || !strings.Contains(errs, "nothing was read or changed") {
		t.Fatalf("plan of a pattern: exit %d\n%s\n%s", code, out, errs)
	}
	for in, want := range map[string]string{
		"{\n  \"DomainName\": \"a\",,\n}": "invalid: 1 error in the document",
		"{}":                              "document is empty: MissingParam",
		"":                                "document is empty: MissingParam",
		`{"policies": []}`:                "valid: 0 policies",
		`{"domains": ["play.example.com"], "policies": []}`: "valid: 0 policies, covering play.example.com",
	} {
		_, out, _ := run(t, nil, in, "validate", "-o", "text")
		if !strings.Contains(out, want) || strings.Contains(out, "0 policies\n  document") || strings.Contains(out, "policies is missing") {
			t.Errorf("validate %q: want %q\n%s", in, want, out)
		}
	}
}

// TestNothingSilentlyEmpty: a reconcile without default policies, an export of the embedded
// emulator, a key another run holds, a capped list and a reconcile notice each say what they
// are.
func TestNothingSilentlyEmpty(t *testing.T) {
	env := map[string]string{"LIVEPACK_ENDPOINT": startEmulator(t), "LIVEPACK_STATE": "memory", "HOME": t.TempDir()}
	code, out, _ := run(t, env, "", "invoke", "-event", "../../events/fc-timer-report.json", "-o", "text")
	if code != 0 || !strings.Contains(out, "no default policies are set (LIVEPACK_POLICIES)") {
		t.Fatalf("reconcile without policies: exit %d\n%s", code, out)
	}
	env["LIVEPACK_POLICIES"] = "../../events/default-policies.json"
	code, out, _ = run(t, env, "", "invoke", "-event", "../../events/fc-timer-report.json", "-o", "text")
	if code != 0 || strings.Contains(out, "no default policies") || !strings.Contains(out, "notice reconcile pass 1 complete: ") || strings.Contains(out, " ; ") {
		t.Fatalf("reconcile with policies: exit %d\n%s", code, out)
	}
	code, _, errs := run(t, map[string]string{"HOME": t.TempDir()}, "", "export")
	if code != 0 || !strings.Contains(errs, "the embedded emulator's seed") {
		t.Fatalf("export of the embedded emulator: exit %d\n%s", code, errs)
	}
	hint := readable(fmt.Errorf("apply: k1: %w", eventkey.ErrInProgress), nil)
	if !strings.Contains(hint, "free within 12s") || !strings.Contains(hint, "run the command again") {
		t.Fatalf("a key in progress: %s", hint)
	}
	var b bytes.Buffer
	held := &apply.Result{Trigger: "direct", Key: "k1", Results: []apply.PolicyResult{}}
	explain(held, intake.Request{Kind: intake.Direct}, invocation{}, fmt.Errorf("apply: k1: %w", eventkey.ErrInProgress))
	printInvocation(output{w: &b, headers: true}, held, 0, nil, invocation{})
	if strings.Contains(b.String(), "OUTCOME") || !strings.Contains(b.String(), "free within 12s") {
		t.Fatalf("a key in progress, in text: an empty table, or no word of when to retry:\n%s", b.String())
	}
	b.Reset()
	res := &apply.Result{Trigger: "schedule", Results: []apply.PolicyResult{{DomainName: "d.example.com", AppName: "a", StreamName: "*", Outcome: apply.Skipped, Drift: "delete"}},
		Reconcile: &apply.ReconcileSummary{Mode: "report", Truncated: 7}}
	printInvocation(output{w: &b}, res, 0, nil, invocation{})
	if !strings.Contains(b.String(), "… and 7 more") {
		t.Fatalf("a capped list:\n%s", b.String())
	}
	pass, err := notify.Report(time.Now(), notify.DriftReport{Cursor: "c", Pass: 2, Complete: true, Domains: 3, DriftConfig: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got := noticeLine(output{}, apply.NoticeResult{ID: pass.ID}, pass.JSON); !strings.HasPrefix(got, "reconcile pass 2 complete: 3 play domains checked, 1 config differs from the policies") {
		t.Fatalf("pass-complete notice: %s", got)
	}
}

// TestDemoExportsToAFile: make demo writes its export with -out, the file flag; -o is a format.
func TestDemoExportsToAFile(t *testing.T) {
	mk := readFile(t, "../../Makefile")
	n := 0
	for _, line := range strings.Split(mk, "\n") {
		if !strings.Contains(line, "$(BIN) export") {
			continue
		}
		n++
		if !strings.Contains(line, " -out ") || regexp.MustCompile(` -o [^ ]*json`).MatchString(line) {
			t.Errorf("the demo's export does not write its file with -out: %s", line)
		}
	}
	if n == 0 {
		t.Fatal("the demo runs no export")
	}
}

// TestRetryAfterCrashSaysWhen: a document whose key a crashed run still holds (its lease not yet
// lapsed) exits 1, and both the result and stderr say when the key is free.
func TestRetryAfterCrashSaysWhen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	env := map[string]string{"LIVEPACK_ENDPOINT": startEmulator(t), "LIVEPACK_STATE": "file:" + path, "HOME": t.TempDir()}
	raw := `{"id": "crashed-1", "policies": [{"DomainName":"play.example.com","AppName":"a","StreamName":"*","Protocol":"HLS_CMAF"}]}`
	doc, err := policy.Parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	ns := config.DefaultNamespace(config.CLI, config.DefaultRegion, func(k string) string { return env[k] })
	f, err := boltstore.Open(path, ns)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := eventkey.New(f, nil).Acquire(context.Background(), "direct:crashed-1", policy.Hash(doc), "crashed-run"); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	code, out, errs := run(t, env, raw, "apply", "-o", "text")
	if code != 1 || !strings.Contains(out, "free within 12s") || strings.Contains(out, "OUTCOME") || !strings.Contains(errs, "run the command again then") {
		t.Fatalf("apply of a held key: exit %d\n%s\n%s", code, out, errs)
	}
}

// TestEarlierNoticesListed: a notice the stdout sink delivered that the result does not list (an
// earlier run's, delivered now) is added to the result with its event, so none is lost from the
// one JSON document; a listed one gets its event and is not added twice.
func TestEarlierNoticesListed(t *testing.T) {
	byID, order := noticeLines(strings.NewReader(`{"id":"n1","type":"livepack.ingest.restart-required"}` + "\n" + `{"id":"n0","type":"livepack.ingest.restart-required"}` + "\n"))
	res := &apply.Result{Notices: []apply.NoticeResult{{ID: "n1", Sinks: map[string]string{"stdout": "delivered"}}}}
	withNotices(res, invocation{notices: byID, extra: order})
	if len(res.Notices) != 2 || res.Notices[1].ID != "n0" || len(res.Notices[0].Event) == 0 || len(res.Notices[1].Event) == 0 ||
		res.Notices[1].Sinks["stdout"] != "delivered" {
		t.Fatalf("notices: %+v", res.Notices)
	}
}
