package policy

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseBoundaries(t *testing.T) {
	name255 := "a" + strings.Repeat("b", 254)
	name256 := name255 + "c"
	type row struct {
		name string
		doc  string
		code string // "" means valid
		fld  string
	}
	rows := []row{
		{"minimal HLS", `{"DomainName":"play.example.com","AppName":"a","StreamName":"s","Protocol":"HLS_CMAF"}`, "", ""},
		{"name 255", `{"DomainName":"play.example.com","AppName":"` + name255 + `","StreamName":"s","Protocol":"HLS_CMAF"}`, "", ""},
		{"app 256", `{"DomainName":"play.example.com","AppName":"` + name256 + `","StreamName":"s","Protocol":"HLS_CMAF"}`, CodeInvalidParams, "AppName"},
		{"stream 256", `{"DomainName":"play.example.com","AppName":"a","StreamName":"` + name256 + `","Protocol":"HLS_CMAF"}`, CodeInvalidParams, "StreamName"},
		{"stream 255", `{"DomainName":"play.example.com","AppName":"a","StreamName":"` + name255 + `","Protocol":"HLS_CMAF"}`, "", ""},
		{"app leading -", `{"DomainName":"play.example.com","AppName":"-a","StreamName":"s","Protocol":"HLS_CMAF"}`, CodeInvalidParams, "AppName"},
		{"app leading _", `{"DomainName":"play.example.com","AppName":"_a","StreamName":"s","Protocol":"HLS_CMAF"}`, CodeInvalidParams, "AppName"},
		{"stream leading -", `{"DomainName":"play.example.com","AppName":"a","StreamName":"-s","Protocol":"HLS_CMAF"}`, CodeInvalidParams, "StreamName"},
		{"stream leading _", `{"DomainName":"play.example.com","AppName":"a","StreamName":"_s","Protocol":"HLS_CMAF"}`, CodeInvalidParams, "StreamName"},
		{"inner - and _", `{"DomainName":"play.example.com","AppName":"a-b_c","StreamName":"s_1-2","Protocol":"HLS_CMAF"}`, "", ""},
		{"star app and stream", `{"DomainName":"play.example.com","AppName":"*","StreamName":"*","Protocol":"HLS_CMAF"}`, "", ""},
		{"two stars", `{"DomainName":"play.example.com","AppName":"**","StreamName":"s","Protocol":"HLS_CMAF"}`, CodeInvalidParams, "AppName"},
		{"star in name", `{"DomainName":"play.example.com","AppName":"a*","StreamName":"s","Protocol":"HLS_CMAF"}`, CodeInvalidParams, "AppName"},
		{"illegal dot", `{"DomainName":"play.example.com","AppName":"a.b","StreamName":"s","Protocol":"HLS_CMAF"}`, CodeInvalidParams, "AppName"},
		{"illegal slash", `{"DomainName":"play.example.com","AppName":"a","StreamName":"s/1","Protocol":"HLS_CMAF"}`, CodeInvalidParams, "StreamName"},
		{"illegal space inside", `{"DomainName":"play.example.com","AppName":"a b","StreamName":"s","Protocol":"HLS_CMAF"}`, CodeInvalidParams, "AppName"},
		{"illegal unicode", `{"DomainName":"play.example.com","AppName":"é","StreamName":"s","Protocol":"HLS_CMAF"}`, CodeInvalidParams, "AppName"},
		{"empty app", `{"DomainName":"play.example.com","AppName":"","StreamName":"s","Protocol":"HLS_CMAF"}`, CodeMissingParam, "AppName"},
		{"blank stream", `{"DomainName":"play.example.com","AppName":"a","StreamName":"  ","Protocol":"HLS_CMAF"}`, CodeMissingParam, "StreamName"},
		{"empty domain", `{"DomainName":"","AppName":"a","StreamName":"s","Protocol":"HLS_CMAF"}`, CodeMissingParam, "DomainName"},
		{"missing domain", `{"AppName":"a","StreamName":"s","Protocol":"HLS_CMAF"}`, CodeMissingParam, "DomainName"},
		{"missing app", `{"DomainName":"play.example.com","StreamName":"s","Protocol":"HLS_CMAF"}`, CodeMissingParam, "AppName"},
		{"missing stream", `{"DomainName":"play.example.com","AppName":"a","Protocol":"HLS_CMAF"}`, CodeMissingParam, "StreamName"},
		{"missing protocol", `{"DomainName":"play.example.com","AppName":"a","StreamName":"s"}`, CodeMissingParam, "Protocol"},
		{"empty protocol", `{"DomainName":"play.example.com","AppName":"a","StreamName":"s","Protocol":""}`, CodeMissingParam, "Protocol"},
		{"bad protocol", `{"DomainName":"play.example.com","AppName":"a","StreamName":"s","Protocol":"RTMP"}`, CodeInvalidProtocol, "Protocol"},
		{"bad domain char", `{"DomainName":"play_1.example.com","AppName":"a","StreamName":"s","Protocol":"HLS_CMAF"}`, CodeInvalidParams, "DomainName"},
		{"domain 256", `{"DomainName":"` + strings.Repeat("a.", 127) + `aa","AppName":"a","StreamName":"s","Protocol":"HLS_CMAF"}`, CodeInvalidParams, "DomainName"},
		{"domain glob", `{"DomainName":"*.example.com","AppName":"a","StreamName":"s","Protocol":"HLS_CMAF"}`, "", ""},
		{"domain bad glob", `{"DomainName":"[.example.com","AppName":"a","StreamName":"s","Protocol":"HLS_CMAF"}`, CodeInvalidParams, "DomainName"},
		{"SegmentNum 2", `{"DomainName":"p.com","AppName":"a","StreamName":"s","Protocol":"HLS_CMAF","SegmentNum":2}`, CodeInvalidSegmentNum, "SegmentNum"},
		{"SegmentNum 3", `{"DomainName":"p.com","AppName":"a","StreamName":"s","Protocol":"HLS_CMAF","SegmentNum":3}`, "", ""},
		{"SegmentNum 10", `{"DomainName":"p.com","AppName":"a","StreamName":"s","Protocol":"HLS_CMAF","SegmentNum":10}`, "", ""},
		{"SegmentNum 11", `{"DomainName":"p.com","AppName":"a","StreamName":"s","Protocol":"HLS_CMAF","SegmentNum":11}`, CodeInvalidSegmentNum, "SegmentNum"},
		{"SegmentNum 0", `{"DomainName":"p.com","AppName":"a","StreamName":"s","Protocol":"HLS_CMAF","SegmentNum":0}`, CodeInvalidSegmentNum, "SegmentNum"},
		{"SegmentNum string", `{"DomainName":"p.com","AppName":"a","StreamName":"s","Protocol":"HLS_CMAF","SegmentNum":"3"}`, CodeInvalidSegmentNum, "SegmentNum"},
		{"SegmentNum float", `{"DomainName":"p.com","AppName":"a","StreamName":"s","Protocol":"HLS_CMAF","SegmentNum":3.5}`, CodeInvalidSegmentNum, "SegmentNum"},
		{"Protocol number", `{"DomainName":"p.com","AppName":"a","StreamName":"s","Protocol":5}`, CodeInvalidProtocol, "Protocol"},
		{"AppName number", `{"DomainName":"p.com","AppName":1,"StreamName":"s","Protocol":"HLS_CMAF"}`, CodeInvalidParams, "AppName"},
		{"IgnoreTranscode string", `{"DomainName":"p.com","AppName":"a","StreamName":"s","Protocol":"HLS_CMAF","IgnoreTranscode":"yes"}`, CodeInvalidParams, "IgnoreTranscode"},
		{"PartDuration string", `{"DomainName":"p.com","AppName":"a","StreamName":"s","Protocol":"LLHLS_CMAF","PartDuration":"350"}`, CodeInvalidPartDuration, "PartDuration"},
		{"unknown field typo", `{"DomainName":"p.com","AppName":"a","StreamName":"s","Protocol":"HLS_CMAF","SegmentDurations":4}`, CodeInvalidParams, "SegmentDurations"},
		{"unknown field case", `{"domainname":"p.com","AppName":"a","StreamName":"s","Protocol":"HLS_CMAF"}`, CodeInvalidParams, "domainname"},
		{"unknown top-level", `{"policies":[{"DomainName":"p.com","AppName":"a","StreamName":"s","Protocol":"HLS_CMAF"}],"polices":[]}`, CodeInvalidParams, "polices"},
		{"malformed", `{"DomainName":`, CodeInvalidParams, "document"},
		{"not an object", `"x"`, CodeInvalidParams, "document"},
		{"empty document", `{}`, CodeMissingParam, "document"},
		{"empty input", "  \n", CodeMissingParam, "document"},
		{"id without policies", `{"id":"k"}`, CodeMissingParam, "policies"},
		{"null policies", `{"policies":null}`, CodeMissingParam, "policies"},
		{"empty policies", `{"policies":[]}`, "", ""},
		{"empty array", `[]`, "", ""},
		{"covered domains, no policy", `{"domains":["play.example.com"],"policies":[]}`, "", ""},
		{"domains without policies", `{"domains":["play.example.com"]}`, CodeMissingParam, "policies"},
		{"domains not an array", `{"domains":"play.example.com","policies":[]}`, CodeInvalidParams, "domains"},
		{"domains pattern", `{"domains":["*.example.com"],"policies":[]}`, CodeInvalidParams, "domains"},
		{"domains not a name", `{"domains":["play example"],"policies":[]}`, CodeInvalidParams, "domains"},
		{"policies not array", `{"policies":{}}`, CodeInvalidParams, "policies"},
		{"policy not object", `[1]`, CodeInvalidParams, "policy"},
		{"id number", `{"id":5,"policies":[{"DomainName":"p.com","AppName":"a","StreamName":"s","Protocol":"HLS_CMAF"}]}`, CodeInvalidParams, "id"},
		{"duplicate target", `[{"DomainName":"p.com","AppName":"a","StreamName":"s","Protocol":"HLS_CMAF"},{"DomainName":"P.com.","AppName":"a","StreamName":"s","Protocol":"DASH_CMAF"}]`, CodeInvalidParams, "DomainName"},
		{"delete needs names only", `{"DomainName":"p.com","AppName":"a","StreamName":"s","Delete":true}`, "", ""},
		{"delete still needs names", `{"DomainName":"p.com","AppName":"a","Delete":true}`, CodeMissingParam, "StreamName"},
	}
	for _, proto := range Protocols {
		ll := IsLowLatency(proto)
		maxSeg := 10
		if ll {
			maxSeg = 2
		}
		seg := func(n int) string {
			return `{"DomainName":"p.com","AppName":"a","StreamName":"s","Protocol":"` + proto + `","SegmentDuration":` + itoa(n) + `}`
		}
		rows = append(rows,
			row{proto + " SegmentDuration 0", seg(0), CodeInvalidSegmentDuration, "SegmentDuration"},
			row{proto + " SegmentDuration 1", seg(1), "", ""},
			row{proto + " SegmentDuration max", seg(maxSeg), "", ""},
			row{proto + " SegmentDuration max+1", seg(maxSeg + 1), CodeInvalidSegmentDuration, "SegmentDuration"},
		)
		part := func(segDur, n int) string {
			return `{"DomainName":"p.com","AppName":"a","StreamName":"s","Protocol":"` + proto + `","SegmentDuration":` + itoa(segDur) + `,"PartDuration":` + itoa(n) + `}`
		}
		if !ll {
			// Dropped with a warning, not an error: see TestPartDurationDroppedForNonLL.
			rows = append(rows, row{proto + " PartDuration dropped", part(1, 350), "", ""})
			continue
		}
		rows = append(rows,
			row{proto + " part 99 at 1s", part(1, 99), CodeInvalidPartDuration, "PartDuration"},
			row{proto + " part 100 at 1s", part(1, 100), "", ""},
			row{proto + " part 500 at 1s", part(1, 500), "", ""},
			row{proto + " part 501 at 1s", part(1, 501), CodeInvalidPartDuration, "PartDuration"},
			row{proto + " part 99 at 2s", part(2, 99), CodeInvalidPartDuration, "PartDuration"},
			row{proto + " part 100 at 2s", part(2, 100), "", ""},
			row{proto + " part 1000 at 2s", part(2, 1000), "", ""},
			row{proto + " part 1001 at 2s", part(2, 1001), CodeInvalidPartDuration, "PartDuration"},
		)
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			doc, err := Parse([]byte(r.doc))
			if r.code == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				for _, p := range doc.Policies {
					if !docAccepts(p) {
						t.Fatalf("accepted policy breaks the doc's rules: %+v", p)
					}
				}
				return
			}
			var inv *Invalid
			if !errors.As(err, &inv) {
				t.Fatalf("Parse error = %v, want *Invalid with %s", err, r.code)
			}
			for _, fe := range inv.Errors {
				if fe.Code == r.code && fe.Field == r.fld {
					if fe.Message == "" || fe.Accepted == "" || fe.Rule == "" {
						t.Fatalf("error lacks message, rule or accepted: %+v", fe)
					}
					return
				}
			}
			t.Fatalf("errors %+v lack %s on %s", inv.Errors, r.code, r.fld)
		})
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestNormalizeDefaults(t *testing.T) {
	tests := []struct {
		in   string
		want Config
	}{
		{`{"DomainName":" Play.Example.COM. ","AppName":" a ","StreamName":"s","Protocol":"hls-cmaf"}`,
			Config{Protocol: HLSCMAF, SegmentNum: 3, SegmentDuration: 5, IgnoreTranscode: true}},
		{`{"DomainName":"p.com","AppName":"a","StreamName":"s","Protocol":"llhls_cmaf"}`,
			Config{Protocol: LLHLSCMAF, SegmentNum: 3, SegmentDuration: 1, PartDuration: 350, IgnoreTranscode: true}},
		{`{"DomainName":"p.com","AppName":"a","StreamName":"s","Protocol":"LLHLS-TS","SegmentDuration":2}`,
			Config{Protocol: LLHLSTS, SegmentNum: 3, SegmentDuration: 2, PartDuration: 700, IgnoreTranscode: true}},
		{`{"DomainName":"p.com","AppName":"a","StreamName":"s","Protocol":"DASH_CMAF","IgnoreTranscode":false,"SegmentNum":10}`,
			Config{Protocol: DASHCMAF, SegmentNum: 10, SegmentDuration: 5, IgnoreTranscode: false}},
	}
	for _, tt := range tests {
		doc, err := Parse([]byte(tt.in))
		if err != nil {
			t.Fatalf("Parse(%s): %v", tt.in, err)
		}
		if got := doc.Policies[0].Config(); got != tt.want {
			t.Errorf("Parse(%s) config = %+v, want %+v", tt.in, got, tt.want)
		}
	}
	doc, _ := Parse([]byte(tests[0].in))
	if p := doc.Policies[0]; p.DomainName != "play.example.com" || p.AppName != "a" {
		t.Errorf("names not normalized: %+v", p)
	}
}

