package apply

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/livepack/livepack/shared/classify"
	"github.com/livepack/livepack/shared/idempotency"
	"github.com/livepack/livepack/shared/liveapi"
	"github.com/livepack/livepack/shared/notify"
	"github.com/livepack/livepack/shared/policy"
	"github.com/livepack/livepack/shared/quota"
)

// Play and ingest domain types (DescribeLiveDomainDetail's LiveDomainType).
const (
	playDomain   = "liveVideo"
	ingestDomain = "liveEdge"
)

// session is one invocation's view of the API: each domain's detail, configs and online
// streams are read at most once, and the notices it owes are collected.
type session struct {
	e       *Engine
	key     string
	hash    string
	token   string
	lease   *lease
	log     *slog.Logger
	domains map[string]*domainInfo
	// planned are the notices a crashed run had planned (taken over with its lease).
	planned []idempotency.PendingNotice
	// notices are the notices for changes this run made, in order.
	notices []idempotency.PendingNotice
	// uncertain are the notices of writes that failed ambiguously (a timeout or 5xx may come
	// after the API committed): a retry delivers each one whose change it finds in place.
	uncertain []idempotency.PendingNotice
	calls     int
	// notFoundUntil, when set, is the end of the window in which a domain not found is one too
	// new for Describe to show (a domain-created event's time plus NewDomainWindow).
	notFoundUntil time.Time
}

type domainInfo struct {
	d liveapi.Domain
	// detailed: d came from DescribeLiveDomainDetail (DescribeLiveUserDomains has no Scope).
	detailed bool
	err      error
	configs  map[[2]string]liveapi.PackageConfig
	cfgErr   error
	online   []liveapi.Stream
	onErr    error
	onDone   bool
}

