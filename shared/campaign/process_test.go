package campaign_test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds the real livepack binary once per test run.
func binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "campaign-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "livepack")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/livepack/livepack/functions/livepack").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// serveProcess starts `livepack serve` and returns its base URL.
func serveProcess(t testing.TB, l *lab, extra map[string]string) string {
	t.Helper()
	cmd := exec.Command(binary(t), "serve", "-addr", "127.0.0.1:0")
	cmd.Env = l.environ(extra)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if os.Getenv("CAMPAIGN_DEBUG") != "" { // keep the processes' logs to read after a failure
		cmd.Stderr = os.Stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("livepack serve printed no URL: %v", err)
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	return strings.TrimSpace(line)
}

// TestTwoServeProcesses: two `livepack serve` processes sharing one Redis take 200 concurrent
// deliveries of one webhook, then many different webhooks on one domain at once.
func TestTwoServeProcesses(t *testing.T) {
	t.Parallel()
	start := time.Now()
	l := newLab(t, labOptions{redis: true})
	urls := []string{serveProcess(t, l, nil), serveProcess(t, l, nil)}
	client := &http.Client{Timeout: 60 * time.Second}
	m := newModel(3, 1, "play.example.com")

	// One webhook, delivered 200 times at once to either process.
	var ps []policy
	for i := range 3 {
		app := fmt.Sprintf("one%d", i)
		ps = append(ps, m.put("play.example.com", app, m.freshConfig(app)))
	}
	body := mustJSON(map[string]any{"policies": ps})
	statuses := &counter{}
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, s := range sendWebhook(t, client, func(a int) string { return urls[(i+a)%2] }, "msg_campaign_one", body, time.Minute) {
				statuses.add(fmt.Sprint(s), 1)
			}
		}()
	}
	wg.Wait()
	v := l.judge(m)
	report(t, "serve/one-webhook-x200", v, time.Since(start), fmt.Sprintf("answers 200=%d 429=%d 503=%d",
		statuses.get("200"), statuses.get("429"), statuses.get("503")))

	// Different webhooks on one domain, all at once.
	start = time.Now()
	n := 200
	bodies := make([][]byte, n)
	for i := range n {
		app := fmt.Sprintf("many%03d", i)
		bodies[i] = mustJSON(map[string]any{"policies": []policy{m.put("play.example.com", app, m.freshConfig(app))}})
	}
	statuses = &counter{}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, s := range sendWebhook(t, client, func(a int) string { return urls[(i+a)%2] }, fmt.Sprintf("msg_campaign_many_%03d", i), bodies[i], 3*time.Minute) {
				statuses.add(fmt.Sprint(s), 1)
			}
		}()
	}
	wg.Wait()
	v = l.judge(m)
	report(t, fmt.Sprintf("serve/%d-webhooks-one-domain", n), v, time.Since(start), fmt.Sprintf("answers 200=%d 429=%d 503=%d",
		statuses.get("200"), statuses.get("429"), statuses.get("503")))
}
