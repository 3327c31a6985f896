package apply

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/livepack/livepack/shared/idempotency"
	"github.com/livepack/livepack/shared/liveapi"
	"github.com/livepack/livepack/shared/notify"
	"github.com/livepack/livepack/shared/policy"
)

// ErrRetryLater means the run could not finish: a retryable API failure, the quota, a domain
// still configuring or the deadline. The trigger key was released, so delivering the same
// event again redoes only what is still missing (the plan starts from a fresh Describe).
var ErrRetryLater = errors.New("apply: retry later")

// Options configure an Engine. API and Store are required.
type Options struct {
	API   liveapi.API
	Store idempotency.Store
	// Sinks receive the notices; with none, results carry each notice in full.
	Sinks []notify.Sink
	// Defaults are the default policies (LIVEPACK_POLICIES), normalized; their DomainName may
	// be a glob.
	Defaults []policy.Policy
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Engine turns desired policies into API state, once per trigger key, and sends the
// restart-ingest notices exactly once per change. It is safe for concurrent use.
type Engine struct {
	api      liveapi.API
	store    idempotency.Store
	sinks    []notify.Sink
	defaults []policy.Policy
	now      func() time.Time
	log      *slog.Logger
}

// New returns an Engine.
func New(o Options) *Engine {
	e := &Engine{api: o.API, store: o.Store, sinks: o.Sinks, defaults: o.Defaults, now: o.Now, log: o.Logger}
	if e.now == nil {
		e.now = time.Now
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	return e
}

// Apply applies a validated, normalized policy document under the trigger key. hash is the
// payload hash the key is bound to (policy.Hash of the document).
func (e *Engine) Apply(ctx context.Context, trigger, key, hash string, policies []policy.Policy) (Result, error) {
	return e.run(ctx, trigger, key, hash, func(ctx context.Context, s *session) (Result, error) {
		res := Result{Trigger: trigger, Key: key}
		err := s.applyPolicies(ctx, &res, policies, false)
		return res, err
	})
}

// NewDomainWindow is how long after a domain-created event's time a domain the API does not
// show is taken for one not yet visible (the API needs several minutes before a new domain can
// be queried) and retried, rather than failed as not found.
const NewDomainWindow = 15 * time.Minute

// DomainCreated applies the default policies whose DomainName glob matches a new domain, when
// it is a play domain. at is the event's time (zero when the event has none): within
// NewDomainWindow of it, a domain not found is retried.
func (e *Engine) DomainCreated(ctx context.Context, trigger, key, domain string, at time.Time) (Result, error) {
	hash := hashStrings("domain-created", domain)
	return e.run(ctx, trigger, key, hash, func(ctx context.Context, s *session) (Result, error) {
		res := Result{Trigger: trigger, Key: key}
		if !at.IsZero() {
			s.notFoundUntil = at.Add(NewDomainWindow)
		}
		var ps []policy.Policy
		for _, p := range e.defaults {
			if p.MatchesDomain(domain) {
				p.DomainName = domain
				ps = append(ps, p)
			}
		}
		if len(ps) == 0 {
			res.Note = fmt.Sprintf("no default policy (LIVEPACK_POLICIES) matches %s", domain)
			return res, nil
		}
		di := s.domain(ctx, domain)
		if di.err != nil {
			res.Results = append(res.Results, PolicyResult{DomainName: domain, AppName: "*", StreamName: "*",
				Outcome: Failed, Errors: apiFieldErrors(di.err), Reason: reasonFor(di.err)})
			if unfinished(di.err) {
				return res, notDone([]error{fmt.Errorf("domain %s: %w", domain, di.err)})
			}
			return res, nil
		}
		err := s.applyPolicies(ctx, &res, dedupe(ps), false)
		return res, err
	})
}

// run wraps work in the idempotency protocol: one record per key, a lease from the deadline,
// the stored result replayed, planned notices recorded before any write and delivered after.
func (e *Engine) run(ctx context.Context, trigger, key, hash string, work func(context.Context, *session) (Result, error)) (Result, error) {
	log := e.log.With("trigger", trigger, "key", key)
	// Records are namespaced by trigger so that keys of different triggers never collide;
	// results carry the key as the trigger gave it.
	skey := trigger + ":" + key
	deadline, ok := ctx.Deadline()
	prev, err := e.store.Acquire(ctx, skey, hash, idempotency.LeaseUntil(e.now(), deadline, ok))
	if err != nil {
		res := Result{Trigger: trigger, Key: key, Results: []PolicyResult{}, Notices: []NoticeResult{}}
		if errors.Is(err, idempotency.ErrPayloadMismatch) {
			res.Note = "the key " + key + " was used before with a different payload: this event is not applied"
		}
		return res, fmt.Errorf("apply: %s: %w", key, err)
	}
	if prev != nil && prev.Status == idempotency.Completed {
		log.Info("replay of a completed key")
		return replay(prev)
	}
	if prev != nil && prev.Status == idempotency.Applied {
		log.Info("delivering notices pending for an applied key")
		res, err := replay(prev)
		if err != nil {
			return res, err
		}
		res.Notices = e.deliver(ctx, prev, func(ns []NoticeResult) {
			stored := res
			stored.Replayed, stored.Notices = false, ns
			if b, err := json.Marshal(stored); err == nil {
				prev.Result = b
			}
		})
		e.flushOthers(ctx, skey)
		return res, nil
	}
	s := &session{e: e, key: skey, hash: hash, domains: map[string]*domainInfo{}, log: log}
	if prev != nil { // a crashed run's lease was taken over
		s.planned = prev.Pending
		log.Warn("taking over a lapsed in-progress key", "planned", len(prev.Pending))
	}
	res, werr := work(ctx, s)
	// The writes are done: recording them must not fail because the deadline passed meanwhile.
	sctx, cancel := settleContext(ctx)
	defer cancel()
	if res.Results == nil {
		res.Results = []PolicyResult{}
	}
	owed := s.owed()
	resJSON, err := json.Marshal(res)
	if err != nil {
		return res, fmt.Errorf("apply: encode result: %w", err)
	}
	rec := idempotency.Record{Key: skey, Status: idempotency.Applied, PayloadHash: hash,
		LeaseUntil: idempotency.LeaseUntil(e.now(), deadline, ok), Result: resJSON, Pending: owed}
	if werr != nil {
		// The work must run again, so the key is released: notices for the changes that did
		// happen move to a record of their own and go out now, and the notices of writes
		// whose fate is unknown stay on the key, under a lapsed lease, for the retry to
		// check against what it finds in place.
		if len(owed) > 0 {
			rec.Key = "notices:" + skey + ":" + owed[0].ID
			if err := e.store.Put(sctx, rec); err != nil {
				log.Error("keeping pending notices failed", "err", err)
			}
			res.Notices = e.deliver(ctx, &rec, nil)
		}
		if carry := s.carried(owed); len(carry) > 0 {
			held := idempotency.Record{Key: skey, Status: idempotency.InProgress, PayloadHash: hash, LeaseUntil: e.now(), Pending: carry}
			if err := e.store.Put(sctx, held); err != nil {
				log.Error("keeping uncertain notices failed", "err", err)
			}
		} else if err := e.store.Delete(sctx, skey); err != nil {
			log.Error("releasing the key failed", "err", err)
		}
		if res.Notices == nil {
			res.Notices = []NoticeResult{}
		}
		return res, werr
	}
	if err := e.store.Put(sctx, rec); err != nil {
		return res, fmt.Errorf("apply: record applied %s: %w", skey, err)
	}
	res.Notices = e.deliver(ctx, &rec, func(ns []NoticeResult) {
		res.Notices = ns
		if b, err := json.Marshal(res); err == nil {
			rec.Result = b
		}
	})
	e.flushOthers(ctx, skey)
	return res, nil
}

// settleContext returns a context for recording what already happened: it outlives ctx's
// cancellation by a few seconds, so a run that hit its deadline still saves its record.
func settleContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
}

// replay decodes a stored result.
func replay(rec *idempotency.Record) (Result, error) {
	var res Result
	if err := json.Unmarshal(rec.Result, &res); err != nil {
		return res, fmt.Errorf("apply: stored result of %s: %w", rec.Key, err)
	}
	res.Replayed = true
	return res, nil
}

// deliver sends rec's pending notices to the sinks still owed them, then records what is left:
// Completed when nothing is, Applied with the lease released otherwise, so a later invocation
// of any trigger retries. rec must be held (its lease taken).
//
// onDone, when set, sees the delivery results before the record is saved, so the stored result
// a replay returns says where each notice went.
func (e *Engine) deliver(ctx context.Context, rec *idempotency.Record, onDone func([]NoticeResult)) []NoticeResult {
	out := []NoticeResult{}
	var left []idempotency.PendingNotice
	for _, pn := range rec.Pending {
		nr := NoticeResult{ID: pn.ID, Sinks: map[string]string{}}
		if len(e.sinks) == 0 {
			nr.Event = pn.Event
		}
		var owed []string
		for _, name := range pn.Sinks {
			sink := e.sink(name)
			if sink == nil {
				nr.Sinks[name] = "failed: sink no longer configured"
				e.log.Error("notice dropped: sink no longer configured", "notice", pn.ID, "sink", name)
				continue
			}
			if err := sink.Deliver(ctx, notify.Notice{ID: pn.ID, JSON: pn.Event}); err != nil {
				if errors.Is(err, notify.ErrPermanent) {
					nr.Sinks[name] = "failed: " + err.Error()
					e.log.Error("notice refused by its sink", "notice", pn.ID, "sink", name, "err", err)
					continue
				}
				nr.Sinks[name] = "pending: " + err.Error()
				owed = append(owed, name)
				e.log.Warn("notice delivery failed; kept pending", "notice", pn.ID, "sink", name, "err", err)
				continue
			}
			nr.Sinks[name] = "delivered"
		}
		if len(owed) > 0 {
			pn.Sinks = owed
			left = append(left, pn)
		}
		out = append(out, nr)
	}
	rec.Pending = left
	rec.LeaseUntil = time.Time{}
	if onDone != nil {
		onDone(out)
	}
	if len(left) == 0 {
		rec.Status = idempotency.Completed
	} else {
		rec.Status = idempotency.Applied
	}
	sctx, cancel := settleContext(ctx)
	defer cancel()
	if len(left) == 0 && isNoticeKey(rec.Key) {
		if err := e.store.Delete(sctx, rec.Key); err != nil {
			e.log.Error("clearing delivered notices failed", "key", rec.Key, "err", err)
		}
		return out
	}
	if err := e.store.Put(sctx, *rec); err != nil {
		e.log.Error("recording notice delivery failed", "key", rec.Key, "err", err)
	}
	return out
}

func isNoticeKey(k string) bool { return len(k) > 8 && k[:8] == "notices:" }

func (e *Engine) sink(name string) notify.Sink {
	for _, s := range e.sinks {
		if s.Name() == name {
			return s
		}
	}
	return nil
}

// sinkNames lists the configured sinks: a new notice is owed to each.
func (e *Engine) sinkNames() []string {
	names := make([]string, 0, len(e.sinks))
	for _, s := range e.sinks {
		names = append(names, s.Name())
	}
	return names
}

// flushOthers delivers notices that earlier runs could not deliver: they go out with the next
// invocation of any trigger.
func (e *Engine) flushOthers(ctx context.Context, self string) {
	if ctx.Err() != nil {
		return
	}
	recs, err := e.store.Pending(ctx)
	if err != nil {
		e.log.Warn("listing pending notices failed", "err", err)
		return
	}
	deadline, ok := ctx.Deadline()
	for _, r := range recs {
		if r.Key == self || ctx.Err() != nil {
			continue
		}
		held, err := e.store.Acquire(ctx, r.Key, r.PayloadHash, idempotency.LeaseUntil(e.now(), deadline, ok))
		if err != nil {
			continue // another invocation holds it
		}
		if held == nil {
			// It expired between listing and acquiring: drop the fresh claim just made.
			_ = e.store.Delete(ctx, r.Key)
			continue
		}
		if held.Status != idempotency.Applied {
			continue
		}
		e.log.Info("delivering notices pending from an earlier run", "pendingKey", r.Key, "notices", len(held.Pending))
		e.deliver(ctx, held, nil)
	}
}
