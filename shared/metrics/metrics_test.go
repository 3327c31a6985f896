package metrics

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/livepack/livepack/shared/apply"
	"github.com/livepack/livepack/shared/liveapi"
)

func sample() (*apply.Result, *liveapi.Stats) {
	res := &apply.Result{Trigger: "cms-webhook", Results: []apply.PolicyResult{
		{Outcome: apply.Created}, {Outcome: apply.Created}, {Outcome: apply.Failed}, {Outcome: apply.Unchanged}},
		Notices: []apply.NoticeResult{
			{ID: "a", Sinks: map[string]string{"stdout": "delivered", "https://hooks.example.com/~0a1b2c3d": "delivered"}},
			{ID: "b", Sinks: map[string]string{"stdout": "delivered", "https://hooks.example.com/~0a1b2c3d": "pending"}},
			{ID: "c", Sinks: map[string]string{"https://hooks.example.com/~0a1b2c3d": "failed: HTTP 403"}},
			{ID: "d", Event: json.RawMessage(`{}`)},
		},
		Backlog: &apply.Backlog{Owed: 1}}
	var st liveapi.Stats
	st.Calls.Add(9)
	st.Throttles.Add(2)
	st.Retries.Add(3)
	return res, &st
}

func TestNew(t *testing.T) {
	res, st := sample()
	r := New(res, st, 1500*time.Millisecond, nil)
	if r.Trigger != "cms-webhook" || r.Outcomes[apply.Created] != 2 || r.Outcomes[apply.Failed] != 1 || r.Outcomes[apply.Deleted] != 0 ||
		len(r.Outcomes) != len(Outcomes) || r.Outcomes[apply.Deferred] != 0 || r.Calls != 9 || r.Throttles != 2 || r.Retries != 3 ||
		r.NoticesDelivered != 1 || r.NoticesPending != 1 || r.NoticesFailed != 1 || r.Errors != 0 {
		t.Fatalf("%+v", r)
	}
	if e := New(nil, nil, 0, io.EOF); e.Trigger != "error" || e.Errors != 1 || e.Outcomes[apply.Failed] != 0 {
		t.Fatalf("no result: %+v", e)
	}
}

func emfSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open("testdata/emf.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("emf.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	return c.MustCompile("emf.schema.json")
}

// checkEMF applies the specification: the document's structure (schema), and the rules that
// tie directives to the root's members: every dimension a string member, every metric a
// number (or an array of at most 100 numbers), the root a single JSON object on one line.
func checkEMF(t *testing.T, sch *jsonschema.Schema, line []byte) map[string]any {
	t.Helper()
	if bytes.ContainsRune(line, '\n') {
		t.Fatalf("EMF spans lines: %s", line)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(line))
	if err != nil {
		t.Fatalf("EMF is not JSON: %v", err)
	}
	if err := sch.Validate(v); err != nil {
		t.Fatalf("EMF breaks the specification: %v\n%s", err, line)
	}
	var doc map[string]any
	_ = json.Unmarshal(line, &doc)
	for _, d := range doc["_aws"].(map[string]any)["CloudWatchMetrics"].([]any) {
		dir := d.(map[string]any)
		for _, set := range dir["Dimensions"].([]any) {
			for _, name := range set.([]any) {
				if _, ok := doc[name.(string)].(string); !ok {
					t.Errorf("dimension %v is not a string member of the root", name)
				}
			}
		}
		for _, m := range dir["Metrics"].([]any) {
			name := m.(map[string]any)["Name"].(string)
			switch v := doc[name].(type) {
			case float64:
			case []any:
				if len(v) > 100 {
					t.Errorf("metric %s has %d values", name, len(v))
				}
			default:
				t.Errorf("metric %s is not a number member of the root: %v", name, doc[name])
			}
		}
	}
	return doc
}

func TestEMFFollowsTheSpecification(t *testing.T) {
	sch := emfSchema(t)
	res, st := sample()
	now := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	doc := checkEMF(t, sch, New(res, st, 1500*time.Millisecond, nil).EMF(now))
	aws := doc["_aws"].(map[string]any)
	dir := aws["CloudWatchMetrics"].([]any)[0].(map[string]any)
	if aws["Timestamp"] != float64(now.UnixMilli()) || dir["Namespace"] != "livepack" || doc["Failed"] != float64(1) ||
		doc["NoticesPending"] != float64(1) || doc["Throttles"] != float64(2) || doc["Duration"] != float64(1500) {
		t.Fatalf("values: %v", doc)
	}
	// The checks are not vacuous: a broken document fails them.
	for _, bad := range []string{`{"_aws":{"CloudWatchMetrics":[]}}`,
		`{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"livepack","Dimensions":[],"Metrics":[{"Name":"X","Unit":"Calls"}]}]},"X":1}`} {
		v, _ := jsonschema.UnmarshalJSON(strings.NewReader(bad))
		if sch.Validate(v) == nil {
			t.Errorf("the schema accepts %s", bad)
		}
	}
}

func TestLogLine(t *testing.T) {
	res, st := sample()
	var doc map[string]any
	line := New(res, st, time.Second, nil).LogLine(time.Now())
	if err := json.Unmarshal(line, &doc); err != nil || bytes.ContainsRune(line, '\n') {
		t.Fatalf("%s: %v", line, err)
	}
	if doc["metrics"] != "livepack" || doc["Failed"] != float64(1) || doc["ApiCalls"] != float64(9) || doc["NoticesPending"] != float64(1) || doc["Trigger"] != "cms-webhook" {
		t.Fatalf("%s", line)
	}
}

// TestOwedOnlyWhenRead: an invocation that read the backlog reports it, zero included; one
// that read none (a settled replay) leaves both backlog metrics out of its EMF document and
// log line (the Prometheus gauges then keep the last reading: prom's TestOwedGaugeKeepsLastReading).
func TestOwedOnlyWhenRead(t *testing.T) {
	res, st := sample()
	res.Backlog = &apply.Backlog{Owed: 0}
	none := &apply.Result{Trigger: "cms-webhook", Replayed: true}
	for _, tt := range []struct {
		res  *apply.Result
		want bool
	}{{res, true}, {none, false}} {
		r := New(tt.res, st, time.Second, nil)
		for _, doc := range [][]byte{r.EMF(time.Now()), r.LogLine(time.Now())} {
			var m map[string]any
			if err := json.Unmarshal(doc, &m); err != nil {
				t.Fatal(err)
			}
			_, owed := m["NoticesOwed"]
			_, oldest := m["OldestOwedNotice"]
			if owed != tt.want || oldest != tt.want || (tt.want && !bytes.Contains(doc, []byte(`{"Name":"NoticesOwed"`)) && bytes.Contains(doc, []byte(`"_aws"`))) {
				t.Fatalf("backlog read %v: %s", tt.want, doc)
			}
		}
	}
}
