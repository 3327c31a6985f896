// Package restart tracks a packaging change from its restart-ingest notice to a confirmed
// restart, stream by stream (DESIGN §8, §10). Each stream of a committed change's restart list
// awaits until it publishes again after the commit (its PublishTime, the ingest's start, at or
// after the commit's second: the API's one-second resolution, and the write took effect before
// the commit was recorded), goes offline, or a newer change of the target supersedes the change.
//
// Refresh reads what is needed and nothing more: the change records with a stream still
// awaiting, then per domain of theirs the online list (DescribeLiveStreamsOnlineList with
// OnlyStream=yes, StreamType=raw, pages of 3,000: one call per domain page, from that action's
// own budget, in the caller's lane). A domain with nothing open costs no call. Where a play auth
// key or a playback base is configured, a stream counts as restarted only once its manifest
// shows the change's packaging (shared/probe), at most ProbeLimit probes per refresh; a stream
// published after the commit whose manifest still differs is drift. A stream that still awaits
// Grace after the commit gets the change's one restart-overdue reminder, through the outbox.
package restart

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/livepack/livepack/shared/liveapi"
	"github.com/livepack/livepack/shared/notify"
	"github.com/livepack/livepack/shared/outbox"
	"github.com/livepack/livepack/shared/policy"
	"github.com/livepack/livepack/shared/probe"
	"github.com/livepack/livepack/shared/quota"
)

// DefaultGrace is LIVEPACK_RESTART_GRACE's default: how long a stream may await its restart
// before the change's reminder.
const DefaultGrace = 30 * time.Minute

// API is what a refresh reads: the light online list, and (when probing) the configs in force.
type API interface {
	OnlinePage(ctx context.Context, domain string, pageNum int) (liveapi.OnlinePage, error)
	DescribePackageConfigs(ctx context.Context, domain string) ([]liveapi.PackageConfig, error)
}

// Prober checks a stream's manifests against a config (*probe.Prober).
type Prober interface {
	Check(ctx context.Context, t probe.Target, cfg *policy.Config) (probe.Verdict, error)
}

// Settings are a deployment's tracking settings.
type Settings struct {
	// Grace is LIVEPACK_RESTART_GRACE (0: DefaultGrace).
	Grace time.Duration
	// Prober, when set (a play auth key or a playback base is configured), confirms restarts
	// by the manifests; ProbeLimit bounds the probes of one refresh (LIVEPACK_PROBE).
	Prober     Prober
	ProbeLimit int
}

// Options configure a Refresh.
type Options struct {
	Settings
	Box *outbox.Outbox
	API API
	// Domain, when set, is a glob: only targets of matching domains are read and refreshed.
	Domain string
	// Holder names the run, for the reminders' delivery claims.
	Holder string
	// NoRefresh reads the records only (no API call, no write).
	NoRefresh bool
	Now       func() time.Time
	Log       *slog.Logger
}

// Summary is what a refresh found: the counts a reconcile result, the metrics and `livepack
// status` carry.
type Summary struct {
	// Changes counts the changes whose tracking was open when the refresh began; Open those
	// still open after it, Done those whose tracking ended in it, Superseded those a newer
	// change replaced meanwhile.
	Changes    int `json:"changes"`
	Open       int `json:"open"`
	Done       int `json:"done"`
	Superseded int `json:"superseded"`
	// Streams of the changes read (those kept, 9 days) by state, and those awaiting past the
	// grace (Overdue).
	Awaiting  int `json:"awaiting"`
	Restarted int `json:"restarted"`
	Offline   int `json:"offline"`
	Overdue   int `json:"overdue"`
	// OldestAwaitingSince is when the longest-waiting stream began awaiting its restart.
	OldestAwaitingSince *time.Time `json:"oldestAwaitingSince,omitempty"`
	// Domains counts the domains read, Calls the online-list calls made.
	Domains int `json:"domains"`
	Calls   int `json:"calls"`
	// Reminders counts the restart-overdue reminders this refresh owed.
	Reminders int `json:"reminders"`
	// Probed counts manifests probed; Drift lists streams published after their change whose
	// manifests still differ from it.
	Probed int     `json:"probed"`
	Drift  []Drift `json:"drift,omitempty"`
	// Failed lists what could not be read (a domain's listing, a store write), one line each.
	Failed []string `json:"failed,omitempty"`
}

