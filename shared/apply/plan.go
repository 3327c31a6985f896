package apply

import (
	"context"
	"fmt"
	"log/slog"
	"path"
	"slices"
	"sort"
	"time"

	"github.com/livepack/livepack/shared/liveapi"
	"github.com/livepack/livepack/shared/policy"
)

// Plan actions: what applying a policy would do to its target.
const (
	ActionCreate   = "create"
	ActionUpdate   = "update"
	ActionDelete   = "delete"
	ActionNoChange = "no change"
	// ActionSkip: apply would leave the target alone, e.g. on an ingest domain.
	ActionSkip = "skip"
	// ActionFail: apply would fail, e.g. on an unknown domain; Reason says why.
	ActionFail = "fail"
	// ActionInvalid: apply would refuse the policy before any write (a DomainName pattern, a
	// `*` Delete that would remove configs the document keeps); Reason says why.
	ActionInvalid = "invalid"
)

// PlanRow is what applying one policy, or pruning one config, would do.
type PlanRow struct {
	DomainName string `json:"DomainName"`
	AppName    string `json:"AppName"`
	StreamName string `json:"StreamName"`
	Action     string `json:"action"`
	// Current is the config in place (nil when there is none); Desired the one asked for (nil
	// for a delete).
	Current *policy.Config `json:"current"`
	Desired *policy.Config `json:"desired"`
	// Pruned marks the deletion of a config the document does not name (-prune).
	Pruned   bool     `json:"pruned,omitempty"`
	Reason   string   `json:"reason,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
}

// PlanResult is a read-only plan of a policy document.
type PlanResult struct {
	Rows []PlanRow `json:"rows"`
	// Prune are the Delete policies -prune adds: applying the document together with them
	// makes the plan happen.
	Prune []policy.Policy `json:"-"`
}

// Changes counts the rows that would write.
func (p PlanResult) Changes() int {
	n := 0
	for _, r := range p.Rows {
		if r.Action == ActionCreate || r.Action == ActionUpdate || r.Action == ActionDelete {
			n++
		}
	}
	return n
}

// Plan computes what applying policies (validated and normalized) would do, with the engine's
// own planning and without any write or notice: per domain, the domain's detail and its
// configs are read once, the same reads an apply starts with, every domain's alongside the
// others'. With prune, each config of those domains that no policy names is planned for
// deletion.
func Plan(ctx context.Context, api liveapi.API, policies []policy.Policy, prune bool) (PlanResult, error) {
	discard := slog.New(slog.DiscardHandler)
	s := newSession(&Engine{api: api, now: time.Now, log: discard}, "", discard)
	res := PlanResult{Rows: []PlanRow{}}
	var order []string
	for _, p := range policies {
		if !policy.IsGlob(p.DomainName) && !slices.Contains(order, p.DomainName) {
			order = append(order, p.DomainName)
		}
	}
	s.readAll(ctx, order)
	// The guard apply runs first: a document apply would refuse is planned as refused.
	refused, err := s.wildcardDeletes(ctx, policies)
	if err != nil {
		return res, fmt.Errorf("plan: %w", err)
	}
	for _, pr := range refused {
		row := PlanRow{DomainName: pr.DomainName, AppName: pr.AppName, StreamName: pr.StreamName, Action: ActionSkip, Reason: pr.Reason}
		if pr.Outcome == Invalid {
			row.Action = ActionInvalid
		}
		res.Rows = append(res.Rows, row)
	}
	if refused != nil {
		return res, nil
	}
	named := map[policy.Target]bool{}
	for _, p := range policies {
		named[p.Target()] = true
		pr, _ := s.applyOne(ctx, p, true)
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("plan: %w", err)
		}
		row := PlanRow{DomainName: pr.DomainName, AppName: pr.AppName, StreamName: pr.StreamName,
			Current: pr.Previous, Desired: pr.Config, Reason: pr.Reason, Warnings: pr.Warnings}
		switch {
		case pr.Drift != "":
			row.Action, row.Reason = pr.Drift, ""
		case pr.Outcome == Unchanged:
			row.Action = ActionNoChange
		case pr.Outcome == Skipped:
			row.Action = ActionSkip
		case pr.Outcome == Invalid:
			row.Action = ActionInvalid
		default:
			row.Action = ActionFail
		}
		if p.Delete {
			row.Desired = nil
		}
		res.Rows = append(res.Rows, row)
	}
	if !prune {
		return res, nil
	}
	for _, name := range order {
		di, _ := s.lookup(name)
		if di == nil || di.err != nil || di.configs == nil {
			continue // not a play domain, or unreadable: its row already says so
		}
		var extra []liveapi.PackageConfig
		for _, c := range di.configs {
			if !named[policy.Target{DomainName: name, AppName: c.AppName, StreamName: c.StreamName}] {
				extra = append(extra, c)
			}
		}
		sort.Slice(extra, func(i, j int) bool {
			if extra[i].AppName != extra[j].AppName {
				return extra[i].AppName < extra[j].AppName
			}
			return extra[i].StreamName < extra[j].StreamName
		})
		for _, c := range extra {
			cur := configOf(c)
			res.Rows = append(res.Rows, PlanRow{DomainName: name, AppName: c.AppName, StreamName: c.StreamName,
				Action: ActionDelete, Current: &cur, Pruned: true, Reason: "not named by the document (-prune)"})
			res.Prune = append(res.Prune, policy.Policy{DomainName: name, AppName: c.AppName, StreamName: c.StreamName, Delete: true})
		}
	}
	return res, nil
}

// Export reads every package config of the account's play domains whose name matches glob
// ("" or "*" for all) as a policy document that states every setting, so validating it changes
// nothing and planning it shows no change. The document's Domains lists every domain read,
// those without configs included, so pruning by it covers exactly what was exported. Calls:
// the DescribeLiveUserDomains pages, then one DescribeLivePackageConfig per domain (a page per
// 30 configs).
func Export(ctx context.Context, api liveapi.API, glob string) (policy.Document, error) {
	doc := policy.Document{Policies: []policy.Policy{}}
	if glob == "" {
		glob = "*"
	}
	if _, err := path.Match(glob, ""); err != nil {
		return doc, fmt.Errorf("export: domain pattern %q: %w", glob, err)
	}
	domains, err := api.ListDomains(ctx, playDomain, "")
	if err != nil {
		return doc, fmt.Errorf("export: list play domains: %w", err)
	}
	sort.Slice(domains, func(i, j int) bool { return domains[i].DomainName < domains[j].DomainName })
	for _, d := range domains {
		if ok, _ := path.Match(glob, d.DomainName); !ok {
			continue
		}
		doc.Domains = append(doc.Domains, d.DomainName)
		cs, err := api.DescribePackageConfigs(ctx, d.DomainName)
		if err != nil {
			return doc, fmt.Errorf("export: configs of %s: %w", d.DomainName, err)
		}
		sort.Slice(cs, func(i, j int) bool {
			if cs[i].AppName != cs[j].AppName {
				return cs[i].AppName < cs[j].AppName
			}
			return cs[i].StreamName < cs[j].StreamName
		})
		for _, c := range cs {
			doc.Policies = append(doc.Policies, exported(d.DomainName, c))
		}
	}
	return doc, nil
}

// exported states a config as a policy with every setting explicit, PartDuration only where
// the protocol has parts (the API reports 0 for the others, which a policy may not carry).
func exported(domain string, c liveapi.PackageConfig) policy.Policy {
	cfg := configOf(c)
	p := policy.Policy{DomainName: domain, AppName: c.AppName, StreamName: c.StreamName, Protocol: cfg.Protocol,
		SegmentNum: &cfg.SegmentNum, SegmentDuration: &cfg.SegmentDuration, IgnoreTranscode: &cfg.IgnoreTranscode}
	if policy.IsLowLatency(cfg.Protocol) {
		p.PartDuration = &cfg.PartDuration
	}
	return p
}
