// Package webhook provides the CMS stream-policy webhook: one set of HTTP semantics (DESIGN §6)
// shared by the Function Compute HTTP trigger, the Lambda Function URL and `livepack serve`,
// so a CMS sees the same statuses wherever livepack runs.
//
// A request is verified (Standard Webhooks) and its whole document validated before anything
// is applied: an unsigned or partly invalid document never reaches the Live API.
//
// See https://www.standardwebhooks.com/ for the signing scheme.
package webhook

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
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

// MaxBody is the largest body accepted (413 above it).
const MaxBody = 1 << 20

// MaxPolicies is the most policies one webhook document may carry (413 above it): the account
// quota is 300 calls a minute, so a larger document could not be applied before any CMS's
// client gives up waiting for the answer. Split larger changes into several documents.
const MaxPolicies = 300

// AnswerWithin is when the answer is due for a request whose context has no deadline
// (`livepack serve`): a CMS's HTTP client commonly gives up after 30 s.
const AnswerWithin = 30 * time.Second

// Trigger is the trigger word results carry for the webhook.
const Trigger = "cms-webhook"

// retryAfter is the Retry-After, in seconds, sent with 429 and 503: long enough for a lease
// or the quota's next tokens.
const retryAfter = 30

// ApplyFunc applies a validated document under a key bound to a payload hash (apply.Engine's
// Apply).
type ApplyFunc func(ctx context.Context, trigger, key, hash string, ps []policy.Policy) (apply.Result, error)

// Handler serves the webhook. A nil Verifier refuses every request with 401: an endpoint
// without a secret must not apply anything.
type Handler struct {
	Verifier *webhooksig.Verifier
	Apply    ApplyFunc
	Log      *slog.Logger
	// CallsPerMinute is the deployment's Live API budget (LIVEPACK_RATE): a document whose
	// fewest calls (apply.MinCalls) exceed what the budget can serve before the answer is due
	// is refused up front with 413. Zero skips the check.
	CallsPerMinute int
	// Domains (LIVEPACK_WEBHOOK_DOMAINS) are the domain names or globs a document may name; a
	// document naming any other domain is refused with 403 before any call, so a CMS whose
	// secret leaked cannot reach the rest of the account. Nil means any domain.
	Domains []string
}

// Handle answers one request, already decoded from its platform envelope.
func (h *Handler) Handle(ctx context.Context, req intake.HTTPRequest) intake.HTTPResponse {
	log := h.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	hdr := req.Header
	if hdr == nil {
		hdr = http.Header{}
	}
	if req.Method != http.MethodPost {
		r := text(http.StatusMethodNotAllowed, "only POST is accepted")
		r.Header.Set("Allow", http.MethodPost)
		return r
	}
	if len(req.Body) > MaxBody {
		return text(http.StatusRequestEntityTooLarge, "the body is over 1 MiB")
	}
	if !isJSON(hdr.Get("Content-Type")) {
		return text(http.StatusUnsupportedMediaType, "the body must be application/json")
	}
	if h.Verifier == nil {
		log.Warn("webhook refused: LIVEPACK_WEBHOOK_SECRET is not set")
		return text(http.StatusUnauthorized, "the webhook has no secret configured (LIVEPACK_WEBHOOK_SECRET)")
	}
	if err := h.Verifier.Verify(hdr, req.Body); err != nil {
		log.Warn("webhook refused: signature", "err", err)
		return text(http.StatusUnauthorized, "signature rejected: "+err.Error())
	}
	id := hdr.Get("webhook-id")
	key := id
	doc, err := policy.Parse(req.Body)
	if outside := h.outside(doc); len(outside) > 0 {
		log.Warn("webhook refused: the document names domains outside LIVEPACK_WEBHOOK_DOMAINS", "domains", outside)
		b, _ := json.Marshal(map[string]any{
			"error":   "the document names " + strings.Join(outside, ", ") + ", outside the domains this webhook may change (LIVEPACK_WEBHOOK_DOMAINS); nothing was applied",
			"domains": outside,
		})
		return intake.HTTPResponse{Status: http.StatusForbidden, Header: http.Header{"Content-Type": {"application/json"}}, Body: b}
	}
	if err == nil {
		if inv := apply.NamedDomains(doc); inv != nil {
			err = inv
		}
	}
	if err != nil {
		res := apply.Result{Trigger: Trigger, Key: key, Results: []apply.PolicyResult{}, Notices: []apply.NoticeResult{}}
		var inv *policy.Invalid
		if errors.As(err, &inv) {
			res.Results, res.Errors = apply.InvalidResults(doc, inv)
		} else {
			res.Errors = []policy.FieldError{{Index: -1, Code: policy.CodeInvalidParams, Message: err.Error()}}
		}
		return jsonResponse(http.StatusBadRequest, res)
	}
	if n := len(doc.Policies); n > MaxPolicies {
		return text(http.StatusRequestEntityTooLarge, fmt.Sprintf("the document has %d policies; at most %d are accepted per document: split it", n, MaxPolicies))
	}
	if need, fit := apply.MinCalls(doc.Policies), capacity(ctx, h.CallsPerMinute); h.CallsPerMinute > 0 && need > fit {
		return text(http.StatusRequestEntityTooLarge, fmt.Sprintf(
			"the document needs at least %d Live API calls, and at most %d fit in the quota (LIVEPACK_RATE %d a minute) before this answer is due: split it into documents of fewer domains",
			need, fit, h.CallsPerMinute))
	}
	sum := sha256.Sum256(req.Body)
	res, err := h.Apply(ctx, Trigger, key, hex.EncodeToString(sum[:]), doc.Policies)
	switch class := classify.Of(err); {
	case err == nil && anyInvalid(res):
		// A policy the engine refused before writing anything (a `*` Delete that would remove
		// configs the document does not name): nothing was applied, as with a validation error.
		return jsonResponse(http.StatusBadRequest, res)
	case err == nil:
		return jsonResponse(http.StatusOK, res)
	case errors.Is(err, eventkey.ErrPayloadMismatch):
		return text(http.StatusConflict, "webhook-id "+id+" was already used with a different body")
	case errors.Is(err, quota.ErrExhausted) && class == classify.Retry:
		r := failed(http.StatusTooManyRequests, res, err)
		r.Header.Set("Retry-After", strconv.Itoa(retryAfter))
		return r
	case class == classify.Misconfig:
		// 500 rather than 503: the CMS must not take it for a passing hiccup, and alarms on
		// server errors fire. The key was released, so a retry after the fix applies.
		log.Error("webhook failed: livepack is misconfigured", "row", classify.RowOf(err), "err", err)
		return failed(http.StatusInternalServerError, res, err)
	case class == classify.Terminal:
		log.Warn("webhook finished with a terminal failure", "row", classify.RowOf(err), "err", err)
		return jsonResponse(http.StatusOK, res)
	default:
		if !errors.Is(err, eventkey.ErrInProgress) && !errors.Is(err, apply.ErrRetryLater) {
			log.Error("webhook failed", "row", classify.RowOf(err), "err", err)
		}
		r := failed(http.StatusServiceUnavailable, res, err)
		r.Header.Set("Retry-After", strconv.Itoa(retryAfter))
		return r
	}
}

