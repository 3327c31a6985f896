package cli

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/livepack/livepack/shared/emulator"
)

// seeded serves an emulator with the given configs on the default seed's domains.
func seeded(t *testing.T, configs ...emulator.PackageConfig) string {
	t.Helper()
	s := emulator.DefaultSeed()
	s.PackageConfigs = configs
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	u, err := emulator.Serve(ctx, "127.0.0.1:0", emulator.Options{Seed: s})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// emulatorCalls returns the actions the emulator served, in order.
func emulatorCalls(t *testing.T, base string) []string {
	t.Helper()
	resp, err := http.Get(base + "/_emulator/calls")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var calls []emulator.Call
	if err := json.NewDecoder(resp.Body).Decode(&calls); err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(calls))
	for i, c := range calls {
		out[i] = c.Action
	}
	return out
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

type planOut struct {
	Changes int            `json:"changes"`
	Summary map[string]int `json:"summary"`
	Calls   int            `json:"calls"`
	Rows    []struct {
		DomainName, AppName, StreamName string
		Action                          string `json:"action"`
		Pruned                          bool   `json:"pruned"`
		Diff                            []struct {
			Field            string
			Current, Desired any
		} `json:"diff"`
	} `json:"rows"`
}

func (p planOut) actions() []string {
	var out []string
	for _, r := range p.Rows {
		a := r.AppName + ":" + r.Action
		if r.Pruned {
			a += "(pruned)"
		}
		out = append(out, a)
	}
	return out
}

const planDoc = `{"policies": [
  {"DomainName": "play.example.com", "AppName": "sports", "StreamName": "*", "Protocol": "LLHLS_CMAF", "SegmentDuration": 2},
  {"DomainName": "play.example.com", "AppName": "news", "StreamName": "*", "Protocol": "HLS_CMAF"},
  {"DomainName": "play.example.com", "AppName": "keep", "StreamName": "*", "Protocol": "DASH_CMAF"},
  {"DomainName": "push.example.com", "AppName": "x", "StreamName": "*", "Protocol": "HLS_CMAF"}
]}`

// TestPlanApplyPrune: plan shows each action and field diff without a write; apply makes
// exactly that change and prints each outcome; -prune alone deletes configs the document does
// not name.
func TestPlanApplyPrune(t *testing.T) {
	base := seeded(t,
		emulator.PackageConfig{DomainName: "play.example.com", AppName: "sports", StreamName: "*", Protocol: "LLHLS_CMAF", SegmentNum: 3, SegmentDuration: 1, PartDuration: 350, IgnoreTranscode: true},
		emulator.PackageConfig{DomainName: "play.example.com", AppName: "keep", StreamName: "*", Protocol: "DASH_CMAF", SegmentNum: 3, SegmentDuration: 5, IgnoreTranscode: true},
		emulator.PackageConfig{DomainName: "play.example.com", AppName: "old", StreamName: "*", Protocol: "HLS_CMAF", SegmentNum: 3, SegmentDuration: 5, IgnoreTranscode: true})
	// A file store, so the idempotency records outlive each command as they do for an operator.
	env := map[string]string{"LIVEPACK_ENDPOINT": base, "LIVEPACK_STATE": "file:" + filepath.Join(t.TempDir(), "state.db"), "HOME": t.TempDir()}
	doc := writeFile(t, "doc.json", planDoc)
	plan := func(args ...string) (int, planOut) {
		t.Helper()
		code, out, errs := run(t, env, "", append([]string{"plan", "-f", doc, "-o", "json"}, args...)...)
		var p planOut
		if err := json.Unmarshal([]byte(out), &p); err != nil {
			t.Fatalf("plan %v: exit %d, not JSON: %v\n%s\n%s", args, code, err, out, errs)
		}
		return code, p
	}

	code, p := plan("-detailed-exitcode")
	if code != 2 || p.Changes != 2 || strings.Join(p.actions(), " ") != "sports:update news:create keep:no change x:skip" {
		t.Fatalf("plan: exit %d, %d changes, %v", code, p.Changes, p.actions())
	}
	d := p.Rows[0].Diff
	if len(d) != 2 || d[0].Field != "SegmentDuration" || d[0].Current != 1.0 || d[0].Desired != 2.0 || d[1].Field != "PartDuration" || d[1].Desired != 700.0 {
		t.Fatalf("the update's field diff: %+v", d)
	}
	// The reads apply starts with, once per domain: the play domain's detail and configs, and
	// the ingest domain's detail (which shows it takes no configs). Domains are read alongside
	// each other, so the calls are compared in sorted order.
	if calls := slices.Sorted(slices.Values(emulatorCalls(t, base))); p.Calls != 3 || strings.Join(calls, " ") != "DescribeLiveDomainDetail DescribeLiveDomainDetail DescribeLivePackageConfig" {
		t.Fatalf("plan made %d calls: %v", p.Calls, calls)
	}
	if code, _ := plan(); code != 0 {
		t.Fatalf("plan without -detailed-exitcode: exit %d", code)
	}
	if _, p := plan("-prune"); strings.Join(p.actions(), " ") != "sports:update news:create keep:no change x:skip old:delete(pruned)" {
		t.Fatalf("plan -prune: %v", p.actions())
	}
	for _, c := range emulatorCalls(t, base) {
		if !strings.HasPrefix(c, "Describe") {
			t.Fatalf("plan wrote: %s", c)
		}
	}

	code, out, errs := run(t, env, "", "apply", "-f", doc, "-o", "text")
	if code != 0 {
		t.Fatalf("apply: exit %d\n%s\n%s", code, out, errs)
	}
	for _, w := range []string{"OUTCOME    TARGET                     CHANGE", "updated    play.example.com/sports/*", "SegmentDuration 1 → 2, PartDuration 350 → 700",
		"created    play.example.com/news/*", "unchanged  play.example.com/keep/*", "skipped    push.example.com/x/*", "notice play.example.com/sports/* updated"} {
		if !strings.Contains(out, w) {
			t.Errorf("apply's table lacks %q:\n%s", w, out)
		}
	}
	if code, p := plan("-detailed-exitcode"); code != 0 || p.Changes != 0 {
		t.Fatalf("plan after apply: exit %d, %v", code, p.actions())
	}
	// Without -prune the unnamed config stays; with it, it goes.
	if code, p := plan("-detailed-exitcode", "-prune"); code != 2 || strings.Join(p.actions(), " ") != "sports:no change news:no change keep:no change x:skip old:delete(pruned)" {
		t.Fatalf("plan -prune after apply: exit %d, %v", code, p.actions())
	}
	code, out, errs = run(t, env, "", "apply", "-f", doc, "-prune", "-o", "json")
	if code != 0 || !strings.Contains(out, `"outcome": "deleted"`) || strings.Count(out, `"outcome": "unchanged"`) != 3 {
		t.Fatalf("apply -prune: exit %d\n%s\n%s", code, out, errs)
	}
	if code, p := plan("-detailed-exitcode", "-prune"); code != 0 || p.Changes != 0 {
		t.Fatalf("plan -prune after apply -prune: exit %d, %v", code, p.actions())
	}
	// Without an id, invoking the same document plans it again: no replay, nothing to change.
	code, out, _ = run(t, env, "", "invoke", "-event", doc, "-o", "json")
	if code != 0 || !strings.Contains(out, `"replayed": false`) || strings.Contains(out, `"outcome": "created"`) {
		t.Fatalf("invoke of the applied document: exit %d\n%s", code, out)
	}
}

// TestPlanRefusesInvalid: an invalid document is reported with every error and no call.
func TestPlanRefusesInvalid(t *testing.T) {
	base := seeded(t)
	env := map[string]string{"LIVEPACK_ENDPOINT": base, "LIVEPACK_STATE": "memory", "HOME": t.TempDir()}
	for _, cmd := range []string{"plan", "apply"} {
		code, out, errs := run(t, env, `[{"DomainName":"play.example.com","AppName":"a","StreamName":"*","Protocol":"HLS","SegmentNum":1}]`, cmd, "-o", "text")
		if code != 1 || !strings.Contains(out, "InvalidProtocol") || !strings.Contains(out, "InvalidSegmentNum") || !strings.Contains(errs, "nothing was read or changed") {
			t.Fatalf("%s: exit %d\n%s\n%s", cmd, code, out, errs)
		}
	}
	if calls := emulatorCalls(t, base); len(calls) != 0 {
		t.Fatalf("an invalid document made calls: %v", calls)
	}
	code, out, _ := run(t, env, `{"DomainName":"nowhere.example.com","AppName":"a","StreamName":"*","Protocol":"HLS_CMAF"}`, "plan", "-o", "text")
	if code != 1 || !strings.Contains(out, "fail") || !strings.Contains(out, "1 failing") {
		t.Fatalf("plan of an unknown domain: exit %d\n%s", code, out)
	}
}

// TestExportRoundTrip: every config (every protocol, the API's defaults, PartDuration 0 as the
// API reports it for protocols without parts) exports as a document validate accepts and plan
// finds nothing to change in.
func TestExportRoundTrip(t *testing.T) {
	cfg := func(domain, app, proto string, num, seg, part int, ignore bool) emulator.PackageConfig {
		return emulator.PackageConfig{DomainName: domain, AppName: app, StreamName: "*", Protocol: proto, SegmentNum: num,
			SegmentDuration: seg, PartDuration: part, IgnoreTranscode: ignore}
	}
	base := seeded(t,
		cfg("play.example.com", "hls", "HLS_CMAF", 3, 5, 0, true),
		cfg("play.example.com", "llts", "LLHLS_TS", 3, 1, 350, true),
		cfg("play.example.com", "llcmaf", "LLHLS_CMAF", 4, 2, 1000, false),
		cfg("play.example.com", "dash", "DASH_CMAF", 10, 10, 0, true),
		cfg("play.example.com", "both", "HLSDASH_CMAF", 3, 1, 0, false),
		cfg("global.example.com", "sports", "LLHLS_CMAF", 3, 1, 100, true),
		emulator.PackageConfig{DomainName: "global.example.com", AppName: "news", StreamName: "evening", Protocol: "HLS_CMAF", SegmentNum: 5, SegmentDuration: 2, IgnoreTranscode: true},
	)
	env := map[string]string{"LIVEPACK_ENDPOINT": base, "LIVEPACK_STATE": "memory", "HOME": t.TempDir()}
	file := filepath.Join(t.TempDir(), "policies.json")
	if code, _, errs := run(t, env, "", "export", "-out", file); code != 0 {
		t.Fatalf("export: exit %d\n%s", code, errs)
	}
	code, out, _ := run(t, env, "", "validate", "-f", file, "-o", "json")
	if code != 0 || strings.Contains(out, "warnings") {
		t.Fatalf("validate of the export: exit %d\n%s", code, out)
	}
	code, out, _ = run(t, env, "", "plan", "-f", file, "-prune", "-detailed-exitcode", "-o", "json")
	var p planOut
	if err := json.Unmarshal([]byte(out), &p); err != nil || code != 0 || p.Changes != 0 || p.Summary["no change"] != 7 {
		t.Fatalf("plan of the export: exit %d %v\n%s", code, err, out)
	}
	code, out, _ = run(t, env, "", "export", "-domain", "global.*")
	if code != 0 || strings.Count(out, `"DomainName"`) != 2 || strings.Contains(out, "play.example.com") {
		t.Fatalf("export -domain: exit %d\n%s", code, out)
	}
	if code, _, errs := run(t, env, "", "export", "-domain", "[x"); code != 1 || !strings.Contains(errs, "domain pattern") {
		t.Fatalf("export -domain with a bad pattern: exit %d %s", code, errs)
	}
}

// TestApplyWithoutIDPlansAgain: a document without an id applied twice is planned twice (the
// second finds nothing to change, and is no replay); under -id KEY the second is a replay.
func TestApplyWithoutIDPlansAgain(t *testing.T) {
	env := map[string]string{"LIVEPACK_ENDPOINT": startEmulator(t), "LIVEPACK_STATE": "file:" + filepath.Join(t.TempDir(), "s.db"), "HOME": t.TempDir()}
	doc := `{"policies":[{"DomainName":"play.example.com","AppName":"fresh","StreamName":"*","Protocol":"HLS_CMAF"}]}`
	for i, want := range []string{`"replayed": false`, `"replayed": false`} {
		if code, out, errs := run(t, env, doc, "apply", "-o", "json"); code != 0 || !strings.Contains(out, want) {
			t.Fatalf("apply %d: exit %d\n%s\n%s", i, code, out, errs)
		}
	}
	for i, want := range []string{`"replayed": false`, `"replayed": true`} {
		if code, out, errs := run(t, env, doc, "apply", "-id", "k-1", "-o", "json"); code != 0 || !strings.Contains(out, want) {
			t.Fatalf("apply -id %d: exit %d\n%s\n%s", i, code, out, errs)
		}
	}
}
