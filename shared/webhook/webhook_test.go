package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/livepack/livepack/shared/apply"
	"github.com/livepack/livepack/shared/classify"
	"github.com/livepack/livepack/shared/eventkey"
	"github.com/livepack/livepack/shared/intake"
	"github.com/livepack/livepack/shared/liveapi"
	"github.com/livepack/livepack/shared/policy"
	"github.com/livepack/livepack/shared/quota"
	"github.com/livepack/livepack/shared/webhooksig"
)

const (
	secret    = "whsec_d2ViaG9vay10ZXN0LXNlY3JldC0wMTIzNDU2Nzg5YWI="
	rotated   = "whsec_cm90YXRlZC10ZXN0LXNlY3JldC0wMTIzNDU2Nzg5YWI="
	validBody = `{"policies":[{"DomainName":"play.example.com","AppName":"sports","StreamName":"*","Protocol":"HLS_CMAF"}]}`
)

func signed(t *testing.T, secret, id string, at time.Time, body string) http.Header {
	t.Helper()
	h, err := webhooksig.Sign(secret, id, at, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	h.Set("Content-Type", "application/json")
	return h
}

func TestStatuses(t *testing.T) {
	ver, err := webhooksig.NewVerifier(secret + " " + rotated)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ok := func(context.Context, string, string, string, []policy.Policy) (apply.Result, error) {
		return apply.Result{Trigger: Trigger, Results: []apply.PolicyResult{{Outcome: apply.Created}}}, nil
	}
	failWith := func(err error) ApplyFunc {
		return func(context.Context, string, string, string, []policy.Policy) (apply.Result, error) {
			return apply.Result{}, err
		}
	}
	tests := []struct {
		name       string
		method     string
		header     http.Header
		body       string
		verifier   *webhooksig.Verifier
		apply      ApplyFunc
		status     int
		retryAfter bool
		applied    bool
	}{
		{"ok", "POST", signed(t, secret, "m1", now, validBody), validBody, ver, ok, 200, false, true},
		{"rotated secret", "POST", signed(t, rotated, "m1", now, validBody), validBody, ver, ok, 200, false, true},
		{"GET", "GET", signed(t, secret, "m1", now, validBody), validBody, ver, ok, 405, false, false},
		{"too large", "POST", http.Header{"Content-Type": {"application/json"}}, strings.Repeat(" ", MaxBody+1), ver, ok, 413, false, false},
		{"not JSON", "POST", http.Header{"Content-Type": {"text/plain"}}, validBody, ver, ok, 415, false, false},
		{"no secret configured", "POST", signed(t, secret, "m1", now, validBody), validBody, nil, ok, 401, false, false},
		{"unsigned", "POST", http.Header{"Content-Type": {"application/json"}}, validBody, ver, ok, 401, false, false},
		{"wrong secret", "POST", signed(t, "whsec_b3RoZXItc2VjcmV0LTAxMjM0NTY3ODlhYmNkZWY=", "m1", now, validBody), validBody, ver, ok, 401, false, false},
		{"stale", "POST", signed(t, secret, "m1", now.Add(-6*time.Minute), validBody), validBody, ver, ok, 401, false, false},
		{"future", "POST", signed(t, secret, "m1", now.Add(6*time.Minute), validBody), validBody, ver, ok, 401, false, false},
		{"tampered", "POST", signed(t, secret, "m1", now, validBody), strings.Replace(validBody, "HLS_CMAF", "DASH_CMAF", 1), ver, ok, 401, false, false},
		{"malformed", "POST", signed(t, secret, "m1", now, `{"policies":`), `{"policies":`, ver, ok, 400, false, false},
		{"invalid policy", "POST", signed(t, secret, "m1", now, `{"DomainName":"p.com","AppName":"a","StreamName":"s","Protocol":"X"}`), `{"DomainName":"p.com","AppName":"a","StreamName":"s","Protocol":"X"}`, ver, ok, 400, false, false},
		{"reused id", "POST", signed(t, secret, "m1", now, validBody), validBody, ver, failWith(eventkey.ErrPayloadMismatch), 409, false, true},
		{"quota", "POST", signed(t, secret, "m1", now, validBody), validBody, ver, failWith(quota.ErrExhausted), 429, true, true},
		{"in progress", "POST", signed(t, secret, "m1", now, validBody), validBody, ver, failWith(eventkey.ErrInProgress), 503, true, true},
		{"retry later", "POST", signed(t, secret, "m1", now, validBody), validBody, ver, failWith(fmt.Errorf("x: %w", apply.ErrRetryLater)), 503, true, true},
		{"redis unreachable", "POST", signed(t, secret, "m1", now, validBody), validBody, ver, failWith(fmt.Errorf("apply: %w", syscall.ECONNREFUSED)), 503, true, true},
		{"misconfigured", "POST", signed(t, secret, "m1", now, validBody), validBody, ver, failWith(fmt.Errorf("apply: %w: %w", classify.ErrMisconfigured, &liveapi.Error{Status: 400, Code: "SignatureDoesNotMatch"})), 500, false, true},
		{"terminal", "POST", signed(t, secret, "m1", now, validBody), validBody, ver, failWith(&liveapi.Error{Status: 400, Code: "ConfigConflicts"}), 200, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			applied := false
			h := &Handler{Verifier: tt.verifier, Apply: func(ctx context.Context, tr, key, hash string, ps []policy.Policy) (apply.Result, error) {
				applied = true
				if key != tt.header.Get("webhook-id") || hash == "" {
					t.Errorf("key %q hash %q", key, hash)
				}
				return tt.apply(ctx, tr, key, hash, ps)
			}}
			resp := h.Handle(context.Background(), intake.HTTPRequest{Method: tt.method, Path: "/", Header: tt.header, Body: []byte(tt.body)})
			if resp.Status != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.Status, tt.status, resp.Body)
			}
			if applied != tt.applied {
				t.Fatalf("applied = %v, want %v", applied, tt.applied)
			}
			if got := resp.Header.Get("Retry-After") != ""; got != tt.retryAfter {
				t.Fatalf("Retry-After set = %v, want %v", got, tt.retryAfter)
			}
			if !json.Valid(resp.Body) {
				t.Fatalf("body is not JSON: %s", resp.Body)
			}
			if strings.Contains(string(resp.Body), strings.TrimPrefix(secret, "whsec_")) {
				t.Fatal("the answer leaks the secret")
			}
		})
	}
}

