package prom_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/livepack/livepack/shared/apply"
	"github.com/livepack/livepack/shared/liveapi"
	"github.com/livepack/livepack/shared/metrics"
	"github.com/livepack/livepack/shared/metrics/prom"
)

// sample is one webhook's result: two created, one failed, one unchanged; one notice owed.
func sample() (*apply.Result, *liveapi.Stats) {
	res := &apply.Result{Trigger: "cms-webhook", Results: []apply.PolicyResult{
		{Outcome: apply.Created}, {Outcome: apply.Created}, {Outcome: apply.Failed}, {Outcome: apply.Unchanged}},
		Notices: []apply.NoticeResult{
			{ID: "a", Sinks: map[string]string{"stdout": "delivered"}},
			{ID: "b", Sinks: map[string]string{"stdout": "pending"}},
		},
		Backlog: &apply.Backlog{Owed: 1}}
	var st liveapi.Stats
	st.Calls.Add(9)
	st.Throttles.Add(2)
	st.Retries.Add(3)
	return res, &st
}

// scrape reads the exposition the way Prometheus does.
func scrape(t *testing.T, h http.Handler) map[string]float64 {
	t.Helper()
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(rr.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			key := name
			for _, l := range m.GetLabel() {
				key += fmt.Sprintf(",%s=%s", l.GetName(), l.GetValue())
			}
			switch {
			case m.Counter != nil:
				out[key] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				out[key] = m.GetGauge().GetValue()
			case m.Histogram != nil:
				out[key] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

func TestPrometheus(t *testing.T) {
	p := prom.New()
	before := scrape(t, p.Handler())
	if v, ok := before["livepack_outcomes_total,outcome=failed"]; !ok || v != 0 {
		t.Fatalf("failed outcomes not exported at 0 before any invocation: %v", before)
	}
	res, st := sample()
	p.Observe(metrics.New(res, st, time.Second, nil))
	p.Observe(metrics.New(res, st, time.Second, nil))
	got := scrape(t, p.Handler())
	for k, want := range map[string]float64{
		"livepack_outcomes_total,outcome=failed":                     2,
		"livepack_outcomes_total,outcome=created":                    4,
		"livepack_api_calls_total":                                   18,
		"livepack_api_throttles_total":                               4,
		"livepack_api_retries_total":                                 6,
		"livepack_notices_total,state=delivered":                     2,
		"livepack_notices_pending":                                   1,
		"livepack_invocations_total,error=false,trigger=cms-webhook": 2,
		"livepack_invocation_duration_seconds,trigger=cms-webhook":   2,
	} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
}

// TestOwedGaugeKeepsLastReading: a record that read no backlog (a settled replay) leaves the
// owed-notices gauge as the last reading set it, so a replay cannot silence its alarm.
func TestOwedGaugeKeepsLastReading(t *testing.T) {
	none := &apply.Result{Trigger: "cms-webhook", Replayed: true}
	_, st := sample()
	p := prom.New()
	withBacklog, _ := sample()
	p.Observe(metrics.New(withBacklog, st, time.Second, nil))
	p.Observe(metrics.New(none, st, time.Second, nil))
	if got := scrape(t, p.Handler())["livepack_notices_pending"]; got != 1 {
		t.Fatalf("owed gauge after a replay that read no backlog: %v, want the last reading 1", got)
	}
}
