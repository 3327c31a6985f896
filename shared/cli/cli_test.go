package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"strings"
	"testing"

	"github.com/gomodule/redigo/redis"
	"github.com/livepack/livepack/shared/config"
	"github.com/livepack/livepack/shared/emulator"
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
		{"malformed", []string{"validate", "-f", "-"}, "{\n  \"DomainName\": \"a\",,\n}", 1, []string{"InvalidParams", "not valid JSON", "line 2, column 21"}},
		{"every error of every policy", []string{"validate"}, `[{"DomainName":"p.example.com","AppName":"-a","StreamName":"s","Protocol":"X","SegmentNum":"3","Colour":1},
			{"DomainName":"p.example.com","AppName":"b","StreamName":"s","Protocol":"LLHLS_TS","SegmentDuration":2,"PartDuration":5000}]`, 1,
			[]string{`"field": "AppName"`, `"field": "Protocol"`, `"field": "SegmentNum"`, `"field": "Colour"`, `"index": 1`, "InvalidPartDuration"}},
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
	if !json.Valid([]byte(out)) || !strings.Contains(out, `"type": "livepack.ingest.restart-required"`) || !strings.Contains(out, `"outcome": "created"`) {
		t.Fatalf("stdout is not one result document carrying the notice and the created outcome:\n%s", out)
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

// TestInvokeWithRedisState: with LIVEPACK_STATE=redis://… against one emulator, the
// idempotency records (and the quota) live in Redis, so a second process replays what the first
// applied.
func TestInvokeWithRedisState(t *testing.T) {
	rdb := redistest.Start(t)
	env := map[string]string{"LIVEPACK_STATE": "redis://" + rdb.Addr() + "/0", "HOME": t.TempDir(),
		"LIVEPACK_ENDPOINT": startEmulator(t)}
	code, out, errs := run(t, env, "", "invoke", "-event", "../../events/policies.json")
	if code != 0 || !strings.Contains(out, `"replayed": false`) {
		t.Fatalf("first: exit %d\n%s\n%s", code, out, errs)
	}
	code, out, errs = run(t, env, "", "invoke", "-event", "../../events/policies.json")
	if code != 0 || !strings.Contains(out, `"replayed": true`) {
		t.Fatalf("second: exit %d\n%s\n%s", code, out, errs)
	}
	ns := "cli.cn-shanghai." + config.AccountDigest(env["LIVEPACK_ENDPOINT"], func(k string) string { return env[k] })
	if n, err := redis.Int(rdb.Do(context.Background(), "EXISTS", "livepack:{"+ns+"}:quota/package")); err != nil || n != 1 {
		t.Fatalf("the shared quota key is missing: %d %v", n, err)
	}
}

// startEmulator serves an emulator with the default seed for the test's lifetime.
func startEmulator(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	u, err := emulator.Serve(ctx, "127.0.0.1:0", emulator.Options{Seed: emulator.DefaultSeed()})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestEmbeddedEmulatorStateDiesWithIt: every run on the embedded emulator starts from the seed,
// so a second run creates again rather than replaying a result recorded against the first
// emulator, whatever LIVEPACK_STATE says.
func TestEmbeddedEmulatorStateDiesWithIt(t *testing.T) {
	for name, env := range map[string]map[string]string{
		"default":    {"HOME": t.TempDir(), "XDG_CACHE_HOME": t.TempDir()},
		"state file": {"HOME": t.TempDir(), "LIVEPACK_STATE": "file:" + t.TempDir() + "/state.db"},
	} {
		t.Run(name, func(t *testing.T) {
			for i := range 2 {
				code, out, errs := run(t, env, "", "invoke", "-event", "../../events/policies.json", "-o", "json")
				if code != 0 || !strings.Contains(out, `"replayed": false`) || !strings.Contains(out, `"outcome": "created"`) {
					t.Fatalf("run %d: exit %d\n%s\n%s", i, code, out, errs)
				}
				if env["LIVEPACK_STATE"] != "" && !strings.Contains(errs, "LIVEPACK_STATE is ignored on the embedded emulator") {
					t.Fatalf("run %d: the ignored LIVEPACK_STATE is not explained:\n%s", i, errs)
				}
			}
		})
	}
}

// TestHelp: `help CMD` and `CMD -h` print the description, every flag, the exit codes and an
// example on stdout, and exit 0.
func TestHelp(t *testing.T) {
	for _, c := range commands {
		fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
		c.setup(fs, IO{})
		for _, args := range [][]string{{"help", c.name}, {c.name, "-h"}, {c.name, "--help"}} {
			code, out, errs := run(t, nil, "", args...)
			if code != 0 || errs != "" {
				t.Fatalf("%v: exit %d, stderr %q", args, code, errs)
			}
			for _, want := range []string{"livepack " + c.name + ": ", "usage: livepack " + c.name, "exit codes:", "example:\n  $ "} {
				if !strings.Contains(out, want) {
					t.Errorf("%v: stdout lacks %q:\n%s", args, want, out)
				}
			}
			fs.VisitAll(func(f *flag.Flag) {
				if !strings.Contains(out, "-"+f.Name) {
					t.Errorf("%v: flag -%s is not described:\n%s", args, f.Name, out)
				}
			})
		}
	}
	code, out, _ := run(t, nil, "", "help")
	if code != 0 {
		t.Fatalf("help: exit %d", code)
	}
	for _, c := range commands {
		if !strings.Contains(out, "  "+c.name+" ") {
			t.Errorf("help does not list %s:\n%s", c.name, out)
		}
	}
	if code, _, errs := run(t, nil, "", "help", "valdate"); code != 2 || !strings.Contains(errs, "unknown command") {
		t.Errorf("help of an unknown command: exit %d, %q", code, errs)
	}
	if code, _, errs := run(t, nil, "", "inv"); code != 2 || !strings.Contains(errs, `did you mean "invoke"`) {
		t.Errorf("a prefix of a command: exit %d, %q", code, errs)
	}
	if code, _, errs := run(t, nil, "", "validate", "-x"); code != 2 || !strings.Contains(errs, "livepack help validate") {
		t.Errorf("an unknown flag: exit %d, %q", code, errs)
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := run(t, nil, "", "version")
	if code != 0 || !strings.HasPrefix(out, "livepack ") || !strings.Contains(out, " revision ") || !strings.Contains(out, "go1.") {
		t.Fatalf("exit %d: %q", code, out)
	}
}

// TestInvokeErrorsAreReadable: a malformed event is reported by line and column, an unknown
// envelope with the list of accepted ones, and no message reads like Go internals.
func TestInvokeErrorsAreReadable(t *testing.T) {
	tests := []struct {
		name, event string
		want        []string
	}{
		{"malformed", "{\n  \"policies\": nul\n}", []string{"not valid JSON: line 2, column 18"}},
		{"unknown envelope", `{"hello": "world"}`, []string{"unrecognized event", "[hello]", "livepack accepts these events", "FC timer event", "policy document"}},
		{"empty", "  ", []string{"the event is empty", "livepack accepts these events"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errs := run(t, nil, tt.event, "invoke")
			if code != 1 {
				t.Fatalf("exit %d, want 1: %s", code, errs)
			}
			for _, w := range tt.want {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errs)
				}
			}
			for _, internal := range []string{"handler: ", "intake: ", "json: "} {
				if strings.Contains(errs, internal) {
					t.Errorf("stderr reads like Go internals (%q):\n%s", internal, errs)
				}
			}
		})
	}
}

// TestTextOutput: on a terminal, invoke prints one line per policy and per notice, in colour
// unless NO_COLOR is set; -o text off a terminal has no colour.
func TestTextOutput(t *testing.T) {
	for _, tt := range []struct {
		name  string
		tty   bool
		env   map[string]string
		args  []string
		color bool
	}{
		{"terminal", true, nil, nil, true},
		{"terminal NO_COLOR", true, map[string]string{"NO_COLOR": "1"}, nil, false},
		{"pipe -o text", false, nil, []string{"-o", "text"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			env := map[string]string{"HOME": t.TempDir()}
			for k, v := range tt.env {
				env[k] = v
			}
			code := Main(context.Background(), append([]string{"invoke", "-event", "../../events/policies.json"}, tt.args...),
				IO{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return env[k] },
					IsTerminal: func() bool { return tt.tty }})
			if code != 0 {
				t.Fatalf("exit %d\n%s\n%s", code, out.String(), errb.String())
			}
			text := out.String()
			if strings.Contains(text, "\x1b[") != tt.color {
				t.Errorf("colour %v, want %v:\n%q", !tt.color, tt.color, text)
			}
			plain := stripANSI(text)
			for _, w := range []string{"trigger direct", "Live API calls", "created    play.example.com/sports/*  LLHLS_CMAF", "LLHLS_CMAF SegmentNum=3 SegmentDuration=1 PartDuration=350",
				"notice play.example.com/sports/* created, effective after", "restart ingest of sports/final → stdout delivered"} {
				if !strings.Contains(plain, w) {
					t.Errorf("text output lacks %q:\n%s", w, plain)
				}
			}
			if json.Valid(out.Bytes()) || strings.Contains(plain, `"specversion"`) {
				t.Errorf("text output carries JSON:\n%s", plain)
			}
		})
	}
}