// Drift is a stream that restarted after its change yet plays another packaging.
type Drift struct {
	Target   policy.Target `json:"target"`
	Change   string        `json:"change"`
	Protocol string        `json:"Protocol"`
	Failed   []string      `json:"failed"`
}

// OldestWait is how long the longest-waiting stream has awaited its restart at now (0: none).
func (s *Summary) OldestWait(now time.Time) time.Duration {
	if s == nil || s.OldestAwaitingSince == nil {
		return 0
	}
	return max(0, now.Sub(*s.OldestAwaitingSince))
}

// Refresh reads every kept change of the matching targets, refreshes the open ones and returns
// them all (as stored after the refresh) with the summary. Its error is a failure to read the
// change records; what failed per domain is in Summary.Failed.
func Refresh(ctx context.Context, o Options) ([]outbox.Change, Summary, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Grace <= 0 {
		o.Grace = DefaultGrace
	}
	sum := Summary{}
	var all []outbox.Change
	after := ""
	for {
		page, next, err := o.Box.Changes(ctx, after)
		if err != nil {
			return all, sum, err
		}
		for _, ch := range page {
			if o.Domain == "" || matchDomain(o.Domain, ch.Target.DomainName) {
				all = append(all, ch)
			}
		}
		if next == "" {
			break
		}
		after = next
	}
	r := &refresher{o: o, sum: &sum, configs: map[string]map[[2]string]liveapi.PackageConfig{}}
	byDomain := map[string][]int{}
	for i, ch := range all {
		if ch.Open() {
			sum.Changes++
			d := strings.ToLower(ch.Target.DomainName)
			byDomain[d] = append(byDomain[d], i)
		}
	}
	domains := make([]string, 0, len(byDomain))
	for d := range byDomain {
		domains = append(domains, d)
	}
	sort.Strings(domains)
	stopped := ""
	for _, d := range domains {
		if o.NoRefresh {
			break
		}
		if stopped != "" {
			sum.Failed = append(sum.Failed, d+": not read: "+stopped)
			continue
		}
		online, err := r.online(ctx, d)
		if err != nil {
			sum.Failed = append(sum.Failed, d+": listing online streams: "+err.Error())
			o.Log.Warn("restart tracking: listing online streams failed; the domain's changes stay as they were", "domain", d, "err", err)
			if halts(err) {
				stopped = "the quota or the deadline stopped the refresh"
			}
			continue
		}
		for _, i := range byDomain[d] {
			all[i] = r.change(ctx, all[i], online)
		}
	}
	// Count what the changes read stand at after the refresh (a superseded one's tracking
	// ended: its streams are the newer change's to count).
	for _, ch := range all {
		if r.superseded[ch.ID] {
			continue
		}
		tr := ch.Track()
		if tr.Count(outbox.Awaiting) > 0 {
			sum.Open++
		} else if r.seen[ch.ID] {
			sum.Done++
		}
		for _, s := range tr.Streams {
			switch s.State {
			case outbox.Awaiting:
				sum.Awaiting++
				if o.Now().Sub(s.Since) >= o.Grace {
					sum.Overdue++
				}
				if sum.OldestAwaitingSince == nil || s.Since.Before(*sum.OldestAwaitingSince) {
					since := s.Since.UTC()
					sum.OldestAwaitingSince = &since
				}
			case outbox.Restarted:
				sum.Restarted++
			case outbox.Offline:
				sum.Offline++
			}
		}
	}
	return all, sum, nil
}

// refresher is one refresh's state.
type refresher struct {
	o          Options
	sum        *Summary
	configs    map[string]map[[2]string]liveapi.PackageConfig
	seen       map[string]bool
	superseded map[string]bool
}

