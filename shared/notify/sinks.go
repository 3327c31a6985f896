package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/livepack/livepack/shared/webhooksig"
)

// ErrPermanent: the sink refused the notice for good (a 4xx other than 408/429, a 3xx, or a
// DingTalk configuration error). Retrying the same notice cannot succeed.
var ErrPermanent = errors.New("notify: refused permanently")

type options struct {
	stdout io.Writer
	client *http.Client
	now    func() time.Time
}

// Option adjusts ParseSinks.
type Option func(*options)

// WithStdout sets where the stdout sink writes (os.Stdout by default).
func WithStdout(w io.Writer) Option { return func(o *options) { o.stdout = w } }

// WithHTTPClient sets the HTTP client of the webhook and DingTalk sinks.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.client = c } }

// WithClock sets the clock that timestamps signatures.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// ParseSinks builds the sinks of LIVEPACK_NOTIFY: a comma-separated list of `stdout`, generic
// http(s) webhook URLs and DingTalk robot URLs (oapi.dingtalk.com). secret, a `whsec_` secret
// or empty, signs the generic webhooks. A DingTalk robot's own signing secret goes in the URL
// as `secret=SEC…`; it is removed from the URL before use and never logged.
func ParseSinks(spec, secret string, opts ...Option) ([]Sink, error) {
	// Redirects are not followed: a 3xx means the URL needs fixing, not a silent detour.
	o := options{stdout: os.Stdout, now: time.Now, client: &http.Client{Timeout: 15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	for _, f := range opts {
		f(&o)
	}
	if secret != "" {
		if _, err := webhooksig.NewVerifier(secret); err != nil {
			return nil, fmt.Errorf("notify secret: %w", err)
		}
	}
	var sinks []Sink
	seen := map[string]bool{}
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		var s Sink
		switch {
		case item == "stdout":
			s = &stdoutSink{w: o.stdout}
		case strings.HasPrefix(item, "http://") || strings.HasPrefix(item, "https://"):
			u, err := url.Parse(item)
			if err != nil || u.Host == "" {
				return nil, fmt.Errorf("notify: sink %q is not a valid URL", redact(item))
			}
			if u.Hostname() == "oapi.dingtalk.com" {
				s = newDingTalk(u, o)
			} else {
				s = &webhookSink{url: u.String(), name: u.Host + u.Path, secret: secret, o: o}
			}
		default:
			return nil, fmt.Errorf("notify: sink %q: want stdout, an http(s) URL or a DingTalk robot URL", redact(item))
		}
		if seen[s.Name()] {
			return nil, fmt.Errorf("notify: sink %s is listed twice", s.Name())
		}
		seen[s.Name()] = true
		sinks = append(sinks, s)
	}
	return sinks, nil
}

// redact drops a URL's query and credentials: robot tokens and secrets live there.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		if i := strings.IndexAny(s, "?#"); i >= 0 {
			return s[:i] + "?…"
		}
		return s
	}
	if u.RawQuery != "" {
		u.RawQuery = "…"
	}
	u.User, u.Fragment = nil, ""
	return u.String()
}

// stdoutSink writes one JSON line per notice; a mutex keeps concurrent lines whole.
type stdoutSink struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *stdoutSink) Name() string { return "stdout" }

func (s *stdoutSink) Deliver(_ context.Context, n Notice) error {
	var buf bytes.Buffer
	if err := json.Compact(&buf, n.JSON); err != nil {
		return fmt.Errorf("notify: stdout: %w", err)
	}
	buf.WriteByte('\n')
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("notify: stdout: %w", err)
	}
	return nil
}

// webhookSink posts the CloudEvent as is (structured mode) with Standard Webhooks headers.
type webhookSink struct {
	url, name, secret string
	o                 options
}

func (s *webhookSink) Name() string { return s.name }

func (s *webhookSink) Deliver(ctx context.Context, n Notice) error {
	return retry(ctx, s.name, func() (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(n.JSON))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/cloudevents+json; charset=utf-8")
		req.Header.Set("webhook-id", n.ID)
		if s.secret != "" {
			h, err := webhooksig.Sign(s.secret, n.ID, s.o.now(), n.JSON)
			if err != nil {
				return nil, err
			}
			for k, v := range h {
				req.Header[k] = v
			}
		} else {
			req.Header.Set("webhook-timestamp", strconv.FormatInt(s.o.now().Unix(), 10))
		}
		return req, nil
	}, s.o.client, nil)
}

