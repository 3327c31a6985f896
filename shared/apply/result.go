package apply

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/livepack/livepack/shared/policy"
	"github.com/livepack/livepack/shared/restart"
)

// Outcome words of the result document (DESIGN §5).
const (
	Created   = "created"
	Updated   = "updated"
	Unchanged = "unchanged"
	Deleted   = "deleted"
	Skipped   = "skipped"
	Invalid   = "invalid"
	Failed    = "failed"
	// Deferred: a domain-created event's domain is not ready yet (unknown to the API, or
	// configuring); the scheduled reconcile applies the policy once it is.
	Deferred = "deferred"
)

// Result is the result document: `livepack invoke` prints it, the webhook answers with it and
// the function returns it.
type Result struct {
	Trigger  string         `json:"trigger"`
	Key      string         `json:"key"`
	Replayed bool           `json:"replayed"`
	Results  []PolicyResult `json:"results"`
	Notices  []NoticeResult `json:"notices"`
	// Errors lists document-level problems (malformed JSON, a wrong shape) that belong to no
	// single policy.
	Errors []policy.FieldError `json:"errors,omitempty"`
	// Note explains a result with nothing to do, e.g. no default policy matches a new domain.
	Note string `json:"note,omitempty"`
	// Reconcile summarizes a scheduled reconcile.
	Reconcile *ReconcileSummary `json:"reconcile,omitempty"`
	// Deferred counts what a scheduled run did with the deferred domains, when there were any.
	Deferred *DeferredSummary `json:"deferred,omitempty"`
	// Backlog is what the relay saw of the outbox after this invocation: owed deliveries
	// store-wide and the oldest of them (the metrics' and alarms' source).
	Backlog *Backlog `json:"backlog,omitempty"`
	// Restart is what a scheduled run's restart tracking found (shared/restart): streams
	// awaiting their ingest restart, restarted, offline and overdue.
	Restart *restart.Summary `json:"restart,omitempty"`
}

// Backlog counts the deliveries the outbox still owes, store-wide.
type Backlog struct {
	// Owed counts owed (notice, sink) deliveries, at most 1,000 counted.
	Owed int `json:"owed"`
	// OldestOwedAt is when the oldest owed delivery became owed.
	OldestOwedAt *time.Time `json:"oldestOwedAt,omitempty"`
}

// ReconcileSummary says where a scheduled reconcile's pass stands and what this run found.
// The result lists at most ListCap configs (created, updated, deleted, drifted or failed);
// Outcomes counts every config checked, Truncated those the list left out.
type ReconcileSummary struct {
	Mode string `json:"mode"`
	// Pass numbers the pass over every domain; PassStartedAt is when it began.
	Pass          int       `json:"pass"`
	PassStartedAt time.Time `json:"passStartedAt"`
	// Domains is the number of online play domains in the pass (those that existed at its
	// start); Checked how many this run checked, PassChecked how many the pass has checked so
	// far, Gone how many of this run's had been deleted since the pass began.
	Domains     int `json:"domains"`
	Checked     int `json:"checked"`
	PassChecked int `json:"passChecked"`
	Gone        int `json:"gone"`
	// Complete: this run finished the pass (every domain of it checked once).
	Complete bool `json:"complete"`
	// Rate is this run's pace in domains per minute; ETA the pass's completion at that pace
	// if runs followed one another without a gap (absent once complete).
	Rate float64    `json:"ratePerMinute"`
	ETA  *time.Time `json:"eta,omitempty"`
	// Drift counts the configs this run found differing (report) or changed (enforce).
	Drift int `json:"drift"`
	// Outcomes counts this run's configs by outcome, with "drift" for a report's differences.
	Outcomes map[string]int `json:"outcomes"`
	// Truncated counts listed-worthy configs left out of results past ListCap.
	Truncated int `json:"truncated"`
	// Calls counts the Live API requests this run sent, retries included; PassCalls those of
	// the whole pass so far; Throttles the requests refused by the API's quota.
	Calls     int64 `json:"calls"`
	PassCalls int64 `json:"passCalls"`
	Throttles int64 `json:"throttles"`
	// Notices counts the per-change notices an enforce run delivered as it went, by the
	// worst sink state: delivered, pending or failed.
	Notices map[string]int `json:"notices,omitempty"`
	// Digest identifies the drift set found in the pass so far.
	Digest string `json:"digest,omitempty"`
	// Busy: another reconcile of the same policies held the cursor, so this run did nothing.
	Busy bool   `json:"busy,omitempty"`
	Note string `json:"note,omitempty"`
}

