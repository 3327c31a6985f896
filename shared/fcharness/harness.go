package fcharness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
)

// DefaultTimeout is the function timeout an invocation gets without WithTimeout.
const DefaultTimeout = 30 * time.Second

// StartTimeout bounds how long Start waits for the binary's first poll of /next.
const StartTimeout = 15 * time.Second

// Default context an invocation carries unless WithHeader overrides it; the values look like
// the platform's own so that code reading fccontext sees a plausible function.
const (
	DefaultFunctionName = "fc-function"
	DefaultRegion       = "cn-shanghai"
	DefaultAccountID    = "1234567890123456"
)

const apiPrefix = "/2020-11-11/runtime/invocation/"

// ErrExited is returned by Invoke when the function process is no longer running.
var ErrExited = errors.New("fcharness: function process exited")

// inheritedEnv lists the variables the function inherits from the test process. Everything
// else comes from Start's env, so a credential in the developer's shell cannot leak into a
// test that means to prove which credentials the function used.
var inheritedEnv = []string{"PATH", "HOME", "TMPDIR", "TZ", "LANG"}

// Harness is a running function binary and the FC runtime API it pulls invocations from. It is
// safe for concurrent use: like the platform with instanceConcurrency > 1, it hands out
// concurrent invocations to the SDK's concurrent polls.
type Harness struct {
	ln       net.Listener
	srv      *http.Server
	cmd      *exec.Cmd
	queue    chan *invocation
	ready    chan struct{}
	readyOne sync.Once
	exited   chan struct{}
	exitErr  error
	closing  chan struct{}
	closeOne sync.Once
	stdout   syncBuffer
	stderr   syncBuffer

	mu      sync.Mutex
	pending map[string]*invocation
}

type invocation struct {
	id      string
	payload []byte
	timeout time.Duration
	header  http.Header
	done    chan outcome
}

type outcome struct {
	body    []byte
	isError bool
}

// Start serves an FC runtime API on 127.0.0.1:0, starts binary with FC_RUNTIME_API pointing at
// it plus env (KEY=value; PATH, HOME, TMPDIR, TZ and LANG are inherited, nothing else), and
// waits for the binary's first poll. Cleanup kills the binary before it stops the API, since
// fc-runtime-go-sdk polls again without pause when /next fails. Call it from the test
// goroutine: it fails the test when the binary exits or never polls.
func Start(t testing.TB, binary string, env []string) *Harness {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("fcharness: listen: %v", err)
	}
	h := &Harness{
		ln:      ln,
		queue:   make(chan *invocation),
		ready:   make(chan struct{}),
		exited:  make(chan struct{}),
		closing: make(chan struct{}),
		pending: map[string]*invocation{},
	}
	h.srv = &http.Server{
		Handler:           h.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	go func() { _ = h.srv.Serve(ln) }()

	cmd := exec.Command(binary)
	for _, k := range inheritedEnv {
		if v, ok := os.LookupEnv(k); ok {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.Env = append(cmd.Env, "FC_RUNTIME_API="+ln.Addr().String())
	cmd.Stdout, cmd.Stderr = &h.stdout, &h.stderr
	// Its own process group, so Close also ends anything the function started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		_ = h.srv.Close()
		t.Fatalf("fcharness: start %s: %v", binary, err)
	}
	h.cmd = cmd
	go func() {
		h.exitErr = cmd.Wait()
		close(h.exited)
	}()
	t.Cleanup(func() {
		h.Close()
		if t.Failed() {
			t.Logf("fcharness: function stderr:\n%s", h.Logs())
		}
	})

	select {
	case <-h.ready:
	case <-h.exited:
		t.Fatalf("fcharness: %s exited before polling for an invocation: %v\nstderr:\n%s", binary, h.exitErr, h.Logs())
	case <-time.After(StartTimeout):
		t.Fatalf("fcharness: %s did not poll %s within %v\nstderr:\n%s", binary, apiPrefix+"next", StartTimeout, h.Logs())
	}
	return h
}

// Addr is the runtime API's host:port, the value of the function's FC_RUNTIME_API.
func (h *Harness) Addr() string { return h.ln.Addr().String() }

// Logs returns everything the function wrote to stderr so far: its own logs and the SDK's.
func (h *Harness) Logs() string { return h.stderr.String() }

// Stdout returns everything the function wrote to stdout so far (the SDK's "FC Invoke Start"
// and "FC Invoke End" lines among it).
func (h *Harness) Stdout() string { return h.stdout.String() }

// Close kills the function and then stops the runtime API. It is idempotent; Start registers
// it with t.Cleanup, and loops that start many harnesses call it early.
func (h *Harness) Close() {
	h.closeOne.Do(func() {
		if h.cmd != nil && h.cmd.Process != nil {
			_ = syscall.Kill(-h.cmd.Process.Pid, syscall.SIGKILL)
			<-h.exited
		}
		close(h.closing)
		_ = h.srv.Close()
	})
}

// InvokeOption sets what the platform would send with one invocation.
type InvokeOption func(*invokeOptions)

type invokeOptions struct {
	requestID string
	timeout   time.Duration
	header    http.Header
}

// WithCredentials sends the role's STS credentials, as FC does for a function with a role
// (x-fc-access-key-id, x-fc-access-key-secret, x-fc-security-token).
func WithCredentials(accessKeyID, accessKeySecret, securityToken string) InvokeOption {
	return func(o *invokeOptions) {
		o.header.Set("x-fc-access-key-id", accessKeyID)
		o.header.Set("x-fc-access-key-secret", accessKeySecret)
		o.header.Set("x-fc-security-token", securityToken)
	}
}

// WithTimeout sets the function timeout (x-fc-function-timeout, whole seconds rounded up) and
// the deadline (x-fc-function-deadline), which counts from when the function takes the
// invocation.
func WithTimeout(d time.Duration) InvokeOption {
	return func(o *invokeOptions) { o.timeout = d }
}

// WithRetryCount sets x-fc-retry-count, the number of earlier attempts of an asynchronous
// invocation.
func WithRetryCount(n int) InvokeOption {
	return func(o *invokeOptions) { o.header.Set("x-fc-retry-count", strconv.Itoa(n)) }
}

// WithRequestID sets x-fc-request-id; without it each invocation gets a fresh UUID.
func WithRequestID(id string) InvokeOption {
	return func(o *invokeOptions) { o.requestID = id }
}

// WithHeader sets any other x-fc-* header, or overrides a default one.
func WithHeader(name, value string) InvokeOption {
	return func(o *invokeOptions) { o.header.Set(name, value) }
}

// Invoke hands payload to the function and waits for its answer: the body it posted to
// /response, or (isError true) the error document it posted to /error, which for
// fc-runtime-go-sdk is {"errorMessage","errorType","stackTrace"}. err is non-nil only when no
// answer came: ctx ended, or the process exited (ErrExited).
func (h *Harness) Invoke(ctx context.Context, payload []byte, opts ...InvokeOption) (body []byte, isError bool, err error) {
	o := invokeOptions{timeout: DefaultTimeout, header: http.Header{}}
	for _, opt := range opts {
		opt(&o)
	}
	if o.requestID == "" {
		o.requestID = uuid.NewString()
	}
	inv := &invocation{id: o.requestID, payload: payload, timeout: o.timeout, header: o.header, done: make(chan outcome, 1)}
	h.mu.Lock()
	if _, dup := h.pending[inv.id]; dup {
		h.mu.Unlock()
		return nil, false, fmt.Errorf("fcharness: request id %s is already in flight", inv.id)
	}
	h.pending[inv.id] = inv
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.pending, inv.id)
		h.mu.Unlock()
	}()

	// An unbuffered hand-off: an invocation the caller gave up on is never delivered.
	select {
	case h.queue <- inv:
	case <-ctx.Done():
		return nil, false, fmt.Errorf("fcharness: invoke %s: waiting for the function to poll: %w", inv.id, ctx.Err())
	case <-h.exited:
		return nil, false, h.exitedError(inv.id)
	}
	select {
	case out := <-inv.done:
		return out.body, out.isError, nil
	case <-ctx.Done():
		return nil, false, fmt.Errorf("fcharness: invoke %s: waiting for the answer: %w", inv.id, ctx.Err())
	case <-h.exited:
		return nil, false, h.exitedError(inv.id)
	}
}

