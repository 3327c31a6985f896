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

// ErrPermanent marks a notice a sink refused for good (a 4xx other than 408/429, a 3xx, or a
// DingTalk configuration error such as a bad signature or missing keyword). Retrying the same
// notice cannot succeed, so the caller records it as failed instead of leaving it pending for
// the scheduled resend.
var ErrPermanent = errors.New("notify: refused permanently")

const (
	// maxAttempts bounds the tries of one Deliver; the scheduled resend covers the rest.
	maxAttempts = 6
	// noDeadlineBudget bounds the retries of a Deliver whose ctx has no deadline (the CLI), so a
	// dead endpoint cannot hang a command.
	noDeadlineBudget = 2 * time.Minute
	// attemptMargin is the least time an attempt needs after its wait; with less left, the
	// attempt would only be cut off by the deadline.
	attemptMargin = 100 * time.Millisecond
	// bodyLimit caps how much of a response is read: receivers' bodies are not ours to trust.
	bodyLimit = 64 << 10
	// dingTalkThrottle is how long DingTalk blocks a robot that sent over 20 messages a minute.
	dingTalkThrottle = 10 * time.Minute
)

type options struct {
	stdout io.Writer
	client *http.Client
	now    func() time.Time
}

// Option adjusts the sinks ParseSinks builds, so hosts and tests can redirect their effects.
type Option func(*options)

// WithStdout sets where the stdout sink writes (os.Stdout by default), so the CLI can keep
// notices on the same stream as its result and tests can capture them.
func WithStdout(w io.Writer) Option { return func(o *options) { o.stdout = w } }

// WithHTTPClient sets the HTTP client of the webhook and DingTalk sinks, for proxies and tests.
// The default has a 15 s timeout and does not follow redirects.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.client = c } }

// WithClock sets the clock that timestamps signatures (webhook-timestamp, DingTalk's
// timestamp), so signed requests are reproducible in tests.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// ParseSinks builds the sinks of LIVEPACK_NOTIFY, so a bad value fails at start rather than at
// the first change. spec is a comma-separated list of `stdout`, DingTalk robot URLs
// (https://oapi.dingtalk.com/robot/send?access_token=…) and other http(s) URLs (generic
// webhooks); "" means none. secret (LIVEPACK_NOTIFY_SECRET, a `whsec_` secret or empty) signs
// the generic webhooks. A DingTalk robot's own signing secret is given as a `#SEC…` fragment
// or a `secret=SEC…` query parameter; it is taken off the URL before use and never logged.
// An HTTP sink is named by its scheme and host plus a short digest of the rest (sinkName), and
// errors show an item as its scheme and host only: tokens live in paths and queries.
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
		case hasScheme(item, "http://") || hasScheme(item, "https://"):
			u, err := url.Parse(item)
			if err != nil || u.Host == "" {
				return nil, fmt.Errorf("notify: sink %q is not a valid URL", redact(item))
			}
			if strings.EqualFold(u.Hostname(), "oapi.dingtalk.com") {
				s = newDingTalk(u, o)
			} else {
				u.Fragment, u.RawFragment = "", ""
				s = &webhookSink{url: u.String(), name: sinkName(u), secret: secret, o: o}
			}
		default:
			return nil, fmt.Errorf("notify: sink %q: want stdout, an http(s) URL or a DingTalk robot URL", redact(item))
		}
		if seen[s.Name()] {
			return nil, fmt.Errorf("notify: sink %s is listed twice (results key sinks by name)", s.Name())
		}
		seen[s.Name()] = true
		sinks = append(sinks, s)
	}
	return sinks, nil
}

func hasScheme(s, scheme string) bool {
	return len(s) >= len(scheme) && strings.EqualFold(s[:len(scheme)], scheme)
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
		return fmt.Errorf("notify: stdout: %w: %w", ErrPermanent, err)
	}
	buf.WriteByte('\n')
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("notify: stdout: %w", err)
	}
	return nil
}

// webhookSink posts the CloudEvent as is (structured mode) with Standard Webhooks headers, so
// a receiver can verify it and deduplicate on webhook-id, which is the notice id.
type webhookSink struct {
	url, name, secret string
	o                 options
}

func (s *webhookSink) Name() string { return s.name }

func (s *webhookSink) Deliver(ctx context.Context, n Notice) error {
	return retry(ctx, s.name, s.o.client, func() (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(n.JSON))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/cloudevents+json; charset=utf-8")
		// Signed per attempt: webhook-timestamp is the attempt's time, so a late retry is not
		// rejected as stale, while webhook-id stays the same.
		if s.secret != "" {
			h, err := webhooksig.Sign(s.secret, n.ID, s.o.now(), n.JSON)
			if err != nil {
				return nil, err
			}
			for k, v := range h {
				req.Header[k] = v
			}
		} else {
			req.Header.Set("webhook-id", n.ID)
			req.Header.Set("webhook-timestamp", strconv.FormatInt(s.o.now().Unix(), 10))
		}
		return req, nil
	}, nil)
}

