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
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/livepack/livepack/shared/policy"
	"github.com/livepack/livepack/shared/webhooksig"
)

var at = time.Date(2026, 11, 24, 8, 1, 0, 0, time.UTC)

func change() Change {
	return Change{ID: "0f1e2d3c4b5a69788796a5b4c3d2e1f0", Target: policy.Target{DomainName: "play.example.com", AppName: "sports", StreamName: "*"},
		Outcome: "created", Config: &policy.Config{Protocol: "LLHLS_CMAF", SegmentNum: 3, SegmentDuration: 1, PartDuration: 350, IgnoreTranscode: true},
		At: at, Scope: "domestic",
		Online: []Stream{{"sports", "final", "rtmp://push.example.com/sports/final"}, {"news", "evening", "rtmp://push.example.com/news/evening"}}}
}

func data(t *testing.T, n Notice) restartData {
	t.Helper()
	var ev struct {
		SpecVersion string      `json:"specversion"`
		ID          string      `json:"id"`
		Source      string      `json:"source"`
		Type        string      `json:"type"`
		Subject     string      `json:"subject"`
		Time        string      `json:"time"`
		Data        restartData `json:"data"`
	}
	if err := json.Unmarshal(n.JSON, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.SpecVersion != "1.0" || ev.ID != n.ID || ev.Source != "livepack" || ev.Type != TypeRestart || ev.Time != "2026-11-24T08:01:00Z" {
		t.Fatalf("envelope: %s", n.JSON)
	}
	return ev.Data
}

// TestBuildGolden pins the notice byte for byte: it is a public contract (DESIGN §8), and a
// pending notice must be rebuilt identically.
func TestBuildGolden(t *testing.T) {
	c := change()
	c.At = at.Add(250 * time.Millisecond).In(time.FixedZone("CST", 8*3600)) // UTC, whole seconds
	n, err := Build(c)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"specversion":"1.0","id":"0f1e2d3c4b5a69788796a5b4c3d2e1f0","source":"livepack",` +
		`"type":"livepack.ingest.restart-required","subject":"play.example.com/sports/*",` +
		`"datacontenttype":"application/json","time":"2026-11-24T08:01:00Z",` +
		`"data":{"DomainName":"play.example.com","AppName":"sports","StreamName":"*","outcome":"created",` +
		`"config":{"Protocol":"LLHLS_CMAF","SegmentNum":3,"SegmentDuration":1,"PartDuration":350,"IgnoreTranscode":true},` +
		`"previous":null,"effectiveAfter":"2026-11-24T08:06:00Z",` +
		`"restartIngest":[{"AppName":"sports","StreamName":"final","PublishUrl":"rtmp://push.example.com/sports/final"}],` +
		`"message":"Packaging for play.example.com/sports/* was created: LLHLS_CMAF, 3 segments of 1 s, parts of 350 ms; ` +
		`it takes effect by 2026-11-24T08:06:00Z (3 to 5 minutes) and only for streams pushed after that. ` +
		`Restart ingest of 1 stream(s): sports/final."}}`
	if string(n.JSON) != want {
		t.Fatalf("got\n%s\nwant\n%s", n.JSON, want)
	}
	if n.ID != "0f1e2d3c4b5a69788796a5b4c3d2e1f0" || len(n.ID) != 32 {
		t.Fatalf("id %q", n.ID)
	}
	// A CloudEvents consumer reads it as a valid 1.0 event.
	var ev event.Event
	if err := json.Unmarshal(n.JSON, &ev); err != nil {
		t.Fatal(err)
	}
	if err := ev.Validate(); err != nil || ev.ID() != n.ID || ev.Source() != Source || ev.Subject() != "play.example.com/sports/*" {
		t.Fatalf("SDK reads %v: %v", ev, err)
	}
}

func TestBuildDeletedAndUpdated(t *testing.T) {
	prev := &policy.Config{Protocol: "HLS_CMAF", SegmentNum: 3, SegmentDuration: 5, IgnoreTranscode: true}
	c := change()
	c.Outcome, c.Previous, c.Config = "deleted", prev, nil
	n, err := Build(c)
	if err != nil {
		t.Fatal(err)
	}
	d := data(t, n)
	if d.Config != nil || d.Previous == nil || !bytes.Contains(n.JSON, []byte(`"config":null`)) || !strings.HasPrefix(d.Message, "Packaging for play.example.com/sports/* was deleted;") {
		t.Fatalf("deleted: %s", n.JSON)
	}
	c = change()
	c.Outcome, c.Previous = "updated", prev
	n, _ = Build(c)
	if d := data(t, n); *d.Previous != *prev || !strings.Contains(d.Message, "was updated to LLHLS_CMAF") {
		t.Fatalf("updated: %s", n.JSON)
	}
}

// TestIDIsTheOccurrence: a notice's id is the change occurrence's (fixed when its intent was
// recorded), whatever else the change says; a change without one is refused, never given an id
// derived from its content (a change that recurs would reuse it).
func TestIDIsTheOccurrence(t *testing.T) {
	base, _ := Build(change())
	for _, edit := range []func(*Change){
		func(c *Change) { c.Online = nil },
		func(c *Change) { c.Config.SegmentNum = 4 },
		func(c *Change) { c.Target.AppName = "news" },
		func(c *Change) { c.At = c.At.Add(time.Minute) },
	} {
		c := change()
		edit(&c)
		if n, err := Build(c); err != nil || n.ID != c.ID || n.ID != base.ID {
			t.Fatalf("id %s, %v; want the change's own %s", n.ID, err, c.ID)
		}
	}
	c := change()
	c.ID = ""
	if _, err := Build(c); err == nil {
		t.Fatal("a change without an id was built")
	}
	again, _ := Build(change())
	if !bytes.Equal(again.JSON, base.JSON) {
		t.Fatal("the same change built twice differs")
	}
}

func TestRestartIngestMatching(t *testing.T) {
	tests := []struct {
		app, stream string
		want        []string
	}{
		{"*", "*", []string{"sports/final", "news/evening"}},
		{"sports", "*", []string{"sports/final"}},
		{"*", "evening", []string{"news/evening"}},
		{"sports", "final", []string{"sports/final"}},
		{"sports", "semi", nil},
		{"music", "*", nil},
		{"Sports", "*", nil}, // names are case-sensitive, as in the API
	}
	for _, tt := range tests {
		c := change()
		c.Target.AppName, c.Target.StreamName = tt.app, tt.stream
		n, _ := Build(c)
		d := data(t, n)
		var got []string
		for _, s := range d.RestartIngest {
			got = append(got, s.AppName+"/"+s.StreamName)
		}
		if strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("%s/%s: %v, want %v", tt.app, tt.stream, got, tt.want)
		}
		if len(tt.want) == 0 {
			if !bytes.Contains(n.JSON, []byte(`"restartIngest":[]`)) || !strings.Contains(d.Message, "No matching stream is online; the config applies from the next push.") {
				t.Errorf("%s/%s: want an empty list and the next-push message: %s", tt.app, tt.stream, n.JSON)
			}
		} else if !strings.Contains(d.Message, fmt.Sprintf("Restart ingest of %d stream(s): %s.", len(tt.want), strings.Join(tt.want, ", "))) {
			t.Errorf("%s/%s: message %q", tt.app, tt.stream, d.Message)
		}
	}
	c := change()
	c.Online = nil
	if n, _ := Build(c); !bytes.Contains(n.JSON, []byte(`"restartIngest":[]`)) {
		t.Fatalf("no online streams: %s", n.JSON)
	}
}

func TestOverseasAdvice(t *testing.T) {
	for scope, want := range map[string]bool{"domestic": false, "": false, "overseas": true, "global": true} {
		c := change()
		c.Scope = scope
		n, _ := Build(c)
		msg := data(t, n).Message
		if got := strings.Contains(msg, "This is an "+scope+" domain") && strings.Contains(msg, "test playback after the change takes effect"); got != want {
			t.Errorf("%q: advice %v, want %v: %s", scope, got, want, msg)
		}
	}
}

func TestSummary(t *testing.T) {
	d := []Drift{{Target: policy.Target{DomainName: "p", AppName: "a", StreamName: "*"}, Change: "create",
		Desired: &policy.Config{Protocol: "HLS_CMAF", SegmentNum: 3, SegmentDuration: 5, IgnoreTranscode: true}}}
	n, err := Summary("k", at, d)
	if err != nil {
		t.Fatal(err)
	}
	var ev struct {
		Type, Subject, ID, Time string
		Data                    driftData
	}
	if err := json.Unmarshal(n.JSON, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Type != TypeDrift || ev.Subject != "reconcile" || ev.ID != n.ID || ev.Time != "2026-11-24T08:01:00Z" ||
		ev.Data.Count != 1 || len(ev.Data.Drift) != 1 || ev.Data.Drift[0].Change != "create" || !strings.Contains(ev.Data.Message, "1 config(s)") {
		t.Fatalf("%s", n.JSON)
	}
	again, _ := Summary("k", at, d)
	otherKey, _ := Summary("k2", at, d)
	none, _ := Summary("k", at, nil)
	empty, _ := Summary("k", at, []Drift{})
	if again.ID != n.ID || otherKey.ID == n.ID || none.ID == n.ID || none.ID != empty.ID {
		t.Fatal("summary ids: same key and drift must match, anything else differ; nil and empty agree")
	}
	if !bytes.Contains(none.JSON, []byte(`"drift":[]`)) || !bytes.Contains(none.JSON, []byte(`"count":0`)) {
		t.Fatalf("no drift: %s", none.JSON)
	}
}

const secret = "whsec_c2lua3MtdGVzdC1zZWNyZXQtMDEyMzQ1Njc4OWFiY2Q="

func notice(t *testing.T) Notice {
	t.Helper()
	n, err := Build(change())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestWebhookSink(t *testing.T) {
	ver, _ := webhooksig.NewVerifier(secret)
	n := notice(t)
	var calls atomic.Int32
	statuses := []int{503, 429, 204}
	var ids sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := calls.Add(1) - 1
		body, _ := io.ReadAll(r.Body)
		if err := ver.Verify(r.Header, body); err != nil {
			t.Errorf("signature: %v", err)
		}
		if !bytes.Equal(body, n.JSON) {
			t.Errorf("body changed in transit: %s", body)
		}
		if r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/cloudevents+json") {
			t.Errorf("%s, content type %q", r.Method, r.Header.Get("Content-Type"))
		}
		ids.Store(r.Header.Get("webhook-id"), true)
		if statuses[i] == 429 {
			w.Header().Set("Retry-After", "0")
		}
		w.WriteHeader(statuses[i])
	}))
	defer srv.Close()
	sinks, err := ParseSinks(srv.URL+"/hook", secret)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := sinks[0].Deliver(ctx, n); err != nil || calls.Load() != 3 {
		t.Fatalf("Deliver = %v after %d calls, want success on the third", err, calls.Load())
	}
	if _, ok := ids.Load(n.ID); !ok {
		t.Fatal("webhook-id is not the notice id")
	}
}

