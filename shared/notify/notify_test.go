package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livepack/livepack/shared/policy"
	"github.com/livepack/livepack/shared/webhooksig"
)

var at = time.Date(2026, 11, 24, 8, 1, 0, 0, time.UTC)

func change() Change {
	return Change{Target: policy.Target{DomainName: "play.example.com", AppName: "sports", StreamName: "*"},
		Outcome: "created", Config: &policy.Config{Protocol: "LLHLS_CMAF", SegmentNum: 3, SegmentDuration: 1, PartDuration: 350, IgnoreTranscode: true},
		At: at, Scope: "domestic", TriggerKey: "msg_1",
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

func TestBuild(t *testing.T) {
	n, err := Build(change())
	if err != nil {
		t.Fatal(err)
	}
	d := data(t, n)
	if d.EffectiveAfter != "2026-11-24T08:06:00Z" || len(d.RestartIngest) != 1 || d.RestartIngest[0].StreamName != "final" || d.Previous != nil {
		t.Fatalf("data: %+v", d)
	}
	if !strings.Contains(d.Message, "Restart ingest of 1 stream(s): sports/final") {
		t.Fatalf("message: %s", d.Message)
	}
	if !bytes.Contains(n.JSON, []byte(`"previous":null`)) {
		t.Fatalf("previous must be an explicit null: %s", n.JSON)
	}
}

func TestIDDeterministic(t *testing.T) {
	a, _ := Build(change())
	b, _ := Build(change())
	if a.ID != b.ID || !bytes.Equal(a.JSON, b.JSON) {
		t.Fatal("the same change built twice differs")
	}
	c := change()
	c.Config.SegmentNum = 4
	d := change()
	d.TriggerKey = "msg_2"
	for _, other := range []Change{c, d} {
		if n, _ := Build(other); n.ID == a.ID {
			t.Fatalf("a different change has the same id: %+v", other)
		}
	}
}

func TestRestartIngestMatching(t *testing.T) {
	tests := []struct {
		app, stream string
		want        int
	}{
		{"*", "*", 2}, {"sports", "*", 1}, {"*", "evening", 1}, {"sports", "final", 1}, {"sports", "semi", 0}, {"music", "*", 0},
	}
	for _, tt := range tests {
		c := change()
		c.Target.AppName, c.Target.StreamName = tt.app, tt.stream
		n, _ := Build(c)
		d := data(t, n)
		if len(d.RestartIngest) != tt.want {
			t.Errorf("%s/%s: %d streams, want %d", tt.app, tt.stream, len(d.RestartIngest), tt.want)
		}
		if tt.want == 0 && (!bytes.Contains(n.JSON, []byte(`"restartIngest":[]`)) || !strings.Contains(d.Message, "next push")) {
			t.Errorf("%s/%s: want an empty list and the next-push message: %s", tt.app, tt.stream, n.JSON)
		}
	}
}

func TestOverseasAdvice(t *testing.T) {
	for scope, want := range map[string]bool{"domestic": false, "overseas": true, "global": true} {
		c := change()
		c.Scope = scope
		n, _ := Build(c)
		if got := strings.Contains(data(t, n).Message, "test playback"); got != want {
			t.Errorf("%s: advice %v, want %v", scope, got, want)
		}
	}
}

func TestSummary(t *testing.T) {
	n, err := Summary("k", at, []Drift{{Target: policy.Target{DomainName: "p", AppName: "a", StreamName: "*"}, Change: "create"}})
	if err != nil || !bytes.Contains(n.JSON, []byte(TypeDrift)) || !bytes.Contains(n.JSON, []byte(`"count":1`)) {
		t.Fatalf("%s %v", n.JSON, err)
	}
}

const secret = "whsec_c2lua3MtdGVzdC1zZWNyZXQtMDEyMzQ1Njc4OWFiY2Q="

func TestWebhookSink(t *testing.T) {
	ver, _ := webhooksig.NewVerifier(secret)
	var calls atomic.Int32
	statuses := []int{503, 429, 204}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := calls.Add(1) - 1
		body, _ := io.ReadAll(r.Body)
		if err := ver.Verify(r.Header, body); err != nil {
			t.Errorf("signature: %v", err)
		}
		if r.Header.Get("Content-Type") != "application/cloudevents+json; charset=utf-8" {
			t.Errorf("content type %q", r.Header.Get("Content-Type"))
		}
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
	n, _ := Build(change())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := sinks[0].Deliver(ctx, n); err != nil || calls.Load() != 3 {
		t.Fatalf("Deliver = %v after %d calls, want success on the third", err, calls.Load())
	}
}

func TestWebhookSinkFailures(t *testing.T) {
	tests := []struct {
		status    int
		permanent bool
	}{{400, true}, {401, true}, {404, true}, {410, true}, {301, true}, {500, false}, {502, false}, {408, false}}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Location", "/elsewhere")
				w.WriteHeader(tt.status)
			}))
			defer srv.Close()
			sinks, _ := ParseSinks(srv.URL, "")
			n, _ := Build(change())
			ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
			defer cancel()
			start := time.Now()
			err := sinks[0].Deliver(ctx, n)
			if err == nil || errors.Is(err, ErrPermanent) != tt.permanent {
				t.Fatalf("Deliver = %v, permanent want %v", err, tt.permanent)
			}
			if time.Since(start) > 700*time.Millisecond+500*time.Millisecond {
				t.Fatal("retried past the deadline")
			}
		})
	}
}

