package policy

import _ "embed"

//go:embed schema.json
var schema []byte

// Schema returns the JSON Schema (2020-12) of the policy document, for CMS authors and
// editors. It states every single-field rule of Validate and, with if/then per protocol, the
// ranges that depend on Protocol and SegmentDuration; the two rules that span policies (one
// policy per target, a document applied whole) are Validate's alone. A test holds the two to
// the same verdicts.
func Schema() []byte { return append([]byte(nil), schema...) }