func TestWebhookSinkUnsigned(t *testing.T) {
	var h http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h = r.Header.Clone() }))
	defer srv.Close()
	sinks, _ := ParseSinks(srv.URL, "", WithClock(func() time.Time { return at }))
	n := notice(t)
	if err := sinks[0].Deliver(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	if h.Get("webhook-id") != n.ID || h.Get("webhook-timestamp") != fmt.Sprint(at.Unix()) || h.Get("webhook-signature") != "" {
		t.Fatalf("headers: %v", h)
	}
}

func TestWebhookSinkFailures(t *testing.T) {
	tests := []struct {
		status    int
		permanent bool
	}{{400, true}, {401, true}, {403, true}, {404, true}, {410, true}, {301, true}, {500, false}, {502, false}, {503, false}, {504, false}, {408, false}, {429, false}}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			t.Parallel()
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				w.Header().Set("Location", "/elsewhere")
				w.WriteHeader(tt.status)
				_, _ = w.Write(bytes.Repeat([]byte("x"), 1<<20)) // a large body is read only in part
			}))
			defer srv.Close()
			sinks, _ := ParseSinks(srv.URL, "")
			// Long enough for a second attempt on a loaded machine: the point is that a transient
			// failure is retried and a permanent one is not, within the deadline.
			const deadline = 3 * time.Second
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			start := time.Now()
			err := sinks[0].Deliver(ctx, notice(t))
			if err == nil || errors.Is(err, ErrPermanent) != tt.permanent || !strings.Contains(err.Error(), fmt.Sprint(tt.status)) {
				t.Fatalf("Deliver = %v, permanent want %v", err, tt.permanent)
			}
			if tt.permanent && calls.Load() != 1 {
				t.Fatalf("a permanent refusal was retried: %d calls", calls.Load())
			}
			if !tt.permanent && calls.Load() < 2 {
				t.Fatalf("a transient failure was not retried: %d calls", calls.Load())
			}
			if time.Since(start) > deadline+time.Second {
				t.Fatal("retried past the deadline")
			}
		})
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	var times []time.Time
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		times = append(times, time.Now())
		first := len(times) == 1
		mu.Unlock()
		if first {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	sinks, _ := ParseSinks(srv.URL, "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sinks[0].Deliver(ctx, notice(t)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(times) != 2 || times[1].Sub(times[0]) < time.Second {
		t.Fatalf("calls at %v: want the second one Retry-After (1 s) later", times)
	}
}

