package prom_test

import (
	"testing"
	"time"

	"github.com/livepack/livepack/shared/apply"
	"github.com/livepack/livepack/shared/metrics"
	"github.com/livepack/livepack/shared/metrics/prom"
	"github.com/livepack/livepack/shared/restart"
)

// TestRestartGauges: a scheduled run's restart counts set the gauges; a webhook's record, which
// refreshed nothing, leaves them standing; a refresh with nothing open sets them to zero.
func TestRestartGauges(t *testing.T) {
	now := time.Now()
	since := now.Add(-45 * time.Minute)
	r := metrics.NewAt(now, &apply.Result{Trigger: "schedule", Restart: &restart.Summary{Awaiting: 3, Overdue: 2, OldestAwaitingSince: &since}}, nil, time.Second, nil)
	p := prom.New()
	p.Observe(r)
	p.Observe(metrics.NewAt(now, &apply.Result{Trigger: "cms-webhook"}, nil, time.Second, nil))
	m := scrape(t, p.Handler())
	if m["livepack_streams_awaiting_restart"] != 3 || m["livepack_streams_overdue_restart"] != 2 || m["livepack_restart_oldest_wait_seconds"] != 2700 {
		t.Fatalf("gauges %v %v %v", m["livepack_streams_awaiting_restart"], m["livepack_streams_overdue_restart"], m["livepack_restart_oldest_wait_seconds"])
	}
	p.ObserveRestart(metrics.NewAt(now, &apply.Result{Restart: &restart.Summary{}}, nil, 0, nil))
	if m := scrape(t, p.Handler()); m["livepack_streams_awaiting_restart"] != 0 || m["livepack_restart_oldest_wait_seconds"] != 0 {
		t.Fatalf("after a refresh with nothing open: %v", m["livepack_streams_awaiting_restart"])
	}
}
