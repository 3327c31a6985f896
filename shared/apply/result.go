package apply

import "github.com/livepack/livepack/shared/policy"

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
}

// NoticeResult says where one notice went: sink name → "delivered", "pending" or "failed: …".
type NoticeResult struct {
	ID    string            `json:"id"`
	Sinks map[string]string `json:"sinks"`
}