// TestDeadlineRespected: when Retry-After (or the backoff) cannot fit before the deadline,
// Deliver returns at once with the last failure, rather than sleeping into the deadline.
func TestDeadlineRespected(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	sinks, _ := ParseSinks(srv.URL, "")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	err := sinks[0].Deliver(ctx, notice(t))
	if err == nil || errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), "429") {
		t.Fatalf("Deliver = %v, want the retryable 429", err)
	}
	if calls.Load() != 1 || time.Since(start) > time.Second {
		t.Fatalf("%d calls in %v: want one, and no sleep", calls.Load(), time.Since(start))
	}
}

func TestNetworkErrorRetriedAndRedacted(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close() // nothing listens any more
	sinks, _ := ParseSinks(addr+"/hook?token=hunter2", "")
	ctx, cancel := context.WithTimeout(context.Background(), 800*time.Millisecond)
	defer cancel()
	err := sinks[0].Deliver(ctx, notice(t))
	if err == nil || errors.Is(err, ErrPermanent) || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("Deliver = %v, want a retryable error without the token", err)
	}
}

func TestStdoutSink(t *testing.T) {
	var buf bytes.Buffer
	sinks, err := ParseSinks("stdout", "", WithStdout(&buf))
	if err != nil {
		t.Fatal(err)
	}
	n := notice(t)
	pretty, _ := json.MarshalIndent(json.RawMessage(n.JSON), "", "  ")
	for _, j := range []json.RawMessage{n.JSON, pretty} {
		if err := sinks[0].Deliver(context.Background(), Notice{ID: n.ID, JSON: j}); err != nil {
			t.Fatal(err)
		}
	}
	if want := string(n.JSON) + "\n" + string(n.JSON) + "\n"; buf.String() != want {
		t.Fatalf("stdout: %q", buf.String())
	}
}

