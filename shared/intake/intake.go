// Package intake turns every trigger envelope livepack accepts (Alibaba and AWS EventBridge,
// the FC HTTP trigger, Lambda Function URLs, the FC timer, EventBridge Scheduler input, and a
// bare policy document) into one Request: which trigger, its idempotency key, and what it
// carries. It decides from the envelope's own fields, never from the platform, so the same
// bytes mean the same thing on FC, on Lambda and in the CLI.
package intake

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	fcevents "github.com/aliyun/fc-runtime-go-sdk/events"
	awsevents "github.com/aws/aws-lambda-go/events"
)

// Kind names a trigger; it is the "trigger" of the result document and the namespace of the
// idempotency key.
type Kind string

// The triggers of DESIGN §2a.
const (
	DomainCreated Kind = "domain-created"
	Webhook       Kind = "cms-webhook"
	Policies      Kind = "policy-bus"
	Schedule      Kind = "schedule"
	Direct        Kind = "direct"
	// Ignored is a well-formed event that asks nothing of livepack, such as an ActionTrail
	// record of another API call; Reason says why.
	Ignored Kind = "ignored"
)

// Schedule modes.
const (
	ModeReport  = "report"
	ModeEnforce = "enforce"
)

// Request is one decoded trigger.
type Request struct {
	Kind Kind
	// Source names the envelope ("fc-http", "lambda-url", "alibaba-eventbridge", ...), for logs.
	Source string
	// Key is the idempotency key; empty for a direct document, whose key comes from its "id"
	// or its hash once parsed.
	Key string
	// DomainName is the new domain of a domain-created trigger.
	DomainName string
	// Document is the policy document a trigger carries (policy bus, direct, or a schedule
	// with its own policies).
	Document json.RawMessage
	// Mode is a schedule's mode: report or enforce.
	Mode string
	// HTTP is the webhook request of an HTTP envelope.
	HTTP *HTTPRequest
	// Reason says why an Ignored event asks nothing.
	Reason string
	// At is the event's own time (the CloudEvent's or EventBridge's "time"); zero when it has
	// none.
	At time.Time
}

// HTTPRequest is the platform-neutral part of a webhook request.
type HTTPRequest struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
}

// HTTPResponse is a webhook answer, before the platform's envelope.
type HTTPResponse struct {
	Status int
	Header http.Header
	Body   []byte
}

// FC renders the answer as the FC HTTP trigger expects it.
func (r HTTPResponse) FC() fcevents.HTTPTriggerResponse {
	return fcevents.HTTPTriggerResponse{StatusCode: r.Status, Headers: flat(r.Header), Body: string(r.Body)}
}

// Lambda renders the answer as a Function URL (API Gateway v2) response.
func (r HTTPResponse) Lambda() awsevents.LambdaFunctionURLResponse {
	return awsevents.LambdaFunctionURLResponse{StatusCode: r.Status, Headers: flat(r.Header), Body: string(r.Body)}
}

func flat(h http.Header) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		out[k] = strings.Join(v, ", ")
	}
	return out
}

// ErrUnrecognized: the bytes are JSON but no envelope livepack knows.
var ErrUnrecognized = errors.New("intake: unrecognized event")

// Decode reads one raw event; see DecodeAt.
func Decode(raw []byte) (Request, error) { return DecodeAt(raw, time.Now()) }

// DecodeAt reads one raw event. now names a schedule that carries no time of its own (its key
// is then the minute, so a retried delivery within the minute is one run).
func DecodeAt(raw []byte, now time.Time) (Request, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 {
		return Request{}, fmt.Errorf("%w: the event is empty", ErrUnrecognized)
	}
	if trimmed[0] == '[' {
		var first []json.RawMessage
		if err := json.Unmarshal(trimmed, &first); err != nil {
			return Request{}, fmt.Errorf("intake: the event is not JSON: %w", err)
		}
		if len(first) > 0 && bytes.HasPrefix(bytes.TrimSpace(first[0]), []byte(`"`)) {
			return Request{}, fmt.Errorf("%w: a batch of %d event strings (EventBridge event streaming); configure the trigger as event-driven with the CloudEvents schema", ErrUnrecognized, len(first))
		}
		return Request{Kind: Direct, Source: "direct", Document: trimmed}, nil
	}
	var env map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &env); err != nil || env == nil {
		if err == nil {
			err = errors.New("not an object")
		}
		return Request{}, fmt.Errorf("intake: the event is not a JSON object or array: %w", err)
	}
	str := func(k string) string {
		var s string
		_ = json.Unmarshal(env[k], &s)
		return s
	}
	switch {
	case has(env, "specversion"):
		return cloudEvent(env, str)
	case str("version") == "0" && has(env, "detail-type"):
		return awsEvent(env, str)
	case (str("version") == "2.0" || str("version") == "v1") && has(env, "requestContext"):
		return httpEvent(env, str)
	case has(env, "triggerTime") && has(env, "triggerName"):
		return timerEvent(env, str)
	case has(env, "mode") || str("livepack") == "reconcile":
		return scheduleInput(str, env, now)
	case has(env, "policies") || has(env, "DomainName"):
		return Request{Kind: Direct, Source: "direct", Document: trimmed}, nil
	}
	return Request{}, fmt.Errorf("%w: an object with keys %s; expected an EventBridge event, an HTTP trigger or Function URL request, a timer event, a schedule input or a policy document", ErrUnrecognized, keyList(env))
}