// countNotice counts one delivered-as-it-went notice.
func (s *ReconcileSummary) countNotice(nr NoticeResult) {
	state := "delivered"
	for _, v := range nr.Sinks {
		switch {
		case strings.HasPrefix(v, "failed"):
			state = "failed"
		case strings.HasPrefix(v, "pending") && state != "failed":
			state = "pending"
		}
	}
	if s.Notices == nil {
		s.Notices = map[string]int{}
	}
	s.Notices[state]++
}

// PolicyResult is what happened to one policy.
type PolicyResult struct {
	DomainName string              `json:"DomainName"`
	AppName    string              `json:"AppName"`
	StreamName string              `json:"StreamName"`
	Outcome    string              `json:"outcome"`
	Config     *policy.Config      `json:"config"`
	Previous   *policy.Config      `json:"previous,omitempty"`
	Errors     []policy.FieldError `json:"errors"`
	Reason     string              `json:"reason"`
	Warnings   []string            `json:"warnings,omitempty"`
	// Drift, in a report-mode reconcile, names the change enforce would make: create, update
	// or delete. The outcome of such a policy is skipped, since nothing was written.
	Drift string `json:"drift,omitempty"`
}

// NoticeResult says where one notice went: sink name → "delivered", "pending: why" or
// "failed: why".
type NoticeResult struct {
	ID    string            `json:"id"`
	Sinks map[string]string `json:"sinks"`
	// Relayed marks a notice of another run (one that crashed, or whose sink was down) that
	// this invocation's relay delivered or tried.
	Relayed bool `json:"relayed,omitempty"`
	// Event is the notice itself, carried in the result when no sink is configured so that
	// it is never lost.
	Event json.RawMessage `json:"event,omitempty"`
}

// InvalidResults describes a document that failed validation: each policy with errors is
// invalid, every other one skipped (a document is applied whole or not at all), and errors
// that belong to no policy are returned apart.
func InvalidResults(doc policy.Document, inv *policy.Invalid) (results []PolicyResult, docErrors []policy.FieldError) {
	results = make([]PolicyResult, 0, len(doc.Policies))
	byIndex := map[int][]policy.FieldError{}
	for _, fe := range inv.Errors {
		if fe.Index < 0 || fe.Index >= len(doc.Policies) {
			docErrors = append(docErrors, fe)
			continue
		}
		byIndex[fe.Index] = append(byIndex[fe.Index], fe)
	}
	for i, p := range doc.Policies {
		pr := PolicyResult{DomainName: p.DomainName, AppName: p.AppName, StreamName: p.StreamName,
			Errors: []policy.FieldError{}, Warnings: p.Warnings}
		if errs := byIndex[i]; len(errs) > 0 {
			pr.Outcome, pr.Errors = Invalid, errs
			pr.Reason = errs[0].Message
		} else {
			pr.Outcome = Skipped
			pr.Reason = "not applied: the document has invalid policies and is applied whole or not at all"
		}
		results = append(results, pr)
	}
	return results, docErrors
}

// NamedDomains checks a document applied as given (a webhook, the policy bus, a direct
// invocation): each policy must name one domain, since a DomainName pattern means something
// only to the default policies (LIVEPACK_POLICIES), which the new-domain event and the schedule
// expand. It returns the errors, each naming the field, or nil.
func NamedDomains(doc policy.Document) *policy.Invalid {
	var errs []policy.FieldError
	for i, p := range doc.Policies {
		if policy.IsGlob(p.DomainName) {
			errs = append(errs, policy.FieldError{Index: i, Field: "DomainName", Value: p.DomainName, Code: policy.CodeInvalidParams,
				Rule: "no-pattern", Accepted: "one domain name",
				Message: "DomainName " + p.DomainName + " is a pattern: patterns apply only to default policies (LIVEPACK_POLICIES); name one play domain"})
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return &policy.Invalid{Errors: errs}
}

// MinCalls is the fewest Live API calls applying ps can take: for each domain it names, one
// DescribeLiveDomainDetail and one DescribeLivePackageConfig page, before any write.
func MinCalls(ps []policy.Policy) int {
	domains := map[string]bool{}
	for _, p := range ps {
		domains[p.DomainName] = true
	}
	return 2 * len(domains)
}