// recorder keeps what a fake DingTalk received; its lock orders the handler's writes before
// the test's reads.
type recorder struct {
	mu     sync.Mutex
	reqs   []*http.Request
	bodies []string
}

func (r *recorder) get() ([]*http.Request, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*http.Request(nil), r.reqs...), append([]string(nil), r.bodies...)
}

func dingTalkServer(t *testing.T, answers ...string) (*httptest.Server, *recorder) {
	t.Helper()
	rec := &recorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.reqs, rec.bodies = append(rec.reqs, r.Clone(context.Background())), append(rec.bodies, string(body))
		a := answers[min(len(rec.reqs), len(answers))-1]
		rec.mu.Unlock()
		if strings.HasPrefix(a, "HTTP ") {
			var code int
			_, _ = fmt.Sscanf(a, "HTTP %d", &code)
			w.WriteHeader(code)
			return
		}
		_, _ = io.WriteString(w, a)
	}))
	t.Cleanup(srv.Close)
	return srv, rec
}

func TestDingTalk(t *testing.T) {
	const robotSecret = "SECabc123"
	srv, rec := dingTalkServer(t, `HTTP 502`, `{"errcode":0,"errmsg":"ok"}`)
	d := newDingTalk(mustURL(t, srv.URL+"/robot/send?access_token=tok#"+robotSecret), options{client: srv.Client(), now: func() time.Time { return at }})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Deliver(ctx, notice(t)); err != nil {
		t.Fatal(err)
	}
	reqs, bodies := rec.get()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2 (one 502, retried)", len(reqs))
	}
	q := reqs[1].URL.Query()
	mac := hmac.New(sha256.New, []byte(robotSecret))
	mac.Write([]byte("1795507260000\n" + robotSecret))
	wantSign := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if q.Get("access_token") != "tok" || q.Get("timestamp") != "1795507260000" || q.Get("sign") != wantSign || q.Has("secret") {
		t.Fatalf("query %q, want access_token, timestamp (ms) and sign %s", reqs[1].URL.RawQuery, wantSign)
	}
	if strings.Contains(reqs[1].URL.String(), robotSecret) {
		t.Fatal("the robot secret was sent")
	}
	var msg struct {
		MsgType  string `json:"msgtype"`
		Markdown struct{ Title, Text string }
	}
	if err := json.Unmarshal([]byte(bodies[1]), &msg); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"play.example.com/sports/*", "created", "2026-11-24T08:06:00Z", "sports/final (rtmp://push.example.com/sports/final)"} {
		if !strings.Contains(msg.Markdown.Text, want) {
			t.Errorf("markdown lacks %q:\n%s", want, msg.Markdown.Text)
		}
	}
	if msg.MsgType != "markdown" || !strings.Contains(msg.Markdown.Title, "livepack") {
		t.Fatalf("message: %+v", msg)
	}
}

