package lambdarie

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// StartTimeout bounds how long Start waits for the RIE to accept connections.
const StartTimeout = 15 * time.Second

// stopGrace is how long Close lets the RIE stop its runtime before it kills the RIE.
const stopGrace = 3 * time.Second

const invokePath = "/2015-03-31/functions/function/invocations"

// ErrExited is returned by Invoke when the RIE process is no longer running.
var ErrExited = errors.New("lambdarie: emulator exited")

// inheritedEnv lists the variables the RIE, and through it the function, inherits from the test
// process; everything else comes from Start's env.
var inheritedEnv = []string{"PATH", "HOME", "TMPDIR", "TZ", "LANG"}

var (
	binaryOnce sync.Once
	binaryPath string
	binaryErr  error
)

// Binary returns the path of the aws-lambda-rie tool pinned in go.mod, building it into the Go
// build cache the first time (`go tool -n aws-lambda-rie`). Call it from a directory inside the
// module, as `go test` does.
func Binary(t testing.TB) string {
	t.Helper()
	binaryOnce.Do(func() {
		out, err := exec.Command("go", "tool", "-n", "aws-lambda-rie").Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				err = fmt.Errorf("%w: %s", err, ee.Stderr)
			}
			binaryErr = fmt.Errorf("lambdarie: go tool -n aws-lambda-rie: %w", err)
			return
		}
		binaryPath = strings.TrimSpace(string(out))
		if _, err := os.Stat(binaryPath); err != nil {
			binaryErr = fmt.Errorf("lambdarie: aws-lambda-rie: %w", err)
		}
	})
	if binaryErr != nil {
		t.Fatal(binaryErr)
	}
	return binaryPath
}

// RIE is one running Runtime Interface Emulator with its function. Its methods are safe for
// concurrent use; invocations run one at a time.
type RIE struct {
	// URL is the invocation endpoint.
	URL string

	cmd      *exec.Cmd
	exited   chan struct{}
	exitErr  error
	stdout   syncBuffer
	stderr   syncBuffer
	client   *http.Client
	busy     chan struct{}
	closeOne sync.Once
}

// Start runs binary under a new RIE on two free loopback ports (the invocation endpoint and the
// runtime API the function polls) with env (KEY=value; PATH, HOME, TMPDIR, TZ and LANG are
// inherited, nothing else), in the binary's directory, and waits until the RIE accepts
// connections. As on Lambda, the function itself starts on the first invocation. Cleanup stops
// the RIE, which stops the function. Call it from the test goroutine.
func Start(t testing.TB, binary string, env []string) *RIE {
	t.Helper()
	abs, err := filepath.Abs(binary)
	if err != nil {
		t.Fatalf("lambdarie: %v", err)
	}
	rie := Binary(t)
	var lastErr error
	// Free ports are found by listening and closing, so another process may take one first;
	// the RIE then exits at once and a second pair is tried.
	for range 3 {
		r, err := start(rie, abs, env)
		if err == nil {
			t.Cleanup(func() {
				r.Close()
				if t.Failed() {
					t.Logf("lambdarie: function output:\n%s\nemulator log:\n%s", r.Logs(), r.EmulatorLogs())
				}
			})
			return r
		}
		lastErr = err
	}
	t.Fatal(lastErr)
	return nil
}

