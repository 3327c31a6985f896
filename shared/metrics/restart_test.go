package metrics

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/livepack/livepack/shared/apply"
	"github.com/livepack/livepack/shared/restart"
)

// TestRestartTracking: a scheduled run's restart counts reach the record (EMF, log line) and
// the Prometheus gauges; a webhook's record, which refreshed nothing, leaves them out of its EMF
// and the gauges standing.
func TestRestartTracking(t *testing.T) {
	now := time.Now()
	since := now.Add(-45 * time.Minute)
	res := &apply.Result{Trigger: "schedule", Restart: &restart.Summary{Awaiting: 3, Overdue: 2, OldestAwaitingSince: &since}}
	r := NewAt(now, res, nil, time.Second, nil)
	if !r.Tracked || r.RestartAwaiting != 3 || r.RestartOverdue != 2 || r.OldestRestartWait != 45*time.Minute {
		t.Fatalf("record %+v", r)
	}
	var doc map[string]any
	if err := json.Unmarshal(r.EMF(now), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["StreamsAwaitingRestart"] != float64(3) || doc["StreamsOverdueRestart"] != float64(2) || doc["OldestRestartWait"] != float64(2700) {
		t.Fatalf("EMF %v", doc)
	}
	var plain map[string]any
	if err := json.Unmarshal(NewAt(now, &apply.Result{Trigger: "cms-webhook"}, nil, time.Second, nil).EMF(now), &plain); err != nil {
		t.Fatal(err)
	}
	if _, ok := plain["StreamsOverdueRestart"]; ok {
		t.Fatalf("a webhook's record reports restart counts it never read: %v", plain)
	}
	p := NewPrometheus()
	p.Observe(r)
	p.Observe(NewAt(now, &apply.Result{Trigger: "cms-webhook"}, nil, time.Second, nil))
	m := scrape(t, p.Handler())
	if m["livepack_streams_awaiting_restart"] != 3 || m["livepack_streams_overdue_restart"] != 2 || m["livepack_restart_oldest_wait_seconds"] != 2700 {
		t.Fatalf("gauges %v %v %v", m["livepack_streams_awaiting_restart"], m["livepack_streams_overdue_restart"], m["livepack_restart_oldest_wait_seconds"])
	}
	p.ObserveRestart(NewAt(now, &apply.Result{Restart: &restart.Summary{}}, nil, 0, nil))
	if m := scrape(t, p.Handler()); m["livepack_streams_awaiting_restart"] != 0 || m["livepack_restart_oldest_wait_seconds"] != 0 {
		t.Fatalf("after a refresh with nothing open: %v", m["livepack_streams_awaiting_restart"])
	}
}
