package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
)

// Normalize returns p in the canonical form the API expects: names trimmed, DomainName
// lower-cased without a trailing dot, Protocol upper-cased with '-' read as '_', and every
// absent setting filled with the API's default. A PartDuration given for a protocol without
// parts is dropped with a warning, and settings given with Delete are dropped likewise, so
// the result never carries a value the API would ignore. Normalize is idempotent.
//
// Defaults follow the AddLivePackageConfig page: SegmentNum 3; SegmentDuration 5, or 1 for
// LLHLS_*; PartDuration 350 at 1 s segments and 700 at 2 s for LLHLS_*; IgnoreTranscode true.
// A SegmentDuration outside 1 to 2 under LLHLS_* gets no PartDuration default: Validate
// reports the segment, and a guessed part would only add a second, misleading error.
func Normalize(p Policy) Policy {
	out := Policy{
		DomainName: strings.TrimSuffix(strings.ToLower(strings.TrimSpace(p.DomainName)), "."),
		AppName:    strings.TrimSpace(p.AppName),
		StreamName: strings.TrimSpace(p.StreamName),
		Protocol:   strings.ReplaceAll(strings.ToUpper(strings.TrimSpace(p.Protocol)), "-", "_"),
		Delete:     p.Delete,
		Warnings:   slices.Clone(p.Warnings),
	}
	if p.Delete {
		if out.Protocol != "" || p.SegmentNum != nil || p.SegmentDuration != nil || p.PartDuration != nil || p.IgnoreTranscode != nil {
			out.Protocol = ""
			out.warn("packaging settings are ignored for a Delete policy")
		}
		return out
	}
	out.SegmentNum = intOr(p.SegmentNum, DefaultSegmentNum)
	ll := IsLowLatency(out.Protocol)
	if ll {
		out.SegmentDuration = intOr(p.SegmentDuration, DefaultLLSegmentDur)
	} else {
		out.SegmentDuration = intOr(p.SegmentDuration, DefaultSegmentDur)
	}
	switch {
	case !ll && p.PartDuration != nil:
		out.warn("PartDuration is dropped: it applies only to LLHLS_* protocols")
	case ll && p.PartDuration != nil:
		out.PartDuration = intOr(p.PartDuration, 0)
	case ll && *out.SegmentDuration == 1:
		out.PartDuration = intOr(nil, DefaultPartAt1s)
	case ll && *out.SegmentDuration == 2:
		out.PartDuration = intOr(nil, DefaultPartAt2s)
	}
	t := true
	if p.IgnoreTranscode != nil {
		t = *p.IgnoreTranscode
	}
	out.IgnoreTranscode = &t
	return out
}

func (p *Policy) warn(msg string) {
	if !slices.Contains(p.Warnings, msg) {
		p.Warnings = append(p.Warnings, msg)
	}
}

func intOr(v *int, def int) *int {
	if v != nil {
		def = *v
	}
	return &def
}

// Config returns the complete config a normalized, valid, non-Delete policy asks for.
func (p Policy) Config() Config {
	c := Config{Protocol: p.Protocol, IgnoreTranscode: true}
	if p.SegmentNum != nil {
		c.SegmentNum = *p.SegmentNum
	}
	if p.SegmentDuration != nil {
		c.SegmentDuration = *p.SegmentDuration
	}
	if p.PartDuration != nil {
		c.PartDuration = *p.PartDuration
	}
	if p.IgnoreTranscode != nil {
		c.IgnoreTranscode = *p.IgnoreTranscode
	}
	return c
}

// Hash identifies a normalized document's desired state: the idempotency key of a direct
// invocation without an "id", and the payload hash bound to any key. The id itself is left
// out, so the same policies under two ids hash alike.
func Hash(doc Document) string {
	b, err := json.Marshal(doc.Policies)
	if err != nil {
		// Policies hold only strings, ints and bools: Marshal cannot fail.
		panic(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