// domain looks the domain up once per invocation.
func (s *session) domain(ctx context.Context, name string) *domainInfo {
	if di, ok := s.domains[name]; ok {
		return di
	}
	di := &domainInfo{detailed: true}
	s.calls++
	di.d, di.err = s.e.api.DescribeDomain(ctx, name)
	if di.err == nil && di.d.LiveDomainType == playDomain && di.d.DomainStatus == "configuring" {
		di.err = errConfiguring
	}
	if di.err != nil && !s.notFoundUntil.IsZero() && s.e.now().Before(s.notFoundUntil) && isDomainNotFound(di.err) {
		// The API does not show a domain until minutes after it was added: within that window
		// not found means not yet.
		di.err = fmt.Errorf("%w: %w", classify.ErrDomainNotReady, di.err)
	}
	s.domains[name] = di
	return di
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
	s.calls++
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

func (s *session) onlineStreams(ctx context.Context, name string, di *domainInfo) []liveapi.Stream {
	if !di.onDone {
		s.calls++
		di.online, di.onErr = s.e.api.OnlineStreams(ctx, name)
		di.onDone = true
		if di.onErr != nil {
			s.log.Warn("listing online streams failed; the notice lists none", "domain", name, "err", di.onErr)
		}
	}
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

// applyPolicies plans and (unless report) applies each policy, appending one PolicyResult per
// policy. It returns an error wrapping ErrRetryLater when any policy failed for a reason that a
// later delivery can fix.
func (s *session) applyPolicies(ctx context.Context, res *Result, ps []policy.Policy, report bool) error {
	if !report {
		refused, err := s.wildcardDeletes(ctx, ps)
		if err != nil {
			return notDone([]error{err})
		}
		if refused != nil {
			res.Results = append(res.Results, refused...)
			return nil
		}
	}
	// Wildcard deletes go last: on the API a `*` matches every app or stream, so the specific
	// deletes of the same document must run (and be announced) before it removes them.
	order := make([]int, 0, len(ps))
	for i, p := range ps {
		if !isWildcardDelete(p) {
			order = append(order, i)
		}
	}
	for i, p := range ps {
		if isWildcardDelete(p) {
			order = append(order, i)
		}
	}
	results := make([]PolicyResult, len(ps))
	var retry []error
	done := 0
	for _, i := range order {
		pr, err := s.applyOne(ctx, ps[i], report)
		results[i] = pr
		done++
		if err != nil {
			retry = append(retry, err)
			if errors.Is(err, idempotency.ErrFenced) {
				break // another run holds the key now: this one must not write the API further
			}
		}
	}
	for i, p := range ps {
		if results[i].Outcome == "" { // not reached: the run stopped
			results[i] = PolicyResult{DomainName: p.DomainName, AppName: p.AppName, StreamName: p.StreamName,
				Outcome: Skipped, Errors: []policy.FieldError{}, Reason: "not applied: the run lost its lease to another run"}
		}
	}
	res.Results = append(res.Results, results...)
	return notDone(retry)
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
	fail := func(err error) (PolicyResult, error) {
		pr.Outcome, pr.Reason, pr.Errors = Failed, reasonFor(err), apiFieldErrors(err)
		if unfinished(err) {
			return pr, err
		}
		return pr, nil
	}
	if policy.IsGlob(p.DomainName) {
		pr.Outcome = Failed
		pr.Reason = "DomainName " + p.DomainName + " is a pattern: patterns apply only to default policies (LIVEPACK_POLICIES); name one play domain"
		return pr, nil
	}
	di := s.domain(ctx, p.DomainName)
	if di.err != nil {
		return fail(di.err)
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
		return fail(err)
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
	for attempt := 0; ; attempt++ {
		pn, planned, err := s.recordPlanned(ctx, st, di)
		if err != nil {
			return fail(err) // the key was taken over: no write without the lease
		}
		err = s.write(ctx, st)
		if err == nil {
			break
		}
		// Add meets ConfigAlreadyExists, or Update/Delete a missing config: the state changed
		// between Describe and the write. Read it again and plan once more.
		if attempt == 0 && (errors.Is(err, liveapi.ErrConfigExists) || (st.outcome != Created && errors.Is(err, liveapi.ErrNotFound))) {
			if lerr := s.loadConfigs(ctx, p.DomainName, di, true); lerr != nil {
				return fail(lerr)
			}
			first := st
			st = plan(p, di)
			if st.outcome == Unchanged {
				// The desired state is in place: a concurrent writer made it, or this run's
				// own write landed before an error and the client's retry met it. Streams
				// must restart either way, so the change is reported and notified.
				pr.Outcome, pr.Previous = first.outcome, first.current
				pr.Reason = "the API already showed this config after the write (a retried or concurrent write)"
				s.applied(ctx, first, di)
				return pr, nil
			}
			pr.Previous = st.current
			continue
		}
		if planned && retryable(err) {
			s.uncertain = append(s.uncertain, pn)
		}
		return fail(err)
	}
	pr.Outcome = st.outcome
	s.applied(ctx, st, di)
	return pr, nil
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

func (s *session) write(ctx context.Context, st step) error {
	s.calls++
	p := st.p
	switch st.outcome {
	case Created:
		return s.e.api.AddPackageConfig(ctx, packageConfig(p))
	case Updated:
		return s.e.api.UpdatePackageConfig(ctx, packageConfig(p))
	default:
		return s.e.api.DeletePackageConfig(ctx, p.DomainName, p.AppName, p.StreamName)
	}
}

// change builds the notice for a step.
func (s *session) change(ctx context.Context, st step, di *domainInfo) (notify.Notice, error) {
	if !di.detailed {
		s.calls++
		if d, err := s.e.api.DescribeDomain(ctx, st.p.DomainName); err == nil {
			di.d.Scope = d.Scope
		} else {
			s.log.Warn("reading the domain's scope failed", "domain", st.p.DomainName, "err", err)
		}
		di.detailed = true
	}
	ch := notify.Change{Target: st.p.Target(), Outcome: st.outcome, Previous: st.current,
		At: s.e.now().UTC(), Scope: di.d.Scope}
	if st.outcome != Deleted {
		c := st.p.Config()
		ch.Config = &c
	}
	for _, o := range s.onlineStreams(ctx, st.p.DomainName, di) {
		ch.Online = append(ch.Online, notify.Stream{AppName: o.AppName, StreamName: o.StreamName, PublishURL: o.PublishURL})
	}
	return notify.Build(ch)
}

// recordPlanned writes the notice a step will owe into the key's record before the write, so
// that a run that crashes right after the write still has its notice delivered by the retry.
//
// The error is non-nil only when the lease was lost (idempotency.ErrFenced): the run must not
// write the API any further.
func (s *session) recordPlanned(ctx context.Context, st step, di *domainInfo) (idempotency.PendingNotice, bool, error) {
	if err := s.lease.lost(); err != nil {
		return idempotency.PendingNotice{}, false, err
	}
	n, err := s.change(ctx, st, di)
	if err != nil {
		s.log.Error("building a notice failed", "target", st.p.Target().String(), "err", err)
		return idempotency.PendingNotice{}, false, nil
	}
	pn := idempotency.PendingNotice{ID: n.ID, Event: n.JSON, Sinks: s.e.sinkNames()}
	if err := s.e.store.Plan(ctx, s.key, s.token, pn); err != nil {
		if errors.Is(err, idempotency.ErrFenced) {
			s.lease.cancel(err)
			return idempotency.PendingNotice{}, false, err
		}
		s.log.Warn("recording a planned notice failed", "err", err)
	}
	return pn, true, nil
}

// applied records that a step's write succeeded: its notice is owed.
func (s *session) applied(ctx context.Context, st step, di *domainInfo) {
	n, err := s.change(ctx, st, di)
	if err != nil {
		s.log.Error("building a notice failed", "target", st.p.Target().String(), "err", err)
		return
	}
	s.notices = append(s.notices, idempotency.PendingNotice{ID: n.ID, Event: n.JSON, Sinks: s.e.sinkNames()})
}

// owed returns the notices to deliver: this run's, plus those a crashed run planned whose
// change is now in place (its write happened before the crash). Ids are deterministic per
// change, so a change redone by this run is not notified twice.
func (s *session) owed() []idempotency.PendingNotice {
	var out []idempotency.PendingNotice
	seen := map[string]bool{}
	for _, n := range s.notices {
		if !seen[n.ID] {
			seen[n.ID] = true
			out = append(out, n)
		}
	}
	for _, pn := range s.planned {
		if seen[pn.ID] {
			continue
		}
		if s.inPlace(pn) {
			seen[pn.ID] = true
			out = append(out, pn)
		} else {
			s.log.Info("a planned notice of a crashed run is not owed: its change is not in place", "notice", pn.ID)
		}
	}
	return out
}

// settleUncertain reads again the configs of the domains with ambiguous writes and owes the
// notice of each write whose change is in place. A domain that cannot be read keeps its
// notices owed: an announcement of a change that may not have happened is better than a change
// never announced.
func (s *session) settleUncertain(ctx context.Context) {
	if len(s.uncertain) == 0 {
		return
	}
	read := map[string]bool{}
	for _, pn := range s.uncertain {
		d := noticeDomain(pn)
		if d == "" || read[d] {
			continue
		}
		read[d] = true
		if di, ok := s.domains[d]; ok {
			if err := s.loadConfigs(ctx, d, di, true); err != nil {
				s.log.Warn("checking ambiguous writes failed; their notices stay owed", "domain", d, "err", err)
				di.configs = nil
			}
		}
	}
	for _, pn := range s.uncertain {
		di := s.domains[noticeDomain(pn)]
		if di == nil || di.configs == nil || s.inPlace(pn) {
			s.notices = append(s.notices, pn)
		}
	}
	s.uncertain = nil
}

func noticeDomain(pn idempotency.PendingNotice) string {
	var ev struct {
		Data struct{ DomainName string } `json:"data"`
	}
	_ = json.Unmarshal(pn.Event, &ev)
	return ev.Data.DomainName
}

// carried returns the notices a failed run hands to the retry: those of ambiguous writes and
// those a crashed run planned that this run neither delivered nor found in place.
func (s *session) carried(owed []idempotency.PendingNotice) []idempotency.PendingNotice {
	seen := map[string]bool{}
	for _, n := range owed {
		seen[n.ID] = true
	}
	var out []idempotency.PendingNotice
	for _, pn := range append(append([]idempotency.PendingNotice{}, s.uncertain...), s.planned...) {
		if !seen[pn.ID] {
			seen[pn.ID] = true
			out = append(out, pn)
		}
	}
	return out
}

// inPlace reports whether the API now shows the change a planned notice describes. Only
// domains this run read are checked; the others are not known to have changed.
func (s *session) inPlace(pn idempotency.PendingNotice) bool {
	var ev struct {
		Data struct {
			DomainName, AppName, StreamName string
			Outcome                         string         `json:"outcome"`
			Config                          *policy.Config `json:"config"`
		} `json:"data"`
	}
	if json.Unmarshal(pn.Event, &ev) != nil {
		return false
	}
	d := ev.Data
	di, ok := s.domains[d.DomainName]
	if !ok || di.configs == nil {
		return false
	}
	c, exists := di.configs[[2]string{d.AppName, d.StreamName}]
	if d.Outcome == Deleted {
		return !exists
	}
	return exists && d.Config != nil && configOf(c) == *d.Config
}

// retryable reports whether a later delivery of the same event may succeed (classify.Retry).
func retryable(err error) bool { return classify.Of(err) == classify.Retry }

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
