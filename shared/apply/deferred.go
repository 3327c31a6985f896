package apply

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/livepack/livepack/shared/classify"
	"github.com/livepack/livepack/shared/notify"
	"github.com/livepack/livepack/shared/policy"
	"github.com/livepack/livepack/shared/store"
)

// DeferFor is how long after its domain-created event a domain not yet ready (unknown to the
// API, or configuring) stays deferred: every scheduled run checks it, and after DeferFor it is
// failed with a notice. A day outlasts any platform's redelivery of the event (EventBridge
// keeps an event an hour at most), which is why the event itself is not retried.
const DeferFor = 24 * time.Hour

// Periods of a deferral record: the claim a scheduled run holds on it while it checks or
// applies the domain (a racing run skips it meanwhile), and how long a record outlives its
// deferral in the store, for cleanup only (the schedule removes it at DeferFor).
const (
	deferClaim = 2 * time.Minute
	deferKeep  = DeferFor + 7*24*time.Hour
)

// deferredPage is how many deferral records a scheduled run reads at a time.
const deferredPage = 100

// deferral is the record of a deferred domain, at deferred/DOMAIN.
type deferral struct {
	DomainName string    `json:"domain"`
	EventAt    time.Time `json:"eventAt"`
	RecordedAt time.Time `json:"recordedAt"`
	Trigger    string    `json:"trigger"`
	Key        string    `json:"key"`
	// Reason is why the domain was not ready when last checked.
	Reason     string    `json:"reason"`
	Holder     string    `json:"holder,omitempty"`
	LeaseUntil time.Time `json:"leaseUntil,omitzero"`
}

func deferredKey(domain string) string { return "deferred/" + domain }

// DeferredSummary counts what a scheduled run did with the deferred domains it found.
type DeferredSummary struct {
	// Applied: the domain was ready and the default policies were applied (its results are
	// listed); Waiting: still not ready, or held by a racing run; Failed: not ready after
	// DeferFor, a notice sent.
	Applied int `json:"applied"`
	Waiting int `json:"waiting"`
	Failed  int `json:"failed"`
}

// notReady reports a domain the API does not show yet, or shows as configuring.
func notReady(err error) bool {
	return isDomainNotFound(err) || errors.Is(err, classify.ErrDomainNotReady)
}

// matching returns the default policies for domain, expanded and deduplicated.
func (e *Engine) matching(domain string) []policy.Policy {
	var ps []policy.Policy
	for _, p := range e.defaults {
		if p.MatchesDomain(domain) {
			p.DomainName = domain
			ps = append(ps, p)
		}
	}
	return dedupe(ps)
}

// deferDomain records a domain whose default policies wait for it to be ready. The first
// event's record stands: a later event for the same domain finds it and keeps its time.
func (e *Engine) deferDomain(ctx context.Context, trigger, key, domain string, at time.Time, reason string) error {
	d := deferral{DomainName: domain, EventAt: at.UTC(), RecordedAt: e.now().UTC(), Trigger: trigger, Key: key, Reason: reason}
	b, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("apply: defer %s: %w", domain, err)
	}
	if _, err := e.store.Create(ctx, deferredKey(domain), b, d.EventAt.Add(deferKeep)); err != nil && !errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("apply: defer %s: %w", domain, err)
	}
	return nil
}

// deferredResults are the deferred outcomes of a domain-created event: one per default policy
// that waits for the domain.
func deferredResults(ps []policy.Policy, reason string, until time.Time) []PolicyResult {
	out := make([]PolicyResult, 0, len(ps))
	for _, p := range ps {
		var cfg *policy.Config
		if !p.Delete {
			c := p.Config()
			cfg = &c
		}
		out = append(out, PolicyResult{DomainName: p.DomainName, AppName: p.AppName, StreamName: p.StreamName, Outcome: Deferred,
			Config: cfg, Errors: []policy.FieldError{}, Warnings: p.Warnings,
			Reason: reason + "; the scheduled reconcile applies it once the domain is ready, until " + until.UTC().Format(time.RFC3339)})
	}
	return out
}

// deferredRun is what the deferred domains added to a scheduled run's result.
type deferredRun struct {
	sum     DeferredSummary
	seen    bool
	results []PolicyResult
	notices []NoticeResult
	note    string
}

// merge puts the deferred domains' results and notices ahead of the reconcile's.
func (d deferredRun) merge(res *Result) {
	if !d.seen {
		return
	}
	sum := d.sum
	res.Deferred = &sum
	res.Results = append(d.results, res.Results...)
	res.Notices = append(d.notices, res.Notices...)
	if d.note != "" {
		res.Note = joinNote(res.Note, d.note)
	}
}

// applyDeferred is the first step of every scheduled run, whatever its mode: each deferred
// domain now ready gets the default policies (its record removed once they are applied); one
// deferred for DeferFor is failed, with one notice owed through the outbox. Each record is
// claimed with a conditional update first, so racing runs never handle the same one twice.
func (e *Engine) applyDeferred(ctx context.Context, s *session) deferredRun {
	var run deferredRun
	after := ""
	for {
		items, err := e.store.List(ctx, "deferred/", after, deferredPage)
		if err != nil {
			run.note = joinNote(run.note, "reading the deferred domains failed: "+err.Error())
			break
		}
		for _, it := range items {
			after = it.Key
			run.seen = true
			if stop := e.deferredOne(ctx, s, it, &run); stop != "" {
				run.note = joinNote(run.note, stop)
				run.notices = append(run.notices, s.deliver(ctx)...)
				return run
			}
		}
		if len(items) < deferredPage {
			break
		}
	}
	run.notices = append(run.notices, s.deliver(ctx)...)
	return run
}

