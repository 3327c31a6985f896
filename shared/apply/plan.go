package apply

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/livepack/livepack/shared/classify"
	"github.com/livepack/livepack/shared/liveapi"
	"github.com/livepack/livepack/shared/notify"
	"github.com/livepack/livepack/shared/outbox"
	"github.com/livepack/livepack/shared/policy"
	"github.com/livepack/livepack/shared/quota"
)

// Play and ingest domain types (DescribeLiveDomainDetail's LiveDomainType).
const (
	playDomain   = "liveVideo"
	ingestDomain = "liveEdge"
)

// session is one invocation's view of the API: each domain's detail, configs and online
// streams are read at most once, and the notices of the changes it makes or joins are
// collected in order. A policy applied alongside others works in a session of its own (sub),
// which shares the domains read, the lock and the intents in flight, and collects its notices
// apart, so they are reported in the order a sequential run would report them.
type session struct {
	e       *Engine
	holder  string
	log     *slog.Logger
	domains map[string]*domainInfo

	mu *sync.Mutex
	// intents are the open intents of the writes in flight: the heartbeat renews them.
	intents map[string]outbox.Intent
	// owed are the delivery keys of the changes this run committed; notes the notices to report.
	owed  []string
	notes []note
}

// note is a notice a run reports: one it committed (with the event, for a result without
// sinks), one whose change another run made for it (joined), or one it could not record.
type note struct {
	id      string
	event   json.RawMessage
	joined  bool
	pending string
}

func newSession(e *Engine, holder string, log *slog.Logger) *session {
	return &session{e: e, holder: holder, log: log, domains: map[string]*domainInfo{}, mu: new(sync.Mutex), intents: map[string]outbox.Intent{}}
}

// sub returns a session sharing s's domains, lock and intents in flight (so the heartbeat
// renews its intents too), with notices of its own: absorb hands them to s.
func (s *session) sub() *session {
	return &session{e: s.e, holder: s.holder, log: s.log, domains: s.domains,
		mu: s.mu, intents: s.intents}
}

// absorb appends what a sub-session collected to s's notices.
func (s *session) absorb(c *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.owed = append(s.owed, c.owed...)
	s.notes = append(s.notes, c.notes...)
	c.owed, c.notes = nil, nil
}

// lookup returns what the session read of a domain, if it did.
func (s *session) lookup(name string) (*domainInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	di, ok := s.domains[name]
	return di, ok
}

// keep records what the session read of a domain; forget drops it.
func (s *session) keep(name string, di *domainInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.domains[name] = di
}

func (s *session) forget(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.domains, name)
}

type domainInfo struct {
	d liveapi.Domain
	// detailed: d came from DescribeLiveDomainDetail (DescribeLiveUserDomains has no Scope).
	detailed bool
	err      error
	configs  map[[2]string]liveapi.PackageConfig
	cfgErr   error
	// online is read once (onOnce), possibly while the domain's first write is in flight.
	online []liveapi.Stream
	onErr  error
	onOnce sync.Once
}

// domain looks the domain up once per invocation.
func (s *session) domain(ctx context.Context, name string) *domainInfo {
	if di, ok := s.lookup(name); ok {
		return di
	}
	di := &domainInfo{detailed: true}
	di.d, di.err = s.e.api.DescribeDomain(ctx, name)
	if di.err == nil && di.d.LiveDomainType == playDomain && di.d.DomainStatus == "configuring" {
		di.err = errConfiguring
	}
	s.keep(name, di)
	return di
}

// read gets what planning a domain's policies needs: its detail, then the configs of a play
// domain. The configs wait for the detail because only a play domain has any: reading them
// alongside would spend a call on every ingest or unknown domain a document names.
func (s *session) read(ctx context.Context, name string) *domainInfo {
	di := s.domain(ctx, name)
	if di.err == nil && di.d.LiveDomainType == playDomain {
		_ = s.loadConfigs(ctx, name, di, false) // a failure is applyOne's to report
	}
	return di
}