func TestPartDurationDroppedForNonLL(t *testing.T) {
	doc, err := Parse([]byte(`{"DomainName":"p.com","AppName":"a","StreamName":"s","Protocol":"HLS_CMAF","PartDuration":350}`))
	if err != nil {
		t.Fatal(err)
	}
	p := doc.Policies[0]
	if p.PartDuration != nil || len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0], "PartDuration") {
		t.Fatalf("PartDuration not dropped with a warning: %+v", p)
	}
}

func TestDocumentShapes(t *testing.T) {
	one := `{"DomainName":"p.com","AppName":"a","StreamName":"s","Protocol":"HLS_CMAF"}`
	for _, in := range []string{one, "[" + one + "]", `{"policies":[` + one + `]}`, `{"id":"k1","policies":[` + one + `]}`} {
		doc, err := Parse([]byte(in))
		if err != nil || len(doc.Policies) != 1 {
			t.Fatalf("Parse(%s) = %+v, %v", in, doc, err)
		}
	}
	doc, _ := Parse([]byte(`{"id":" k1 ","policies":[` + one + `]}`))
	if doc.ID != "k1" {
		t.Fatalf("id = %q", doc.ID)
	}
}

func TestHashIgnoresIDAndFollowsContent(t *testing.T) {
	a, _ := Parse([]byte(`{"id":"x","policies":[{"DomainName":"p.com","AppName":"a","StreamName":"s","Protocol":"hls_cmaf"}]}`))
	b, _ := Parse([]byte(`{"DomainName":"P.com","AppName":"a","StreamName":"s","Protocol":"HLS_CMAF","SegmentDuration":5}`))
	c, _ := Parse([]byte(`{"DomainName":"p.com","AppName":"a","StreamName":"s","Protocol":"HLS_CMAF","SegmentDuration":6}`))
	if Hash(a) != Hash(b) {
		t.Error("equal normalized documents hash differently")
	}
	if Hash(a) == Hash(c) {
		t.Error("different documents hash alike")
	}
}

