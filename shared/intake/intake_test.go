package intake

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 24, 8, 30, 42, 0, time.UTC)

func TestDecodeSamples(t *testing.T) {
	tests := []struct {
		file   string
		kind   Kind
		source string
		key    string
		domain string
		mode   string
		doc    bool
	}{
		{"domain-created.json", DomainCreated, "alibaba-eventbridge", "acs.live:2f6c8e0a-5d1b-4e7f-9a3c-1b2d3e4f5a6b", "new.example.com", "", false},
		{"domain-created-ingest.json", DomainCreated, "aws-eventbridge", "7c1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f", "push.example.com", "", false},
		{"cloudevent-domain-created.json", DomainCreated, "alibaba-eventbridge", "c0ffee00-1111-4222-8333-444455556666", "global.example.com", "", false},
		{"fc-http-webhook.json", Webhook, "fc-http", "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", "", "", false},
		{"lambda-url-webhook.json", Webhook, "lambda-url", "msg_2KWPBm5YGdQZ8c3nN1oR7sT9uVw", "", "", false},
		{"aws-policies.json", Policies, "aws-eventbridge", "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "", "", true},
		{"cloudevent-policies.json", Policies, "alibaba-eventbridge", "5b6c7d8e-9f0a-4b1c-8d2e-3f4a5b6c7d8e", "", "", true},
		{"fc-timer-report.json", Schedule, "fc-timer", "reconcile@2026-11-24T08:15:00Z", "", ModeReport, false},
		{"scheduler-enforce.json", Schedule, "scheduler", "b1c2d3e4-f5a6-4b7c-8d9e-0f1a2b3c4d5e", "", ModeEnforce, false},
		{"aws-scheduled-event.json", Schedule, "aws-eventbridge", "schedule:2026-11-24T08:30:00Z", "", ModeReport, false},
		{"policies.json", Direct, "direct", "", "", "", true},
		{"policies-invalid.json", Direct, "direct", "", "", "", true},
		{"default-policies.json", Direct, "direct", "", "", "", true},
	}
	files, _ := filepath.Glob("../../events/*.json")
	if len(files) != len(tests) {
		t.Errorf("events/ holds %d samples, the table %d: every sample needs a row", len(files), len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("../../events", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			req, err := DecodeAt(raw, now)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if req.Kind != tt.kind || req.Source != tt.source || req.Key != tt.key || req.DomainName != tt.domain || req.Mode != tt.mode || (len(req.Document) > 0) != tt.doc {
				t.Fatalf("got %+v", req)
			}
			if tt.kind == Webhook && (req.HTTP == nil || req.HTTP.Method != "POST" || len(req.HTTP.Body) == 0 || req.HTTP.Header.Get("Content-Type") != "application/json") {
				t.Fatalf("webhook request not carried: %+v", req.HTTP)
			}
		})
	}
}

func TestDecodeEdgeCases(t *testing.T) {
	tests := []struct {
		name, in string
		kind     Kind
		key      string
		err      bool
	}{
		{"empty", ``, "", "", true},
		{"not json", `hello`, "", "", true},
		{"number", `42`, "", "", true},
		{"unknown object", `{"foo": 1}`, "", "", true},
		{"streaming batch", `["{\"specversion\":\"1.0\"}"]`, "", "", true},
		{"bare array", `[{"DomainName":"p.com"}]`, Direct, "", false},
		{"other ActionTrail call", `{"specversion":"1.0","id":"1","source":"acs.live","type":"live:ActionTrail:ApiCall","data":{"eventName":"DeleteLiveDomain"}}`, Ignored, "acs.live:1", false},
		{"failed AddLiveDomain", `{"specversion":"1.0","id":"1","source":"acs.live","type":"live:ActionTrail:ApiCall","data":{"eventName":"AddLiveDomain","errorCode":"Forbidden","requestParameters":{"DomainName":"x.com"}}}`, Ignored, "acs.live:1", false},
		{"AddLiveDomain without domain", `{"specversion":"1.0","id":"1","source":"acs.live","type":"live:ActionTrail:ApiCall","data":{"eventName":"AddLiveDomain"}}`, "", "", true},
		{"cloudevent without id", `{"specversion":"1.0","type":"livepack.domain.created","data":{"DomainName":"x.com"}}`, "", "", true},
		{"custom domain missing", `{"specversion":"1.0","id":"2","type":"livepack.domain.created","data":{}}`, "", "", true},
		{"other cloudevent", `{"specversion":"1.0","id":"3","source":"s","type":"oss:ObjectCreated"}`, Ignored, "s:3", false},
		{"other aws event", `{"version":"0","id":"4","detail-type":"EC2 State Change","detail":{}}`, Ignored, "4", false},
		{"bad mode", `{"mode":"fix"}`, "", "", true},
		{"mode only", `{"mode":"enforce"}`, Schedule, "schedule@2026-11-24T08:30:00Z", false},
		{"scheduler placeholders", `{"livepack":"reconcile","mode":"report","scheduledTime":"<aws.scheduler.scheduled-time>"}`, Schedule, "schedule@2026-11-24T08:30:00Z", false},
		{"timer empty payload", `{"triggerTime":"t","triggerName":"n","payload":""}`, Schedule, "n@t", false},
		{"timer text payload", `{"triggerTime":"t","triggerName":"n","payload":"awesome-fc"}`, "", "", true},
		{"timer with policies", `{"triggerTime":"t","triggerName":"n","payload":"{\"mode\":\"enforce\",\"policies\":[]}"}`, Schedule, "n@t", false},
		{"timer with a policy array", `{"triggerTime":"t","triggerName":"n","payload":"[{\"DomainName\":\"p.com\"}]"}`, Schedule, "n@t", false},
		{"timer with one policy", `{"triggerTime":"t","triggerName":"n","payload":"{\"DomainName\":\"p.com\",\"mode\":\"enforce\"}"}`, Schedule, "n@t", false},
		{"http base64", `{"version":"2.0","requestContext":{"http":{"method":"POST"}},"body":"e30=","isBase64Encoded":true,"headers":{"webhook-id":"m"}}`, Webhook, "m", false},
		{"http bad base64", `{"version":"2.0","requestContext":{"http":{"method":"POST"}},"body":"%%","isBase64Encoded":true}`, "", "", true},
		{"http without method", `{"version":"v1","requestContext":{}}`, "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := DecodeAt([]byte(tt.in), now)
			if tt.err {
				if err == nil {
					t.Fatalf("want an error, got %+v", req)
				}
				if err.Error() == "" {
					t.Fatal("empty error message")
				}
				return
			}
			if err != nil || req.Kind != tt.kind || req.Key != tt.key {
				t.Fatalf("got %+v, %v; want kind %s key %q", req, err, tt.kind, tt.key)
			}
			if strings.Contains(tt.name, "policy") && (len(req.Document) == 0 || strings.Contains(string(req.Document), "mode")) {
				t.Fatalf("policy document not carried (or carries the mode): %s", req.Document)
			}
		})
	}
	_, err := DecodeAt([]byte(`{"foo":1,"bar":2}`), now)
	if !errors.Is(err, ErrUnrecognized) {
		t.Fatalf("unknown object: %v, want ErrUnrecognized", err)
	}
}

func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("../../events/*.json")
	for _, name := range files {
		raw, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		req, err := DecodeAt(raw, now)
		if err != nil {
			return
		}
		if req.Kind == "" || req.Source == "" {
			t.Fatalf("decoded without kind or source: %+v", req)
		}
		if req.Kind == Webhook && req.HTTP == nil {
			t.Fatal("webhook without its request")
		}
		if req.Kind == DomainCreated && req.DomainName == "" {
			t.Fatal("domain-created without a domain")
		}
		if req.Kind == Schedule && req.Mode != ModeReport && req.Mode != ModeEnforce {
			t.Fatalf("schedule with mode %q", req.Mode)
		}
		if req.Kind != Direct && req.Kind != Webhook && req.Key == "" && req.Kind != Ignored {
			t.Fatalf("%s without a key", req.Kind)
		}
	})
}