func TestInvalidAnswerListsEveryError(t *testing.T) {
	ver, _ := webhooksig.NewVerifier(secret)
	body := `[{"DomainName":"p.com","AppName":"-a","StreamName":"s","Protocol":"HLS_CMAF","SegmentNum":1},{"DomainName":"p.com","AppName":"b","StreamName":"s","Protocol":"LLHLS_TS","SegmentDuration":3}]`
	h := &Handler{Verifier: ver, Apply: func(context.Context, string, string, string, []policy.Policy) (apply.Result, error) {
		t.Fatal("an invalid document was applied")
		return apply.Result{}, nil
	}}
	resp := h.Handle(context.Background(), intake.HTTPRequest{Method: "POST", Header: signed(t, secret, "m2", time.Now(), body), Body: []byte(body)})
	var res apply.Result
	if err := json.Unmarshal(resp.Body, &res); err != nil || resp.Status != 400 {
		t.Fatalf("status %d: %s", resp.Status, resp.Body)
	}
	var codes []string
	for _, r := range res.Results {
		if r.Outcome != apply.Invalid {
			t.Fatalf("outcome %s, want invalid", r.Outcome)
		}
		for _, fe := range r.Errors {
			codes = append(codes, fe.Code)
		}
	}
	want := []string{policy.CodeInvalidParams, policy.CodeInvalidSegmentNum, policy.CodeInvalidSegmentDuration}
	if strings.Join(codes, ",") != strings.Join(want, ",") {
		t.Fatalf("codes %v, want %v", codes, want)
	}
}

