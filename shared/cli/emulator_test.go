package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livepack/livepack/shared/emulator"
)

// lockedBuffer is a bytes.Buffer written by a running command and read by the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

func TestEmulatorFlags(t *testing.T) {
	for _, args := range [][]string{{"-fail-kinds", "boom"}, {"-domain-hidden", "-1s"}, {"-domain-configuring", "x"}} {
		if code, _, _ := run(t, nil, "", append([]string{"emulator"}, args...)...); code != 2 {
			t.Errorf("emulator %v: exit %d, want 2", args, code)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	out, errs := &lockedBuffer{}, &lockedBuffer{}
	done := make(chan int)
	go func() {
		done <- Main(ctx, []string{"emulator", "-domain-hidden", "1h", "-fail-kinds", "commit,latency"},
			IO{Stdin: strings.NewReader(""), Stdout: out, Stderr: errs, Getenv: func(string) string { return "" }})
	}()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("emulator exit %d: %s", code, errs)
		}
	}()
	var url string
	for deadline := time.Now().Add(10 * time.Second); url == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		url, _, _ = strings.Cut(out.String(), "\n")
		if !strings.HasSuffix(out.String(), "\n") {
			url = ""
		}
	}
	if url == "" {
		t.Fatalf("no URL on stdout; stderr: %s", errs)
	}
	resp, err := http.Post(url+"/_emulator/domains", "application/json", strings.NewReader(`{"DomainName":"later.example.com"}`))
	if err != nil {
		t.Fatal(err)
	}
	var added struct{ VisibleAt time.Time }
	_ = json.NewDecoder(resp.Body).Decode(&added)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || time.Until(added.VisibleAt) < 59*time.Minute {
		t.Fatalf("POST /_emulator/domains: %d, visible at %v (want an hour from now)", resp.StatusCode, added.VisibleAt)
	}
	resp, err = http.Get(url + "/_emulator/state")
	if err != nil {
		t.Fatal(err)
	}
	state, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var seed emulator.Seed
	if err := json.Unmarshal(state, &seed); err != nil {
		t.Fatal(err)
	}
	// Hidden: not among the domains, listed as arriving.
	if strings.Contains(fmt.Sprint(seed.Domains), "later.example.com") || len(seed.Arriving) != 1 || seed.Arriving[0].DomainName != "later.example.com" {
		t.Fatalf("a hidden domain in the state: %s", state)
	}
}