func TestMatchesDomain(t *testing.T) {
	tests := []struct {
		glob, domain string
		want         bool
	}{
		{"*", "play.example.com", true},
		{"*.example.com", "play.example.com", true},
		{"*.example.com", "example.com", false},
		{"play.example.com", "play.example.com", true},
		{"play.example.com", "push.example.com", false},
		{"p?ay.example.com", "play.example.com", true},
	}
	for _, tt := range tests {
		if got := (Policy{DomainName: tt.glob}).MatchesDomain(tt.domain); got != tt.want {
			t.Errorf("%q matches %q = %v, want %v", tt.glob, tt.domain, got, tt.want)
		}
	}
}

// TestRulesTableComplete: every tag the struct and cross-field rules can report has a row in
// the code table, so no failure falls back to a generic code.
func TestRulesTableComplete(t *testing.T) {
	typ := reflect.TypeOf(Policy{})
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		for _, tag := range strings.Split(f.Tag.Get("validate"), ",") {
			tag, _, _ = strings.Cut(tag, "=")
			if tag == "" || tag == "omitempty" {
				continue
			}
			if _, ok := rules[name+"."+tag]; !ok {
				t.Errorf("no code for %s.%s", name, tag)
			}
		}
	}
}

// docAccepts is the AddLivePackageConfig page read a second time, in plain Go, without the
// validator: the fuzz test holds every accepted policy to it.
func docAccepts(p Policy) bool {
	nameOK := func(s string) bool {
		if s == "*" {
			return true
		}
		if len(s) == 0 || len(s) > 255 || s[0] == '-' || s[0] == '_' {
			return false
		}
		for _, r := range s {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
		return true
	}
	if p.DomainName == "" || len(p.DomainName) > 255 || !nameOK(p.AppName) || !nameOK(p.StreamName) {
		return false
	}
	if p.Delete {
		return p.Protocol == "" && p.SegmentNum == nil && p.SegmentDuration == nil && p.PartDuration == nil
	}
	ll := false
	switch p.Protocol {
	case "LLHLS_TS", "LLHLS_CMAF":
		ll = true
	case "HLS_CMAF", "DASH_CMAF", "HLSDASH_CMAF":
	default:
		return false
	}
	if p.SegmentNum == nil || *p.SegmentNum < 3 || *p.SegmentNum > 10 {
		return false
	}
	if p.SegmentDuration == nil || p.IgnoreTranscode == nil {
		return false
	}
	sd := *p.SegmentDuration
	if !ll {
		return sd >= 1 && sd <= 10 && p.PartDuration == nil
	}
	if sd < 1 || sd > 2 || p.PartDuration == nil {
		return false
	}
	pd := *p.PartDuration
	if sd == 1 {
		return pd >= 100 && pd <= 500
	}
	return pd >= 100 && pd <= 1000
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"DomainName":"p.com","AppName":"a","StreamName":"s","Protocol":"LLHLS_CMAF","SegmentDuration":2,"PartDuration":1000}`))
	f.Add([]byte(`[{"DomainName":"P.com.","AppName":"*","StreamName":"*","Protocol":"hls-cmaf","PartDuration":5}]`))
	f.Add([]byte(`{"id":"x","policies":[{"DomainName":"p.com","AppName":"a","StreamName":"s","Delete":true}]}`))
	f.Add([]byte(`{"policies":[{"DomainName":"p.com","AppName":"a","StreamName":"s","Protocol":"DASH_CMAF","SegmentNum":10,"IgnoreTranscode":false}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := Parse(data)
		if err != nil {
			var inv *Invalid
			if !errors.As(err, &inv) || len(inv.Errors) == 0 {
				t.Fatalf("error is not an *Invalid with errors: %v", err)
			}
			for _, fe := range inv.Errors {
				if fe.Code == "" || fe.Message == "" {
					t.Fatalf("error without code or message: %+v", fe)
				}
			}
			return
		}
		for _, p := range doc.Policies {
			if !docAccepts(p) {
				t.Fatalf("accepted policy breaks the API page's rules: %+v", p)
			}
			if again := Normalize(p); !reflect.DeepEqual(again, p) {
				t.Fatalf("Normalize not idempotent:\n%+v\n%+v", p, again)
			}
		}
	})
}

