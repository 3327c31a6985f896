package policy

import (
	"fmt"
	"path"
	"reflect"
	"strings"

	"github.com/go-playground/validator/v10"
)

// Segment and part limits from the AddLivePackageConfig page. The page states the
// SegmentDuration rule for HLS_CMAF and LLHLS_* only; DASH_CMAF and HLSDASH_CMAF share the
// HLS_CMAF container and segmenter, so livepack applies the HLS_CMAF rule (1 to 10 s,
// default 5) to them as well.
const (
	MaxNameLen           = 255
	MinSegmentNum        = 3
	MaxSegmentNum        = 10
	DefaultSegmentNum    = 3
	MinSegmentDuration   = 1
	MaxSegmentDuration   = 10
	MaxLLSegmentDuration = 2
	DefaultSegmentDur    = 5
	DefaultLLSegmentDur  = 1
	MinPartDuration      = 100
	MaxPartDurationAt1s  = 500
	MaxPartDurationAt2s  = 1000
	DefaultPartAt1s      = 350
	DefaultPartAt2s      = 700
)

// Protocols lists every protocol the API accepts, in its spelling.
var Protocols = []string{HLSCMAF, LLHLSTS, LLHLSCMAF, DASHCMAF, HLSDASHCMAF}

// IsLowLatency reports whether protocol is one of the LLHLS_* protocols, the only ones with
// parts (PartDuration) and with 1 to 2 s segments.
func IsLowLatency(protocol string) bool { return strings.HasPrefix(protocol, "LLHLS_") }

// rule maps one validator failure (JSON field name + tag) to the API's error code and to
// what would have been accepted. It is the only place that knows the codes.
type rule struct {
	code, accepted string
}

const nameAccepted = "up to 255 letters, digits, '-' or '_', not starting with '-' or '_', or exactly '*'"

var rules = map[string]rule{
	"DomainName.required":       {CodeMissingParam, "a play domain name"},
	"DomainName.max":            {CodeInvalidParams, "a domain name of at most 255 characters"},
	"DomainName.domain":         {CodeInvalidParams, "a domain name (letters, digits, '-', '.'), or a glob such as *.example.com in default policies"},
	"AppName.required":          {CodeMissingParam, nameAccepted},
	"AppName.max":               {CodeInvalidParams, nameAccepted},
	"AppName.livename":          {CodeInvalidParams, nameAccepted},
	"StreamName.required":       {CodeMissingParam, nameAccepted},
	"StreamName.max":            {CodeInvalidParams, nameAccepted},
	"StreamName.livename":       {CodeInvalidParams, nameAccepted},
	"Protocol.required_unless":  {CodeMissingParam, "one of " + strings.Join(Protocols, ", ")},
	"Protocol.oneof":            {CodeInvalidProtocol, "one of " + strings.Join(Protocols, ", ")},
	"SegmentNum.min":            {CodeInvalidSegmentNum, "an integer from 3 to 10"},
	"SegmentNum.max":            {CodeInvalidSegmentNum, "an integer from 3 to 10"},
	"SegmentDuration.min":       {CodeInvalidSegmentDuration, "an integer from 1 to 10 (1 to 2 for LLHLS_*)"},
	"SegmentDuration.max":       {CodeInvalidSegmentDuration, "an integer from 1 to 10 (1 to 2 for LLHLS_*)"},
	"SegmentDuration.ll_range":  {CodeInvalidSegmentDuration, "1 or 2 for LLHLS_* protocols"},
	"PartDuration.min":          {CodeInvalidPartDuration, "100 to 500 ms at 1 s segments, 100 to 1000 ms at 2 s"},
	"PartDuration.max":          {CodeInvalidPartDuration, "100 to 500 ms at 1 s segments, 100 to 1000 ms at 2 s"},
	"PartDuration.part_range":   {CodeInvalidPartDuration, "100 to 500 ms at 1 s segments"},
	"PartDuration.ll_only":      {CodeInvalidPartDuration, "no PartDuration unless Protocol is LLHLS_*"},
	"SegmentNum.type":           {CodeInvalidSegmentNum, "a JSON integer from 3 to 10"},
	"SegmentDuration.type":      {CodeInvalidSegmentDuration, "a JSON integer"},
	"PartDuration.type":         {CodeInvalidPartDuration, "a JSON integer (milliseconds)"},
	"Protocol.type":             {CodeInvalidProtocol, "a JSON string: one of " + strings.Join(Protocols, ", ")},
	"IgnoreTranscode.type":      {CodeInvalidParams, "true or false"},
	"Delete.type":               {CodeInvalidParams, "true or false"},
	"DomainName.type":           {CodeInvalidParams, "a JSON string"},
	"AppName.type":              {CodeInvalidParams, "a JSON string"},
	"StreamName.type":           {CodeInvalidParams, "a JSON string"},
	"DomainName.unique":         {CodeInvalidParams, "one policy per DomainName/AppName/StreamName"},
	"policies.required":         {CodeMissingParam, `a "policies" array (an empty one is a valid document)`},
	"document.empty":            {CodeMissingParam, `{"policies": [...]} (an empty list is valid), one policy object, or an array of policies`},
	"domains.type":              {CodeInvalidParams, "a JSON array of domain names"},
	"domains.domain":            {CodeInvalidParams, "one play domain name per entry (letters, digits, '-', '.'), no pattern"},
	"document.json":             {CodeInvalidParams, `a JSON policy document: {"policies": [...]}, one policy object, or an array`},
	"document.unknown":          {CodeInvalidParams, `only "id", "domains" and "policies" at the top level`},
	"policy.unknown":            {CodeInvalidParams, "only the API's parameter names: DomainName, AppName, StreamName, Protocol, SegmentNum, SegmentDuration, PartDuration, IgnoreTranscode, and Delete"},
	"id.type":                   {CodeInvalidParams, "a non-empty JSON string"},
	"policies.type":             {CodeInvalidParams, "a JSON array of policy objects"},
	"policy.type":               {CodeInvalidParams, "a JSON object"},
	"Protocol.required_delete":  {CodeMissingParam, "a Protocol, or Delete: true"},
	"DomainName.glob":           {CodeInvalidParams, "a valid glob pattern"},
	"SegmentDuration.undefined": {CodeInvalidSegmentDuration, "a value"},
}

