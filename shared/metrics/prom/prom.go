// Package prom serves livepack's metrics records in the Prometheus exposition format, for
// `livepack serve`. It is a package of its own so that the cloud artifacts, which write their
// records as log lines, never link client_golang or pay for its start-up.
package prom

import (
	"bytes"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/livepack/livepack/shared/liveapi"
	"github.com/livepack/livepack/shared/metrics"
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
	awaiting    prometheus.Gauge
	overdue     prometheus.Gauge
	restartWait prometheus.Gauge
	duration    *prometheus.HistogramVec
}

// New returns an empty set of livepack metrics on a registry of its own (plus the
// Go runtime and process collectors).
func New() *Prometheus {
	p := &Prometheus{reg: prometheus.NewRegistry()}
	p.invocations = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metrics.Namespace, Name: "invocations_total",
		Help: "Invocations handled, by trigger and whether they returned an error (redelivered)."}, []string{"trigger", "error"})
	p.outcomes = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metrics.Namespace, Name: "outcomes_total",
		Help: "Policies handled, by outcome (created, updated, unchanged, deleted, skipped, invalid, failed, deferred)."}, []string{"outcome"})
	p.calls = prometheus.NewCounter(prometheus.CounterOpts{Namespace: metrics.Namespace, Name: "api_calls_total",
		Help: "Live OpenAPI requests sent, retries included."})
	p.throttles = prometheus.NewCounter(prometheus.CounterOpts{Namespace: metrics.Namespace, Name: "api_throttles_total",
		Help: "Live OpenAPI requests refused with a Throttling code."})
	p.retries = prometheus.NewCounter(prometheus.CounterOpts{Namespace: metrics.Namespace, Name: "api_retries_total",
		Help: "Live OpenAPI requests sent again after a retryable failure."})
	p.notices = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metrics.Namespace, Name: "notices_total",
		Help: "Notices by how the sinks took them: delivered, or failed (refused for good)."}, []string{"state"})
	p.pending = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: metrics.Namespace, Name: "notices_pending",
		Help: "Deliveries the outbox owes store-wide (every run's), as of the last invocation; the relay sends them."})
	p.oldest = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: metrics.Namespace, Name: "notices_oldest_owed_seconds",
		Help: "How long the oldest owed delivery has waited, as of the last invocation (0: none owed)."})
	p.awaiting = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: metrics.Namespace, Name: "streams_awaiting_restart",
		Help: "Streams still awaiting the ingest restart a packaging change asked for, as of the last restart-tracking refresh."})
	p.overdue = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: metrics.Namespace, Name: "streams_overdue_restart",
		Help: "Streams awaiting their ingest restart longer than LIVEPACK_RESTART_GRACE, as of the last refresh."})
	p.restartWait = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: metrics.Namespace, Name: "restart_oldest_wait_seconds",
		Help: "How long the longest-waiting stream has awaited its ingest restart, as of the last refresh (0: none)."})
	p.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: metrics.Namespace, Name: "invocation_duration_seconds",
		Help: "Invocation duration.", Buckets: prometheus.ExponentialBuckets(0.005, 3, 9)}, []string{"trigger"})
	for _, o := range metrics.Outcomes {
		p.outcomes.WithLabelValues(o) // every kind is exported from the start, so "failed" reads 0, not absent
	}
	p.notices.WithLabelValues("delivered")
	p.notices.WithLabelValues("failed")
	p.reg.MustRegister(p.invocations, p.outcomes, p.calls, p.throttles, p.retries, p.notices, p.pending, p.oldest, p.awaiting, p.overdue, p.restartWait, p.duration,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return p
}

// Observe adds one record.
func (p *Prometheus) Observe(r metrics.Record) {
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
	// Only a refresh knows; a webhook's record leaves the last refresh's values standing.
	p.ObserveRestart(r)
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
		res, failed := metrics.FromHTTP(rec.status, rec.body.Bytes())
		m := metrics.New(res, &st, time.Since(start), failed)
		p.Observe(m)
	})
}

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

// ObserveRestart sets the restart-tracking gauges from a record that refreshed restart tracking
// (a schedule's, or `livepack serve`'s refresh every minute); another record changes nothing.
func (p *Prometheus) ObserveRestart(r metrics.Record) {
	if !r.Tracked {
		return
	}
	p.awaiting.Set(float64(r.RestartAwaiting))
	p.overdue.Set(float64(r.RestartOverdue))
	p.restartWait.Set(r.OldestRestartWait.Seconds())
}
