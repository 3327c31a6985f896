package handler_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aliyun/credentials-go/credentials"

	"github.com/livepack/livepack/shared/apply"
	"github.com/livepack/livepack/shared/emulator"
	"github.com/livepack/livepack/shared/eventkey"
	"github.com/livepack/livepack/shared/handler"
	"github.com/livepack/livepack/shared/liveapi"
	"github.com/livepack/livepack/shared/store/memstore"
	"github.com/livepack/livepack/shared/webhooksig"
)

const secret = "whsec_aGFuZGxlci10ZXN0LXNlY3JldC0wMTIzNDU2Nzg5YWJj"

func newHandler(t *testing.T, logs io.Writer) *handler.Handler {
	t.Helper()
	srv := httptest.NewServer(emulator.New(emulator.Options{Seed: emulator.DefaultSeed()}))
	t.Cleanup(srv.Close)
	typ, id, key := "access_key", emulator.AccessKeyID, emulator.AccessKeySecret
	cred, _ := credentials.NewCredential(&credentials.Config{Type: &typ, AccessKeyId: &id, AccessKeySecret: &key})
	api, err := liveapi.New(liveapi.Options{Endpoint: srv.URL, Credential: cred})
	if err != nil {
		t.Fatal(err)
	}
	ver, _ := webhooksig.NewVerifier(secret)
	return handler.New(apply.Options{API: api, Store: memstore.New(nil)}, ver, slog.New(slog.NewJSONHandler(logs, nil)))
}

// TestServe: `livepack serve` answers the webhook with the statuses of DESIGN §6.
func TestServe(t *testing.T) {
	var logs bytes.Buffer
	srv := httptest.NewServer(newHandler(t, &logs))
	defer srv.Close()
	body := []byte(`{"policies":[{"DomainName":"play.example.com","AppName":"sports","StreamName":"*","Protocol":"LLHLS_CMAF"}]}`)
	post := func(h http.Header, b []byte) (*http.Response, []byte) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(b))
		req.Header = h
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp, out
	}
	h, _ := webhooksig.Sign(secret, "msg_serve_1", time.Now(), body)
	h.Set("Content-Type", "application/json")
	resp, out := post(h, body)
	var res apply.Result
	if err := json.Unmarshal(out, &res); err != nil || resp.StatusCode != 200 || res.Results[0].Outcome != apply.Created || res.Key != "msg_serve_1" {
		t.Fatalf("%d %s", resp.StatusCode, out)
	}
	resp, out = post(h, body)
	if json.Unmarshal(out, &res) != nil || resp.StatusCode != 200 || !res.Replayed {
		t.Fatalf("replay: %d %s", resp.StatusCode, out)
	}
	other := []byte(strings.Replace(string(body), "LLHLS_CMAF", "HLS_CMAF", 1))
	h2, _ := webhooksig.Sign(secret, "msg_serve_1", time.Now(), other)
	h2.Set("Content-Type", "application/json")
	if resp, out := post(h2, other); resp.StatusCode != 409 {
		t.Fatalf("reused id: %d %s", resp.StatusCode, out)
	}
	if resp, _ := post(http.Header{"Content-Type": {"application/json"}}, body); resp.StatusCode != 401 {
		t.Fatalf("unsigned: %d", resp.StatusCode)
	}
	get, _ := http.Get(srv.URL)
	if get.StatusCode != 405 {
		t.Fatalf("GET: %d", get.StatusCode)
	}
	if !strings.Contains(logs.String(), `"requestId"`) {
		t.Fatalf("logs lack a request id:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), strings.TrimPrefix(secret, "whsec_")) || strings.Contains(logs.String(), emulator.AccessKeySecret) {
		t.Fatal("a secret appears in the logs")
	}
}

// TestInvokeSamples decodes and handles every events/ sample once (webhooks unsigned: 401).
func TestInvokeSamples(t *testing.T) {
	h := newHandler(t, io.Discard)
	entries, _ := os.ReadDir("../../events")
	for _, e := range entries {
		raw, _ := os.ReadFile("../../events/" + e.Name())
		resp, err := h.Invoke(context.Background(), raw)
		if err != nil && !strings.Contains(err.Error(), "retry") {
			t.Errorf("%s: %v", e.Name(), err)
		}
		if resp.Result == nil && resp.HTTP == nil {
			t.Errorf("%s: no answer", e.Name())
		}
	}
}

