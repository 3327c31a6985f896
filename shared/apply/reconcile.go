package apply

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/livepack/livepack/shared/classify"
	"github.com/livepack/livepack/shared/idempotency"
	"github.com/livepack/livepack/shared/notify"
	"github.com/livepack/livepack/shared/policy"
	"github.com/livepack/livepack/shared/quota"
)

// Reconcile modes.
const (
	// Report lists drift and sends one summary notice; it writes nothing.
	Report = "report"
	// Enforce applies the differences, with one notice per change.
	Enforce = "enforce"
)

// reserve is the time a reconcile keeps in hand before its deadline to record and answer.
const reserve = 3 * time.Second

// Reconcile walks every online play domain, expands the policies' DomainName globs over them,
// plans every domain and, in enforce mode, applies the differences. policies nil means the
// default policies. It stops before the deadline, saying how far it got.
//
// Calls: the DescribeLiveUserDomains pages, then per domain one DescribeLiveDomainDetail and
// the DescribeLivePackageConfig pages, and per changed domain one online-stream listing plus
// one write per change.
func (e *Engine) Reconcile(ctx context.Context, trigger, key, mode string, policies []policy.Policy) (Result, error) {
	ctx = quota.WithLane(ctx, quota.Scheduled) // the quota goes to interactive triggers first
	if policies == nil {
		policies = e.defaults
	}
	if mode != Enforce {
		mode = Report
	}
	hb, _ := json.Marshal(policies)
	hash := hashStrings("reconcile", mode, string(hb))
	// The mode is part of the record's key: a report and an enforce schedule of the same minute
	// are two runs, not one key reused with another payload.
	return e.run(ctx, trigger, key, trigger+":"+mode+":"+key, hash, func(ctx context.Context, s *session) (Result, error) {
		res := Result{Trigger: trigger, Key: key, Results: []PolicyResult{}}
		sum := &ReconcileSummary{Mode: mode}
		res.Reconcile = sum
		s.calls++
		domains, err := e.api.ListDomains(ctx, playDomain, "online")
		if err != nil {
			sum.Note = "listing domains failed: " + err.Error()
			sum.Calls = s.calls
			if unfinished(err) {
				return res, notDone([]error{fmt.Errorf("list domains: %w", err)})
			}
			return res, nil
		}
		sort.Slice(domains, func(i, j int) bool { return domains[i].DomainName < domains[j].DomainName })
		sum.Domains = len(domains)
		var retryErr error
		for _, d := range domains {
			if dl, ok := ctx.Deadline(); ok && time.Until(dl) < reserve {
				sum.Note = fmt.Sprintf("stopped before the deadline after %d of %d domains; the next run continues", sum.Checked, sum.Domains)
				break
			}
			var ps []policy.Policy
			for _, p := range policies {
				if p.MatchesDomain(d.DomainName) {
					p.DomainName = d.DomainName
					ps = append(ps, p)
				}
			}
			sum.Checked++
			if _, ok := s.domains[d.DomainName]; !ok {
				s.domains[d.DomainName] = &domainInfo{d: d}
			}
			if len(ps) == 0 {
				continue
			}
			if err := s.applyPolicies(ctx, &res, dedupe(ps), mode == Report); err != nil && retryErr == nil {
				retryErr = err
			}
		}
		sum.Complete = sum.Checked == sum.Domains && sum.Note == ""
		for _, r := range res.Results {
			if r.Drift != "" || r.Outcome == Created || r.Outcome == Updated || r.Outcome == Deleted {
				sum.Drift++
			}
		}
		sum.Calls = s.calls
		if mode == Report && sum.Drift > 0 {
			s.summary(res)
		}
		// A reconcile is level-based: the next scheduled run repairs what this one could not,
		// so a retryable failure is reported, not retried.
		if retryErr != nil {
			if classify.Of(retryErr) == classify.Misconfig {
				return res, retryErr // a wrong key or permission fails loudly, every run
			}
			sum.Note = joinNote(sum.Note, "some policies failed and will be retried by the next run")
		}
		return res, nil
	})
}

func joinNote(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// summary adds the report's one summary notice to the notices owed.
func (s *session) summary(res Result) {
	var drift []notify.Drift
	for _, r := range res.Results {
		if r.Drift == "" {
			continue
		}
		drift = append(drift, notify.Drift{Target: policy.Target{DomainName: r.DomainName, AppName: r.AppName, StreamName: r.StreamName},
			Change: r.Drift, Current: r.Previous, Desired: r.Config})
	}
	n, err := notify.Summary(s.key, s.e.now().UTC(), drift)
	if err != nil {
		s.log.Error("building the reconcile summary failed", "err", err)
		return
	}
	s.notices = append(s.notices, idempotency.PendingNotice{ID: n.ID, Event: n.JSON, Sinks: s.e.sinkNames()})
}