// TestDocumentSizeAndTime: a DomainName pattern is a 400 naming the field; more than
// MaxPolicies policies is a 413; a document whose fewest calls cannot fit in the budget before
// the answer is due is a 413 up front, nothing applied; a policy the engine refused as invalid
// is a 400.
func TestDocumentSizeAndTime(t *testing.T) {
	ver, err := webhooksig.NewVerifier(secret)
	if err != nil {
		t.Fatal(err)
	}
	doc := func(n, domains int, domain string) string {
		var ps []string
		for i := range n {
			d := domain
			if d == "" {
				d = fmt.Sprintf("d%d.example.com", i%domains)
			}
			ps = append(ps, fmt.Sprintf(`{"DomainName":%q,"AppName":"a%d","StreamName":"*","Protocol":"HLS_CMAF"}`, d, i))
		}
		return `{"policies":[` + strings.Join(ps, ",") + `]}`
	}
	invalid := func(context.Context, string, string, string, []policy.Policy) (apply.Result, error) {
		return apply.Result{Results: []apply.PolicyResult{{Outcome: apply.Invalid}}}, nil
	}
	created := func(context.Context, string, string, string, []policy.Policy) (apply.Result, error) {
		return apply.Result{Results: []apply.PolicyResult{{Outcome: apply.Created}}}, nil
	}
	tests := []struct {
		name     string
		body     string
		rate     int
		deadline time.Duration
		apply    ApplyFunc
		status   int
		says     string
	}{
		{"pattern", doc(2, 1, "*.example.com"), 0, 0, created, 400, `"field": "DomainName"`},
		{"at the cap", doc(MaxPolicies, 1, ""), 0, 0, created, 200, ""},
		{"over the cap", doc(MaxPolicies+1, 1, ""), 0, 0, created, 413, "at most 300"},
		{"fits", doc(100, 100, ""), 250, 30 * time.Second, created, 200, ""},
		{"cannot fit before the answer", doc(250, 250, ""), 250, 30 * time.Second, created, 413, "at least 500 Live API calls"},
		{"fits with more time", doc(250, 250, ""), 250, 90 * time.Second, created, 200, ""},
		{"engine refused", validBody, 0, 0, invalid, 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			applied := false
			h := &Handler{Verifier: ver, CallsPerMinute: tt.rate, Apply: func(ctx context.Context, tr, key, hash string, ps []policy.Policy) (apply.Result, error) {
				applied = true
				return tt.apply(ctx, tr, key, hash, ps)
			}}
			ctx := context.Background()
			if tt.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.deadline)
				defer cancel()
			}
			resp := h.Handle(ctx, intake.HTTPRequest{Method: "POST", Header: signed(t, secret, "m1", time.Now(), tt.body), Body: []byte(tt.body)})
			if resp.Status != tt.status || !strings.Contains(string(resp.Body), tt.says) {
				t.Fatalf("status %d, want %d with %q: %s", resp.Status, tt.status, tt.says, resp.Body)
			}
			if applied != (tt.status == 200 || tt.name == "engine refused") {
				t.Fatalf("applied = %v", applied)
			}
		})
	}
}

// TestDomainBounds: with LIVEPACK_WEBHOOK_DOMAINS set, a document naming any other domain is
// refused with 403 before anything is applied, and the body names every such domain; one
// within the bounds is applied. Without bounds, any domain is.
func TestDomainBounds(t *testing.T) {
	ver, err := webhooksig.NewVerifier(secret)
	if err != nil {
		t.Fatal(err)
	}
	doc := func(domains ...string) string {
		var ps []string
		for i, d := range domains {
			ps = append(ps, fmt.Sprintf(`{"DomainName":%q,"AppName":"a%d","StreamName":"*","Protocol":"HLS_CMAF"}`, d, i))
		}
		return `{"policies":[` + strings.Join(ps, ",") + `]}`
	}
	tests := []struct {
		name    string
		bounds  []string
		body    string
		status  int
		naming  []string
		applied bool
	}{
		{"no bounds", nil, doc("play.other.com"), 200, nil, true},
		{"within a glob", []string{"*.example.com"}, doc("play.example.com", "live.example.com"), 200, nil, true},
		{"an exact name", []string{"play.example.com", "*.example.org"}, doc("play.example.com", "x.example.org"), 200, nil, true},
		{"one outside", []string{"*.example.com"}, doc("play.example.com", "play.other.com"), 403, []string{"play.other.com"}, false},
		{"every outsider named once", []string{"play.example.com"}, doc("b.other.com", "play.example.com", "a.other.com", "b.other.com"), 403, []string{"a.other.com", "b.other.com"}, false},
		{"a glob's * spans dots, as path.Match reads it", []string{"*.example.com"}, doc("a.b.example.com"), 200, nil, true},
		{"a suffix without its dot is another domain", []string{"*.example.com"}, doc("badexample.com"), 403, []string{"badexample.com"}, false},
		{"outside and invalid: 403 first", []string{"*.example.com"}, `{"DomainName":"play.other.com","AppName":"a","StreamName":"s","Protocol":"X"}`, 403, []string{"play.other.com"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			applied := false
			h := &Handler{Verifier: ver, Domains: tt.bounds, Apply: func(context.Context, string, string, string, []policy.Policy) (apply.Result, error) {
				applied = true
				return apply.Result{Results: []apply.PolicyResult{{Outcome: apply.Created}}}, nil
			}}
			resp := h.Handle(context.Background(), intake.HTTPRequest{Method: "POST", Header: signed(t, secret, "m1", time.Now(), tt.body), Body: []byte(tt.body)})
			if resp.Status != tt.status || applied != tt.applied {
				t.Fatalf("status %d applied %v, want %d %v: %s", resp.Status, applied, tt.status, tt.applied, resp.Body)
			}
			if tt.status != 403 {
				return
			}
			var body struct {
				Error   string
				Domains []string
			}
			if err := json.Unmarshal(resp.Body, &body); err != nil {
				t.Fatal(err)
			}
			if strings.Join(body.Domains, ",") != strings.Join(tt.naming, ",") || !strings.Contains(body.Error, strings.Join(tt.naming, ", ")) ||
				!strings.Contains(body.Error, "LIVEPACK_WEBHOOK_DOMAINS") {
				t.Fatalf("the body does not name %v: %s", tt.naming, resp.Body)
			}
		})
	}
}

