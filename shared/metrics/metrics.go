// Package metrics provides livepack's one metrics record per invocation (outcomes by kind,
// Live API calls, throttles and retries, notices delivered and pending, duration) and its
// three renderings: CloudWatch Embedded Metric Format on Lambda, one JSON log line on Function
// Compute (for SLS), and Prometheus for `livepack serve`. A `failed` outcome, a growing pending
// count or throttling then pages an operator instead of waiting in a result nobody reads.
package metrics

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/livepack/livepack/shared/apply"
	"github.com/livepack/livepack/shared/liveapi"
)

// Namespace is the CloudWatch namespace and the Prometheus prefix of every metric.
const Namespace = "livepack"

// Outcomes are the outcome kinds a record counts, in the result document's words.
var Outcomes = []string{apply.Created, apply.Updated, apply.Unchanged, apply.Deleted, apply.Skipped, apply.Invalid, apply.Failed, apply.Deferred}

// Record is one invocation's metrics.
type Record struct {
	// Trigger is the result's trigger kind (cms-webhook, schedule, …), or "error" when the
	// event could not be handled at all.
	Trigger string
	// Outcomes counts the policies by outcome; every kind of Outcomes is present.
	Outcomes map[string]int
	// Calls, Throttles and Retries are the Live API requests sent, refused for throttling,
	// and sent again after a retryable failure.
	Calls, Throttles, Retries int64
	// NoticesDelivered counts the notices every sink took, NoticesPending those left for a
	// later resend, NoticesFailed those a sink refused for good.
	NoticesDelivered, NoticesPending, NoticesFailed int
	// NoticesOwed counts the deliveries the outbox owes store-wide after the invocation (every
	// run's, not only this one's), and OldestOwed how long the oldest has waited: the alarms'
	// source, since a sink that is down shows there whichever invocation looks.
	NoticesOwed int
	OldestOwed  time.Duration
	// OwedKnown: the invocation read the backlog (a replay whose notices are settled reads
	// none); without it NoticesOwed and OldestOwedNotice are left out, not reported as zero,
	// so an alarm on their minimum is not silenced by such invocations.
	OwedKnown bool
	// Errors is 1 when the invocation returned an error (the platform delivers it again).
	Errors   int
	Duration time.Duration
	// Tracked is set when the invocation refreshed restart tracking (the schedule): then
	// RestartAwaiting counts the streams still awaiting the ingest restart a change asked for,
	// RestartOverdue those awaiting past LIVEPACK_RESTART_GRACE, and OldestRestartWait how long
	// the longest of them has waited. Without it they are left out, not reported as zero.
	Tracked           bool
	RestartAwaiting   int
	RestartOverdue    int
	OldestRestartWait time.Duration
}

// New builds the record of one invocation from its result (nil when there is none), the
// Live API counters of its context (nil: none made) and whether it returned an error.
func New(res *apply.Result, st *liveapi.Stats, d time.Duration, invokeErr error) Record {
	return NewAt(time.Now(), res, st, d, invokeErr)
}

// NewAt is New on the clock reading at (tests).
func NewAt(at time.Time, res *apply.Result, st *liveapi.Stats, d time.Duration, invokeErr error) Record {
	r := Record{Trigger: "error", Outcomes: make(map[string]int, len(Outcomes)), Duration: d}
	for _, o := range Outcomes {
		r.Outcomes[o] = 0
	}
	if invokeErr != nil {
		r.Errors = 1
	}
	if st != nil {
		r.Calls, r.Throttles, r.Retries = st.Calls.Load(), st.Throttles.Load(), st.Retries.Load()
	}
	if res == nil {
		return r
	}
	if res.Trigger != "" {
		r.Trigger = res.Trigger
	}
	for _, p := range res.Results {
		r.Outcomes[p.Outcome]++
	}
	if b := res.Backlog; b != nil {
		r.NoticesOwed, r.OwedKnown = b.Owed, true
		if b.OldestOwedAt != nil {
			r.OldestOwed = max(0, at.Sub(*b.OldestOwedAt))
		}
	}
	for _, n := range res.Notices {
		switch noticeState(n) {
		case "delivered":
			r.NoticesDelivered++
		case "pending":
			r.NoticesPending++
		case "failed":
			r.NoticesFailed++
		}
	}
	if t := res.Restart; t != nil {
		r.Tracked, r.RestartAwaiting, r.RestartOverdue, r.OldestRestartWait = true, t.Awaiting, t.Overdue, t.OldestWait(at)
	}
	return r
}

