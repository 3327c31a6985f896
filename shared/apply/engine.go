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
	return e.run(ctx, trigger, key, trigger+":"+key, hash, func(ctx context.Context, s *session) (Result, error) {
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
	return e.run(ctx, trigger, key, trigger+":"+key, hash, func(ctx context.Context, s *session) (Result, error) {
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

// run wraps work in the idempotency protocol: one record per key, a short lease renewed by a
// heartbeat while the work runs, every record write fenced by the lease's token, the stored
// result replayed, planned notices recorded before any write and delivered after.
func (e *Engine) run(ctx context.Context, trigger, key, skey, hash string, work func(context.Context, *session) (Result, error)) (Result, error) {
	log := e.log.With("trigger", trigger, "key", key)
	token, prev, err := e.store.Acquire(ctx, skey, hash, idempotency.LeaseUntil(e.now()))
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
	l := e.hold(ctx, skey, token, log)
	defer l.stop()
	if prev != nil && prev.Status == idempotency.Applied {
		log.Info("delivering notices pending for an applied key")
		res, err := replay(prev)
		if err != nil {
			return res, err
		}
		prev.Token = token
		res.Notices = e.deliver(ctx, prev, func(ns []NoticeResult) {
			stored := res
			stored.Replayed, stored.Notices = false, ns
			if b, err := json.Marshal(stored); err == nil {
				prev.Result = b
			}
		})
		l.stop()
		e.flushOthers(ctx, skey)
		return res, nil
	}
	s := &session{e: e, key: skey, hash: hash, token: token, lease: l, domains: map[string]*domainInfo{}, log: log}
	if prev != nil { // a crashed run's lease was taken over
		s.planned = prev.Pending
		log.Warn("taking over a lapsed in-progress key", "planned", len(prev.Pending))
	}
	res, werr := work(l.ctx, s)
	if lost := l.lost(); lost != nil && werr == nil {
		werr = lost
	}
	// The writes are done: recording them must not fail because the deadline passed meanwhile.
	sctx, cancel := settleContext(ctx)
	defer cancel()
	if res.Results == nil {
		res.Results = []PolicyResult{}
	}
	if werr == nil {
		// A run that finishes (a reconcile reports failures rather than retrying) settles its
		// ambiguous writes now: each whose change the API shows is announced.
		s.settleUncertain(sctx)
	}
	owed := s.owed()
	resJSON, err := json.Marshal(res)
	if err != nil {
		return res, fmt.Errorf("apply: encode result: %w", err)
	}
	rec := idempotency.Record{Key: skey, Status: idempotency.Applied, PayloadHash: hash, Token: token,
		LeaseUntil: idempotency.LeaseUntil(e.now()), Result: resJSON, Pending: owed}
	if werr != nil {
		res.Notices = []NoticeResult{}
		if l.lost() != nil {
			// Another run holds the key: it finds this run's changes in place and owes their
			// notices; this run writes nothing more.
			return res, werr
		}
		// The work must run again, so the key is released: notices for the changes that did
		// happen move to a record of their own and go out now, and the notices of writes
		// whose fate is unknown stay on the key, under a lapsed lease, for the retry to
		// check against what it finds in place.
		if len(owed) > 0 {
			nkey := "notices:" + skey + ":" + owed[0].ID
			ntoken, _, err := e.store.Acquire(sctx, nkey, hash, idempotency.LeaseUntil(e.now()))
			if err != nil {
				log.Error("keeping pending notices failed", "err", err)
			} else {
				nrec := rec
				nrec.Key, nrec.Token = nkey, ntoken
				if err := e.store.Put(sctx, nrec); err != nil {
					log.Error("keeping pending notices failed", "err", err)
				}
				res.Notices = e.deliver(ctx, &nrec, nil)
			}
		}
		if carry := s.carried(owed); len(carry) > 0 {
			held := idempotency.Record{Key: skey, Status: idempotency.InProgress, PayloadHash: hash, LeaseUntil: e.now(), Pending: carry, Token: token}
			if err := e.store.Put(sctx, held); err != nil {
				log.Error("keeping uncertain notices failed", "err", err)
			}
		} else if err := e.store.Delete(sctx, skey, token); err != nil {
			log.Error("releasing the key failed", "err", err)
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
	l.stop()
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

// claimFor is how long a delivery claim in the delivered-notices record lives: a sink's
// retries fit in it, and a crashed sender's claim lapses soon after.
const claimFor = time.Minute

// deliver sends rec's pending notices to the sinks still owed them, then records what is left:
// Completed when nothing is, Applied with the lease released otherwise, so a later invocation
// of any trigger retries. rec must be held (rec.Token its lease's token).
//
// Each notice goes to each sink at most once across keys, instances and retries: the
// delivered-notices record, keyed by the notice's id (the change's id), is claimed before the
// send and marked after it, so racing triggers that made or observed the same change send it
// once.
//
// onDone, when set, sees the delivery results before the record is saved, so the stored result
// a replay returns says where each notice went.
func (e *Engine) deliver(ctx context.Context, rec *idempotency.Record, onDone func([]NoticeResult)) []NoticeResult {
	out := []NoticeResult{}
	var left []idempotency.PendingNotice
	claimer := rec.Token
	if claimer == "" {
		claimer = idempotency.NewToken()
	}
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
			c, err := e.store.ClaimNotice(ctx, pn.ID, name, claimer, e.now().Add(claimFor))
			switch {
			case err != nil:
				nr.Sinks[name] = "pending: " + err.Error()
				owed = append(owed, name)
				e.log.Warn("claiming a notice failed; kept pending", "notice", pn.ID, "sink", name, "err", err)
				continue
			case c == idempotency.AlreadyDelivered:
				nr.Sinks[name] = "delivered"
				e.log.Info("notice already delivered by another run", "notice", pn.ID, "sink", name)
				continue
			case c == idempotency.InFlight:
				nr.Sinks[name] = "pending: being delivered by another run"
				owed = append(owed, name)
				continue
			}
			err = sink.Deliver(ctx, notify.Notice{ID: pn.ID, JSON: pn.Event})
			sctx, cancel := settleContext(ctx)
			if serr := e.store.SettleNotice(sctx, pn.ID, noticeSubject(pn), name, claimer, err == nil); serr != nil {
				e.log.Warn("recording a notice delivery failed", "notice", pn.ID, "sink", name, "err", serr)
			}
			cancel()
			if err != nil {
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
		if err := e.store.Delete(sctx, rec.Key, rec.Token); err != nil {
			e.log.Error("clearing delivered notices failed", "key", rec.Key, "err", err)
		}
		return out
	}
	if err := e.store.Put(sctx, *rec); err != nil {
		e.log.Error("recording notice delivery failed", "key", rec.Key, "err", err)
	}
	return out
}

// noticeSubject is what a notice is about (its CloudEvent subject: the target, or "reconcile").
func noticeSubject(pn idempotency.PendingNotice) string {
	var ev struct {
		Subject string `json:"subject"`
	}
	_ = json.Unmarshal(pn.Event, &ev)
	return ev.Subject
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

// Backlog bounds: the notices other runs left pending are delivered after a run's own, in one
// bounded step, so that an invocation (a webhook's answer above all) never waits on a long
// backlog: at most BacklogKeys records and BacklogBudget of time; the rest waits for the next
// invocation of any trigger or the schedule.
const (
	BacklogKeys   = 10
	BacklogBudget = 3 * time.Second
)

// flushOthers delivers notices that earlier runs could not deliver, within the backlog bounds.
func (e *Engine) flushOthers(ctx context.Context, self string) {
	if ctx.Err() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, BacklogBudget)
	defer cancel()
	recs, err := e.store.Pending(ctx)
	if err != nil {
		e.log.Warn("listing pending notices failed", "err", err)
		return
	}
	done := 0
	for _, r := range recs {
		if done >= BacklogKeys || ctx.Err() != nil {
			return
		}
		if r.Key == self {
			continue
		}
		token, held, err := e.store.Acquire(ctx, r.Key, r.PayloadHash, idempotency.LeaseUntil(e.now()))
		if err != nil {
			continue // another invocation holds it
		}
		if held == nil {
			// It expired between listing and acquiring: drop the fresh claim just made.
			_ = e.store.Delete(ctx, r.Key, token)
			continue
		}
		if held.Status != idempotency.Applied {
			continue
		}
		done++
		e.log.Info("delivering notices pending from an earlier run", "pendingKey", r.Key, "notices", len(held.Pending))
		held.Token = token
		e.deliver(ctx, held, nil)
	}
}
