// Package handler provides livepack's one platform-neutral handler: it decodes whatever
// envelope arrived (shared/intake), routes it to the engine (shared/apply) or the CMS webhook
// (shared/webhook), and returns the result document or the HTTP answer. The FC, Lambda and CLI
// hosts only translate to and from it.
package handler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/google/uuid"

	"github.com/livepack/livepack/shared/apply"
	"github.com/livepack/livepack/shared/classify"
	"github.com/livepack/livepack/shared/eventkey"
	"github.com/livepack/livepack/shared/intake"
	"github.com/livepack/livepack/shared/policy"
	"github.com/livepack/livepack/shared/restart"
	"github.com/livepack/livepack/shared/webhook"
	"github.com/livepack/livepack/shared/webhooksig"
)

// Handler routes decoded triggers. It is safe for concurrent use.
type Handler struct {
	// CallsPerMinute is the deployment's Live API budget (LIVEPACK_RATE), which the webhook
	// weighs a document against before applying it; zero skips that check. Set it before use.
	CallsPerMinute int
	// WebhookDomains (LIVEPACK_WEBHOOK_DOMAINS) bounds the domains a CMS webhook document may
	// name; nil means any. Set it before use.
	WebhookDomains []string
	// Restart is the deployment's restart tracking (LIVEPACK_RESTART_GRACE, the probe): the
	// schedule refreshes it. Set it before use.
	Restart restart.Settings

	opts     apply.Options
	verifier *webhooksig.Verifier
	log      *slog.Logger
}

// New returns a Handler applying with the engine options opts and verifying the webhook with
// verifier (nil refuses every webhook request).
func New(opts apply.Options, verifier *webhooksig.Verifier, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{opts: opts, verifier: verifier, log: log}
}

type requestIDKey struct{}

// WithRequestID returns ctx carrying the platform's request id, which every log line of the
// invocation then carries.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the id WithRequestID stored, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// Response is one invocation's answer: HTTP for the webhook envelopes, else a result document.
type Response struct {
	Request intake.Request
	Result  *apply.Result
	HTTP    *intake.HTTPResponse
	// Dropped is the error of an event acknowledged although it failed (a poison event, such
	// as a key reused with another payload, or a terminal failure): Invoke returns nil for it
	// so the platform does not deliver it again, and a caller reporting to a person (the
	// command line) still learns that, and why, it was not applied.
	Dropped error
}

// Invoke handles one raw event. What it returns follows the error's class (shared/classify):
// the error is non-nil when the platform should deliver the event again (classify.Retry) or
// when livepack is misconfigured (classify.Misconfig, logged at error level so alarms fire); a
// poison event (undecodable, or its key reused for another payload) is acknowledged with a nil
// error, logged at error level and answered with a result naming the problem, so it is never
// redelivered. Response carries whatever result there is.
func (h *Handler) Invoke(ctx context.Context, raw []byte) (Response, error) {
	log := h.log
	if id := RequestID(ctx); id != "" {
		log = log.With("requestId", id)
	}
	req, err := intake.Decode(raw)
	if err != nil {
		// Decoding is deterministic: the same bytes fail the same way on every redelivery.
		err = fmt.Errorf("handler: %w: %w", classify.ErrPoison, err)
		res := apply.Result{Trigger: "unrecognized", Results: []apply.PolicyResult{}, Notices: []apply.NoticeResult{},
			Errors: []policy.FieldError{{Index: -1, Code: policy.CodeInvalidParams, Message: err.Error()}},
			Note:   "the event can never be handled: acknowledged and dropped (" + classify.Of(err).String() + ")"}
		return Response{Result: &res, Dropped: err}, settle(log, res, err)
	}
	resp := Response{Request: req}
	opts := h.opts
	opts.Logger = log
	engine := apply.New(opts)
	wh := &webhook.Handler{Verifier: h.verifier, Apply: engine.Apply, Log: log, CallsPerMinute: h.CallsPerMinute, Domains: h.WebhookDomains}
	log = log.With("trigger", string(req.Kind), "source", req.Source)
	switch req.Kind {
	case intake.Webhook:
		if req.HTTP == nil {
			return resp, errors.New("handler: webhook request without its HTTP part")
		}
		r := wh.Handle(ctx, *req.HTTP)
		resp.HTTP = &r
		log.Info("webhook answered", "status", r.Status)
		return resp, nil
	case intake.DomainCreated:
		res, err := engine.DomainCreated(ctx, string(req.Kind), req.Key, req.DomainName, req.At)
		resp.Result = &res
		return finish(log, resp, err)
	case intake.Schedule:
		var ps []policy.Policy
		if len(req.Document) > 0 {
			doc, err := policy.Parse(req.Document)
			if err != nil {
				return invalid(log, resp, req, doc, err)
			}
			ps = doc.Policies
		}
		// Restart tracking first, within a short budget of its own: the reconcile then has the
		// rest of the invocation, and its relay delivers any reminder this owed.
		tracked := engine.TrackRestarts(ctx, h.Restart)
		res, err := engine.Reconcile(ctx, string(req.Kind), req.Key, req.Mode, ps)
		res.Restart = tracked
		resp.Result = &res
		return finish(log, resp, err)
	case intake.Policies, intake.Direct:
		doc, err := policy.Parse(req.Document)
		if err == nil {
			if inv := apply.NamedDomains(doc); inv != nil {
				err = inv
			}
		}
		if err != nil {
			return invalid(log, resp, req, doc, err)
		}
		key := req.Key
		hash := policy.Hash(doc)
		if key == "" {
			key = doc.ID
		}
		if key == "" {
			// A document is desired state: applied again without an id, it is planned again
			// (from a fresh Describe), never replayed from an earlier run's result.
			key = "run-" + eventkey.NewHolder()
		}
		res, err := engine.Apply(ctx, string(req.Kind), key, hash, doc.Policies)
		resp.Result = &res
		return finish(log, resp, err)
	default:
		log.Info("event ignored", "reason", req.Reason)
		res := apply.Result{Trigger: string(req.Kind), Key: req.Key, Results: []apply.PolicyResult{},
			Notices: []apply.NoticeResult{}, Note: req.Reason}
		resp.Result = &res
		return resp, nil
	}
}