// deferredOne handles one deferral record; it returns a reason to stop handling the rest.
func (e *Engine) deferredOne(ctx context.Context, s *session, it store.Item, run *deferredRun) string {
	var d deferral
	if err := json.Unmarshal(it.Value, &d); err != nil {
		s.log.Error("unreadable deferral record; removed", "key", it.Key, "err", err)
		_ = e.store.Delete(ctx, it.Key, it.Version)
		return ""
	}
	now := e.now()
	if (d.Holder != "" && d.Holder != s.holder && d.LeaseUntil.After(now)) || ctx.Err() != nil {
		run.sum.Waiting++
		return ""
	}
	d.Holder, d.LeaseUntil = s.holder, now.Add(deferClaim)
	b, _ := json.Marshal(d)
	v, err := e.store.Update(ctx, it.Key, it.Version, b, it.Expires)
	if err != nil {
		// Another run claimed or removed it in between.
		run.sum.Waiting++
		return ""
	}
	release := func(reason string) {
		d.Holder, d.LeaseUntil = "", time.Time{}
		if reason != "" {
			d.Reason = reason
		}
		b, _ := json.Marshal(d)
		sctx, cancel := settleContext(ctx)
		defer cancel()
		if _, err := e.store.Update(sctx, it.Key, v, b, it.Expires); err != nil {
			s.log.Warn("releasing a deferral failed; its claim lapses", "domain", d.DomainName, "err", err)
		}
	}
	remove := func() error {
		sctx, cancel := settleContext(ctx)
		defer cancel()
		if err := e.store.Delete(sctx, it.Key, v); err != nil && !errors.Is(err, store.ErrConflict) {
			return err
		}
		return nil
	}
	log := s.log.With("domain", d.DomainName, "eventAt", d.EventAt)
	if now.Sub(d.EventAt) >= DeferFor {
		reason := d.Reason
		if reason == "" {
			reason = "the domain was not ready"
		}
		n, err := notify.DeferredFailed(d.DomainName, d.EventAt, now, reason)
		if err != nil {
			release("")
			return "building the deferral's failure notice failed: " + err.Error()
		}
		sctx, cancel := settleContext(ctx)
		keys, err := e.box.Enqueue(sctx, n, d.DomainName)
		cancel()
		if err != nil {
			release("")
			log.Warn("queueing the deferral's failure notice failed; the next run tries again", "err", err)
			run.sum.Waiting++
			return ""
		}
		s.add(keys, note{id: n.ID, event: n.JSON})
		if err := remove(); err != nil {
			log.Warn("removing a failed deferral failed; the next run queues the same notice again, which a receiver drops", "err", err)
		}
		log.Error("a deferred domain never became ready: the default policies were not applied", "reason", reason)
		run.sum.Failed++
		run.results = append(run.results, PolicyResult{DomainName: d.DomainName, AppName: "*", StreamName: "*", Outcome: Failed,
			Errors: []policy.FieldError{}, Reason: fmt.Sprintf("%s for %s after its domain-created event; the default policies were not applied", reason, DeferFor)})
		return ""
	}
	ps := e.matching(d.DomainName)
	if len(ps) == 0 {
		// The default policies changed since the event: nothing is owed to this domain.
		if err := remove(); err != nil {
			log.Warn("removing a deferral failed", "err", err)
		}
		return ""
	}
	delete(s.domains, d.DomainName) // a fresh look, whatever this run read before
	di := s.domain(ctx, d.DomainName)
	defer delete(s.domains, d.DomainName)
	switch err := di.err; {
	case err == nil:
	case notReady(err):
		release(reasonFor(err))
		run.sum.Waiting++
		return ""
	case halts(err):
		release("")
		run.sum.Waiting++
		return "deferred domains: stopped at " + d.DomainName + ": " + reasonFor(err)
	case classify.Of(err) == classify.Misconfig:
		release("")
		run.sum.Waiting++
		return "deferred domains: stopped at " + d.DomainName + ": " + reasonFor(err)
	default:
		release("")
		run.sum.Waiting++
		log.Warn("checking a deferred domain failed; the next run checks it again", "err", err)
		return ""
	}
	prs, err := s.applyPolicies(ctx, ps, false)
	run.results = append(run.results, prs...)
	if err != nil {
		release("")
		run.sum.Waiting++
		if halts(err) {
			return "deferred domains: stopped at " + d.DomainName + ": " + reasonFor(err)
		}
		return ""
	}
	if err := remove(); err != nil {
		log.Warn("removing an applied deferral failed; the next run finds nothing to change", "err", err)
	}
	log.Info("deferred domain applied", "policies", len(prs))
	run.sum.Applied++
	return ""
}