func has(env map[string]json.RawMessage, k string) bool { _, ok := env[k]; return ok }

func keyList(env map[string]json.RawMessage) string {
	keys := make([]string, 0, len(env))
	for k := range env {
		if len(k) > 40 {
			k = k[:40] + "…"
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if len(keys) > 10 {
		keys = append(keys[:10], "…")
	}
	return "[" + strings.Join(keys, " ") + "]"
}

// cloudEvent reads an Alibaba EventBridge CloudEvent. The ActionTrail type is matched, not
// the source: the source value for Live is undocumented.
func cloudEvent(env map[string]json.RawMessage, str func(string) string) (Request, error) {
	id, typ, source := str("id"), str("type"), str("source")
	if id == "" {
		return Request{}, fmt.Errorf("%w: a CloudEvent of type %q without an id", ErrUnrecognized, typ)
	}
	data := env["data"]
	switch typ {
	case "live:ActionTrail:ApiCall", "live:ActionTrail:ConsoleOperation":
		var at struct {
			EventName         string `json:"eventName"`
			ErrorCode         string `json:"errorCode"`
			RequestParameters struct {
				DomainName string `json:"DomainName"`
			} `json:"requestParameters"`
		}
		if err := json.Unmarshal(data, &at); err != nil {
			return Request{}, fmt.Errorf("intake: ActionTrail event %s: data: %w", id, err)
		}
		key := source + ":" + id
		if at.EventName != "AddLiveDomain" {
			return Request{Kind: Ignored, Source: "alibaba-eventbridge", Key: key, Reason: fmt.Sprintf("ActionTrail event %q is not AddLiveDomain", at.EventName)}, nil
		}
		if at.ErrorCode != "" {
			return Request{Kind: Ignored, Source: "alibaba-eventbridge", Key: key, Reason: "the AddLiveDomain call failed (" + at.ErrorCode + "): no domain was created"}, nil
		}
		if at.RequestParameters.DomainName == "" {
			return Request{}, fmt.Errorf("intake: AddLiveDomain event %s has no requestParameters.DomainName", id)
		}
		return Request{Kind: DomainCreated, Source: "alibaba-eventbridge", Key: key, DomainName: domainName(at.RequestParameters.DomainName), At: eventTime(str("time"))}, nil
	case "livepack.domain.created":
		d, err := customDomain(data)
		if err != nil {
			return Request{}, fmt.Errorf("intake: CloudEvent %s: %w", id, err)
		}
		return Request{Kind: DomainCreated, Source: "alibaba-eventbridge", Key: id, DomainName: d, At: eventTime(str("time"))}, nil
	case "livepack.policies":
		if len(bytes.TrimSpace(data)) == 0 {
			return Request{}, fmt.Errorf("intake: CloudEvent %s of type livepack.policies has no data", id)
		}
		return Request{Kind: Policies, Source: "alibaba-eventbridge", Key: id, Document: data}, nil
	}
	return Request{Kind: Ignored, Source: "alibaba-eventbridge", Key: source + ":" + id, Reason: fmt.Sprintf("CloudEvent type %q is not one livepack handles", typ)}, nil
}

// eventTime reads an event's RFC 3339 time; zero when absent or unreadable.
func eventTime(v string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}
	}
	return t
}

