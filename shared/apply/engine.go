package apply

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/livepack/livepack/shared/cursor"
	"github.com/livepack/livepack/shared/eventkey"
	"github.com/livepack/livepack/shared/liveapi"
	"github.com/livepack/livepack/shared/notify"
	"github.com/livepack/livepack/shared/outbox"
	"github.com/livepack/livepack/shared/policy"
	"github.com/livepack/livepack/shared/store"
)

// ErrRetryLater means the run could not finish: a retryable API failure, the quota, a domain
// still configuring or the deadline. The trigger key was released, so delivering the same
// event again redoes only what is still missing (the plan starts from a fresh Describe).
var ErrRetryLater = errors.New("apply: retry later")

// Options configure an Engine. API and Store are required.
type Options struct {
	API   liveapi.API
	Store store.Store
	// Sinks receive the notices; with none, results carry each notice in full.
	Sinks []notify.Sink
	// Defaults are the default policies (LIVEPACK_POLICIES), normalized; their DomainName may
	// be a glob.
	Defaults []policy.Policy
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// RelayBudget bounds the relay every invocation runs after its own work (default
	// DefaultRelayBudget; a reconcile gives it more).
	RelayBudget time.Duration
	// ClaimTTL shortens the outbox's delivery claims (tests).
	ClaimTTL time.Duration
}

// DefaultRelayBudget is the time an invocation gives the relay after its own work: enough for
// a few owed notices, short enough that a webhook's answer never waits on a long backlog.
const DefaultRelayBudget = 3 * time.Second

// Engine turns desired policies into API state, once per trigger key, and announces every
// change exactly once through the outbox. It is safe for concurrent use.
type Engine struct {
	api      liveapi.API
	store    store.Store
	keys     *eventkey.Keys
	box      *outbox.Outbox
	cursors  *cursor.Cursors
	sinks    []string
	defaults []policy.Policy
	now      func() time.Time
	log      *slog.Logger
	budget   time.Duration
}