// readAll reads the named domains as read does, each domain alongside the others.
func (s *session) readAll(ctx context.Context, names []string) {
	var g errgroup.Group
	g.SetLimit(domainWorkers)
	for _, name := range names {
		g.Go(func() error { s.read(ctx, name); return nil })
	}
	_ = g.Wait()
}

// errConfiguring: a domain just added needs minutes of configuration before it takes configs.
var errConfiguring = fmt.Errorf("domain is still configuring: %w", classify.ErrDomainNotReady)

func isDomainNotFound(err error) bool {
	var ae *liveapi.Error
	return errors.As(err, &ae) && strings.HasPrefix(ae.Code, "InvalidDomain") && errors.Is(err, liveapi.ErrNotFound)
}

// loadConfigs reads every page of the domain's configs; fresh forces a new read (after a
// concurrent writer showed up).
func (s *session) loadConfigs(ctx context.Context, name string, di *domainInfo, fresh bool) error {
	if di.configs != nil && !fresh {
		return nil
	}
	cs, err := s.e.api.DescribePackageConfigs(ctx, name)
	if err != nil {
		di.cfgErr = err
		return err
	}
	di.configs = make(map[[2]string]liveapi.PackageConfig, len(cs))
	for _, c := range cs {
		di.configs[[2]string{c.AppName, c.StreamName}] = c
	}
	return nil
}

// onlineStreams lists the domain's online streams once; a caller arriving while the listing
// is in flight waits for it.
func (s *session) onlineStreams(ctx context.Context, name string, di *domainInfo) []liveapi.Stream {
	di.onOnce.Do(func() {
		di.online, di.onErr = s.e.api.OnlineStreams(ctx, name)
		if di.onErr != nil {
			s.log.Warn("listing online streams failed; the notice lists none", "domain", name, "err", di.onErr)
		}
	})
	return di.online
}

// step is one policy's plan.
type step struct {
	p       policy.Policy
	outcome string // Created, Updated, Deleted or Unchanged
	current *policy.Config
}

// plan compares one policy with the domain's current configs.
func plan(p policy.Policy, di *domainInfo) step {
	st := step{p: p}
	if c, ok := di.configs[[2]string{p.AppName, p.StreamName}]; ok {
		cur := configOf(c)
		st.current = &cur
	}
	switch {
	case p.Delete && st.current == nil:
		st.outcome = Unchanged
	case p.Delete:
		st.outcome = Deleted
	case st.current == nil:
		st.outcome = Created
	case *st.current == p.Config():
		st.outcome = Unchanged
	default:
		st.outcome = Updated
	}
	return st
}

func configOf(c liveapi.PackageConfig) policy.Config {
	cfg := policy.Config{Protocol: c.Protocol, SegmentNum: c.SegmentNum, SegmentDuration: c.SegmentDuration,
		PartDuration: c.PartDuration, IgnoreTranscode: c.IgnoreTranscode}
	if !strings.HasPrefix(c.Protocol, "LLHLS_") {
		cfg.PartDuration = 0
	}
	return cfg
}

func packageConfig(p policy.Policy) liveapi.PackageConfig {
	c := p.Config()
	return liveapi.PackageConfig{DomainName: p.DomainName, AppName: p.AppName, StreamName: p.StreamName,
		Protocol: c.Protocol, SegmentNum: c.SegmentNum, SegmentDuration: c.SegmentDuration,
		PartDuration: c.PartDuration, IgnoreTranscode: c.IgnoreTranscode}
}

// domainWorkers bounds how many domains one run works on at once. A domain's writes go one
// after another (writeOrder and the wildcard guard are per domain), so a document takes as
// long as its slowest domain only while every domain has a worker: 16 covers the domains a
// document usually names (the benchmark's ten among them), while the calls in flight, and the
// connections they hold, stay bounded however many domains a document names. The rate is the
// quota limiter's to keep, whatever this bound.
const domainWorkers = 16

