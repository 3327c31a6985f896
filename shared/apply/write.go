package apply

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/livepack/livepack/shared/classify"
	"github.com/livepack/livepack/shared/liveapi"
	"github.com/livepack/livepack/shared/outbox"
	"github.com/livepack/livepack/shared/policy"
	"github.com/livepack/livepack/shared/quota"
)

// The write path of one change: its intent in the outbox before the API write, the write,
// and its commit, or its settling after an ambiguous answer.

// joinWait bounds how long a run waits for another run's intent on the same target to settle.
const joinWait = 20 * time.Second

// ErrBusyTarget: another run kept changing the target while this one waited; a later delivery
// plans again.
var ErrBusyTarget = errors.New("another run is changing this target")

// change makes one planned step through the outbox: the intent recorded first (no write
// without it), the write, then the commit on evidence (a 2xx, or a fresh read after an
// ambiguous answer), so the change is announced once whatever fails.
func (s *session) change(ctx context.Context, p policy.Policy, st step, di *domainInfo, pr PolicyResult) (PolicyResult, error) {
	for attempt := 0; attempt < 3; attempt++ {
		if err := ctx.Err(); err != nil {
			return failed(pr, err)
		}
		in := outbox.Intent{Target: p.Target(), Outcome: st.outcome, Previous: st.current}
		if st.outcome != Deleted {
			c := p.Config()
			in.Desired = &c
		}
		got, ans, err := s.e.box.Begin(ctx, in, s.holder)
		if err != nil {
			return failed(pr, err) // no intent, no write: retried
		}
		switch ans {
		case outbox.Mine:
			pr, err, again := s.write(ctx, got, p, st, di, pr)
			if !again {
				return pr, err
			}
		case outbox.Lapsed:
			ch, keys, err := s.e.box.Settle(ctx, got, s.holder, s.settler)
			if err != nil {
				return failed(pr, err)
			}
			if ch != nil {
				s.add(keys, note{id: ch.ID, event: ch.Notice})
			}
		default: // Joined or Busy: another live run is writing this target
			wctx, cancel := context.WithTimeout(ctx, joinWait)
			ch, err := s.e.box.Wait(wctx, got)
			cancel()
			if err != nil {
				return failed(pr, fmt.Errorf("%s: %w (%w)", p.Target(), ErrBusyTarget, err))
			}
			if ans == outbox.Joined && ch != nil {
				pr.Outcome, pr.Previous = ch.Outcome, ch.Previous
				pr.Reason = "a concurrent run made this same change; it is announced once, under its id"
				s.add(nil, note{id: ch.ID, joined: true})
				return pr, nil
			}
		}
		// Plan again from a fresh read.
		if err := s.loadConfigs(ctx, p.DomainName, di, true); err != nil {
			return failed(pr, err)
		}
		st = plan(p, di)
		pr.Previous = st.current
		if st.outcome == Unchanged {
			pr.Outcome = Unchanged
			return pr, nil
		}
	}
	return failed(pr, fmt.Errorf("%s: %w", p.Target(), ErrBusyTarget))
}