func (h *Harness) exitedError(id string) error {
	return fmt.Errorf("%w: invoke %s: %v", ErrExited, id, h.exitErr)
}

func (h *Harness) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+apiPrefix+"next", h.next)
	mux.HandleFunc("POST "+apiPrefix+"{id}/response", func(w http.ResponseWriter, r *http.Request) { h.answer(w, r, false) })
	mux.HandleFunc("POST "+apiPrefix+"{id}/error", func(w http.ResponseWriter, r *http.Request) { h.answer(w, r, true) })
	return mux
}

// next blocks until an invocation is handed over: answering early would make the SDK poll
// again at once.
func (h *Harness) next(w http.ResponseWriter, r *http.Request) {
	h.readyOne.Do(func() { close(h.ready) })
	select {
	case inv := <-h.queue:
		hdr := w.Header()
		hdr.Set("Content-Type", "application/octet-stream")
		hdr.Set("x-fc-function-name", DefaultFunctionName)
		hdr.Set("x-fc-function-handler", "main")
		hdr.Set("x-fc-function-memory", "512")
		hdr.Set("x-fc-region", DefaultRegion)
		hdr.Set("x-fc-account-id", DefaultAccountID)
		hdr.Set("x-fc-qualifier", "LATEST")
		hdr.Set("x-fc-retry-count", "0")
		for k, v := range inv.header {
			hdr[k] = v
		}
		hdr.Set("x-fc-request-id", inv.id)
		hdr.Set("x-fc-function-timeout", strconv.Itoa(int(math.Ceil(inv.timeout.Seconds()))))
		hdr.Set("x-fc-function-deadline", strconv.FormatInt(time.Now().Add(inv.timeout).UnixMilli(), 10))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(inv.payload)
	case <-r.Context().Done():
	case <-h.closing:
		http.Error(w, "runtime API stopping", http.StatusServiceUnavailable)
	}
}

func (h *Harness) answer(w http.ResponseWriter, r *http.Request, isError bool) {
	id := r.PathValue("id")
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "reading the body: "+err.Error(), http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	inv := h.pending[id]
	h.mu.Unlock()
	if inv == nil {
		http.Error(w, "no invocation "+id+" in flight", http.StatusNotFound)
		return
	}
	select {
	case inv.done <- outcome{body: body, isError: isError}:
		w.WriteHeader(http.StatusOK)
	default:
		http.Error(w, "invocation "+id+" already answered", http.StatusConflict)
	}
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