// applyPolicies plans and (unless report) applies each policy and returns one PolicyResult
// per policy, in document order. It returns an error wrapping ErrRetryLater when any policy
// failed for a reason that a later delivery can fix. Every path (documents, new domains,
// enforce) goes through it: the same wildcard guard and the same order.
//
// Domains are applied alongside each other (at most domainWorkers at once), each domain's
// policies in writeOrder, each call through the quota limiter in ctx's lane. A domain's
// online streams (its notices') are listed while its first write is in flight. A failing
// domain leaves the others to finish; notices are reported in writeOrder.
func (s *session) applyPolicies(ctx context.Context, ps []policy.Policy, report bool) ([]PolicyResult, error) {
	if !report {
		var wild []string
		for _, p := range ps {
			if isWildcardDelete(p) && !policy.IsGlob(p.DomainName) && !slices.Contains(wild, p.DomainName) {
				wild = append(wild, p.DomainName)
			}
		}
		s.readAll(ctx, wild) // the guard's reads, together
		refused, err := s.wildcardDeletes(ctx, ps)
		if err != nil {
			return nil, notDone([]error{err})
		}
		if refused != nil {
			return refused, nil
		}
	}
	results := make([]PolicyResult, len(ps))
	errs := make([]error, len(ps))
	subs := make([]*session, len(ps))
	order := writeOrder(ps)
	var domains []string
	byDomain := map[string][]int{}
	for _, i := range order {
		name := ps[i].DomainName
		if _, ok := byDomain[name]; !ok {
			domains = append(domains, name)
		}
		byDomain[name] = append(byDomain[name], i)
	}
	var g errgroup.Group
	g.SetLimit(domainWorkers)
	var crash panicked
	for _, name := range domains {
		g.Go(func() error {
			defer crash.recover()
			idx := byDomain[name]
			var online sync.WaitGroup
			defer online.Wait()
			if !policy.IsGlob(name) {
				if di := s.read(ctx, name); !report && changes(ps, idx, di) {
					online.Go(func() { // the notices' list
						defer crash.recover()
						s.onlineStreams(ctx, name, di)
					})
				}
			}
			for _, i := range idx {
				if ctx.Err() != nil {
					return nil // the run lost its lease or its time: it writes nothing more
				}
				subs[i] = s.sub()
				results[i], errs[i] = subs[i].applyOne(ctx, ps[i], report)
			}
			return nil
		})
	}
	_ = g.Wait()
	crash.repanic()
	var retry []error
	for _, i := range order {
		if subs[i] != nil {
			s.absorb(subs[i])
		}
		if errs[i] != nil {
			retry = append(retry, errs[i])
		}
	}
	for i, p := range ps {
		if results[i].Outcome == "" { // not reached: the run stopped
			results[i] = PolicyResult{DomainName: p.DomainName, AppName: p.AppName, StreamName: p.StreamName,
				Outcome: Skipped, Errors: []policy.FieldError{}, Reason: "not applied: the run stopped (" + context.Cause(ctx).Error() + ")"}
			retry = append(retry, context.Cause(ctx))
		}
	}
	return results, notDone(retry)
}

// panicked carries a panic from the goroutines of one run to the run's own goroutine, so a
// panic ends the invocation as it would without them (a runtime recovers it there and reports
// the invocation failed), rather than the whole process.
type panicked struct {
	mu sync.Mutex
	v  any
	ok bool
}

// recover is deferred by each goroutine: it keeps the first panic's value.
func (p *panicked) recover() {
	if v := recover(); v != nil {
		p.mu.Lock()
		defer p.mu.Unlock()
		if !p.ok {
			p.v, p.ok = v, true
		}
	}
}

// repanic panics again, with the same value, once the goroutines are done.
func (p *panicked) repanic() {
	if p.ok {
		panic(p.v)
	}
}

// changes reports whether a play domain read without error has a policy among idx that plans
// a write: its notice will list the domain's online streams.
func changes(ps []policy.Policy, idx []int, di *domainInfo) bool {
	if di.err != nil || di.d.LiveDomainType != playDomain || di.configs == nil {
		return false
	}
	for _, i := range idx {
		if plan(ps[i], di).outcome != Unchanged {
			return true
		}
	}
	return false
}