// invalid answers a document that failed validation: nothing is applied, and retrying the
// same event cannot help, so no error asks the platform to.
func invalid(log *slog.Logger, resp Response, req intake.Request, doc policy.Document, err error) (Response, error) {
	res := apply.Result{Trigger: string(req.Kind), Key: req.Key, Results: []apply.PolicyResult{}, Notices: []apply.NoticeResult{}}
	if res.Key == "" {
		res.Key = doc.ID
	}
	var inv *policy.Invalid
	if errors.As(err, &inv) {
		res.Results, res.Errors = apply.InvalidResults(doc, inv)
	} else {
		res.Errors = []policy.FieldError{{Index: -1, Code: policy.CodeInvalidParams, Message: err.Error()}}
	}
	resp.Result = &res
	log.Warn("invalid policy document", "errors", len(res.Errors)+countInvalid(res))
	return resp, nil
}

func countInvalid(res apply.Result) int {
	n := 0
	for _, r := range res.Results {
		n += len(r.Errors)
	}
	return n
}

// finish settles resp's error (done) and keeps an acknowledged one in resp.Dropped.
func finish(log *slog.Logger, resp Response, err error) (Response, error) {
	rerr := done(log, *resp.Result, err)
	if err != nil && rerr == nil {
		resp.Dropped = err
	}
	return resp, rerr
}

func done(log *slog.Logger, res apply.Result, err error) error {
	if err != nil {
		return settle(log, res, err)
	}
	log.Info("invocation done", "outcomes", outcomes(res), "replayed", res.Replayed, "notices", len(res.Notices))
	return nil
}

func outcomes(res apply.Result) string {
	if res.Reconcile != nil && res.Reconcile.Outcomes != nil {
		// A reconcile lists only the configs worth a look; it counts them all.
		b, _ := json.Marshal(res.Reconcile.Outcomes)
		return string(b)
	}
	counts := map[string]int{}
	for _, r := range res.Results {
		counts[r.Outcome]++
	}
	b, _ := json.Marshal(counts)
	return string(b)
}

// settle decides, from err's class, whether the platform sees the invocation fail.
func settle(log *slog.Logger, res apply.Result, err error) error {
	class := classify.Of(err)
	attrs := []any{"class", class.String(), "row", classify.RowOf(err), "outcomes", outcomes(res), "err", err}
	switch class {
	case classify.Poison:
		log.Error("event dropped: it can never succeed, so it is acknowledged and not redelivered", attrs...)
		return nil
	case classify.Terminal:
		log.Warn("invocation finished with a terminal failure", attrs...)
		return nil
	case classify.Misconfig:
		log.Error("livepack is misconfigured: the invocation fails until the configuration is fixed", attrs...)
		return err
	default:
		log.Warn("invocation needs a retry", attrs...)
		return err
	}
}

// Engine returns an engine on the handler's options, for the command line's read-only views
// (livepack status) and a server's periodic work.
func (h *Handler) Engine(log *slog.Logger) *apply.Engine {
	opts := h.opts
	if log != nil {
		opts.Logger = log
	}
	return apply.New(opts)
}

// ServeHTTP serves the CMS webhook over plain HTTP (`livepack serve`), with the same
// semantics as the platform HTTP triggers.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get("X-Request-Id")
	if id == "" {
		id = uuid.NewString()
	}
	log := h.log.With("requestId", id)
	opts := h.opts
	opts.Logger = log
	engine := apply.New(opts)
	wh := &webhook.Handler{Verifier: h.verifier, Apply: engine.Apply, Log: log, CallsPerMinute: h.CallsPerMinute, Domains: h.WebhookDomains}
	wh.ServeHTTP(w, r.WithContext(WithRequestID(r.Context(), id)))
}