// noticeState folds a notice's per-sink states: pending while any sink still owes it, failed
// when a sink refused it for good, delivered when every sink took it; "" when it had no sink
// (the result itself carries it).
func noticeState(n apply.NoticeResult) string {
	if len(n.Sinks) == 0 {
		return ""
	}
	state := "delivered"
	for _, s := range n.Sinks {
		switch {
		case s == "pending" || strings.HasPrefix(s, "pending:"):
			return "pending"
		case strings.HasPrefix(s, "failed"):
			state = "failed"
		}
	}
	return state
}

// fields are the record's metric values by name, in a fixed order.
func (r Record) fields() []field {
	fs := make([]field, 0, len(Outcomes)+8)
	for _, o := range Outcomes {
		fs = append(fs, field{title(o), "Count", float64(r.Outcomes[o])})
	}
	fs = append(fs,
		field{"ApiCalls", "Count", float64(r.Calls)},
		field{"Throttles", "Count", float64(r.Throttles)},
		field{"Retries", "Count", float64(r.Retries)},
		field{"NoticesDelivered", "Count", float64(r.NoticesDelivered)},
		field{"NoticesPending", "Count", float64(r.NoticesPending)},
		field{"NoticesFailed", "Count", float64(r.NoticesFailed)})
	if r.OwedKnown {
		fs = append(fs,
			field{"NoticesOwed", "Count", float64(r.NoticesOwed)},
			field{"OldestOwedNotice", "Seconds", r.OldestOwed.Seconds()})
	}
	return append(fs,
		field{"Errors", "Count", float64(r.Errors)},
		field{"Duration", "Milliseconds", float64(r.Duration.Microseconds()) / 1000},
	)
}

type field struct {
	name, unit string
	value      float64
}

func title(s string) string { return strings.ToUpper(s[:1]) + s[1:] }

// EMF renders the record as one CloudWatch Embedded Metric Format document (namespace
// livepack): every metric per trigger and, with an empty dimension set, for the function as a
// whole, which is what an alarm on "Failed > 0" watches.
func (r Record) EMF(now time.Time) []byte {
	type def struct {
		Name string `json:"Name"`
		Unit string `json:"Unit"`
	}
	fs := r.allFields()
	defs := make([]def, len(fs))
	doc := map[string]any{"Trigger": r.Trigger}
	for i, f := range fs {
		defs[i] = def{f.name, f.unit}
		doc[f.name] = f.value
	}
	doc["_aws"] = map[string]any{
		"Timestamp": now.UnixMilli(),
		"CloudWatchMetrics": []any{map[string]any{
			"Namespace":  Namespace,
			"Dimensions": [][]string{{"Trigger"}, {}},
			"Metrics":    defs,
		}},
	}
	b, _ := json.Marshal(doc) // only strings and numbers: cannot fail
	return b
}

// LogLine renders the record as one JSON object for a log service (SLS on Function Compute):
// the same names and values as EMF, under "metrics": "livepack" so a query can select them.
func (r Record) LogLine(now time.Time) []byte {
	doc := map[string]any{"metrics": Namespace, "time": now.UTC().Format(time.RFC3339Nano), "Trigger": r.Trigger}
	for _, f := range r.allFields() {
		doc[f.name] = f.value
	}
	b, _ := json.Marshal(doc)
	return b
}