func stripANSI(s string) string {
	for {
		i := strings.Index(s, "\x1b[")
		if i < 0 {
			return s
		}
		j := strings.IndexByte(s[i:], 'm')
		s = s[:i] + s[i+j+1:]
	}
}

func TestSchemaCommand(t *testing.T) {
	code, out, _ := run(t, nil, "", "schema")
	if code != 0 || !json.Valid([]byte(out)) || !strings.Contains(out, `"$schema": "https://json-schema.org/draft/2020-12/schema"`) {
		t.Fatalf("schema: exit %d\n%s", code, out)
	}
}

// TestSeedSummary: the emulator's second stdout line names every domain, its kind and status,
// every online stream and the number of configs of the seed.
func TestSeedSummary(t *testing.T) {
	s := emulator.DefaultSeed()
	got := seedSummary(s)
	for _, d := range s.Domains {
		if !strings.Contains(got, d.DomainName) {
			t.Errorf("%s is not named: %s", d.DomainName, got)
		}
	}
	for _, st := range s.OnlineStreams {
		if !strings.Contains(got, st.DomainName+"/"+st.AppName+"/"+st.StreamName) {
			t.Errorf("stream %s/%s is not named: %s", st.AppName, st.StreamName, got)
		}
	}
	want := "seed: 4 play domains play.example.com, new.example.com, global.example.com, staging.example.com (configuring); 1 ingest domain push.example.com; 3 online streams"
	if !strings.HasPrefix(got, want) || !strings.HasSuffix(got, "; 0 package configs") {
		t.Errorf("seed summary:\n%s\nwant prefix:\n%s", got, want)
	}
}

// TestWebhookStatusInText: a webhook answer is headed by its HTTP status, and an error body
// is shown as its message.
func TestWebhookStatusInText(t *testing.T) {
	code, out, _ := run(t, map[string]string{"HOME": t.TempDir()}, "", "invoke", "-event", "../../events/fc-http-webhook.json", "-o", "text")
	if code != 1 || !strings.HasPrefix(out, "HTTP 401 Unauthorized") || !strings.Contains(out, "no secret configured") || strings.Contains(out, `{"error"`) {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}
