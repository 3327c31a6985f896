package policy

// API error codes a policy can fail with (AddLivePackageConfig page).
const (
	CodeMissingParam           = "MissingParam"
	CodeInvalidParams          = "InvalidParams"
	CodeInvalidProtocol        = "InvalidProtocol"
	CodeInvalidSegmentNum      = "InvalidSegmentNum"
	CodeInvalidSegmentDuration = "InvalidSegmentDuration"
	CodeInvalidPartDuration    = "InvalidPartDuration"
)

// FieldError is one rule a policy breaks, named the way the API would name it.
type FieldError struct {
	// Index is the policy's position in its document; -1 for a document-level error.
	Index    int    `json:"index"`
	Field    string `json:"field"`
	Value    any    `json:"value"`
	Code     string `json:"code"`
	Rule     string `json:"rule"`
	Accepted string `json:"accepted"`
	Message  string `json:"message"`
}
