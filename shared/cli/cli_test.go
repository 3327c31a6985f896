package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/livepack/livepack/shared/redistest"
)

func run(t *testing.T, env map[string]string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, IO{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb,
		Getenv: func(k string) string { return env[k] }})
	return code, out.String(), errb.String()
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		stdin string
		code  int
		want  []string
	}{
		{"valid file", []string{"validate", "-f", "../../events/policies.json"}, "", 0, []string{`"valid": true`, `"PartDuration": 350`, `"SegmentNum": 3`}},
		{"invalid file", []string{"validate", "-f", "../../events/policies-invalid.json"}, "", 1,
			[]string{`"valid": false`, "InvalidSegmentDuration", "SegmentDurations", "InvalidProtocol"}},
		{"stdin", []string{"validate"}, `{"DomainName":"P.example.com","AppName":"a","StreamName":"s","Protocol":"hls-cmaf","PartDuration":5}`, 0,
			[]string{`"DomainName": "p.example.com"`, `"Protocol": "HLS_CMAF"`, "PartDuration is dropped"}},
		{"malformed", []string{"validate", "-f", "-"}, `{`, 1, []string{"InvalidParams"}},
		{"missing file", []string{"validate", "-f", "nope.json"}, "", 2, nil},
		{"extra argument", []string{"validate", "x"}, "", 2, nil},
		{"unknown flag", []string{"validate", "-x"}, "", 2, nil},
		{"no command", nil, "", 2, nil},
		{"unknown command", []string{"frobnicate"}, "", 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := run(t, nil, tt.stdin, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, out, errs)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			if tt.code != 2 && !json.Valid([]byte(out)) {
				t.Errorf("stdout is not one JSON document: %s", out)
			}
		})
	}
}

// TestInvokeEmbeddedEmulator runs the CLI's main job on the embedded default: no endpoint, no
// account.
func TestInvokeEmbeddedEmulator(t *testing.T) {
	env := map[string]string{"LIVEPACK_STATE": "file:" + t.TempDir() + "/state.db", "HOME": t.TempDir()}
	code, out, errs := run(t, env, "", "invoke", "-event", "../../events/policies.json")
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	if !strings.Contains(errs, "embedded") {
		t.Errorf("the embedded emulator is not announced on stderr: %s", errs)
	}
	if !strings.Contains(out, `"type":"livepack.ingest.restart-required"`) || !strings.Contains(out, `"outcome": "created"`) {
		t.Fatalf("stdout lacks the notice or the created outcome:\n%s", out)
	}
	code, out, _ = run(t, env, "", "invoke", "-event", "../../events/policies-invalid.json")
	if code != 1 || !strings.Contains(out, `"outcome": "invalid"`) {
		t.Fatalf("invalid document: exit %d\n%s", code, out)
	}
	code, _, errs = run(t, map[string]string{"LIVEPACK_RATE": "0"}, "", "invoke", "-event", "../../events/policies.json")
	if code != 2 || !strings.Contains(errs, "LIVEPACK_RATE") {
		t.Fatalf("bad config: exit %d, stderr %s", code, errs)
	}
}

// TestInvokeWithRedisState: with LIVEPACK_STATE=redis://… the idempotency records (and the
// quota) live in Redis, so a second process replays what the first applied.
func TestInvokeWithRedisState(t *testing.T) {
	rdb := redistest.Start(t)
	env := map[string]string{"LIVEPACK_STATE": "redis://" + rdb.Options().Addr + "/0", "HOME": t.TempDir()}
	code, out, errs := run(t, env, "", "invoke", "-event", "../../events/policies.json")
	if code != 0 || !strings.Contains(out, `"replayed": false`) {
		t.Fatalf("first: exit %d\n%s\n%s", code, out, errs)
	}
	code, out, errs = run(t, env, "", "invoke", "-event", "../../events/policies.json")
	if code != 0 || !strings.Contains(out, `"replayed": true`) {
		t.Fatalf("second: exit %d\n%s\n%s", code, out, errs)
	}
	if n, err := rdb.Exists(context.Background(), "livepack:{cli.cn-shanghai}:quota").Result(); err != nil || n != 1 {
		t.Fatalf("the shared quota key is missing: %d %v", n, err)
	}
}
