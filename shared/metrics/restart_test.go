package metrics

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/livepack/livepack/shared/apply"
	"github.com/livepack/livepack/shared/restart"
)

// TestRestartTracking: a scheduled run's restart counts reach the record (EMF, log line) and
// record; a webhook's record, which refreshed nothing, leaves them out of its EMF.
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
}