// TestPoisonAcknowledged: an event that can never be handled (no envelope livepack knows, not
// JSON, a key reused for another payload) is acknowledged (nil error: never redelivered),
// logged at error level and answered with a result that names the problem.
func TestPoisonAcknowledged(t *testing.T) {
	var logs bytes.Buffer
	h := newHandler(t, &logs)
	for _, raw := range []string{`{"what":"ever"}`, `{"policies":`, `["a","b"]`,
		`{"specversion":"1.0","id":"e1","source":"s","type":"live:ActionTrail:ApiCall","data":{"eventName":"AddLiveDomain"}}`} {
		logs.Reset()
		resp, err := h.Invoke(context.Background(), []byte(raw))
		if err != nil || resp.Result == nil || len(resp.Result.Errors) != 1 {
			t.Fatalf("%s: %+v %v", raw, resp.Result, err)
		}
		if !strings.Contains(logs.String(), `"level":"ERROR"`) || !strings.Contains(logs.String(), `"class":"poison"`) {
			t.Fatalf("%s: not logged as poison: %s", raw, logs.String())
		}
	}
	if resp, _ := h.Invoke(context.Background(), []byte(`{"what":"ever"}`)); !strings.Contains(resp.Result.Errors[0].Message, "what") {
		t.Fatalf("an unknown event must be named: %+v", resp.Result.Errors)
	}
	doc := func(proto string) []byte {
		return []byte(`{"specversion":"1.0","id":"bus-1","source":"cms","type":"livepack.policies","data":{"policies":[{"DomainName":"play.example.com","AppName":"a","StreamName":"s","Protocol":"` + proto + `"}]}}`)
	}
	if _, err := h.Invoke(context.Background(), doc("HLS_CMAF")); err != nil {
		t.Fatal(err)
	}
	logs.Reset()
	resp, err := h.Invoke(context.Background(), doc("LLHLS_CMAF"))
	if err != nil || resp.Result == nil || !strings.Contains(resp.Result.Note, "different payload") || !strings.Contains(logs.String(), `"class":"poison"`) {
		t.Fatalf("payload mismatch: %+v %v\n%s", resp.Result, err, logs.String())
	}
	// The acknowledged error is kept for a caller reporting to a person.
	if !errors.Is(resp.Dropped, eventkey.ErrPayloadMismatch) {
		t.Fatalf("Dropped = %v", resp.Dropped)
	}
	if resp, _ := h.Invoke(context.Background(), doc("HLS_CMAF")); resp.Dropped != nil {
		t.Fatalf("a replay is not dropped: %v", resp.Dropped)
	}
}

func TestLogHandlerAddsRequestID(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(handler.LogHandler(slog.NewJSONHandler(&buf, nil))).With("component", "liveapi")
	log.WarnContext(handler.WithRequestID(context.Background(), "req-42"), "retrying")
	log.Info("no context")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"requestId":"req-42"`) || strings.Contains(lines[1], "requestId") {
		t.Fatalf("%s", buf.String())
	}
	// A logger that carries the id already (the handler's own) logs it once.
	buf.Reset()
	slog.New(handler.LogHandler(slog.NewTextHandler(&buf, nil))).With("requestId", "req-42").With("trigger", "direct").
		InfoContext(handler.WithRequestID(context.Background(), "req-42"), "done")
	if n := strings.Count(buf.String(), "requestId="); n != 1 {
		t.Fatalf("requestId %d times: %s", n, buf.String())
	}
}

// TestBusPatternInvalid: a DomainName pattern in a policy-bus document is invalid, the field
// named, and nothing is applied.
func TestBusPatternInvalid(t *testing.T) {
	h := newHandler(t, io.Discard)
	ev := `{"specversion":"1.0","id":"bus-glob","source":"cms","type":"livepack.policies","data":{"policies":[{"DomainName":"*.example.com","AppName":"a","StreamName":"s","Protocol":"HLS_CMAF"}]}}`
	resp, err := h.Invoke(context.Background(), []byte(ev))
	if err != nil || resp.Result == nil || len(resp.Result.Results) != 1 || resp.Result.Results[0].Outcome != apply.Invalid ||
		resp.Result.Results[0].Errors[0].Field != "DomainName" {
		t.Fatalf("%+v %v", resp.Result, err)
	}
}

// TestReconcileOutcomesLogged: a schedule's log line counts every config checked, not only the
// few its result lists.
func TestReconcileOutcomesLogged(t *testing.T) {
	var logs bytes.Buffer
	h := newHandler(t, &logs)
	ev := `{"mode":"report","id":"sched-1","policies":[{"DomainName":"*","AppName":"*","StreamName":"*","Protocol":"HLS_CMAF"}]}`
	resp, err := h.Invoke(context.Background(), []byte(ev))
	if err != nil || resp.Result == nil || resp.Result.Reconcile == nil {
		t.Fatalf("%+v, %v", resp, err)
	}
	// The seed's online play domains have no configs: each one's catch-all is drift.
	want := `"outcomes":"{\"drift\":` + strconv.Itoa(resp.Result.Reconcile.Checked) + `}"`
	if !strings.Contains(logs.String(), want) {
		t.Fatalf("log lacks %s:\n%s", want, logs.String())
	}
}
