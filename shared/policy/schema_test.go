package policy_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/livepack/livepack/shared/intake"
	"github.com/livepack/livepack/shared/policy"
)

func compileSchema(t testing.TB) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(policy.Schema()))
	if err != nil {
		t.Fatalf("the schema is not JSON: %v", err)
	}
	c := jsonschema.NewCompiler()
	// The compiler checks the schema against the 2020-12 meta-schema it declares.
	if err := c.AddResource("policy-document.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("policy-document.json")
	if err != nil {
		t.Fatalf("the schema does not compile: %v", err)
	}
	return sch
}

// verdicts returns the schema's and validate's verdict on one document.
func verdicts(t testing.TB, sch *jsonschema.Schema, doc []byte) (schemaOK, validateOK bool, why string) {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		t.Fatalf("generated document is not JSON: %v\n%s", err, doc)
	}
	serr := sch.Validate(inst)
	_, perr := policy.Parse(doc)
	why = fmt.Sprintf("schema: %v\nvalidate: %v", serr, perr)
	return serr == nil, perr == nil, why
}

// TestSchemaSamples: every policy document in events/ (bare, or inside its envelope) gets the
// same verdict from the schema as from validate.
func TestSchemaSamples(t *testing.T) {
	sch := compileSchema(t)
	files, err := filepath.Glob("../../events/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples: %v", err)
	}
	checked := 0
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		req, err := intake.Decode(raw)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		doc := req.Document
		if req.HTTP != nil {
			doc = req.HTTP.Body
		}
		if len(doc) == 0 {
			continue // the envelope carries no policy document (a domain, a schedule mode)
		}
		checked++
		s, v, why := verdicts(t, sch, doc)
		if s != v {
			t.Errorf("%s: schema says valid=%v, validate says valid=%v\n%s", f, s, v, why)
		}
		if wantValid := !strings.Contains(f, "invalid"); v != wantValid {
			t.Errorf("%s: validate says valid=%v", f, v)
		}
	}
	if checked < 6 {
		t.Fatalf("only %d samples carry a policy document", checked)
	}
}

// field values to combine: valid and invalid ones for every single-field rule, absent
// (omitted) and null included. Spellings validate normalizes but the schema leaves out
// (surrounding spaces, a lower-case Protocol) are not among them: the schema documents the
// canonical form.
var (
	absent     = struct{}{}
	long63     = strings.Repeat("a", 63)
	domainVals = []any{absent, nil, "", "play.example.com", "*.example.com", "*", "Play.Example.COM", "play.example.com.", "a..b",
		"-a.example.com", "a-.example.com", "ex_ample.com", long63 + ".com", long63 + "a.com", "?x.example.com", "a b.com", 5,
		strings.Repeat(long63+".", 4)[:255], strings.Repeat(long63+".", 4)[:254] + "ab"}
	nameVals = []any{absent, nil, "", "*", "sports", "a-b_c", "A9", "-a", "_a", "a b", "a*", "**", "ü",
		strings.Repeat("x", 255), strings.Repeat("x", 256), 7}
	protocolVals = []any{absent, nil, "HLS_CMAF", "LLHLS_TS", "LLHLS_CMAF", "DASH_CMAF", "HLSDASH_CMAF", "HLS", "", "RTMP", 5}
	segNumVals   = []any{absent, nil, 2, 3, 4, 10, 11, 0, -1, "3", 3.5}
	segDurVals   = []any{absent, nil, 0, 1, 2, 3, 5, 10, 11, "1", 1.5}
	partVals     = []any{absent, nil, 99, 100, 350, 500, 501, 700, 1000, 1001, 0, "350"}
	boolVals     = []any{absent, nil, true, false, "true", 1}
	deleteVals   = []any{absent, absent, absent, nil, false, true, "yes"}
	extraVals    = []any{absent, absent, absent, absent, absent, 1}
)

var fieldPools = []struct {
	name string
	vals []any
}{
	{"DomainName", domainVals}, {"AppName", nameVals}, {"StreamName", nameVals}, {"Protocol", protocolVals},
	{"SegmentNum", segNumVals}, {"SegmentDuration", segDurVals}, {"PartDuration", partVals},
	{"IgnoreTranscode", boolVals}, {"Delete", deleteVals}, {"Colour", extraVals},
}