// retryLater is a transient failure with a known earliest retry (Retry-After, DingTalk's
// throttle window).
type retryLater struct {
	err  error
	wait time.Duration
}

func (r *retryLater) Error() string { return r.err.Error() }
func (r *retryLater) Unwrap() error { return r.err }

// retry sends a request until it is delivered, refused for good, or the time left leaves no
// room for another attempt; check, when set, reads a 2xx body for errors reported inside it.
//
// It follows the retry table of the reference (§2.5): 2xx done; 408, 429, 5xx and network
// errors retried with capped exponential backoff and jitter, honouring Retry-After; anything
// else permanent. backoff.Retry is not used as a whole because it sleeps until the deadline
// fires and then returns the ctx error, losing the HTTP status, where a notice sink should
// stop as soon as the next wait cannot fit and report the last real failure.
func retry(ctx context.Context, name string, client *http.Client, build func() (*http.Request, error), check func([]byte) error) error {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = 300*time.Millisecond, 10*time.Second
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(noDeadlineBudget)
	}
	var last error
	for attempt := 1; ; attempt++ {
		req, err := build()
		if err != nil {
			return fmt.Errorf("notify: %s: %w: %w", name, ErrPermanent, err)
		}
		err = attemptOnce(client, req, name, check)
		if err != nil && ctx.Err() != nil && last != nil {
			// Cut off by the deadline: the answer before says more than "deadline exceeded".
			return last
		}
		last = err
		if last == nil || errors.Is(last, ErrPermanent) {
			return last
		}
		wait := b.NextBackOff()
		var later *retryLater
		if errors.As(last, &later) && later.wait > 0 {
			wait = later.wait
		}
		if attempt >= maxAttempts || wait == backoff.Stop || time.Until(deadline) < wait+attemptMargin {
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
}

// attemptOnce makes one request and classifies its answer.
func attemptOnce(client *http.Client, req *http.Request, name string, check func([]byte) error) error {
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("notify: %s: %w", name, scrub(err, name))
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, bodyLimit))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, bodyLimit)) // lets the connection be reused
	_ = resp.Body.Close()
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		if check != nil {
			return check(body)
		}
		return nil
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		return &retryLater{err: fmt.Errorf("notify: %s: HTTP %d", name, code), wait: retryAfter(resp.Header.Get("Retry-After"))}
	default:
		return fmt.Errorf("notify: %s: HTTP %d: %w", name, code, ErrPermanent)
	}
}

// scrub replaces the URL of a transport error with the sink's name: its path and query hold
// tokens and signatures.
func scrub(err error, name string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return &url.Error{Op: ue.Op, URL: name, Err: ue.Err}
	}
	return err
}

// retryAfter reads a Retry-After header in either of its forms (seconds or an HTTP date).
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return time.Until(t)
	}
	return 0
}

// dingTalk posts a markdown summary to a DingTalk custom robot, for teams that live in a chat
// rather than behind a webhook receiver.
type dingTalk struct {
	url    *url.URL
	secret string
	o      options
}

// newDingTalk takes the robot's signing secret off the URL (fragment or `secret` parameter),
// so the URL that is sent, and that may appear in errors, never carries it.
func newDingTalk(u *url.URL, o options) *dingTalk {
	q := u.Query()
	secret := q.Get("secret")
	q.Del("secret")
	if u.Fragment != "" {
		secret = u.Fragment
	}
	clean := *u
	clean.RawQuery = q.Encode()
	clean.Fragment, clean.RawFragment = "", ""
	return &dingTalk{url: &clean, secret: secret, o: o}
}

func (d *dingTalk) Name() string { return sinkName(d.url) }

func (d *dingTalk) Deliver(ctx context.Context, n Notice) error {
	msg, err := markdown(n)
	if err != nil {
		return fmt.Errorf("notify: dingtalk: %w: %w", ErrPermanent, err)
	}
	return retry(ctx, d.Name(), d.o.client, func() (*http.Request, error) {
		u := *d.url
		if d.secret != "" {
			// Signed per attempt: DingTalk refuses a timestamp over an hour off.
			ts, sign := dingTalkSign(d.secret, d.o.now())
			q := u.Query()
			q.Set("timestamp", ts)
			q.Set("sign", sign) // Encode escapes it once, as DingTalk expects
			u.RawQuery = q.Encode()
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(msg))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
		return req, nil
	}, dingTalkResult)
}