// outside returns the domains doc names that Domains does not cover, sorted and once each;
// nil when every domain is covered or no bound is set.
func (h *Handler) outside(doc policy.Document) []string {
	if len(h.Domains) == 0 {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, p := range doc.Policies {
		d := strings.ToLower(p.DomainName)
		if seen[d] {
			continue
		}
		seen[d] = true
		if !slices.ContainsFunc(h.Domains, func(g string) bool { return policy.MatchDomain(g, d) }) {
			out = append(out, d)
		}
	}
	slices.Sort(out)
	return out
}

// Failure is the body of a 429 or 5xx answer. It says what kind of failure it was and the
// error codes involved, and nothing else: an error's text can carry a RAM policy's wording,
// a Redis reply or other internal detail that is for the logs, which keep it, not for the
// caller.
type Failure struct {
	Trigger string `json:"trigger"`
	Key     string `json:"key"`
	// Error is a fixed sentence for the classification.
	Error string `json:"error"`
	// Classification is the class shared/classify gives the error: retry or misconfiguration.
	Classification string `json:"classification"`
	// Codes are the Live API's error codes the failure carries, sorted, once each.
	Codes []string `json:"codes"`
}

var failureSentence = map[classify.Class]string{
	classify.Retry:     "livepack could not finish now; nothing is lost: send the same request again after Retry-After",
	classify.Misconfig: "livepack is misconfigured (its credentials, permissions or store); the request applies once an operator fixes it: the function's logs say what",
}

// failed answers status with a Failure describing err and res.
func failed(status int, res apply.Result, err error) intake.HTTPResponse {
	class := classify.Of(err)
	f := Failure{Trigger: Trigger, Key: res.Key, Classification: class.String(), Codes: []string{}, Error: failureSentence[class]}
	if f.Error == "" {
		f.Error = "livepack failed; the function's logs say why"
	}
	if res.Trigger != "" {
		f.Trigger = res.Trigger
	}
	for _, r := range res.Results {
		for _, fe := range r.Errors {
			f.Codes = append(f.Codes, fe.Code)
		}
	}
	f.Codes = append(f.Codes, apiCodes(err)...)
	slices.Sort(f.Codes)
	f.Codes = slices.Compact(f.Codes)
	f.Codes = slices.DeleteFunc(f.Codes, func(c string) bool { return c == "" })
	return jsonResponse(status, f)
}

// apiCodes returns the codes of every Live API error in err's tree (wrapped or joined).
func apiCodes(err error) []string {
	var out []string
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		if ae, ok := e.(*liveapi.Error); ok && ae.Code != "" {
			out = append(out, ae.Code)
		}
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x)
			}
		}
	}
	walk(err)
	return out
}

// capacity is the most calls a budget of perMinute can serve before ctx's answer is due: a full
// window at once, then its refill.
func capacity(ctx context.Context, perMinute int) int {
	within := AnswerWithin
	if dl, ok := ctx.Deadline(); ok {
		within = max(time.Until(dl), 0)
	}
	return perMinute + int(float64(perMinute)*within.Minutes())
}

func anyInvalid(res apply.Result) bool {
	for _, r := range res.Results {
		if r.Outcome == apply.Invalid {
			return true
		}
	}
	return false
}

// ServeHTTP serves the webhook over plain HTTP (`livepack serve`).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil {
		http.Error(w, "reading the body failed", http.StatusBadRequest)
		return
	}
	resp := h.Handle(r.Context(), intake.HTTPRequest{Method: r.Method, Path: r.URL.Path, Header: r.Header, Body: body})
	for k, vs := range resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(resp.Status)
	_, _ = w.Write(resp.Body)
}

func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

func text(status int, msg string) intake.HTTPResponse {
	b, _ := json.Marshal(map[string]string{"error": msg})
	return intake.HTTPResponse{Status: status, Header: http.Header{"Content-Type": {"application/json"}}, Body: b}
}

func jsonResponse(status int, v any) intake.HTTPResponse {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return text(http.StatusInternalServerError, "encoding the result failed")
	}
	return intake.HTTPResponse{Status: status, Header: http.Header{"Content-Type": {"application/json"}}, Body: b}
}
