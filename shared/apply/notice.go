package apply

import (
	"context"

	"github.com/livepack/livepack/shared/liveapi"
	"github.com/livepack/livepack/shared/notify"
	"github.com/livepack/livepack/shared/outbox"
)

// A committed change's notice: what it says (the online streams to restart), whether a change
// is in place, and delivering the run's own notices.

func driftWord(outcome string) string {
	switch outcome {
	case Created:
		return "create"
	case Updated:
		return "update"
	default:
		return "delete"
	}
}

// notice builds the notice of an intent's change from what the API shows now: the domain's
// scope and the online streams that must restart ingest.
func (s *session) notice(ctx context.Context, in outbox.Intent, di *domainInfo) (notify.Notice, []notify.Stream, error) {
	if !di.detailed {
		if d, err := s.e.api.DescribeDomain(ctx, in.Target.DomainName); err == nil {
			di.d.Scope = d.Scope
		} else {
			s.log.Warn("reading the domain's scope failed", "domain", in.Target.DomainName, "err", err)
		}
		di.detailed = true
	}
	ch := notify.Change{ID: in.ID, Target: in.Target, Outcome: in.Outcome, Config: in.Desired, Previous: in.Previous,
		At: s.e.now().UTC(), Scope: di.d.Scope}
	for _, o := range s.onlineStreams(ctx, in.Target.DomainName, di) {
		ch.Online = append(ch.Online, notify.Stream{AppName: o.AppName, StreamName: o.StreamName, PublishURL: o.PublishURL})
	}
	n, err := notify.Build(ch)
	if err != nil {
		return notify.Notice{}, nil, err
	}
	return n, notify.Restart(ch), nil
}

// inPlace reads the target's domain afresh and reports whether the intent's end state is what
// the API shows.
func (s *session) inPlace(ctx context.Context, in outbox.Intent, di *domainInfo) (bool, error) {
	if err := s.loadConfigs(ctx, in.Target.DomainName, di, true); err != nil {
		return false, err
	}
	c, exists := di.configs[[2]string{in.Target.AppName, in.Target.StreamName}]
	if in.Desired == nil {
		return !exists, nil
	}
	return exists && configOf(c) == *in.Desired, nil
}

// settler decides an intent another run left open (outbox.Settler): a fresh read of its
// domain, and the notice built from it when the change is in place.
func (s *session) settler(ctx context.Context, in outbox.Intent) (bool, notify.Notice, []notify.Stream, error) {
	di, ok := s.lookup(in.Target.DomainName)
	if !ok {
		di = &domainInfo{d: liveapi.Domain{DomainName: in.Target.DomainName}}
		s.keep(in.Target.DomainName, di)
	}
	inPlace, err := s.inPlace(ctx, in, di)
	if err != nil || !inPlace {
		if err != nil && isDomainNotFound(err) {
			return false, notify.Notice{}, nil, nil // the domain is gone: so is the change
		}
		return false, notify.Notice{}, nil, err
	}
	n, restart, err := s.notice(ctx, in, di)
	return err == nil, n, restart, err
}

// deliver sends the notices of the changes this run committed, and reports every notice the
// run made or joined, in order: where each went, or the notice itself when no sink is set.
func (s *session) deliver(ctx context.Context) []NoticeResult {
	s.mu.Lock()
	owed, notes := s.owed, s.notes
	s.owed, s.notes = nil, nil
	s.mu.Unlock()
	if len(notes) == 0 {
		return nil
	}
	states := s.e.box.Deliver(ctx, owed, s.holder)
	out := make([]NoticeResult, 0, len(notes))
	seen := map[string]bool{}
	for _, n := range notes {
		if seen[n.id] {
			continue
		}
		seen[n.id] = true
		nr := NoticeResult{ID: n.id, Sinks: map[string]string{}}
		switch {
		case n.pending != "":
			for _, sink := range s.e.sinks {
				nr.Sinks[sink] = outbox.Pending + ": " + n.pending
			}
		case n.joined:
			nr.Sinks = s.e.box.States(ctx, []string{n.id}, s.e.sinks)[n.id]
		default:
			for sink, st := range states[n.id] {
				nr.Sinks[sink] = st
			}
		}
		if nr.Sinks == nil {
			nr.Sinks = map[string]string{}
		}
		if len(s.e.sinks) == 0 {
			nr.Event = n.event
		}
		out = append(out, nr)
	}
	return out
}