func TestDingTalkUnsignedAndSecretParam(t *testing.T) {
	srv, rec := dingTalkServer(t, `{"errcode":0,"errmsg":"ok"}`)
	d := newDingTalk(mustURL(t, srv.URL+"/robot/send?access_token=tok"), options{client: srv.Client(), now: time.Now})
	if err := d.Deliver(context.Background(), notice(t)); err != nil {
		t.Fatal(err)
	}
	reqs, _ := rec.get()
	if q := reqs[0].URL.Query(); q.Has("sign") || q.Has("timestamp") {
		t.Fatalf("signed without a secret: %s", reqs[0].URL.RawQuery)
	}
	d = newDingTalk(mustURL(t, "https://oapi.dingtalk.com/robot/send?access_token=tok&secret=SECx"), options{})
	if d.secret != "SECx" || strings.Contains(d.url.String(), "SECx") {
		t.Fatalf("secret %q, url %s", d.secret, d.url)
	}
}

func TestDingTalkErrcodes(t *testing.T) {
	tests := []struct {
		answer          string
		ok, permanent   bool
		calls, deadline int
	}{
		{`{"errcode":0,"errmsg":"ok"}`, true, false, 1, 5},
		{`{"errcode":310000,"errmsg":"sign not match"}`, false, true, 1, 5},
		{`{"errcode":300001,"errmsg":"token is not exist"}`, false, true, 1, 5},
		// Throttled for 10 minutes: no retry can fit, so it returns at once, still pending.
		{`{"errcode":130101,"errmsg":"send too fast, exceed 20 times per minute"}`, false, false, 1, 5},
		{`HTTP 503`, false, false, 0, 1},
		{`not json`, false, false, 0, 1},
	}
	for _, tt := range tests {
		srv, rec := dingTalkServer(t, tt.answer)
		d := newDingTalk(mustURL(t, srv.URL+"/robot/send?access_token=tok"), options{client: srv.Client(), now: time.Now})
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(tt.deadline)*time.Second)
		err := d.Deliver(ctx, notice(t))
		cancel()
		reqs, _ := rec.get()
		if (err == nil) != tt.ok || errors.Is(err, ErrPermanent) != tt.permanent {
			t.Errorf("%s: Deliver = %v, want ok %v permanent %v", tt.answer, err, tt.ok, tt.permanent)
		}
		if tt.calls > 0 && len(reqs) != tt.calls || tt.calls == 0 && len(reqs) < 2 {
			t.Errorf("%s: %d calls", tt.answer, len(reqs))
		}
	}
}