// writeOrder is the order policies are applied in: creates and updates first, then deletes
// from the most specific to the widest. On the API a `*` Delete removes every config it
// matches, so the named configs a document deletes are deleted (and announced) one by one
// before a wider Delete could remove them silently.
func writeOrder(ps []policy.Policy) []int {
	width := func(p policy.Policy) int {
		if !p.Delete {
			return 0
		}
		w := 1
		if p.StreamName == "*" {
			w++
		}
		if p.AppName == "*" {
			w += 2
		}
		return w
	}
	order := make([]int, len(ps))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return width(ps[order[a]]) < width(ps[order[b]]) })
	return order
}

func isWildcardDelete(p policy.Policy) bool {
	return p.Delete && (p.AppName == "*" || p.StreamName == "*")
}

// wildcardDeletes checks every Delete whose AppName or StreamName is `*` before anything is
// written. The DeleteLivePackageConfig page says `*` matches all apps (or all streams of the
// app), while a policy names one config: so such a Delete is refused, every policy of the
// document with it, when it would remove a config the document does not also delete. Either
// reading then removes exactly what the document names. It returns the results of a refused
// document, or nil to go ahead.
func (s *session) wildcardDeletes(ctx context.Context, ps []policy.Policy) ([]PolicyResult, error) {
	deleted := map[policy.Target]bool{}
	for _, p := range ps {
		if p.Delete {
			deleted[p.Target()] = true
		}
	}
	bad := map[int][]string{}
	for i, p := range ps {
		if !isWildcardDelete(p) || policy.IsGlob(p.DomainName) {
			continue
		}
		di := s.domain(ctx, p.DomainName)
		if di.err != nil || di.d.LiveDomainType != playDomain {
			continue // applyOne reports it
		}
		if err := s.loadConfigs(ctx, p.DomainName, di, false); err != nil {
			if unfinished(err) {
				return nil, err
			}
			continue
		}
		if _, exists := di.configs[[2]string{p.AppName, p.StreamName}]; !exists {
			continue // nothing to delete: no call is made
		}
		for k := range di.configs {
			t := policy.Target{DomainName: p.DomainName, AppName: k[0], StreamName: k[1]}
			if (p.AppName == "*" || k[0] == p.AppName) && (p.StreamName == "*" || k[1] == p.StreamName) && !deleted[t] {
				bad[i] = append(bad[i], k[0]+"/"+k[1])
			}
		}
		sort.Strings(bad[i])
	}
	if len(bad) == 0 {
		return nil, nil
	}
	out := make([]PolicyResult, 0, len(ps))
	for i, p := range ps {
		pr := PolicyResult{DomainName: p.DomainName, AppName: p.AppName, StreamName: p.StreamName, Errors: []policy.FieldError{}, Warnings: p.Warnings}
		if names := bad[i]; len(names) > 0 {
			field, value := "AppName", p.AppName
			if p.AppName != "*" {
				field, value = "StreamName", p.StreamName
			}
			msg := fmt.Sprintf("a Delete with %s %q matches every config it covers on the API (DeleteLivePackageConfig), and would also remove %s, which this document does not delete; delete them in the same document, or name one config",
				field, value, strings.Join(names, ", "))
			pr.Outcome, pr.Reason = Invalid, msg
			pr.Errors = []policy.FieldError{{Index: i, Field: field, Value: value, Code: policy.CodeInvalidParams, Rule: "wildcard-delete", Message: msg}}
		} else {
			pr.Outcome = Skipped
			pr.Reason = "not applied: the document has invalid policies and is applied whole or not at all"
		}
		out = append(out, pr)
	}
	return out, nil
}

// notDone joins the causes of the policies a later delivery must redo: a misconfiguration
// (classify.Misconfig) fails loudly, anything else is a retry.
func notDone(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	err := errors.Join(errs...)
	if classify.Of(err) == classify.Misconfig {
		return fmt.Errorf("apply: %w: %w", classify.ErrMisconfigured, err)
	}
	return fmt.Errorf("%w: %w", ErrRetryLater, err)
}