func start(rie, binary string, env []string) (*RIE, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	invokeAddr, apiAddr := ports[0], ports[1]
	// No "--" before the binary: the RIE would try to exec "--".
	cmd := exec.Command(rie,
		"--runtime-interface-emulator-address", invokeAddr,
		"--runtime-api-address", apiAddr,
		binary)
	cmd.Dir = filepath.Dir(binary)
	for _, k := range inheritedEnv {
		if v, ok := os.LookupEnv(k); ok {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = time.Second
	r := &RIE{
		URL:    "http://" + invokeAddr + invokePath,
		cmd:    cmd,
		exited: make(chan struct{}),
		busy:   make(chan struct{}, 1),
		client: &http.Client{Transport: &http.Transport{}},
	}
	cmd.Stdout, cmd.Stderr = &r.stdout, &r.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("lambdarie: start %s: %w", rie, err)
	}
	go func() {
		r.exitErr = cmd.Wait()
		close(r.exited)
	}()
	deadline := time.Now().Add(StartTimeout)
	for {
		c, err := net.DialTimeout("tcp", invokeAddr, time.Second)
		if err == nil {
			_ = c.Close()
			return r, nil
		}
		select {
		case <-r.exited:
			return nil, fmt.Errorf("lambdarie: emulator exited before listening on %s: %v\n%s", invokeAddr, r.exitErr, r.EmulatorLogs())
		case <-time.After(2 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			r.Close()
			return nil, fmt.Errorf("lambdarie: emulator not listening on %s after %v\n%s", invokeAddr, StartTimeout, r.EmulatorLogs())
		}
	}
}

func freePorts(n int) ([]string, error) {
	addrs := make([]string, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("lambdarie: finding a free port: %w", err)
		}
		defer ln.Close()
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs, nil
}

// InvokeOption sets a header of one invocation.
type InvokeOption func(*http.Request)

// WithRequestID sets the invocation's request id (X-Amzn-RequestId), which the function sees as
// its AWS request id; without it the RIE makes a fresh UUID.
func WithRequestID(id string) InvokeOption {
	return func(r *http.Request) { r.Header.Set("X-Amzn-RequestId", id) }
}

// Invoke sends payload and returns the function's answer. Like the RIE itself, it does not tell
// a handler error apart: that arrives as a body {"errorMessage","errorType"}. err is non-nil
// when no answer came: ctx ended, the RIE answered other than 200, or it exited (ErrExited).
// When ctx ends first, the invocation still finishes inside the RIE before the next one starts.
func (r *RIE) Invoke(ctx context.Context, payload []byte, opts ...InvokeOption) ([]byte, error) {
	select {
	case r.busy <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("lambdarie: invoke: waiting for the previous invocation: %w", ctx.Err())
	case <-r.exited:
		return nil, fmt.Errorf("%w: %v", ErrExited, r.exitErr)
	}
	req, err := http.NewRequest(http.MethodPost, r.URL, bytes.NewReader(payload))
	if err != nil {
		<-r.busy
		return nil, fmt.Errorf("lambdarie: invoke: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	for _, opt := range opts {
		opt(req)
	}
	type answer struct {
		body []byte
		err  error
	}
	done := make(chan answer, 1)
	// The request is not bound to ctx: abandoning it would leave the RIE busy, and the next
	// invocation would overlap it.
	go func() {
		defer func() { <-r.busy }()
		resp, err := r.client.Do(req)
		if err != nil {
			done <- answer{err: fmt.Errorf("lambdarie: invoke: %w", err)}
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		switch {
		case err != nil:
			err = fmt.Errorf("lambdarie: invoke: reading the answer: %w", err)
		case resp.StatusCode != http.StatusOK:
			err = fmt.Errorf("lambdarie: invoke: emulator answered %s: %s", resp.Status, body)
		}
		done <- answer{body: body, err: err}
	}()
	select {
	case a := <-done:
		return a.body, a.err
	case <-ctx.Done():
		return nil, fmt.Errorf("lambdarie: invoke: %w", ctx.Err())
	case <-r.exited:
		return nil, fmt.Errorf("%w: %v", ErrExited, r.exitErr)
	}
}

// Logs returns what the function wrote to stdout and stderr so far (the RIE merges both),
// without the emulator's own START, END and REPORT lines.
func (r *RIE) Logs() string {
	var b strings.Builder
	sc := bufio.NewScanner(strings.NewReader(r.stdout.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "START RequestId: ") || strings.HasPrefix(line, "END RequestId: ") ||
			strings.HasPrefix(line, "REPORT RequestId: ") {
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}

// EmulatorLogs returns the RIE's own log (its stderr).
func (r *RIE) EmulatorLogs() string { return r.stderr.String() }

// The RIE's own accounting of a start, as Lambda reports it: "INIT REPORT(durationMs: 7.037000)"
// from the process's start to its first request for an event, and "INVOKE RTDONE(..., duration:
// 6.403000ms)" from handing the event over to the answer.
var (
	initReport = regexp.MustCompile(`INIT REPORT\(durationMs: ([0-9.]+)\)`)
	invokeDone = regexp.MustCompile(`INVOKE RTDONE\(.*duration: ([0-9.]+)ms\)`)
)

// Phases returns the RIE's figures for the function's start: init (process start to ready for
// the first event) and the first invocation (event handed over to answer). ok is false until
// the RIE has logged both.
func (r *RIE) Phases() (init, firstInvoke time.Duration, ok bool) {
	logs := r.EmulatorLogs()
	i, v := initReport.FindStringSubmatch(logs), invokeDone.FindStringSubmatch(logs)
	if i == nil || v == nil {
		return 0, 0, false
	}
	ms := func(s string) time.Duration {
		f, _ := strconv.ParseFloat(s, 64)
		return time.Duration(f * float64(time.Millisecond))
	}
	return ms(i[1]), ms(v[1]), true
}

// Close stops the RIE, which kills the function first. It is idempotent; Start registers it with
// t.Cleanup, and loops that start many emulators call it early.
func (r *RIE) Close() {
	r.closeOne.Do(func() {
		defer r.client.CloseIdleConnections()
		if r.cmd.Process == nil {
			return
		}
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.exited:
		case <-time.After(stopGrace):
			_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
			<-r.exited
		}
	})
}

// syncBuffer is a bytes.Buffer the process's output goroutines and the test read at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
