package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Invalid is the error of a document that breaks a rule. It lists every broken rule, not just
// the first, so one round trip fixes them all.
type Invalid struct {
	Errors []FieldError
}

// Error summarizes the errors; Errors holds each one.
func (e *Invalid) Error() string {
	if len(e.Errors) == 1 {
		return "invalid policy document: " + e.Errors[0].Message
	}
	return fmt.Sprintf("invalid policy document: %d errors, first: %s", len(e.Errors), e.Errors[0].Message)
}

// policyFields are the only keys a policy object may carry. Matching is exact: encoding/json
// would accept "segmentnum" and silently take a misspelt key's neighbour, and a typo such as
// "SegmentDurations" must fail, not fall back to a default.
var policyFields = map[string]func(p *Policy, raw json.RawMessage) error{
	"DomainName":      func(p *Policy, raw json.RawMessage) error { return json.Unmarshal(raw, &p.DomainName) },
	"AppName":         func(p *Policy, raw json.RawMessage) error { return json.Unmarshal(raw, &p.AppName) },
	"StreamName":      func(p *Policy, raw json.RawMessage) error { return json.Unmarshal(raw, &p.StreamName) },
	"Protocol":        func(p *Policy, raw json.RawMessage) error { return json.Unmarshal(raw, &p.Protocol) },
	"SegmentNum":      func(p *Policy, raw json.RawMessage) error { return json.Unmarshal(raw, &p.SegmentNum) },
	"SegmentDuration": func(p *Policy, raw json.RawMessage) error { return json.Unmarshal(raw, &p.SegmentDuration) },
	"PartDuration":    func(p *Policy, raw json.RawMessage) error { return json.Unmarshal(raw, &p.PartDuration) },
	"IgnoreTranscode": func(p *Policy, raw json.RawMessage) error { return json.Unmarshal(raw, &p.IgnoreTranscode) },
	"Delete":          func(p *Policy, raw json.RawMessage) error { return json.Unmarshal(raw, &p.Delete) },
}

// Parse decodes a policy document in any of its three shapes ({"policies": [...]} with an
// optional "id" and "domains", one policy object, or a bare array), normalizes every policy and
// validates the whole document. An empty list of policies is a valid document: it asks for
// nothing, and with "domains" it says which domains it covers (what `plan -prune` prunes). On
// failure it returns the policies it could read together with an *Invalid listing every
// error, so a caller can report each policy's fate; nothing of an invalid document is meant
// to be applied.
func Parse(data []byte) (Document, error) {
	var doc Document
	var errs []FieldError
	trimmed := bytes.TrimSpace(data)
	invalidJSON := func(err error) error { return malformed(data, trimmed, err) }
	var raws []json.RawMessage
	// listed: the document gave its list of policies, possibly empty; hasObjectKeys: the
	// top-level object had any key at all.
	var listed, hasObjectKeys bool
	switch {
	case len(trimmed) > 0 && trimmed[0] == '[':
		if err := json.Unmarshal(trimmed, &raws); err != nil {
			return doc, invalidJSON(err)
		}
		listed = true
	case len(trimmed) > 0 && trimmed[0] == '{':
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(trimmed, &obj); err != nil {
			return doc, invalidJSON(err)
		}
		hasObjectKeys = len(obj) > 0
		if raw, ok := obj["id"]; ok {
			delete(obj, "id")
			if err := json.Unmarshal(raw, &doc.ID); err != nil || strings.TrimSpace(doc.ID) == "" {
				errs = append(errs, fieldError(-1, "id", "type", string(raw), ""))
			}
			doc.ID = strings.TrimSpace(doc.ID)
		}
		rawDomains, hasDomains := obj["domains"]
		if hasDomains {
			delete(obj, "domains")
			var derrs []FieldError
			doc.Domains, derrs = parseDomains(rawDomains)
			errs = append(errs, derrs...)
		}
		if raw, ok := obj["policies"]; ok {
			delete(obj, "policies")
			if err := json.Unmarshal(raw, &raws); err != nil {
				errs = append(errs, fieldError(-1, "policies", "type", string(raw), ""))
			}
			listed = raws != nil
			for _, k := range sortedKeys(obj) {
				errs = append(errs, unknownField(-1, "document", k, "unknown top-level field"))
			}
		} else if hasDomains {
			// "domains" belongs to the document shape, which needs its "policies" (an empty
			// list is fine); the rest of the object is not read as a policy.
			for _, k := range sortedKeys(obj) {
				errs = append(errs, unknownField(-1, "document", k, "unknown top-level field"))
			}
		} else if len(obj) > 0 {
			one, err := json.Marshal(obj)
			if err != nil {
				return doc, invalidJSON(err)
			}
			raws = []json.RawMessage{one}
		}
	case len(trimmed) == 0:
		return doc, &Invalid{Errors: []FieldError{emptyDocument("the input is empty")}}
	default:
		return doc, invalidJSON(errors.New("expected a JSON object or array"))
	}
	switch {
	case len(errs) > 0 || len(raws) > 0 || listed:
	case !hasObjectKeys:
		errs = append(errs, emptyDocument("an empty object"))
	default:
		errs = append(errs, fieldError(-1, "policies", "required", nil, ""))
	}
	doc.Policies = make([]Policy, 0, len(raws))
	seen := make(map[Target]int, len(raws))
	for i, raw := range raws {
		p, perrs := decodePolicy(i, raw)
		p = Normalize(p)
		// Every rule is checked even after a decoding error, so one run lists every problem;
		// a field that failed to decode is not judged again on its zero value.
		bad := map[string]bool{}
		for _, fe := range perrs {
			bad[fe.Field] = true
		}
		if len(perrs) == 0 || !bad["policy"] {
			for _, fe := range Validate(i, p) {
				if !bad[fe.Field] {
					perrs = append(perrs, fe)
				}
			}
			sortErrors(perrs)
		}
		if first, dup := seen[p.Target()]; dup && len(perrs) == 0 {
			perrs = append(perrs, fieldError(i, "DomainName", "unique", p.Target().String(),
				fmt.Sprintf("policy %d has the same DomainName/AppName/StreamName", first)))
		} else if !dup {
			seen[p.Target()] = i
		}
		errs = append(errs, perrs...)
		doc.Policies = append(doc.Policies, p)
	}
	if len(errs) > 0 {
		return doc, &Invalid{Errors: errs}
	}
	return doc, nil
}

