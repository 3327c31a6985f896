package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livepack/livepack/shared/lambdarie"
)

// hellos are the baselines each livepack figure is reported against, measured in the same run,
// each built once: the smallest aws-lambda-go function, and the same function linking
// livepack's libraries.
var hellos sync.Map // tags → func() (string, error)

// helloBuild builds hello-world with extra build tags.
func helloBuild(b *testing.B, tags string) string {
	f, _ := hellos.LoadOrStore(tags, sync.OnceValues(func() (string, error) {
		out := filepath.Join(filepath.Dir(bootstrap), "hello"+strings.ReplaceAll(tags, ",", "-"))
		cmd := exec.Command("go", "build", "-tags", "lambda.norpc"+tags, "-o", out, "../../shared/lambdarie/testdata/hellolambda")
		cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0")
		if msg, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("build hello-world (tags %q): %w\n%s", tags, err, msg)
		}
		return out, nil
	}))
	bin, err := f.(func() (string, error))()
	if err != nil {
		b.Fatal(err)
	}
	return bin
}

// helloLambda builds the smallest aws-lambda-go function.
func helloLambda(b *testing.B) string { return helloBuild(b, "") }

// helloLibraries builds hello-world linking every third-party package livepack imports
// (TestLibrariesBaseline): their package initialization is a floor no livepack code can lower.
func helloLibraries(b *testing.B) string { return helloBuild(b, ",livepacklibs") }

type fn struct {
	name    string
	binary  func(*testing.B) string
	env     func(*testing.B) []string
	payload []byte
}

func functions() []fn {
	return []fn{
		{"hello", helloLambda, func(*testing.B) []string { return nil }, []byte(`{"action":"echo"}`)},
		{"libraries", helloLibraries, func(*testing.B) []string { return nil }, []byte(`{"action":"echo"}`)},
		{"livepack", func(*testing.B) string { return bootstrap }, benchEnv, []byte(`{"specversion":"1.0","id":"bench","source":"bench","type":"bench.noop"}`)},
	}
}

// The livepack payload is an event it decodes and ignores: the figures are the binary's own
// overhead (start, configuration, wiring, decoding), not Live API work.

// coldEvent is a real event for the cold start: one policy applied against the emulator (the
// domain's detail, its configs and its online streams read, then the Add: four calls), so the
// figure includes the first Live API calls and their connection.
var coldEvent = []byte(`{"policies":[{"DomainName":"play.example.com","AppName":"bench","StreamName":"*","Protocol":"HLS_CMAF"}]}`)

// BenchmarkColdStart measures bootstrap start to first response under the Lambda runtime
// interface emulator: the process starts on the first invocation, as on Lambda. livepack
// applies one policy (a fresh emulator each time); hello-world echoes.
func BenchmarkColdStart(b *testing.B) {
	for _, f := range functions() {
		b.Run(f.name, func(b *testing.B) {
			bin := f.binary(b)
			payload := f.payload
			if f.name == "livepack" {
				payload = coldEvent
			}
			for b.Loop() {
				// The RIE's own start is not the function's: only the first invocation, which
				// starts the bootstrap process, is timed.
				b.StopTimer()
				r := lambdarie.Start(b, bin, f.env(b))
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				b.StartTimer()
				out, err := r.Invoke(ctx, payload)
				b.StopTimer()
				cancel()
				r.Close()
				if err != nil {
					b.Fatal(err)
				}
				if f.name == "livepack" && (!bytes.Contains(out, []byte(`"created"`)) || !strings.Contains(r.Logs(), `"ApiCalls":4,`)) {
					b.Fatalf("the policy was not applied in four calls: %s\n%s", out, r.Logs())
				}
				b.StartTimer()
			}
		})
	}
}

// BenchmarkInvoke measures one warm invocation through the runtime API loop.
func BenchmarkInvoke(b *testing.B) {
	for _, f := range functions() {
		b.Run(f.name, func(b *testing.B) {
			r := lambdarie.Start(b, f.binary(b), f.env(b))
			ctx := context.Background()
			if _, err := r.Invoke(ctx, f.payload); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := r.Invoke(ctx, f.payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestLibrariesBaseline: the libraries baseline links exactly the third-party packages
// livepack's own packages import, so the cold-start floor it measures is livepack's and no
// other. A library added to or dropped from livepack fails this until the baseline follows.
func TestLibrariesBaseline(t *testing.T) {
	list := func(args ...string) map[string]bool {
		cmd := exec.Command("go", append([]string{"list"}, args...)...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list %v: %v", args, err)
		}
		set := map[string]bool{}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			pkg, imports, _ := strings.Cut(line, "|")
			if pkg != "" && !strings.HasPrefix(pkg, "github.com/livepack/livepack/shared/") && pkg != "github.com/livepack/livepack/functions/livepack" &&
				!strings.HasSuffix(pkg, "/hellolambda") {
				continue
			}
			for _, imp := range strings.Fields(imports) {
				if strings.Contains(strings.Split(imp, "/")[0], ".") && !strings.HasPrefix(imp, "github.com/livepack/livepack/") {
					set[imp] = true
				}
			}
		}
		return set
	}
	format := `{{if not .Standard}}{{.ImportPath}}|{{join .Imports " "}}{{end}}`
	want := list("-deps", "-tags", "lambda.norpc", "-f", format, ".")
	got := list("-tags", "lambda.norpc,livepacklibs", "-f", format, "../../shared/lambdarie/testdata/hellolambda")
	for p := range want {
		if !got[p] {
			t.Errorf("livepack imports %s; the libraries baseline (shared/lambdarie/testdata/hellolambda/libraries.go) does not", p)
		}
	}
	for p := range got {
		if !want[p] {
			t.Errorf("the libraries baseline imports %s; livepack does not", p)
		}
	}
}