// retry sends a request until it is delivered, refused for good, or the deadline leaves no
// time for another attempt. check, when set, reads a 2xx body for errors reported inside it.
func retry(ctx context.Context, name string, build func() (*http.Request, error), client *http.Client, check func([]byte) error) error {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = 300*time.Millisecond, 10*time.Second
	var last error
	for attempt := 1; attempt <= 6; attempt++ {
		req, err := build()
		if err != nil {
			return fmt.Errorf("notify: %s: %w: %w", name, ErrPermanent, err)
		}
		wait := b.NextBackOff()
		resp, err := client.Do(req)
		switch {
		case err != nil:
			last = fmt.Errorf("notify: %s: %w", name, err)
		default:
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			_ = resp.Body.Close()
			switch {
			case resp.StatusCode >= 200 && resp.StatusCode < 300:
				if check == nil {
					return nil
				}
				if err := check(body); err == nil || errors.Is(err, ErrPermanent) {
					return err
				} else {
					last = err
				}
			case resp.StatusCode == 408 || resp.StatusCode == 429 || resp.StatusCode >= 500:
				last = fmt.Errorf("notify: %s: HTTP %d", name, resp.StatusCode)
				if ra := retryAfter(resp.Header.Get("Retry-After")); ra > 0 {
					wait = min(ra, 20*time.Second)
				}
			default:
				return fmt.Errorf("notify: %s: HTTP %d: %w", name, resp.StatusCode, ErrPermanent)
			}
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return last
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return last
		case <-t.C:
		}
	}
	return last
}

func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return time.Until(t)
	}
	return 0
}

// dingTalk posts a markdown summary to a DingTalk custom robot.
type dingTalk struct {
	url    *url.URL
	secret string
	o      options
}

func newDingTalk(u *url.URL, o options) *dingTalk {
	q := u.Query()
	secret := q.Get("secret")
	q.Del("secret")
	clean := *u
	clean.RawQuery = q.Encode()
	return &dingTalk{url: &clean, secret: secret, o: o}
}

func (d *dingTalk) Name() string { return "dingtalk" }

func (d *dingTalk) Deliver(ctx context.Context, n Notice) error {
	msg, err := markdown(n)
	if err != nil {
		return fmt.Errorf("notify: dingtalk: %w: %w", ErrPermanent, err)
	}
	return retry(ctx, "dingtalk", func() (*http.Request, error) {
		u := *d.url
		if d.secret != "" {
			// Signed per attempt: DingTalk refuses a timestamp over an hour old.
			ts := strconv.FormatInt(d.o.now().UnixMilli(), 10)
			mac := hmac.New(sha256.New, []byte(d.secret))
			mac.Write([]byte(ts + "\n" + d.secret))
			q := u.Query()
			q.Set("timestamp", ts)
			q.Set("sign", base64.StdEncoding.EncodeToString(mac.Sum(nil)))
			u.RawQuery = q.Encode()
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(msg))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
		return req, nil
	}, d.o.client, dingTalkResult)
}

// dingTalkResult reads DingTalk's answer, which reports errors with HTTP 200: 130101 is its
// 20-per-minute throttle (worth a later retry), any other non-zero code a configuration error.
func dingTalkResult(body []byte) error {
	var r struct {
		ErrCode int    `json:"errcode"`
		ErrMsg  string `json:"errmsg"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("notify: dingtalk: unreadable answer: %w", err)
	}
	switch r.ErrCode {
	case 0:
		return nil
	case 130101:
		return fmt.Errorf("notify: dingtalk: throttled (%d %s)", r.ErrCode, r.ErrMsg)
	}
	return fmt.Errorf("notify: dingtalk: %d %s: %w", r.ErrCode, r.ErrMsg, ErrPermanent)
}

// markdown renders a notice for people reading a chat at a glance.
func markdown(n Notice) ([]byte, error) {
	var ev struct {
		Type    string          `json:"type"`
		Subject string          `json:"subject"`
		Data    json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(n.JSON, &ev); err != nil {
		return nil, err
	}
	var title, text string
	switch ev.Type {
	case TypeRestart:
		var d restartData
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			return nil, err
		}
		title = "livepack: " + d.Outcome + " " + ev.Subject
		var b strings.Builder
		fmt.Fprintf(&b, "### Live packaging %s\n\n**%s**\n\n", d.Outcome, ev.Subject)
		if d.Config != nil {
			fmt.Fprintf(&b, "- Config: %s\n", describe(d.Config))
		}
		fmt.Fprintf(&b, "- Effective after: %s\n", d.EffectiveAfter)
		if len(d.RestartIngest) == 0 {
			b.WriteString("- Restart ingest: none online (applies from the next push)\n")
		} else {
			b.WriteString("- **Restart ingest:**\n")
			for _, s := range d.RestartIngest {
				fmt.Fprintf(&b, "  - %s/%s (%s)\n", s.AppName, s.StreamName, s.PublishURL)
			}
		}
		fmt.Fprintf(&b, "\n%s\n", d.Message)
		text = b.String()
	default:
		var d driftData
		_ = json.Unmarshal(ev.Data, &d)
		title = "livepack: reconcile drift"
		var b strings.Builder
		fmt.Fprintf(&b, "### Reconcile: %d drifted config(s)\n\n", d.Count)
		for _, x := range d.Drift {
			fmt.Fprintf(&b, "- %s: %s\n", x.Target, x.Change)
		}
		fmt.Fprintf(&b, "\n%s\n", d.Message)
		text = b.String()
	}
	return json.Marshal(map[string]any{"msgtype": "markdown", "markdown": map[string]string{"title": title, "text": text}})
}