func TestDingTalkDrift(t *testing.T) {
	n, _ := Summary("k", at, []Drift{{Target: policy.Target{DomainName: "p", AppName: "a", StreamName: "*"}, Change: "update"}})
	b, err := markdown(n)
	if err != nil || !bytes.Contains(b, []byte("p/a/*: update")) || !bytes.Contains(b, []byte("1 drifted")) {
		t.Fatalf("%s %v", b, err)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestParseSinks(t *testing.T) {
	tests := []struct {
		spec  string
		names []string
		err   string
	}{
		{"", nil, ""},
		{" , ", nil, ""},
		{"stdout", []string{"stdout"}, ""},
		{"stdout, https://hooks.example.com/livepack", []string{"stdout", "https://hooks.example.com/~940c4204"}, ""},
		{"http://10.0.0.1:8080/n?k=v", []string{"http://10.0.0.1:8080/~6e7bf446"}, ""},
		{"https://oapi.dingtalk.com/robot/send?access_token=x&secret=SECy", []string{"https://oapi.dingtalk.com/~b4450c00"}, ""},
		{"https://oapi.dingtalk.com/robot/send?access_token=x#SECy,stdout", []string{"https://oapi.dingtalk.com/~b4450c00", "stdout"}, ""},
		{"ftp://x/y?pass=p", nil, `"ftp://x/…"`},
		{"stdout,stdout", nil, "twice"},
		{"slack", nil, `"slack"`},
		{"https://", nil, "not a valid URL"},
	}
	for _, tt := range tests {
		sinks, err := ParseSinks(tt.spec, "")
		if (err != nil) != (tt.err != "") || err != nil && !strings.Contains(err.Error(), tt.err) {
			t.Fatalf("%q: %v, want error %q", tt.spec, err, tt.err)
		}
		var names []string
		for _, s := range sinks {
			names = append(names, s.Name())
		}
		if strings.Join(names, ",") != strings.Join(tt.names, ",") {
			t.Fatalf("%q: %v, want %v", tt.spec, names, tt.names)
		}
	}
	if _, err := ParseSinks("https://oapi.dingtalk.com/x?access_token=tok&secret=SECsecret,ftp://h?secret=SECsecret#SECfrag", ""); err == nil || strings.Contains(err.Error(), "SEC") {
		t.Fatalf("error must not show secrets: %v", err)
	}
	if _, err := ParseSinks("stdout", "not-a-whsec-secret"); err == nil || strings.Contains(err.Error(), "not-a-whsec-secret") {
		t.Fatalf("bad notify secret: %v", err)
	}
}

func ExampleBuild() {
	n, _ := Build(Change{ID: "0f1e2d3c4b5a69788796a5b4c3d2e1f0", Target: policy.Target{DomainName: "play.example.com", AppName: "sports", StreamName: "*"},
		Outcome: "created", Config: &policy.Config{Protocol: "HLS_CMAF", SegmentNum: 3, SegmentDuration: 5, IgnoreTranscode: true},
		At: time.Date(2026, 11, 24, 8, 1, 0, 0, time.UTC), Scope: "overseas",
		Online: []Stream{{"sports", "final", "rtmp://push.example.com/sports/final"}}})
	var ev struct {
		Type    string `json:"type"`
		Subject string `json:"subject"`
		Data    struct {
			EffectiveAfter string `json:"effectiveAfter"`
			Message        string `json:"message"`
		} `json:"data"`
	}
	_ = json.Unmarshal(n.JSON, &ev)
	fmt.Println(ev.Type, ev.Subject)
	fmt.Println(ev.Data.EffectiveAfter)
	fmt.Println(ev.Data.Message)
	// Output:
	// livepack.ingest.restart-required play.example.com/sports/*
	// 2026-11-24T08:06:00Z
	// Packaging for play.example.com/sports/* was created: HLS_CMAF, 3 segments of 5 s; it takes effect by 2026-11-24T08:06:00Z (3 to 5 minutes) and only for streams pushed after that. Restart ingest of 1 stream(s): sports/final. This is an overseas domain: playback outside the Chinese mainland may see higher latency, so test playback after the change takes effect.
}