// fieldError builds the FieldError for a failed rule. Unknown keys are a programming error
// caught by the table test, so they fall back to InvalidParams rather than panic.
func fieldError(index int, field, tag string, value any, detail string) FieldError {
	r, ok := rules[field+"."+tag]
	if !ok {
		r = rule{CodeInvalidParams, "a valid value"}
	}
	msg := fmt.Sprintf("%s %s: %s; accepted: %s", field, describe(value), r.code, r.accepted)
	if detail != "" {
		msg = fmt.Sprintf("%s %s: %s (%s); accepted: %s", field, describe(value), r.code, detail, r.accepted)
	}
	return FieldError{Index: index, Field: field, Value: value, Code: r.code, Rule: tag, Accepted: r.accepted, Message: msg}
}

func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "is missing"
	case string:
		if v == "" {
			return "is empty"
		}
		if len(v) > 40 {
			return fmt.Sprintf("%q… (%d characters) is invalid", v[:40], len(v))
		}
		return fmt.Sprintf("%q is invalid", v)
	default:
		return fmt.Sprintf("%v is invalid", v)
	}
}

// validate is the one validator instance: it caches struct metadata, so building it per call
// would redo that work every time.
var validate = newValidator()

func newValidator() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			return ""
		}
		return name
	})
	must(v.RegisterValidation("livename", func(fl validator.FieldLevel) bool { return validName(fl.Field().String()) }))
	must(v.RegisterValidation("domain", func(fl validator.FieldLevel) bool { return validDomain(fl.Field().String()) }))
	v.RegisterStructValidation(crossField, Policy{})
	return v
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

// validName is the API's AppName/StreamName rule: letters, digits, '-' and '_', not starting
// with '-' or '_', or a single '*' matching every name. Length is the max tag's job.
func validName(s string) bool {
	if s == "*" {
		return true
	}
	if s == "" || s[0] == '-' || s[0] == '_' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// validDomain accepts a lower-case host name of dot-separated labels, or a glob of one
// (default policies name domains by pattern).
func validDomain(s string) bool {
	if s == "" {
		return false
	}
	if IsGlob(s) {
		if _, err := path.Match(s, ""); err != nil {
			return false
		}
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '*' || c == '?') {
				return false
			}
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
	}
	return true
}

// IsGlob reports whether a DomainName is a pattern rather than one domain.
func IsGlob(domain string) bool { return strings.ContainsAny(domain, "*?[") }

// MatchesDomain reports whether the policy's DomainName (a name or a glob) covers domain.
func (p Policy) MatchesDomain(domain string) bool { return MatchDomain(p.DomainName, domain) }

// MatchDomain reports whether glob (a domain name, or a path.Match pattern such as
// *.example.com) covers domain. It is the one matcher of domain patterns, so default policies
// and the webhook's domain bounds (LIVEPACK_WEBHOOK_DOMAINS) read a pattern the same way.
func MatchDomain(glob, domain string) bool {
	if glob == domain {
		return true
	}
	ok, err := path.Match(glob, domain)
	return err == nil && ok
}

// crossField carries the rules that tie one field's range to another field: the tags cannot
// say "1 to 2 when Protocol is LLHLS_*".
func crossField(sl validator.StructLevel) {
	p := sl.Current().Interface().(Policy)
	if p.Delete {
		return
	}
	ll := IsLowLatency(p.Protocol)
	if p.SegmentDuration != nil && ll && *p.SegmentDuration > MaxLLSegmentDuration && *p.SegmentDuration <= MaxSegmentDuration {
		sl.ReportError(*p.SegmentDuration, "SegmentDuration", "SegmentDuration", "ll_range", p.Protocol)
	}
	if p.PartDuration == nil {
		return
	}
	if !ll {
		sl.ReportError(*p.PartDuration, "PartDuration", "PartDuration", "ll_only", p.Protocol)
		return
	}
	if p.SegmentDuration != nil && *p.SegmentDuration == 1 && *p.PartDuration > MaxPartDurationAt1s && *p.PartDuration <= MaxPartDurationAt2s {
		sl.ReportError(*p.PartDuration, "PartDuration", "PartDuration", "part_range", "SegmentDuration 1")
	}
}

// Validate checks a normalized policy against every rule of the AddLivePackageConfig page and
// returns one FieldError per broken rule, each with index as its Index.
func Validate(index int, p Policy) []FieldError {
	err := validate.Struct(p)
	if err == nil {
		return nil
	}
	verrs, ok := err.(validator.ValidationErrors)
	if !ok {
		return []FieldError{{Index: index, Code: CodeInvalidParams, Rule: "validator", Message: err.Error()}}
	}
	out := make([]FieldError, 0, len(verrs))
	for _, fe := range verrs {
		var value any
		if fe.Tag() != "required" && fe.Tag() != "required_unless" {
			value = fe.Value()
		}
		detail := ""
		switch fe.Tag() {
		case "ll_range", "ll_only":
			detail = "Protocol " + fe.Param()
		case "part_range":
			detail = fe.Param()
		}
		out = append(out, fieldError(index, fe.Field(), fe.Tag(), value, detail))
	}
	return out
}