// halts reports errors after which reading more domains now is pointless.
func halts(err error) bool {
	return errors.Is(err, quota.ErrExhausted) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// online reads every page of a domain's online raw streams: app/stream → PublishTime.
func (r *refresher) online(ctx context.Context, domain string) (map[[2]string]time.Time, error) {
	r.sum.Domains++
	out := map[[2]string]time.Time{}
	seen := 0
	for page := 1; ; page++ {
		r.sum.Calls++
		p, err := r.o.API.OnlinePage(ctx, domain, page)
		if err != nil {
			return nil, err
		}
		for _, s := range p.Streams {
			at, err := time.Parse(time.RFC3339, s.PublishTime)
			if err != nil {
				at = time.Time{} // unreadable: online, never taken for a restart
			}
			out[[2]string{s.AppName, s.StreamName}] = at
		}
		seen += len(p.Streams)
		if len(p.Streams) == 0 || page >= p.Pages || seen >= p.Total {
			return out, nil
		}
	}
}

// Published reports whether an ingest that began at publish (the API's PublishTime, at
// one-second resolution) started after a change committed at committed: at or after the
// commit's second, since the write took effect before the commit was recorded and the API
// drops the fraction.
func Published(publish, committed time.Time) bool {
	return !publish.IsZero() && !publish.Before(committed.UTC().Truncate(time.Second))
}

// change refreshes one open change from its domain's online streams and records the result by
// compare-and-set; it returns the record as it stands.
func (r *refresher) change(ctx context.Context, ch outbox.Change, online map[[2]string]time.Time) outbox.Change {
	if r.seen == nil {
		r.seen, r.superseded = map[string]bool{}, map[string]bool{}
	}
	r.seen[ch.ID] = true
	now := r.o.Now().UTC()
	// Decide each awaiting stream from the listing (and the probe) before writing, so the
	// compare-and-set below only folds decisions into the record.
	type decision struct {
		state string
		at    time.Time
		probe *outbox.ProbeNote
	}
	decided := map[string]decision{}
	for _, s := range ch.Track().Streams {
		if s.State != outbox.Awaiting {
			continue
		}
		pub, ok := online[[2]string{s.AppName, s.StreamName}]
		switch {
		case !ok:
			decided[s.Name()] = decision{state: outbox.Offline, at: now}
		case !Published(pub, ch.CommittedAt):
			// Still the ingest from before the change (or one started before the commit).
		case r.o.Prober == nil:
			decided[s.Name()] = decision{state: outbox.Restarted, at: pub}
		default:
			note, ok := r.probe(ctx, ch, s, pub)
			if !ok {
				continue // not probed this time: it stays awaiting until a refresh can
			}
			d := decision{state: outbox.Awaiting, probe: note}
			if note.Match {
				d.state, d.at = outbox.Restarted, pub
			}
			decided[s.Name()] = d
		}
	}
	got, err := r.o.Box.UpdateTracking(ctx, ch.Target, ch.ID, func(_ *outbox.Change, tr *outbox.Tracking) bool {
		for i, s := range tr.Streams {
			d, ok := decided[s.Name()]
			if !ok || s.State != outbox.Awaiting {
				continue
			}
			tr.Streams[i].State, tr.Streams[i].At = d.state, d.at
			if d.probe != nil {
				tr.Streams[i].Probe = d.probe
			}
		}
		tr.CheckedAt = now
		if tr.Count(outbox.Awaiting) == 0 && tr.DoneAt.IsZero() {
			tr.DoneAt = now
		}
		return true
	})
	if errors.Is(err, outbox.ErrSuperseded) {
		r.superseded[ch.ID] = true
		r.sum.Superseded++
		r.o.Log.Info("restart tracking: the change was superseded by a newer one of its target", "change", ch.ID, "target", ch.Target.String())
		return ch
	}
	if err != nil {
		r.sum.Failed = append(r.sum.Failed, ch.Target.String()+": recording its tracking: "+err.Error())
		r.o.Log.Warn("restart tracking: recording failed; the next refresh decides again", "change", ch.ID, "err", err)
		return ch
	}
	return r.remind(ctx, got, now)
}

// probe checks one stream that published after its change against the config in force for it
// (read once per domain); ok is false when the refresh's probes are spent or the configs could
// not be read.
func (r *refresher) probe(ctx context.Context, ch outbox.Change, s outbox.StreamTrack, pub time.Time) (*outbox.ProbeNote, bool) {
	if r.sum.Probed >= r.o.ProbeLimit {
		return nil, false
	}
	domain := strings.ToLower(ch.Target.DomainName)
	cs, ok := r.configs[domain]
	if !ok {
		list, err := r.o.API.DescribePackageConfigs(ctx, ch.Target.DomainName)
		if err != nil {
			r.sum.Failed = append(r.sum.Failed, domain+": reading its configs for the probe: "+err.Error())
			r.configs[domain] = nil
			return nil, false
		}
		cs = map[[2]string]liveapi.PackageConfig{}
		for _, c := range list {
			cs[[2]string{c.AppName, c.StreamName}] = c
		}
		r.configs[domain] = cs
	}
	if cs == nil {
		return nil, false
	}
	list := make([]liveapi.PackageConfig, 0, len(cs))
	for _, c := range cs {
		list = append(list, c)
	}
	var expect *policy.Config
	if c, ok := probe.InForce(list, s.AppName, s.StreamName); ok {
		expect = &c
	}
	r.sum.Probed++
	v, err := r.o.Prober.Check(ctx, probe.Target{DomainName: ch.Target.DomainName, AppName: s.AppName, StreamName: s.StreamName, PublishTime: pub}, expect)
	if err != nil {
		r.sum.Failed = append(r.sum.Failed, ch.Target.DomainName+"/"+s.Name()+": probe: "+err.Error())
		return nil, false
	}
	note := &outbox.ProbeNote{At: r.o.Now().UTC(), Match: v.Match, Unreachable: v.Unreachable, Protocol: v.Protocol}
	for _, c := range v.Failed() {
		note.Failed = append(note.Failed, fmt.Sprintf("%s %s: expected %s, found %s", c.Manifest, c.Name, c.Expected, c.Found))
	}
	if !v.Match {
		r.sum.Drift = append(r.sum.Drift, Drift{Target: policy.Target{DomainName: ch.Target.DomainName, AppName: s.AppName, StreamName: s.StreamName},
			Change: ch.ID, Protocol: v.Protocol, Failed: note.Failed})
		r.o.Log.Warn("restart tracking: a stream published after its change plays another packaging", "change", ch.ID,
			"stream", ch.Target.DomainName+"/"+s.Name(), "failed", len(note.Failed))
	}
	return note, true
}

// remind owes the change's reminder once a stream has awaited past the grace.
func (r *refresher) remind(ctx context.Context, ch outbox.Change, now time.Time) outbox.Change {
	tr := ch.Track()
	if tr.Reminder != nil && tr.Reminder.Queued {
		return ch
	}
	overdue := false
	for _, s := range tr.Streams {
		if s.State == outbox.Awaiting && now.Sub(s.Since) >= r.o.Grace {
			overdue = true
		}
	}
	if !overdue && tr.Reminder == nil {
		return ch
	}
	got, keys, decided, err := r.o.Box.Remind(ctx, ch.Target, ch.ID, func(ch outbox.Change, tr outbox.Tracking) (*outbox.Reminder, error) {
		var streams []outbox.StreamTrack
		var list []notify.OverdueStream
		for _, s := range tr.Streams {
			if s.State == outbox.Awaiting && now.Sub(s.Since) >= r.o.Grace {
				streams = append(streams, s)
				list = append(list, notify.OverdueStream{AppName: s.AppName, StreamName: s.StreamName, Since: s.Since.UTC()})
			}
		}
		if len(list) == 0 {
			return nil, nil
		}
		n, err := notify.Overdue(ch.ID, ch.Target, ch.CommittedAt, ch.Config, list, now)
		if err != nil {
			return nil, err
		}
		return &outbox.Reminder{ID: n.ID, At: now, Streams: streams, Notice: n.JSON}, nil
	})
	if errors.Is(err, outbox.ErrSuperseded) {
		return ch
	}
	if err != nil {
		r.sum.Failed = append(r.sum.Failed, ch.Target.String()+": restart-overdue reminder: "+err.Error())
		r.o.Log.Warn("restart tracking: owing the reminder failed; the next refresh owes it", "change", ch.ID, "err", err)
		return ch
	}
	if decided {
		r.sum.Reminders++
		r.o.Log.Warn("streams still await the ingest restart a change asked for: reminder owed", "change", ch.ID,
			"target", ch.Target.String(), "streams", len(got.Tracking.Reminder.Streams))
	}
	if len(keys) > 0 {
		// Sent now, so the reminder does not wait for the next relay; what fails stays owed.
		r.o.Box.Deliver(ctx, keys, r.o.Holder)
	}
	return got
}

// matchDomain matches a domain against a -domain glob, case-insensitively.
func matchDomain(glob, domain string) bool {
	ok, err := path.Match(strings.ToLower(glob), strings.ToLower(domain))
	return err == nil && ok
}