// write sends the write of an intent the run holds and settles it: committed on a 2xx or when
// a fresh read shows the change in place, abandoned when the API refused it or a fresh read
// shows it absent. again asks the caller to plan once more (the API's state was not what the
// plan read).
func (s *session) write(ctx context.Context, in outbox.Intent, p policy.Policy, st step, di *domainInfo, pr PolicyResult) (_ PolicyResult, _ error, again bool) {
	s.hold(in)
	defer s.drop(in)
	var err error
	switch st.outcome {
	case Created:
		err = s.e.api.AddPackageConfig(ctx, packageConfig(p))
	case Updated:
		err = s.e.api.UpdatePackageConfig(ctx, packageConfig(p))
	default:
		err = s.e.api.DeletePackageConfig(ctx, p.DomainName, p.AppName, p.StreamName)
	}
	if err == nil {
		pr.Outcome = st.outcome
		return s.commit(ctx, in, di, pr), nil, false
	}
	stale := errors.Is(err, liveapi.ErrConfigExists) || (st.outcome != Created && errors.Is(err, liveapi.ErrNotFound))
	if !stale && !ambiguous(err) {
		// The API refused the write: nothing changed, nothing to announce.
		s.abandon(ctx, in)
		pr, err := failed(pr, err)
		return pr, err, false
	}
	// An ambiguous answer (the write may have landed), or a state that changed under the plan
	// (possibly this very write, retried in place after a lost answer): a fresh read decides.
	sctx, cancel := settleContext(ctx)
	defer cancel()
	inPlace, rerr := s.inPlace(sctx, in, di)
	switch {
	case rerr != nil:
		// Undecided: the intent lapses at once and the next relay or writer settles it.
		if e := s.e.box.Release(sctx, in); e != nil {
			s.log.Warn("releasing an undecided intent failed; it lapses with its lease", "change", in.ID, "err", e)
		}
		pr, err := failed(pr, err)
		return pr, err, false
	case inPlace && stale:
		// The API had the config before this write: another run's committed change explains
		// it (the run that won a race), unless none does (this write's own first attempt
		// landed and the client's retry met it).
		if ch, err := s.e.box.Last(sctx, in.Target); err == nil && ch != nil && ch.ID != in.ID && in.Same(outbox.Intent{Desired: ch.Config}) &&
			ch.CommittedAt.After(in.CreatedAt.Add(-time.Minute)) {
			s.abandon(sctx, in)
			pr.Outcome, pr.Previous = ch.Outcome, ch.Previous
			pr.Reason = "a concurrent run made this same change; it is announced once, under its id"
			s.add(nil, note{id: ch.ID, joined: true})
			return pr, nil, false
		}
		fallthrough
	case inPlace:
		pr.Outcome = st.outcome
		pr.Reason = "the API showed this config in place after an ambiguous answer to the write"
		return s.commit(sctx, in, di, pr), nil, false
	}
	s.abandon(sctx, in)
	if stale {
		return pr, nil, true
	}
	pr, err = failed(pr, err)
	return pr, err, false
}

// ambiguous reports a failed write that may have taken effect: no answer, or a server-side
// failure. A throttle, the quota or a refusal with a 4xx code means it did not.
func ambiguous(err error) bool {
	if errors.Is(err, quota.ErrExhausted) || liveapi.IsThrottled(err) {
		return false
	}
	var ae *liveapi.Error
	if errors.As(err, &ae) {
		return ae.Code == liveapi.CodeNetwork || ae.Status >= 500 || ae.Status == 0
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || classify.Of(err) == classify.Retry
}

func (s *session) abandon(ctx context.Context, in outbox.Intent) {
	if err := s.e.box.Abandon(ctx, in); err != nil {
		s.log.Warn("clearing an abandoned intent failed; the next relay settles it", "change", in.ID, "err", err)
	}
}

// commit records a change in place and owes its notice. A store failure leaves the intent to
// lapse: the next relay settles it from a fresh read and announces it then.
func (s *session) commit(ctx context.Context, in outbox.Intent, di *domainInfo, pr PolicyResult) PolicyResult {
	n, restart, err := s.notice(ctx, in, di)
	if err != nil {
		s.log.Error("building a notice failed; the relay settles the change", "change", in.ID, "err", err)
		s.add(nil, note{id: in.ID, pending: "not yet recorded: " + err.Error()})
		return pr
	}
	sctx, cancel := settleContext(ctx)
	defer cancel()
	ch, keys, err := s.e.box.Commit(sctx, in, n, restart)
	if err != nil {
		s.log.Warn("recording a commit failed; the relay settles the change from a fresh read", "change", in.ID, "err", err)
		if e := s.e.box.Release(sctx, in); e != nil {
			s.log.Warn("releasing the intent failed; it lapses with its lease", "change", in.ID, "err", e)
		}
		s.add(keys, note{id: in.ID, pending: "the relay announces it: " + err.Error()})
		return pr
	}
	s.add(keys, note{id: ch.ID, event: ch.Notice})
	return pr
}

func (s *session) add(keys []string, n note) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.owed = append(s.owed, keys...)
	s.notes = append(s.notes, n)
}

func (s *session) hold(in outbox.Intent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.intents[in.ID] = in
}

func (s *session) drop(in outbox.Intent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.intents, in.ID)
}

// renewIntents extends the leases of the intents whose writes are in flight.
func (s *session) renewIntents(ctx context.Context) {
	s.mu.Lock()
	ins := make([]outbox.Intent, 0, len(s.intents))
	for _, in := range s.intents {
		ins = append(ins, in)
	}
	s.mu.Unlock()
	for _, in := range ins {
		if err := s.e.box.Renew(ctx, in); err != nil {
			s.log.Warn("renewing an intent failed", "change", in.ID, "err", err)
		}
	}
}