func TestDingTalk(t *testing.T) {
	var got []string
	answers := []string{`{"errcode":130101,"errmsg":"send too fast"}`, `{"errcode":0,"errmsg":"ok"}`}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got = append(got, r.URL.RawQuery+" "+string(body))
		_, _ = io.WriteString(w, answers[len(got)-1])
	}))
	defer srv.Close()
	d := newDingTalk(mustURL(t, srv.URL+"/robot/send?access_token=tok&secret=SECabc"), options{client: srv.Client(), now: func() time.Time { return at }})
	n, _ := Build(change())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Deliver(ctx, n); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || strings.Contains(got[1], "SECabc") || !strings.Contains(got[1], "sign=") || !strings.Contains(got[1], "timestamp=1795507260000") ||
		!strings.Contains(got[1], `"msgtype":"markdown"`) || !strings.Contains(got[1], "sports/final") {
		t.Fatalf("requests: %v", got)
	}
	if err := dingTalkResult([]byte(`{"errcode":310000,"errmsg":"sign not match"}`)); !errors.Is(err, ErrPermanent) {
		t.Fatalf("310000: %v", err)
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
		err   bool
	}{
		{"", nil, false},
		{"stdout", []string{"stdout"}, false},
		{"stdout, https://hooks.example.com/livepack", []string{"stdout", "hooks.example.com/livepack"}, false},
		{"https://oapi.dingtalk.com/robot/send?access_token=x&secret=SECy", []string{"dingtalk"}, false},
		{"ftp://x", nil, true},
		{"stdout,stdout", nil, true},
		{"slack", nil, true},
	}
	for _, tt := range tests {
		sinks, err := ParseSinks(tt.spec, "")
		if (err != nil) != tt.err {
			t.Fatalf("%q: %v", tt.spec, err)
		}
		var names []string
		for _, s := range sinks {
			names = append(names, s.Name())
		}
		if strings.Join(names, ",") != strings.Join(tt.names, ",") {
			t.Fatalf("%q: %v, want %v", tt.spec, names, tt.names)
		}
	}
	if _, err := ParseSinks("https://oapi.dingtalk.com/x?access_token=tok&secret=SECsecret,ftp://h?secret=SECsecret", ""); err == nil || strings.Contains(err.Error(), "SECsecret") {
		t.Fatalf("error must not show secrets: %v", err)
	}
}

func ExampleBuild() {
	n, _ := Build(Change{Target: policy.Target{DomainName: "play.example.com", AppName: "sports", StreamName: "*"},
		Outcome: "created", Config: &policy.Config{Protocol: "HLS_CMAF", SegmentNum: 3, SegmentDuration: 5, IgnoreTranscode: true},
		At: time.Date(2026, 11, 24, 8, 1, 0, 0, time.UTC), TriggerKey: "msg_1",
		Online: []Stream{{"sports", "final", "rtmp://push.example.com/sports/final"}}})
	var ev struct {
		Type string `json:"type"`
		Data struct {
			EffectiveAfter string `json:"effectiveAfter"`
			Message        string `json:"message"`
		} `json:"data"`
	}
	_ = json.Unmarshal(n.JSON, &ev)
	fmt.Println(ev.Type)
	fmt.Println(ev.Data.EffectiveAfter)
	fmt.Println(ev.Data.Message)
	// Output:
	// livepack.ingest.restart-required
	// 2026-11-24T08:06:00Z
	// Packaging for play.example.com/sports/* was created: HLS_CMAF, 3 segments of 5 s; it takes effect by 2026-11-24T08:06:00Z (3 to 5 minutes) and only for streams pushed after that. Restart ingest of 1 stream(s): sports/final.
}
