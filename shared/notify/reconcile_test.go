package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/livepack/livepack/shared/policy"
)

func passReport(drift, failed int) DriftReport {
	return DriftReport{Cursor: "report:abc", Pass: 7, Complete: true, StartedAt: at.Add(-14 * time.Minute),
		Domains: 42, Checked: 41, Gone: 1, DriftConfig: drift, Failed: failed, Digest: "d1g35t",
		Changed: []Drift{{Target: policy.Target{DomainName: "play.example.com", AppName: "news", StreamName: "*"}, Change: "update"}}}
}

// TestPassCompleteCounts: a pass-complete notice carries every count of the pass, zeros
// included, on the sinks that send the CloudEvent as is (stdout, a generic webhook), and its
// message states them.
func TestPassCompleteCounts(t *testing.T) {
	for _, tt := range []struct {
		drift, failed int
		says          string
	}{
		{0, 0, "0 config(s) differ from the default policies, 0 failed. Everything is in line"},
		{3, 2, "3 config(s) differ from the default policies, 2 failed."},
	} {
		n, err := Report(at, passReport(tt.drift, tt.failed))
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		sinks, err := ParseSinks("stdout", "", WithStdout(&buf))
		if err != nil {
			t.Fatal(err)
		}
		if err := sinks[0].Deliver(context.Background(), n); err != nil {
			t.Fatal(err)
		}
		var ev struct {
			Type string
			Data map[string]any
		}
		if err := json.Unmarshal(buf.Bytes(), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Type != TypePass {
			t.Fatalf("type %s", ev.Type)
		}
		for k, want := range map[string]float64{"pass": 7, "domains": 42, "checked": 41, "gone": 1, "driftConfigs": float64(tt.drift), "failed": float64(tt.failed)} {
			if got, ok := ev.Data[k].(float64); !ok || got != want {
				t.Errorf("drift %d failed %d: data %s = %v, want %v", tt.drift, tt.failed, k, ev.Data[k], want)
			}
		}
		if ev.Data["passStartedAt"] != "2026-11-24T07:47:00Z" || !strings.Contains(ev.Data["message"].(string), tt.says) {
			t.Errorf("data %v", ev.Data)
		}
	}
	// A drift notice, not the pass's end, carries no pass totals.
	r := passReport(1, 0)
	r.Complete = false
	n, _ := Report(at, r)
	if bytes.Contains(n.JSON, []byte(`"driftConfigs"`)) || bytes.Contains(n.JSON, []byte(`"failed"`)) {
		t.Fatalf("a drift notice carries pass totals: %s", n.JSON)
	}
}

// TestDingTalkPassComplete: the DingTalk robot's markdown of a pass-complete notice shows its
// counts, not only its type.
func TestDingTalkPassComplete(t *testing.T) {
	n, err := Report(at, passReport(3, 2))
	if err != nil {
		t.Fatal(err)
	}
	srv, rec := dingTalkServer(t, `{"errcode":0,"errmsg":"ok"}`)
	d := newDingTalk(mustURL(t, srv.URL+"/robot/send?access_token=tok"), options{client: srv.Client(), now: func() time.Time { return at }})
	if err := d.Deliver(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	_, bodies := rec.get()
	var msg struct {
		Msgtype  string
		Markdown struct{ Title, Text string }
	}
	if len(bodies) != 1 || json.Unmarshal([]byte(bodies[0]), &msg) != nil || msg.Msgtype != "markdown" {
		t.Fatalf("bodies %v", bodies)
	}
	for _, want := range []string{"reconcile pass 7 complete", "Domains: 42 (checked 41, gone 1)", "Drifted configs: 3", "Failed: 2",
		"Started: 2026-11-24T07:47:00Z", "play.example.com/news/*: update", "3 config(s) differ from the default policies, 2 failed."} {
		if !strings.Contains(msg.Markdown.Text, want) {
			t.Errorf("the markdown lacks %q:\n%s", want, msg.Markdown.Text)
		}
	}
	if !strings.Contains(msg.Markdown.Title, "pass 7 complete") {
		t.Errorf("title %q", msg.Markdown.Title)
	}
}
