package apply

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/livepack/livepack/shared/classify"
	"github.com/livepack/livepack/shared/liveapi"
	"github.com/livepack/livepack/shared/policy"
	"github.com/livepack/livepack/shared/quota"
)

// Applying a set of policies: what each needs (plan), in which order (writeOrder), the
// wildcard guard, domains alongside each other, and each policy's outcome.

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
