package policy

import "slices"

// Protocols the API accepts, in the API page's spelling.
const (
	HLSCMAF     = "HLS_CMAF"
	LLHLSTS     = "LLHLS_TS"
	LLHLSCMAF   = "LLHLS_CMAF"
	DASHCMAF    = "DASH_CMAF"
	HLSDASHCMAF = "HLSDASH_CMAF"
)

// Target names one packaging configuration: the API keys configs by domain, app and stream.
type Target struct {
	DomainName string `json:"DomainName"`
	AppName    string `json:"AppName"`
	StreamName string `json:"StreamName"`
}

// String renders the target as domain/app/stream, the form used in notice subjects and logs.
func (t Target) String() string { return t.DomainName + "/" + t.AppName + "/" + t.StreamName }

// Config is a complete packaging configuration as the API stores it. PartDuration is 0 for
// protocols other than LLHLS_*, as DescribeLivePackageConfig reports it.
type Config struct {
	Protocol        string `json:"Protocol"`
	SegmentNum      int    `json:"SegmentNum"`
	SegmentDuration int    `json:"SegmentDuration"`
	PartDuration    int    `json:"PartDuration,omitempty"`
	IgnoreTranscode bool   `json:"IgnoreTranscode"`
}

// Policy is one desired packaging state, named with the API's own parameter names so a policy
// reads like the API page. Optional numbers are pointers so an explicit 0 is told apart from an
// absent value: only absent values take the API's defaults.
type Policy struct {
	DomainName      string `json:"DomainName" validate:"required,max=255,domain"`
	AppName         string `json:"AppName" validate:"required,max=255,livename"`
	StreamName      string `json:"StreamName" validate:"required,max=255,livename"`
	Protocol        string `json:"Protocol,omitempty" validate:"required_unless=Delete true,omitempty,oneof=HLS_CMAF LLHLS_TS LLHLS_CMAF DASH_CMAF HLSDASH_CMAF"`
	SegmentNum      *int   `json:"SegmentNum,omitempty" validate:"omitempty,min=3,max=10"`
	SegmentDuration *int   `json:"SegmentDuration,omitempty" validate:"omitempty,min=1,max=10"`
	PartDuration    *int   `json:"PartDuration,omitempty" validate:"omitempty,min=100,max=1000"`
	IgnoreTranscode *bool  `json:"IgnoreTranscode,omitempty"`
	// Delete asks for the config at Target to be absent; it needs only the three names.
	Delete bool `json:"Delete,omitempty"`
	// Warnings says what normalization changed that the user may not expect, such as a
	// PartDuration dropped for a protocol that has no parts. Results carry it.
	Warnings []string `json:"-"`
}

// Target returns the config's key.
func (p Policy) Target() Target {
	return Target{DomainName: p.DomainName, AppName: p.AppName, StreamName: p.StreamName}
}

// Document is a policy document. ID, when set, is the idempotency key of a direct
// invocation. Domains names the play domains the document covers besides those its policies
// name, so a document can say "these domains have no config" (an export of a domain without
// configs): `plan -prune` and `apply -prune` delete the configs of every covered domain that
// no policy names. Applying a document without -prune ignores it.
type Document struct {
	ID       string   `json:"id,omitempty"`
	Domains  []string `json:"domains,omitempty"`
	Policies []Policy `json:"policies"`
}

// Covered lists the domains the document covers: Domains, then each DomainName its policies
// name that Domains does not, in the order first seen. Patterns are left out.
func (d Document) Covered() []string {
	out := append([]string(nil), d.Domains...)
	for _, p := range d.Policies {
		if !IsGlob(p.DomainName) && !slices.Contains(out, p.DomainName) {
			out = append(out, p.DomainName)
		}
	}
	return out
}