func customDomain(data json.RawMessage) (string, error) {
	var d struct {
		DomainName string `json:"DomainName"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return "", fmt.Errorf("data: %w", err)
	}
	if strings.TrimSpace(d.DomainName) == "" {
		return "", errors.New(`data has no "DomainName"`)
	}
	return domainName(d.DomainName), nil
}

func domainName(s string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
}

func awsEvent(env map[string]json.RawMessage, str func(string) string) (Request, error) {
	id, dt := str("id"), str("detail-type")
	if id == "" {
		return Request{}, fmt.Errorf("%w: an EventBridge event of detail-type %q without an id", ErrUnrecognized, dt)
	}
	detail := env["detail"]
	switch dt {
	case "livepack.domain.created":
		d, err := customDomain(detail)
		if err != nil {
			return Request{}, fmt.Errorf("intake: EventBridge event %s: %w", id, err)
		}
		return Request{Kind: DomainCreated, Source: "aws-eventbridge", Key: id, DomainName: d, At: eventTime(str("time"))}, nil
	case "livepack.policies":
		return Request{Kind: Policies, Source: "aws-eventbridge", Key: id, Document: detail}, nil
	case "Scheduled Event":
		return Request{Kind: Schedule, Source: "aws-eventbridge", Key: "schedule:" + str("time"), Mode: ModeReport}, nil
	}
	return Request{Kind: Ignored, Source: "aws-eventbridge", Key: id, Reason: fmt.Sprintf("EventBridge detail-type %q is not one livepack handles", dt)}, nil
}

// httpEvent reads the FC 3.0 HTTP trigger (version "v1") and the Function URL / API Gateway
// v2 request (version "2.0"): the same fields under the same names.
func httpEvent(env map[string]json.RawMessage, str func(string) string) (Request, error) {
	var e struct {
		RawPath         string            `json:"rawPath"`
		Body            string            `json:"body"`
		IsBase64Encoded bool              `json:"isBase64Encoded"`
		Headers         map[string]string `json:"headers"`
		RequestContext  struct {
			HTTP struct {
				Method string `json:"method"`
				Path   string `json:"path"`
			} `json:"http"`
		} `json:"requestContext"`
	}
	raw, _ := json.Marshal(env)
	if err := json.Unmarshal(raw, &e); err != nil {
		return Request{}, fmt.Errorf("intake: HTTP request event: %w", err)
	}
	source := "fc-http"
	if str("version") == "2.0" {
		source = "lambda-url"
	}
	if e.RequestContext.HTTP.Method == "" {
		return Request{}, fmt.Errorf("%w: an HTTP event without requestContext.http.method", ErrUnrecognized)
	}
	body := []byte(e.Body)
	if e.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(e.Body)
		if err != nil {
			return Request{}, fmt.Errorf("intake: HTTP request body: bad base64: %w", err)
		}
		body = b
	}
	h := make(http.Header, len(e.Headers))
	for k, v := range e.Headers {
		h.Set(k, v)
	}
	path := e.RawPath
	if path == "" {
		path = e.RequestContext.HTTP.Path
	}
	return Request{Kind: Webhook, Source: source, Key: h.Get("webhook-id"),
		HTTP: &HTTPRequest{Method: e.RequestContext.HTTP.Method, Path: path, Header: h, Body: body}}, nil
}

// timerEvent reads the FC timer event, whose payload is the configured string: a schedule
// command ({"mode": ...}, optionally with policies), a policy document to reconcile, or empty
// for a report against the default policies.
func timerEvent(_ map[string]json.RawMessage, str func(string) string) (Request, error) {
	name, at, payload := str("triggerName"), str("triggerTime"), strings.TrimSpace(str("payload"))
	req := Request{Kind: Schedule, Source: "fc-timer", Key: name + "@" + at, Mode: ModeReport}
	if payload == "" {
		return req, nil
	}
	if strings.HasPrefix(payload, "[") && json.Valid([]byte(payload)) {
		req.Document = json.RawMessage(payload)
		return req, nil
	}
	var cmd map[string]json.RawMessage
	if err := json.Unmarshal([]byte(payload), &cmd); err != nil || cmd == nil {
		return Request{}, fmt.Errorf(`intake: timer %q: payload must be JSON such as {"mode": "report"} or a policy document: %q`, name, clip(payload))
	}
	return command(req, cmd)
}

// scheduleInput reads an EventBridge Scheduler input or a direct schedule command.
func scheduleInput(str func(string) string, env map[string]json.RawMessage, now time.Time) (Request, error) {
	req := Request{Kind: Schedule, Source: "scheduler", Mode: ModeReport}
	switch {
	case str("id") != "":
		req.Key = str("id")
	case str("executionId") != "" && !strings.HasPrefix(str("executionId"), "<"):
		req.Key = str("executionId")
	case str("scheduledTime") != "" && !strings.HasPrefix(str("scheduledTime"), "<"):
		req.Key = "schedule@" + str("scheduledTime")
	default:
		req.Key = "schedule@" + now.UTC().Truncate(time.Minute).Format(time.RFC3339)
	}
	return command(req, env)
}

// command reads a schedule command: an optional mode, and policies given either as
// "policies" or as one policy object's own fields.
func command(req Request, cmd map[string]json.RawMessage) (Request, error) {
	if m, ok := cmd["mode"]; ok {
		var mode string
		if err := json.Unmarshal(m, &mode); err != nil || (mode != ModeReport && mode != ModeEnforce) {
			return Request{}, fmt.Errorf(`intake: schedule mode %s: want "report" or "enforce"`, clip(string(m)))
		}
		req.Mode = mode
	}
	switch {
	case cmd["policies"] != nil:
		doc, err := json.Marshal(map[string]json.RawMessage{"policies": cmd["policies"]})
		if err != nil {
			return Request{}, fmt.Errorf("intake: schedule policies: %w", err)
		}
		req.Document = doc
	case cmd["DomainName"] != nil:
		one := map[string]json.RawMessage{}
		for k, v := range cmd {
			switch k {
			case "mode", "livepack", "id", "scheduledTime", "executionId":
			default:
				one[k] = v
			}
		}
		doc, err := json.Marshal(one)
		if err != nil {
			return Request{}, fmt.Errorf("intake: schedule policy: %w", err)
		}
		req.Document = doc
	}
	return req, nil
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
