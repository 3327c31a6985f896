package fcharness_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livepack/livepack/shared/fcharness"
)

var hellofc string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fcharness-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	hellofc = filepath.Join(dir, "hellofc")
	build := exec.Command("go", "build", "-o", hellofc, "./testdata/hellofc")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building hellofc: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

type reply struct {
	Hello        string `json:"hello"`
	RequestID    string `json:"requestId"`
	AccessKeyID  string `json:"accessKeyId"`
	HasSecret    bool   `json:"hasSecret"`
	Token        string `json:"securityToken"`
	Timeout      int    `json:"timeout"`
	RetryCount   int    `json:"retryCount"`
	FunctionName string `json:"functionName"`
	Region       string `json:"region"`
	DeadlineMs   int64  `json:"deadlineMs"`
	Env          string `json:"env"`
}

type sdkError struct {
	Message    string `json:"errorMessage"`
	Type       string `json:"errorType"`
	StackTrace []any  `json:"stackTrace"`
}

func invoke(t *testing.T, h *fcharness.Harness, payload string, opts ...fcharness.InvokeOption) ([]byte, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	body, isErr, err := h.Invoke(ctx, []byte(payload), opts...)
	if err != nil {
		t.Fatalf("Invoke(%s): %v", payload, err)
	}
	return body, isErr
}

func decode[T any](t *testing.T, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("decoding %s: %v", body, err)
	}
	return v
}

func TestInvokeCarriesTheFCContext(t *testing.T) {
	h := fcharness.Start(t, hellofc, []string{"HELLO_ENV=from-start"})
	before := time.Now()
	body, isErr := invoke(t, h, `{"action":"echo"}`,
		fcharness.WithRequestID("req-ctx-1"),
		fcharness.WithCredentials("STS.key", "sts-secret", "sts-token"),
		fcharness.WithTimeout(7*time.Second),
		fcharness.WithRetryCount(2),
		fcharness.WithHeader("x-fc-region", "cn-hangzhou"))
	after := time.Now()
	if isErr {
		t.Fatalf("isError = true, body %s", body)
	}
	got := decode[reply](t, body)
	want := reply{Hello: "world", RequestID: "req-ctx-1", AccessKeyID: "STS.key", HasSecret: true, Token: "sts-token",
		Timeout: 7, RetryCount: 2, FunctionName: fcharness.DefaultFunctionName, Region: "cn-hangzhou",
		DeadlineMs: got.DeadlineMs, Env: "from-start"}
	if got != want {
		t.Errorf("reply = %+v, want %+v", got, want)
	}
	if lo, hi := before.Add(7*time.Second).UnixMilli(), after.Add(7*time.Second).UnixMilli(); got.DeadlineMs < lo || got.DeadlineMs > hi {
		t.Errorf("deadline %d outside [%d, %d]: not now + the timeout", got.DeadlineMs, lo, hi)
	}
}

func TestInvokeDefaults(t *testing.T) {
	h := fcharness.Start(t, hellofc, nil)
	got := decode[reply](t, must(invoke(t, h, `{}`)))
	if got.RequestID == "" || got.AccessKeyID != "" || got.HasSecret || got.Token != "" ||
		got.Timeout != int(fcharness.DefaultTimeout/time.Second) || got.RetryCount != 0 || got.Region != fcharness.DefaultRegion {
		t.Errorf("reply = %+v, want a fresh request id, no credentials, the default timeout and region", got)
	}
}

func must(body []byte, isErr bool) []byte {
	if isErr {
		panic("unexpected function error: " + string(body))
	}
	return body
}

func TestEnvironmentIsNotInherited(t *testing.T) {
	t.Setenv("HELLO_ENV", "from-the-test-process")
	h := fcharness.Start(t, hellofc, nil)
	if got := decode[reply](t, must(invoke(t, h, `{}`))); got.Env != "" {
		t.Errorf("HELLO_ENV = %q inside the function, want it unset", got.Env)
	}
}

