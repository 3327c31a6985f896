package main

import (
	"context"
	"os/exec"
	"path/filepath"
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
			helloErr = err
			b.Logf("%s", out)
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
		{"livepack", func(*testing.B) string { return bootstrap }, benchEnv, []byte(`{"specversion":"1.0","id":"bench","source":"bench","type":"bench.noop"}`)},
	}
}

// The livepack payload is an event it decodes and ignores: the figures are the binary's own
// overhead (start, configuration, wiring, decoding), not Live API work.

// BenchmarkColdStart measures bootstrap start to first response under the Lambda runtime
// interface emulator: the process starts on the first invocation, as on Lambda.
func BenchmarkColdStart(b *testing.B) {
	for _, f := range functions() {
		b.Run(f.name, func(b *testing.B) {
			bin, env := f.binary(b), f.env(b)
			for b.Loop() {
				// The RIE's own start is not the function's: only the first invocation, which
				// starts the bootstrap process, is timed.
				b.StopTimer()
				r := lambdarie.Start(b, bin, env)
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				b.StartTimer()
				_, err := r.Invoke(ctx, f.payload)
				b.StopTimer()
				cancel()
				r.Close()
				if err != nil {
					b.Fatal(err)
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
