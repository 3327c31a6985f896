// Package dynalitetest starts a real DynamoDB-compatible server for tests: dynalite, in memory,
// on a loopback port, stopped when the test ends. It also isolates the AWS SDK from the machine
// it runs on, so tests never read a developer's credentials or reach AWS.
//
// dynalite is installed from shared/store/dynamostore/testdata/node by `make deps` (npm ci). It
// speaks DynamoDB's wire protocol, including condition expressions and Query, but has no TTL
// (UpdateTimeToLive is an unknown operation) and no transactions.
package dynalitetest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// RequireEnv, set to 1 (as `make unit` does), turns a missing node or dynalite into a failure
// instead of a skip, so CI cannot pass by skipping the DynamoDB backend's tests.
const RequireEnv = "LIVEPACK_REQUIRE_DYNALITE"

// Isolate points the AWS SDK of this process, and of the processes it starts, at static test
// credentials and a fixed region, and away from instance metadata and the shared config files:
// whatever the machine holds, a test signs with fake keys and resolves no real account. Call it
// from TestMain, before any test opens a client.
func Isolate() {
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":           "x",
		"AWS_SECRET_ACCESS_KEY":       "x",
		"AWS_REGION":                  "us-east-1",
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_CONFIG_FILE":             os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
	} {
		_ = os.Setenv(k, v)
	}
	// An endpoint or profile from the developer's shell would send tests elsewhere.
	for _, k := range []string{"AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"} {
		_ = os.Unsetenv(k)
	}
}

// NodeDir is the folder holding the dynalite npm package (its node_modules) and serve.js.
func NodeDir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return filepath.Join("testdata", "node")
	}
	return filepath.Join(filepath.Dir(file), "..", "testdata", "node")
}

// Start starts dynalite for the test and returns its endpoint ("http://127.0.0.1:PORT"). Without
// node or the installed npm package the test is skipped, unless LIVEPACK_REQUIRE_DYNALITE=1.
func Start(t testing.TB) string {
	t.Helper()
	endpoint, stop, err := start()
	if errors.Is(err, errMissing) {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("dynalitetest: %v (make deps installs it)", err)
		}
		t.Skipf("dynalitetest: %v; `make deps` installs it", err)
	}
	if err != nil {
		t.Fatalf("dynalitetest: %v", err)
	}
	t.Cleanup(stop)
	return endpoint
}

var errMissing = errors.New("node or dynalite is not installed")

func start() (endpoint string, stop func(), err error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return "", nil, fmt.Errorf("%w: %v", errMissing, err)
	}
	dir := NodeDir()
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "dynalite", "package.json")); err != nil {
		return "", nil, fmt.Errorf("%w: %v", errMissing, err)
	}
	cmd := exec.Command(node, "serve.js")
	cmd.Dir = dir
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start node: %w", err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			// Closing stdin asks serve.js to exit; the kill covers a server that does not.
			_ = stdin.Close()
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(2 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		})
	}
	line := make(chan string, 1)
	go func() {
		r := bufio.NewReader(stdout)
		s, _ := r.ReadString('\n')
		line <- strings.TrimSpace(s)
		_, _ = io.Copy(io.Discard, r)
	}()
	select {
	case endpoint = <-line:
	case <-time.After(30 * time.Second):
	}
	if !strings.HasPrefix(endpoint, "http://127.0.0.1:") {
		stop()
		return "", nil, fmt.Errorf("dynalite did not announce its address (got %q): %s", endpoint, stderr.String())
	}
	if err := waitReady(endpoint); err != nil {
		stop()
		return "", nil, fmt.Errorf("dynalite at %s: %w: %s", endpoint, err, stderr.String())
	}
	return endpoint, stop, nil
}

// waitReady waits until the server answers HTTP at all (any status: an unsigned request is
// refused, which is an answer).
func waitReady(endpoint string) error {
	client := &http.Client{Timeout: time.Second}
	var err error
	for range 100 {
		var resp *http.Response
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
		resp, err = client.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			cancel()
			return nil
		}
		cancel()
		time.Sleep(50 * time.Millisecond)
	}
	return err
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
