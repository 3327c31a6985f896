package cli

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/livepack/livepack/shared/webhooksig"
)

// TestServeMetrics: `livepack serve` answers the CMS webhook and exposes Prometheus metrics of
// what it handled on /metrics.
func TestServeMetrics(t *testing.T) {
	const secret = "whsec_c2VydmUtbWV0cmljcy10ZXN0LXNlY3JldC0wMTIzNDU2Nzg5"
	env := map[string]string{"LIVEPACK_ENDPOINT": startEmulator(t), "LIVEPACK_WEBHOOK_SECRET": secret, "LIVEPACK_STATE": "memory",
		"LIVEPACK_NOTIFY": "", "HOME": t.TempDir()}
	base := startServe(t, env)

	body, err := os.ReadFile("../../events/policies.json")
	if err != nil {
		t.Fatal(err)
	}
	h, err := webhooksig.Sign(secret, "msg_serve_metrics", time.Now(), body)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, base, bytes.NewReader(body))
	req.Header = h
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("webhook: HTTP %d", resp.StatusCode)
	}

	resp, err = http.Get(base + "metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(resp.Body)
	for _, want := range []string{`livepack_invocations_total{error="false",trigger="cms-webhook"} 1`, `livepack_outcomes_total{outcome="failed"} 0`,
		`livepack_outcomes_total{outcome="created"}`, "livepack_api_calls_total", "livepack_notices_pending 0", "livepack_invocation_duration_seconds_count"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("/metrics lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(string(text), "livepack_api_calls_total 0\n") {
		t.Error("no Live API call counted")
	}
}

// startServe runs `livepack serve` on a free loopback port with env until the test ends, and
// returns the base URL it printed.
func startServe(t *testing.T, env map[string]string) string {
	t.Helper()
	outR, outW := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"serve", "-addr", "127.0.0.1:0"}, IO{Stdin: strings.NewReader(""), Stdout: outW, Stderr: io.Discard,
			Getenv: func(k string) string { return env[k] }})
		_ = outW.Close()
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	base, err := bufio.NewReader(outR).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = io.Copy(io.Discard, outR) }()
	return strings.TrimSpace(base)
}