func encodePolicy(fields map[string]any) []byte {
	m := map[string]any{}
	for k, v := range fields {
		if v != absent {
			m[k] = v
		}
	}
	b, _ := json.Marshal(m)
	return b
}

// TestSchemaAgreesWithValidate: a valid policy of each protocol with one field at a time set
// to every value of its pool (every single-field rule, at and past each bound), then a few
// thousand random combinations, in each of the three document shapes, get the same verdict
// from the schema and from validate.
func TestSchemaAgreesWithValidate(t *testing.T) {
	sch := compileSchema(t)
	check := func(fields map[string]any, shape int) bool {
		p := encodePolicy(fields)
		var doc []byte
		switch shape {
		case 0:
			doc = []byte(`{"id": "x", "policies": [` + string(p) + `]}`)
		case 1:
			doc = p
		default:
			doc = []byte("[" + string(p) + "]")
		}
		s, v, why := verdicts(t, sch, doc)
		if s != v {
			t.Errorf("schema says valid=%v, validate says valid=%v for %s\n%s", s, v, doc, why)
			return false
		}
		return v
	}
	valid, total := 0, 0
	for _, proto := range policy.Protocols {
		base := map[string]any{"DomainName": "play.example.com", "AppName": "sports", "StreamName": "*", "Protocol": proto}
		for _, f := range fieldPools {
			for _, v := range f.vals {
				fields := maps(base)
				fields[f.name] = v
				for shape := range 3 {
					total++
					if check(fields, shape) {
						valid++
					}
				}
			}
		}
	}
	r := rand.New(rand.NewPCG(11, 29))
	for range 3000 {
		fields := map[string]any{}
		for _, f := range fieldPools {
			// Names are mostly valid, so the settings' rules decide the verdict often enough.
			if slices.Contains([]string{"DomainName", "AppName", "StreamName"}, f.name) && r.IntN(4) > 0 {
				fields[f.name] = "ok-" + f.name[:1]
				if f.name == "DomainName" {
					fields[f.name] = "play.example.com"
				}
				continue
			}
			fields[f.name] = f.vals[r.IntN(len(f.vals))]
		}
		total++
		if check(fields, r.IntN(3)) {
			valid++
		}
		if t.Failed() {
			break
		}
	}
	// Both verdicts must be well represented, or the agreement says little.
	if valid < total/10 || valid > total*9/10 {
		t.Fatalf("%d of %d generated documents valid: the generator is lopsided", valid, total)
	}
	t.Logf("%d documents, %d valid", total, valid)
}

func maps(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// TestSchemaDocumentShapes: the document-level rules (shapes, id, unknown top-level keys).
func TestSchemaDocumentShapes(t *testing.T) {
	sch := compileSchema(t)
	p := `{"DomainName":"play.example.com","AppName":"a","StreamName":"*","Protocol":"HLS_CMAF"}`
	for _, doc := range []string{
		`{"policies": [` + p + `]}`, `{"id": "k", "policies": [` + p + `]}`, `{"id": " ", "policies": [` + p + `]}`,
		`{"id": null, "policies": [` + p + `]}`, `{"id": 5, "policies": [` + p + `]}`, `{"policies": []}`, `{"policies": null}`,
		`{"policies": [null]}`, `{"policies": [` + p + `], "extra": 1}`, `{}`, `{"id": "k"}`, `[]`, `[` + p + `]`, `[1]`,
		`"text"`, `5`, `null`, p, `{"id": "k",` + p[1:], `{"policies": [` + p + `],` + p[1:],
		`{"domains": ["play.example.com"], "policies": []}`, `{"domains": [], "policies": []}`, `{"domains": ["Play.Example.com."], "policies": [` + p + `]}`,
		`{"domains": ["*.example.com"], "policies": []}`, `{"domains": "play.example.com", "policies": []}`, `{"domains": [5], "policies": []}`,
		`{"domains": ["play.example.com"]}`, `{"domains": ["play..example.com"], "policies": []}`, `{"domains": null, "policies": []}`,
	} {
		s, v, why := verdicts(t, sch, []byte(doc))
		if s != v {
			t.Errorf("%s: schema says valid=%v, validate says valid=%v\n%s", doc, s, v, why)
		}
	}
}
