package apply

import (
	"encoding/json"

	"github.com/livepack/livepack/shared/policy"
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
}

// ReconcileSummary says how far a scheduled reconcile got and what drift it found.
type ReconcileSummary struct {
	Mode string `json:"mode"`
	// Domains is the number of online play domains the account has; Checked how many of them
	// this run planned before it finished or ran out of time.
	Domains  int  `json:"domains"`
	Checked  int  `json:"checked"`
	Drift    int  `json:"drift"`
	Complete bool `json:"complete"`
	// Calls counts the Live API calls the run made.
	Calls int    `json:"calls"`
	Note  string `json:"note,omitempty"`
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

// NoticeResult says where one notice went: sink name → "delivered", "pending" or "failed: …".
type NoticeResult struct {
	ID    string            `json:"id"`
	Sinks map[string]string `json:"sinks"`
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