// decodePolicy reads one policy object key by key, so that every unknown key and every wrong
// type is reported, not only the first one the decoder meets.
func decodePolicy(index int, raw json.RawMessage) (Policy, []FieldError) {
	var p Policy
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return p, []FieldError{fieldError(index, "policy", "type", string(raw), "")}
	}
	var errs []FieldError
	for k, v := range obj {
		set, ok := policyFields[k]
		if !ok {
			detail := "unknown field"
			for _, known := range sortedKeys(policyFields) {
				if k != "" && (strings.EqualFold(known, k) || strings.HasPrefix(k, known) || strings.HasPrefix(known, k)) {
					detail = "unknown field; did you mean " + known + "?"
					break
				}
			}
			errs = append(errs, unknownField(index, "policy", k, detail))
			continue
		}
		if bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			continue
		}
		if err := set(&p, v); err != nil {
			errs = append(errs, fieldError(index, k, "type", string(v), ""))
		}
	}
	// Map order is random; report in field order so the same input gives the same output.
	sortErrors(errs)
	return p, errs
}

var fieldOrder = map[string]int{"DomainName": 0, "AppName": 1, "StreamName": 2, "Protocol": 3,
	"SegmentNum": 4, "SegmentDuration": 5, "PartDuration": 6, "IgnoreTranscode": 7, "Delete": 8}

func sortErrors(errs []FieldError) {
	rank := func(f string) int {
		if r, ok := fieldOrder[f]; ok {
			return r
		}
		return 100
	}
	for i := 1; i < len(errs); i++ {
		for j := i; j > 0; j-- {
			a, b := errs[j-1], errs[j]
			if rank(a.Field) < rank(b.Field) || rank(a.Field) == rank(b.Field) && a.Field <= b.Field {
				break
			}
			errs[j-1], errs[j] = b, a
		}
	}
}

// unknownField reports a key the document may not carry, under the key's own name.
func unknownField(index int, scope, key, detail string) FieldError {
	fe := fieldError(index, scope, "unknown", key, detail)
	fe.Field = key
	fe.Message = fmt.Sprintf("%s: %s (%s); accepted: %s", key, fe.Code, detail, fe.Accepted)
	return fe
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// malformed reports a JSON decoding failure of data, whose trimmed form was decoded, with the
// line and column where the decoder stopped.
func malformed(data, trimmed []byte, err error) error {
	var offset int64 = -1
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		offset = syn.Offset
	case errors.As(err, &typ):
		offset = typ.Offset
	}
	detail := err.Error()
	if offset >= 0 {
		lead := int64(bytes.Index(data, trimmed))
		line, col := Position(data, lead+offset)
		detail = fmt.Sprintf("line %d, column %d: %s", line, col, err)
	}
	fe := fieldError(-1, "document", "json", nil, detail)
	fe.Message = fmt.Sprintf("document is not valid JSON: %s (%s); accepted: %s", fe.Code, detail, fe.Accepted)
	return &Invalid{Errors: []FieldError{fe}}
}

// Position converts the offset a JSON decoder reports (the bytes it read, the offending one
// included) into the 1-based line and column of the offending byte.
func Position(data []byte, offset int64) (line, col int) {
	end := int(max(0, min(offset, int64(len(data)))))
	if end > 0 {
		end--
	}
	line = 1 + bytes.Count(data[:end], []byte("\n"))
	col = end - bytes.LastIndexByte(data[:end], '\n')
	return line, col
}

// emptyDocument reports a document with nothing in it, which is a mistake rather than an
// empty list of policies (that is written {"policies": []}).
func emptyDocument(what string) FieldError {
	fe := fieldError(-1, "document", "empty", nil, what)
	fe.Message = fmt.Sprintf("document is empty: %s (%s); accepted: %s", fe.Code, what, fe.Accepted)
	return fe
}

// parseDomains reads the "domains" of a document: the play domains it covers, each one domain
// name (no pattern), normalized as DomainName is; a name given twice counts once.
func parseDomains(raw json.RawMessage) ([]string, []FieldError) {
	var names []json.RawMessage
	if err := json.Unmarshal(raw, &names); err != nil || names == nil {
		return nil, []FieldError{fieldError(-1, "domains", "type", string(raw), "")}
	}
	out := make([]string, 0, len(names))
	var errs []FieldError
	for _, n := range names {
		var name string
		if err := json.Unmarshal(n, &name); err != nil {
			errs = append(errs, fieldError(-1, "domains", "type", string(n), ""))
			continue
		}
		name = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(name)), ".")
		if !validDomain(name) || IsGlob(name) || len(name) > MaxNameLen {
			errs = append(errs, fieldError(-1, "domains", "domain", name, ""))
			continue
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out, errs
}