// FuzzPolicyFields drives the settings directly, so the fuzzer reaches every numeric
// boundary without having to discover JSON first.
func FuzzPolicyFields(f *testing.F) {
	f.Add("p.com", "a", "s", "LLHLS_TS", 3, 1, 500, true, true)
	f.Add("p.com", "*", "-s", "HLS_CMAF", 10, 10, 0, false, false)
	f.Fuzz(func(t *testing.T, domain, app, stream, proto string, segNum, segDur, part int, hasPart, ignore bool) {
		p := Policy{DomainName: domain, AppName: app, StreamName: stream, Protocol: proto,
			SegmentNum: &segNum, SegmentDuration: &segDur, IgnoreTranscode: &ignore}
		if hasPart {
			p.PartDuration = &part
		}
		n := Normalize(p)
		if again := Normalize(n); !reflect.DeepEqual(again, n) {
			t.Fatalf("Normalize not idempotent:\n%+v\n%+v", n, again)
		}
		if errs := Validate(0, n); len(errs) == 0 && !docAccepts(n) {
			t.Fatalf("accepted policy breaks the API page's rules: %+v", n)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	doc := []byte(`{"policies":[
	 {"DomainName":"play.example.com","AppName":"sports","StreamName":"*","Protocol":"LLHLS_CMAF","SegmentDuration":1,"PartDuration":350},
	 {"DomainName":"play.example.com","AppName":"news","StreamName":"*","Protocol":"HLS_CMAF"},
	 {"DomainName":"play.example.com","AppName":"old","StreamName":"*","Delete":true}]}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(doc); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(3*b.N)/b.Elapsed().Seconds(), "policies/s")
}

// TestEmptyDocuments: an empty list of policies is a valid document that asks for nothing; its
// "domains" are normalized and deduplicated, and an empty input or object is named as such,
// not as a missing field.
func TestEmptyDocuments(t *testing.T) {
	doc, err := Parse([]byte(`{"domains": ["Play.Example.com.", "play.example.com", "new.example.com"], "policies": []}`))
	if err != nil || len(doc.Policies) != 0 || doc.Policies == nil || strings.Join(doc.Domains, ",") != "play.example.com,new.example.com" {
		t.Fatalf("Parse = %+v, %v", doc, err)
	}
	b, _ := json.Marshal(doc)
	if string(b) != `{"domains":["play.example.com","new.example.com"],"policies":[]}` {
		t.Fatalf("round trip: %s", b)
	}
	doc, _ = Parse([]byte(`{"domains": ["a.example.com"], "policies": [{"DomainName":"b.example.com","AppName":"a","StreamName":"*","Delete":true}]}`))
	if got := strings.Join(doc.Covered(), ","); got != "a.example.com,b.example.com" {
		t.Fatalf("Covered = %s", got)
	}
	for _, in := range []string{"", "{}", " { } "} {
		_, err := Parse([]byte(in))
		var inv *Invalid
		if !errors.As(err, &inv) || len(inv.Errors) != 1 || !strings.HasPrefix(inv.Errors[0].Message, "document is empty: MissingParam") {
			t.Errorf("Parse(%q) = %v", in, err)
		}
	}
}
