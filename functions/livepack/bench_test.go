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

var (
	helloOnce sync.Once
	hello     string
	helloErr  error
)

// helloLambda builds the smallest aws-lambda-go function: the baseline each livepack figure is
// reported against, measured in the same run.
func helloLambda(b *testing.B) string {
	helloOnce.Do(func() {
		hello = filepath.Join(filepath.Dir(bootstrap), "hello")
		cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", hello, "../../shared/lambdarie/testdata/hellolambda")
		cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			helloErr = fmt.Errorf("build hello-world: %w\n%s", err, out)
		}
	})
	if helloErr != nil {
		b.Fatal(helloErr)
	}
	return hello
}

type fn struct {
	name    string
	binary  func(*testing.B) string
	env     func(*testing.B) []string
	payload []byte
}

func functions() []fn {
	return []fn{
		{"hello", helloLambda, func(*testing.B) []string { return nil }, []byte(`{"action":"echo"}`)},
		{"livepack", func(*testing.B) string { return lambdaBootstrap }, benchEnv, []byte(`{"specversion":"1.0","id":"bench","source":"bench","type":"bench.noop"}`)},
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
			var inits, invokes time.Duration
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
				in, inv, ok := r.Phases()
				if !ok {
					b.Fatalf("the RIE logged no INIT REPORT or INVOKE RTDONE:\n%s", r.EmulatorLogs())
				}
				inits, invokes = inits+in, invokes+inv
				if f.name == "livepack" && (!bytes.Contains(out, []byte(`"created"`)) || !strings.Contains(r.Logs(), `"ApiCalls":4,`)) {
					b.Fatalf("the policy was not applied in four calls: %s\n%s", out, r.Logs())
				}
				b.StartTimer()
			}
			// The RIE's split of the same starts: init (process start to the first request for
			// an event) and init done to first response (the first invocation).
			b.ReportMetric(float64(inits.Microseconds())/1e3/float64(b.N), "init-ms")
			b.ReportMetric(float64(invokes.Microseconds())/1e3/float64(b.N), "first-invoke-ms")
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