// dingTalkSign is DingTalk's robot signature: base64(HMAC-SHA256(secret, ms + "\n" + secret)),
// with the timestamp in milliseconds.
func dingTalkSign(secret string, now time.Time) (ts, sign string) {
	ts = strconv.FormatInt(now.UnixMilli(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "\n" + secret))
	return ts, base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// dingTalkResult reads DingTalk's answer, which reports errors with HTTP 200: 130101 is its
// 20-per-minute throttle, which lifts after 10 minutes (so the notice stays pending for a
// later resend); any other non-zero code (310000: bad signature, keyword, IP) is a
// configuration error that no retry fixes.
func dingTalkResult(body []byte) error {
	var r struct {
		ErrCode *int   `json:"errcode"`
		ErrMsg  string `json:"errmsg"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.ErrCode == nil {
		return errors.New("notify: dingtalk: unreadable answer")
	}
	switch *r.ErrCode {
	case 0:
		return nil
	case 130101:
		return &retryLater{err: fmt.Errorf("notify: dingtalk: throttled (%d %s)", *r.ErrCode, r.ErrMsg), wait: dingTalkThrottle}
	}
	return fmt.Errorf("notify: dingtalk: %d %s: %w", *r.ErrCode, r.ErrMsg, ErrPermanent)
}

// markdown renders a notice for people reading a chat at a glance: what, where, when, and
// which streams to restart.
func markdown(n Notice) ([]byte, error) {
	var ev struct {
		Type    string          `json:"type"`
		Subject string          `json:"subject"`
		Data    json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(n.JSON, &ev); err != nil {
		return nil, err
	}
	var title string
	var b strings.Builder
	switch ev.Type {
	case TypeRestart:
		var d restartData
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			return nil, err
		}
		title = "livepack: " + d.Outcome + " " + ev.Subject
		fmt.Fprintf(&b, "### livepack: packaging %s\n\n**%s**\n\n", d.Outcome, ev.Subject)
		if d.Config != nil {
			fmt.Fprintf(&b, "- Config: %s\n", describe(d.Config))
		}
		if d.Previous != nil {
			fmt.Fprintf(&b, "- Was: %s\n", describe(d.Previous))
		}
		fmt.Fprintf(&b, "- Effective after: %s\n", d.EffectiveAfter)
		if len(d.RestartIngest) == 0 {
			b.WriteString("- Restart ingest: none online (applies from the next push)\n")
		} else {
			fmt.Fprintf(&b, "- **Restart ingest (%d):**\n", len(d.RestartIngest))
			for _, s := range d.RestartIngest {
				fmt.Fprintf(&b, "  - %s/%s (%s)\n", s.AppName, s.StreamName, s.PublishURL)
			}
		}
		fmt.Fprintf(&b, "\n%s\n", d.Message)
	case TypeDrift:
		var d driftData
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			return nil, err
		}
		title = "livepack: reconcile drift"
		fmt.Fprintf(&b, "### livepack: %d drifted config(s)\n\n", d.Count)
		for _, x := range d.Drift {
			fmt.Fprintf(&b, "- %s: %s\n", x.Target, x.Change)
		}
		fmt.Fprintf(&b, "\n%s\n", d.Message)
	case TypePass:
		var d struct {
			passTotals
			Pass    int     `json:"pass"`
			Changed []Drift `json:"drift"`
			Count   int     `json:"count"`
			Message string  `json:"message"`
		}
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			return nil, err
		}
		title = fmt.Sprintf("livepack: reconcile pass %d complete", d.Pass)
		fmt.Fprintf(&b, "### livepack: reconcile pass %d complete\n\n", d.Pass)
		fmt.Fprintf(&b, "- Domains: %d (checked %d, gone %d)\n", d.Domains, d.Checked, d.Gone)
		fmt.Fprintf(&b, "- **Drifted configs: %d**\n", d.DriftConfig)
		fmt.Fprintf(&b, "- **Failed: %d**\n", d.Failed)
		fmt.Fprintf(&b, "- Started: %s\n", d.StartedAt.Format(time.RFC3339))
		if d.SameAsLast {
			b.WriteString("- Same drift as the previous pass\n")
		}
		if d.Count > 0 {
			fmt.Fprintf(&b, "- Drift that changed (%d):\n", d.Count)
			for _, x := range d.Changed {
				fmt.Fprintf(&b, "  - %s: %s\n", x.Target, x.Change)
			}
		}
		fmt.Fprintf(&b, "\n%s\n", d.Message)
	default:
		title = "livepack: " + ev.Type
		fmt.Fprintf(&b, "### %s\n\n%s\n", title, ev.Subject)
	}
	return json.Marshal(map[string]any{"msgtype": "markdown", "markdown": map[string]string{"title": title, "text": b.String()}})
}