// New returns an Engine.
func New(o Options) *Engine {
	e := &Engine{api: o.API, defaults: o.Defaults, now: o.Now, log: o.Logger, budget: o.RelayBudget}
	if e.now == nil {
		e.now = time.Now
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.budget <= 0 {
		e.budget = DefaultRelayBudget
	}
	if o.Store != nil {
		e.store = o.Store
		e.keys = eventkey.New(o.Store, e.now)
		e.cursors = cursor.New(o.Store, e.now)
		e.box = outbox.New(outbox.Options{Store: o.Store, Sinks: o.Sinks, Now: e.now, Logger: e.log, ClaimTTL: o.ClaimTTL})
		e.sinks = e.box.Sinks()
	}
	return e
}

// Apply applies a validated, normalized policy document under the trigger key. hash is the
// payload hash the key is bound to (policy.Hash of the document).
func (e *Engine) Apply(ctx context.Context, trigger, key, hash string, policies []policy.Policy) (Result, error) {
	return e.run(ctx, trigger, key, trigger+":"+key, hash, func(ctx context.Context, s *session) (Result, error) {
		res := Result{Trigger: trigger, Key: key}
		prs, err := s.applyPolicies(ctx, policies, false)
		res.Results = prs
		return res, err
	})
}

// DomainCreated applies the default policies whose DomainName glob matches a new domain, when
// it is a play domain. at is the event's time (zero when the event has none: now). A domain the
// API does not show yet, or shows as configuring, is deferred: recorded in the state store and
// answered with the outcome deferred, so the event succeeds; every scheduled run then applies
// the policies once the domain is ready, for DeferFor after at.
func (e *Engine) DomainCreated(ctx context.Context, trigger, key, domain string, at time.Time) (Result, error) {
	hash := hashStrings("domain-created", domain)
	return e.run(ctx, trigger, key, trigger+":"+key, hash, func(ctx context.Context, s *session) (Result, error) {
		res := Result{Trigger: trigger, Key: key}
		ps := e.matching(domain)
		if len(ps) == 0 {
			res.Note = fmt.Sprintf("no default policy (LIVEPACK_POLICIES) matches %s", domain)
			return res, nil
		}
		if at.IsZero() {
			at = e.now()
		}
		di := s.domain(ctx, domain)
		if di.err != nil && notReady(di.err) && e.now().Sub(at) < DeferFor {
			if err := e.deferDomain(ctx, trigger, key, domain, at, reasonFor(di.err)); err != nil {
				res.Results = append(res.Results, PolicyResult{DomainName: domain, AppName: "*", StreamName: "*",
					Outcome: Failed, Errors: []policy.FieldError{}, Reason: "recording the deferred domain failed; retried"})
				return res, notDone([]error{err})
			}
			s.log.Info("domain not ready: deferred to the scheduled reconcile", "domain", domain, "reason", reasonFor(di.err))
			res.Results = deferredResults(ps, reasonFor(di.err), at.Add(DeferFor))
			return res, nil
		}
		if di.err != nil {
			res.Results = append(res.Results, PolicyResult{DomainName: domain, AppName: "*", StreamName: "*",
				Outcome: Failed, Errors: apiFieldErrors(di.err), Reason: reasonFor(di.err)})
			if unfinished(di.err) {
				return res, notDone([]error{fmt.Errorf("domain %s: %w", domain, di.err)})
			}
			return res, nil
		}
		prs, err := s.applyPolicies(ctx, ps, false)
		res.Results = append(res.Results, prs...)
		return res, err
	})
}

// run wraps work in the event key's protocol (one record per key, a short lease renewed while
// the work runs, the result kept for replay) and runs the relay afterwards. What the work
// changes is in the outbox before it is written, so whatever happens to this run, every change
// is announced once.
func (e *Engine) run(ctx context.Context, trigger, key, skey, hash string, work func(context.Context, *session) (Result, error)) (Result, error) {
	log := e.log.With("trigger", trigger, "key", key)
	holder := outbox.NewID()
	lease, done, err := e.keys.Acquire(ctx, skey, hash, holder)
	if err != nil {
		res := Result{Trigger: trigger, Key: key, Results: []PolicyResult{}, Notices: []NoticeResult{}}
		switch {
		case errors.Is(err, eventkey.ErrPayloadMismatch):
			res.Note = "the key " + key + " was used before with a different payload: this event is not applied"
		case errors.Is(err, eventkey.ErrInProgress):
			res.Note = "another run is applying the key " + key + "; retry after " + eventkey.RetryAfter(err).UTC().Format(time.RFC3339)
		}
		return res, fmt.Errorf("apply: %s: %w", key, err)
	}
	if done != nil {
		log.Info("replay of a completed key")
		res, err := replay(skey, done)
		if err != nil {
			return res, err
		}
		res.Notices = e.refresh(ctx, res.Notices)
		// Every invocation runs the relay, a replay included: what any run left owed goes
		// out with the next invocation, whatever its event.
		e.relay(ctx, holder, &res, nil)
		return res, nil
	}
	if lease.TookOver {
		log.Warn("taking over a lapsed key: its run crashed or timed out; the outbox settles what it left")
	}
	s := newSession(e, holder, log)
	hb := e.hold(ctx, lease, s, log)
	defer hb.stop()
	res, werr := work(hb.ctx, s)
	if lost := hb.lost(); lost != nil && werr == nil {
		werr = lost
	}
	if res.Results == nil {
		res.Results = []PolicyResult{}
	}
	// The writes are done: recording them must not fail because the deadline passed meanwhile.
	sctx, cancel := settleContext(ctx)
	defer cancel()
	res.Notices = append(res.Notices, s.deliver(ctx)...)
	if res.Notices == nil {
		res.Notices = []NoticeResult{}
	}
	hb.stop()
	if werr != nil {
		if hb.lost() == nil {
			if err := e.keys.Release(sctx, lease); err != nil {
				log.Warn("releasing the key failed; it is free again when its lease lapses", "err", err)
			}
		}
		e.relay(ctx, holder, &res, s)
		return res, werr
	}
	b, err := json.Marshal(res)
	if err != nil {
		return res, fmt.Errorf("apply: encode result: %w", err)
	}
	if err := e.keys.Complete(sctx, lease, b); err != nil {
		// Every change is in the outbox already: a redelivery finds the configs in place and
		// changes nothing, and the relay announces what this run made.
		return res, fmt.Errorf("apply: record the result of %s: %w", key, err)
	}
	e.relay(ctx, holder, &res, s)
	return res, nil
}

// relay runs the outbox's relay within the engine's budget and adds what it delivered for
// other runs, and the backlog it saw, to res.
func (e *Engine) relay(ctx context.Context, holder string, res *Result, s *session) {
	if s == nil {
		s = newSession(e, holder, e.log)
	}
	rep := e.box.Relay(ctx, outbox.RelayOptions{Budget: e.budget, Holder: holder, Settle: s.settler})
	seen := map[string]bool{}
	for _, n := range res.Notices {
		seen[n.ID] = true
	}
	for id, sinks := range rep.Notices {
		if !seen[id] {
			res.Notices = append(res.Notices, NoticeResult{ID: id, Sinks: sinks, Relayed: true})
		}
	}
	res.Backlog = &Backlog{Owed: rep.Owed}
	if !rep.Oldest.IsZero() {
		o := rep.Oldest.UTC()
		res.Backlog.OldestOwedAt = &o
	}
}

// refresh reads again, from the outbox, the delivery state of a replayed result's notices
// that were still owed when it was stored; delivered and failed are final and cost nothing.
func (e *Engine) refresh(ctx context.Context, ns []NoticeResult) []NoticeResult {
	for i, n := range ns {
		var owed []string
		for sink, st := range n.Sinks {
			if outbox.State(st) == outbox.Pending {
				owed = append(owed, sink)
			}
		}
		if len(owed) == 0 {
			continue
		}
		for sink, st := range e.box.States(ctx, []string{n.ID}, owed)[n.ID] {
			ns[i].Sinks[sink] = st
		}
	}
	return ns
}

// settleContext returns a context for recording what already happened: it outlives ctx's
// cancellation by a few seconds, so a run that hit its deadline still saves its record.
func settleContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
}

// replay decodes a stored result.
func replay(key string, rec *eventkey.Record) (Result, error) {
	var res Result
	if err := json.Unmarshal(rec.Result, &res); err != nil {
		return res, fmt.Errorf("apply: stored result of %s: %w", key, err)
	}
	res.Replayed = true
	return res, nil
}

// Relay runs the outbox's relay alone (the schedule runs it; a host may run it on idle
// invocations) and reports it as a result.
func (e *Engine) Relay(ctx context.Context, trigger string) Result {
	res := Result{Trigger: trigger, Results: []PolicyResult{}, Notices: []NoticeResult{}}
	e.relay(ctx, outbox.NewID(), &res, nil)
	return res
}