// applyOne plans and applies one policy. The error it returns is the cause of a retryable
// failure; terminal failures are reported in the PolicyResult only.
func (s *session) applyOne(ctx context.Context, p policy.Policy, report bool) (PolicyResult, error) {
	pr := PolicyResult{DomainName: p.DomainName, AppName: p.AppName, StreamName: p.StreamName,
		Errors: []policy.FieldError{}, Warnings: p.Warnings}
	if !p.Delete {
		c := p.Config()
		pr.Config = &c
	}
	if policy.IsGlob(p.DomainName) {
		pr.Outcome = Invalid
		pr.Reason = "DomainName " + p.DomainName + " is a pattern: patterns apply only to default policies (LIVEPACK_POLICIES); name one play domain"
		pr.Errors = []policy.FieldError{{Field: "DomainName", Value: p.DomainName, Code: policy.CodeInvalidParams, Rule: "no-pattern", Message: pr.Reason}}
		return pr, nil
	}
	di := s.domain(ctx, p.DomainName)
	if di.err != nil {
		return failed(pr, di.err)
	}
	if di.d.LiveDomainType != playDomain {
		pr.Outcome = Skipped
		pr.Reason = fmt.Sprintf("%s is an ingest domain (%s): packaging is configured on play domains", p.DomainName, di.d.LiveDomainType)
		if di.d.LiveDomainType != ingestDomain {
			pr.Reason = fmt.Sprintf("%s has LiveDomainType %q, not a play domain (%s)", p.DomainName, di.d.LiveDomainType, playDomain)
		}
		return pr, nil
	}
	if err := s.loadConfigs(ctx, p.DomainName, di, false); err != nil {
		return failed(pr, err)
	}
	st := plan(p, di)
	pr.Previous = st.current
	if st.outcome == Unchanged {
		pr.Outcome = Unchanged
		if p.Delete {
			pr.Reason = "no config to delete"
		}
		return pr, nil
	}
	if report {
		pr.Outcome, pr.Drift = Skipped, driftWord(st.outcome)
		pr.Reason = "report mode: enforce would " + pr.Drift + " this config"
		return pr, nil
	}
	return s.change(ctx, p, st, di, pr)
}

// failed reports err on pr; a retryable or misconfiguration cause is also returned, so the
// run is redone.
func failed(pr PolicyResult, err error) (PolicyResult, error) {
	pr.Outcome, pr.Reason, pr.Errors = Failed, reasonFor(err), apiFieldErrors(err)
	if unfinished(err) {
		return pr, err
	}
	return pr, nil
}

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

// unfinished reports whether err leaves the key to be redone by a later delivery rather than
// completed as failed: a retry, or a misconfiguration that succeeds once fixed.
func unfinished(err error) bool {
	c := classify.Of(err)
	return c == classify.Retry || c == classify.Misconfig
}

func reasonFor(err error) string {
	var ae *liveapi.Error
	switch {
	case classify.Of(err) == classify.Misconfig:
		return "livepack is misconfigured (" + classify.RowOf(err) + "): " + err.Error()
	case errors.Is(err, classify.ErrDomainNotReady):
		return err.Error()
	case errors.Is(err, liveapi.ErrNotFound) && errors.As(err, &ae) && strings.HasPrefix(ae.Code, "InvalidDomain"):
		return "domain not found: " + err.Error()
	case errors.Is(err, quota.ErrExhausted):
		return "API quota exhausted before the deadline; retry later"
	}
	return err.Error()
}

// apiFieldErrors names the API's code for an error the API returned.
func apiFieldErrors(err error) []policy.FieldError {
	var ae *liveapi.Error
	if errors.As(err, &ae) && ae.Code != "" {
		return []policy.FieldError{{Index: -1, Code: ae.Code, Message: ae.Message}}
	}
	return []policy.FieldError{}
}

func dedupe(ps []policy.Policy) []policy.Policy {
	seen := map[policy.Target]bool{}
	out := ps[:0:0]
	for _, p := range ps {
		if !seen[p.Target()] {
			seen[p.Target()] = true
			out = append(out, p)
		}
	}
	return out
}

func hashStrings(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}
