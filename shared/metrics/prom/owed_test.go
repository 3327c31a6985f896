package prom_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aliyun/credentials-go/credentials"

	"github.com/livepack/livepack/shared/apply"
	"github.com/livepack/livepack/shared/emulator"
	"github.com/livepack/livepack/shared/liveapi"
	"github.com/livepack/livepack/shared/metrics"
	"github.com/livepack/livepack/shared/metrics/prom"
	"github.com/livepack/livepack/shared/notify"
	"github.com/livepack/livepack/shared/policy"
	"github.com/livepack/livepack/shared/store/memstore"
)

// TestOwedFromTheEngine: with a sink that is down, the engine's own result carries the
// outbox's backlog, and the record, its EMF document and the Prometheus gauges show the owed
// notice and its age; once the sink is back and the notice goes out, they read zero.
func TestOwedFromTheEngine(t *testing.T) {
	t.Setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
	emu := httptest.NewServer(emulator.New(emulator.Options{Seed: emulator.DefaultSeed()}))
	t.Cleanup(emu.Close)
	down := true
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if down {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(sink.Close)
	ak, sk, typ := emulator.AccessKeyID, emulator.AccessKeySecret, "access_key"
	cred, err := credentials.NewCredential(&credentials.Config{Type: &typ, AccessKeyId: &ak, AccessKeySecret: &sk})
	if err != nil {
		t.Fatal(err)
	}
	api, err := liveapi.New(liveapi.Options{Endpoint: emu.URL, Credential: cred})
	if err != nil {
		t.Fatal(err)
	}
	sinks, err := notify.ParseSinks(sink.URL+"/hook", "")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	clock := func() time.Time { return now }
	engine := apply.New(apply.Options{API: api, Store: memstore.New(nil), Sinks: sinks, Now: clock})
	doc, err := policy.Parse([]byte(`{"DomainName":"play.example.com","AppName":"sports","StreamName":"*","Protocol":"HLS_CMAF"}`))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	res, err := engine.Apply(ctx, "direct", "k1", policy.Hash(doc), doc.Policies)
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(90 * time.Second)
	r := metrics.NewAt(now, &res, nil, time.Second, nil)
	if r.NoticesPending != 1 || r.NoticesOwed != 1 || r.OldestOwed < 90*time.Second {
		t.Fatalf("record %+v, want one pending and owed, 90 s old", r)
	}
	emf := string(r.EMF(now))
	if !strings.Contains(emf, `"NoticesOwed":1`) || !strings.Contains(emf, `"OldestOwedNotice":9`) {
		t.Fatalf("EMF: %s", emf)
	}
	p := prom.New()
	p.Observe(r)
	if body := scrapeText(t, p); !strings.Contains(body, "livepack_notices_pending 1") || !strings.Contains(body, "livepack_notices_oldest_owed_seconds 9") {
		t.Fatalf("/metrics:\n%s", body)
	}
	// The sink is back; once the notice is due again, the next invocation delivers it.
	down = false
	now = now.Add(time.Hour)
	again := engine.Relay(context.Background(), "schedule")
	r = metrics.NewAt(now, &again, nil, time.Second, nil)
	if r.NoticesOwed != 0 || r.OldestOwed != 0 {
		t.Fatalf("after delivery: %+v (%+v)", r, again.Backlog)
	}
	p.Observe(r)
	if body := scrapeText(t, p); !strings.Contains(body, "livepack_notices_pending 0") {
		t.Fatalf("/metrics after delivery:\n%s", body)
	}
}

func scrapeText(t *testing.T, p *prom.Prometheus) string {
	t.Helper()
	rec := httptest.NewRecorder()
	p.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return rec.Body.String()
}