// TestFailureBodiesCarryCodesOnly: a 429 or 5xx answer says the classification and the Live
// API's error codes, never an error's text (a RAM message, a Redis reply, a path), which the
// logs keep.
func TestFailureBodiesCarryCodesOnly(t *testing.T) {
	ver, err := webhooksig.NewVerifier(secret)
	if err != nil {
		t.Fatal(err)
	}
	ram := &liveapi.Error{Action: "AddLivePackageConfig", Status: 403, Code: "Forbidden.RAM", RequestID: "req-1",
		Message: "User not authorized to operate on the specified resource, or this API doesn't support RAM. acs:ram::1234:role/livepack-fc"}
	throttled := &liveapi.Error{Action: "AddLivePackageConfig", Status: 400, Code: "Throttling.User", Message: "Request was denied due to user flow control."}
	tests := []struct {
		name   string
		err    error
		res    apply.Result
		status int
		class  string
		codes  []string
		hidden []string
	}{
		{"RAM refusal", fmt.Errorf("apply: %w", ram),
			apply.Result{Key: "m1", Results: []apply.PolicyResult{{DomainName: "play.example.com", Outcome: apply.Failed, Reason: "livepack is misconfigured: " + ram.Error(),
				Errors: []policy.FieldError{{Index: -1, Code: "Forbidden.RAM", Message: ram.Message}}}}},
			500, "misconfiguration", []string{"Forbidden.RAM"}, []string{"not authorized", "acs:ram", "req-1", "livepack-fc"}},
		{"Redis password", fmt.Errorf("store: %w: %w", classify.ErrMisconfigured, errors.New("WRONGPASS invalid username-password pair or user is disabled at 10.0.0.7:6379")),
			apply.Result{Key: "m1"}, 500, "misconfiguration", []string{}, []string{"WRONGPASS", "10.0.0.7", "username-password"}},
		{"Redis unreachable", fmt.Errorf("store: dial tcp 10.0.0.7:6379: %w", syscall.ECONNREFUSED),
			apply.Result{Key: "m1", Results: []apply.PolicyResult{{Outcome: apply.Failed, Reason: "dial tcp 10.0.0.7:6379: connection refused"}}},
			503, "retry", []string{}, []string{"10.0.0.7", "connection refused", "dial tcp"}},
		{"throttled twice, joined", errors.Join(fmt.Errorf("a: %w", throttled), fmt.Errorf("b: %w", &liveapi.Error{Status: 503, Code: "ServiceUnavailable", Message: "internal node cn-sh-7 down"})),
			apply.Result{Key: "m1"}, 503, "retry", []string{"ServiceUnavailable", "Throttling.User"}, []string{"flow control", "cn-sh-7"}},
		{"quota", fmt.Errorf("apply: %w (needed 12 calls, 3 left at /var/run/x)", quota.ErrExhausted),
			apply.Result{Key: "m1"}, 429, "retry", []string{}, []string{"/var/run/x", "needed 12"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &Handler{Verifier: ver, Apply: func(context.Context, string, string, string, []policy.Policy) (apply.Result, error) {
				return tt.res, tt.err
			}}
			resp := h.Handle(context.Background(), intake.HTTPRequest{Method: "POST", Header: signed(t, secret, "m1", time.Now(), validBody), Body: []byte(validBody)})
			if resp.Status != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.Status, tt.status, resp.Body)
			}
			var f Failure
			dec := json.NewDecoder(strings.NewReader(string(resp.Body)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&f); err != nil {
				t.Fatalf("the body is not a Failure: %v: %s", err, resp.Body)
			}
			if f.Classification != tt.class || strings.Join(f.Codes, ",") != strings.Join(tt.codes, ",") || f.Key != "m1" || f.Trigger != Trigger || f.Error == "" {
				t.Fatalf("body %+v, want classification %s and codes %v", f, tt.class, tt.codes)
			}
			for _, s := range tt.hidden {
				if strings.Contains(string(resp.Body), s) {
					t.Errorf("the body shows %q: %s", s, resp.Body)
				}
			}
		})
	}
}
