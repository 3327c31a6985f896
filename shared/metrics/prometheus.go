package metrics

import (
	"bytes"
	"encoding/json"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/livepack/livepack/shared/apply"
	"github.com/livepack/livepack/shared/liveapi"
)

// Prometheus accumulates records for a scrape: counters for everything that adds up, and the
// notices pending after the last invocation as a gauge, since a resend settles them.
type Prometheus struct {
	reg         *prometheus.Registry
	invocations *prometheus.CounterVec
	outcomes    *prometheus.CounterVec
	calls       prometheus.Counter
	throttles   prometheus.Counter
	retries     prometheus.Counter
	notices     *prometheus.CounterVec
	pending     prometheus.Gauge
	oldest      prometheus.Gauge
	duration    *prometheus.HistogramVec
}

// NewPrometheus returns an empty set of livepack metrics on a registry of its own (plus the
// Go runtime and process collectors).
func NewPrometheus() *Prometheus {
	p := &Prometheus{reg: prometheus.NewRegistry()}
	p.invocations = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "invocations_total",
		Help: "Invocations handled, by trigger and whether they returned an error (redelivered)."}, []string{"trigger", "error"})
	p.outcomes = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "outcomes_total",
		Help: "Policies handled, by outcome (created, updated, unchanged, deleted, skipped, invalid, failed)."}, []string{"outcome"})
	p.calls = prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "api_calls_total",
		Help: "Live OpenAPI requests sent, retries included."})
	p.throttles = prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "api_throttles_total",
		Help: "Live OpenAPI requests refused with a Throttling code."})
	p.retries = prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "api_retries_total",
		Help: "Live OpenAPI requests sent again after a retryable failure."})
	p.notices = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "notices_total",
		Help: "Notices by how the sinks took them: delivered, or failed (refused for good)."}, []string{"state"})
	p.pending = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "notices_pending",
		Help: "Deliveries the outbox owes store-wide (every run's), as of the last invocation; the relay sends them."})
	p.oldest = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "notices_oldest_owed_seconds",
		Help: "How long the oldest owed delivery has waited, as of the last invocation (0: none owed)."})
	p.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "invocation_duration_seconds",
		Help: "Invocation duration.", Buckets: prometheus.ExponentialBuckets(0.005, 3, 9)}, []string{"trigger"})
	for _, o := range Outcomes {
		p.outcomes.WithLabelValues(o) // every kind is exported from the start, so "failed" reads 0, not absent
	}
	p.notices.WithLabelValues("delivered")
	p.notices.WithLabelValues("failed")
	p.reg.MustRegister(p.invocations, p.outcomes, p.calls, p.throttles, p.retries, p.notices, p.pending, p.oldest, p.duration,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return p
}

// Observe adds one record.
func (p *Prometheus) Observe(r Record) {
	errLabel := "false"
	if r.Errors > 0 {
		errLabel = "true"
	}
	p.invocations.WithLabelValues(r.Trigger, errLabel).Inc()
	for o, n := range r.Outcomes {
		p.outcomes.WithLabelValues(o).Add(float64(n))
	}
	p.calls.Add(float64(r.Calls))
	p.throttles.Add(float64(r.Throttles))
	p.retries.Add(float64(r.Retries))
	p.notices.WithLabelValues("delivered").Add(float64(r.NoticesDelivered))
	p.notices.WithLabelValues("failed").Add(float64(r.NoticesFailed))
	if r.OwedKnown {
		p.pending.Set(float64(r.NoticesOwed))
		p.oldest.Set(r.OldestOwed.Seconds())
	}
	p.duration.WithLabelValues(r.Trigger).Observe(r.Duration.Seconds())
}

// Handler serves the metrics in the Prometheus exposition format (GET /metrics).
func (p *Prometheus) Handler() http.Handler {
	return promhttp.HandlerFor(p.reg, promhttp.HandlerOpts{Registry: p.reg})
}

// Webhook wraps the CMS webhook handler of `livepack serve`: each request counts its Live API
// calls and, once answered, its result document becomes a record.
func (p *Prometheus) Webhook(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		var st liveapi.Stats
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r.WithContext(liveapi.WithStats(r.Context(), &st)))
		res, failed := FromHTTP(rec.status, rec.body.Bytes())
		m := New(res, &st, time.Since(start), failed)
		p.Observe(m)
	})
}

type redeliver struct{}

func (redeliver) Error() string { return "the webhook asked for a redelivery" }

var errRedeliver error = redeliver{}

// recorder keeps a copy of the answer (a result document, or a short error) while writing it.
type recorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (r *recorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.body.Len() < 1<<20 {
		r.body.Write(b)
	}
	return r.ResponseWriter.Write(b)
}

// FromHTTP reads a webhook answer for its record: the result document in its body, if any,
// and a redelivery request (5xx, 429) as the invocation's error.
func FromHTTP(status int, body []byte) (*apply.Result, error) {
	var failed error
	if status >= 500 || status == http.StatusTooManyRequests {
		failed = errRedeliver
	}
	var doc apply.Result
	if json.Unmarshal(body, &doc) == nil && doc.Trigger != "" {
		return &doc, failed
	}
	return &apply.Result{Trigger: "cms-webhook"}, failed
}