func TestHandlerErrorAndPanic(t *testing.T) {
	h := fcharness.Start(t, hellofc, nil)
	for _, tc := range []struct {
		name, payload, message string
		stack                  bool
	}{
		{name: "error", payload: `{"action":"error"}`, message: "boom"},
		{name: "panic", payload: `{"action":"panic"}`, message: "kaboom", stack: true},
		{name: "panic again", payload: `{"action":"panic"}`, message: "kaboom", stack: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, isErr := invoke(t, h, tc.payload)
			if !isErr {
				t.Fatalf("isError = false, body %s", body)
			}
			got := decode[sdkError](t, body)
			if got.Message != tc.message || got.Type == "" || (len(got.StackTrace) > 0) != tc.stack {
				t.Errorf("error = %+v, want message %q, a type, stack trace %v", got, tc.message, tc.stack)
			}
		})
	}
	// The SDK keeps the process after a panic: the next invocation is served as usual.
	if got := decode[reply](t, must(invoke(t, h, `{"action":"after"}`))); got.Hello != "world" {
		t.Errorf("after the panics: %+v", got)
	}
}

func TestLogsAndStdoutAreCaptured(t *testing.T) {
	h := fcharness.Start(t, hellofc, nil)
	invoke(t, h, `{"action":"logged"}`, fcharness.WithRequestID("req-log-1"))
	// The function's output reaches the harness through pipes, which may trail the answer.
	for deadline := time.Now().Add(5 * time.Second); (!strings.Contains(h.Logs(), "req-log-1") || !strings.Contains(h.Stdout(), "req-log-1")) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	var line map[string]any
	for l := range strings.Lines(h.Logs()) {
		if strings.Contains(l, "req-log-1") {
			if err := json.Unmarshal([]byte(l), &line); err != nil {
				t.Fatalf("log line %q: %v", l, err)
			}
		}
	}
	if line["requestId"] != "req-log-1" || line["action"] != "logged" {
		t.Errorf("stderr has no JSON line for req-log-1:\n%s", h.Logs())
	}
	if !strings.Contains(h.Stdout(), "FC Invoke Start RequestId: req-log-1") {
		t.Errorf("stdout lacks the SDK's start line:\n%s", h.Stdout())
	}
}

func TestConcurrentInvocations(t *testing.T) {
	h := fcharness.Start(t, hellofc, nil)
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("req-par-%d", i)
			body, isErr, err := h.Invoke(context.Background(), []byte(`{"action":"sleep","sleepMs":50}`), fcharness.WithRequestID(id))
			var got reply
			switch {
			case err != nil:
				errs <- err
			case isErr:
				errs <- fmt.Errorf("%s: function error %s", id, body)
			case json.Unmarshal(body, &got) != nil || got.RequestID != id:
				errs <- fmt.Errorf("%s: answered %s", id, body)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestDuplicateRequestIDInFlight(t *testing.T) {
	h := fcharness.Start(t, hellofc, nil)
	first := make(chan error, 1)
	go func() {
		_, _, err := h.Invoke(context.Background(), []byte(`{"action":"sleep","sleepMs":300}`), fcharness.WithRequestID("dup"))
		first <- err
	}()
	// The function logs the id once it holds the invocation, which is then in flight.
	for !strings.Contains(h.Logs(), `"requestId":"dup"`) {
		time.Sleep(5 * time.Millisecond)
	}
	_, _, err := h.Invoke(context.Background(), []byte(`{}`), fcharness.WithRequestID("dup"))
	if err == nil || !strings.Contains(err.Error(), "already in flight") {
		t.Errorf("second invoke with the same id: err = %v, want already in flight", err)
	}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
}

func TestContextEndsTheWait(t *testing.T) {
	h := fcharness.Start(t, hellofc, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, _, err := h.Invoke(ctx, []byte(`{"action":"sleep","sleepMs":2000}`))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
}

func TestInvokeAfterClose(t *testing.T) {
	h := fcharness.Start(t, hellofc, nil)
	h.Close()
	h.Close()
	_, _, err := h.Invoke(context.Background(), []byte(`{}`))
	if !errors.Is(err, fcharness.ErrExited) {
		t.Fatalf("err = %v, want ErrExited", err)
	}
}
