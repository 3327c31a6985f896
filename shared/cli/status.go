package cli

import (
	"context"
	"flag"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/livepack/livepack/shared/host"
	"github.com/livepack/livepack/shared/outbox"
	"github.com/livepack/livepack/shared/policy"
	"github.com/livepack/livepack/shared/restart"
)

// init lists status before help and version (cli.go's init, which builds the table, runs
// first: files initialize in name order).
func init() {
	i := len(commands)
	for j, c := range commands {
		if c == helpCommand {
			i = j
			break
		}
	}
	commands = append(commands[:i], append([]*command{statusCommand}, commands[i:]...)...)
}

var statusCommand = &command{
	name:    "status",
	usage:   "[-domain GLOB] [-o text|json]",
	summary: "show each target's config, its last change and notice, and which streams have restarted their ingest since",
	about: `A packaging change applies only to streams pushed after it: its notice names the online streams
whose ingest must restart. status shows, per target with a change kept in the state store
(LIVEPACK_STATE, 9 days), the config it put in place, the change (id, time, and whether its
notice was delivered to each sink or is still owed), and each stream of its restart list:
restarted (when its new ingest began), awaiting restart (since the change) or offline.
It first refreshes the changes still awaiting a stream, as the schedule does: one
DescribeLiveStreamsOnlineList call (OnlyStream=yes, StreamType=raw, 3,000 to a page) per domain
page, none for a domain with nothing open. Where LIVEPACK_PLAY_AUTH_KEY or LIVEPACK_PLAYBACK_BASE
is set, a stream counts as restarted only once its manifest shows the new packaging, and the
probe's verdict is shown (at most LIVEPACK_PROBE probes). A stream awaiting longer than
LIVEPACK_RESTART_GRACE is overdue: its change's one restart-overdue reminder is owed, and sent.
-domain limits the targets to domains matching GLOB.`,
	exits: `0 the status was read and refreshed
1 a call failed (a domain's online list, a probe's configs) or the state store could not be read
2 usage or configuration error`,
	example: `$ livepack status -domain 'play.*'
$ livepack status -o json | jq '.summary.awaiting'`,
	logs: true,
	setup: func(fs *flag.FlagSet, sio IO) runner {
		domain := fs.String("domain", "", "only targets of domains matching `GLOB` (e.g. 'play.*')")
		format := formatFlag(fs)
		return func(ctx context.Context, _ []string) int {
			out, err := newOutput(*format, sio)
			if err != nil {
				failf(sio, "status", "%v", err)
				return ExitUsage
			}
			w, code := setup(ctx, "status", sio, host.Options{})
			if code != ExitOK {
				return code
			}
			defer w.Close()
			e := w.Handler.Engine(w.log)
			changes, sum, err := e.Status(ctx, w.Handler.Restart, strings.ToLower(*domain), false)
			if err != nil {
				failf(sio, "status", "%s", message(err))
				return ExitFailed
			}
			doc := statusJSON{Targets: make([]targetStatus, 0, len(changes)), Summary: sum}
			for _, ch := range changes {
				doc.Targets = append(doc.Targets, newTargetStatus(ch, e.NoticeStates(ctx, ch)))
			}
			sort.Slice(doc.Targets, func(i, j int) bool { return doc.Targets[i].name() < doc.Targets[j].name() })
			printStatus(out, doc, time.Now())
			for _, f := range sum.Failed {
				failf(sio, "status", "%s", f)
			}
			if len(sum.Failed) > 0 {
				return ExitFailed
			}
			return ExitOK
		}
	},
}

// statusJSON is status's JSON output.
type statusJSON struct {
	Targets []targetStatus  `json:"targets"`
	Summary restart.Summary `json:"summary"`
}

// targetStatus is one target: its config, its last change and its restart tracking.
type targetStatus struct {
	DomainName string         `json:"DomainName"`
	AppName    string         `json:"AppName"`
	StreamName string         `json:"StreamName"`
	Config     *policy.Config `json:"config"`
	Change     changeStatus   `json:"change"`
	// Tracking is open while a stream awaits its restart, done when none does, none when the
	// change named no online stream.
	Tracking string               `json:"tracking"`
	Streams  []outbox.StreamTrack `json:"streams"`
	Reminder *reminderStatus      `json:"reminder,omitempty"`
}

func (t targetStatus) name() string { return t.DomainName + "/" + t.AppName + "/" + t.StreamName }

type changeStatus struct {
	ID          string    `json:"id"`
	Outcome     string    `json:"outcome"`
	CommittedAt time.Time `json:"committedAt"`
	// Notice is the notice's state at each sink: delivered, pending (owed) or failed.
	Notice     map[string]string  `json:"notice"`
	Supersedes *outbox.Superseded `json:"supersedes,omitempty"`
}

type reminderStatus struct {
	ID      string    `json:"id"`
	At      time.Time `json:"at"`
	Streams int       `json:"streams"`
	Queued  bool      `json:"queued"`
}

func newTargetStatus(ch outbox.Change, notice map[string]string) targetStatus {
	tr := ch.Track()
	t := targetStatus{DomainName: ch.Target.DomainName, AppName: ch.Target.AppName, StreamName: ch.Target.StreamName, Config: ch.Config,
		Change:  changeStatus{ID: ch.ID, Outcome: ch.Outcome, CommittedAt: ch.CommittedAt, Notice: notice, Supersedes: ch.Supersedes},
		Streams: tr.Streams, Tracking: "none"}
	if t.Change.Notice == nil {
		t.Change.Notice = map[string]string{}
	}
	switch {
	case tr.Count(outbox.Awaiting) > 0:
		t.Tracking = "open"
	case len(tr.Streams) > 0:
		t.Tracking = "done"
	}
	if r := tr.Reminder; r != nil {
		t.Reminder = &reminderStatus{ID: r.ID, At: r.At, Streams: len(r.Streams), Queued: r.Queued}
	}
	return t
}

func printStatus(o output, doc statusJSON, now time.Time) {
	if o.json {
		o.printJSON(doc)
		return
	}
	if len(doc.Targets) == 0 {
		o.printf("No change is kept in the state store for these targets (changes are kept 9 days).\n")
		return
	}
	for i, t := range doc.Targets {
		if i > 0 {
			o.printf("\n")
		}
		o.printf("%s  %s\n", o.paint(styleBold, target(t.DomainName, t.AppName, t.StreamName)), describeConfig(t.Config))
		o.printf("  change %s %s at %s; notice %s\n", t.Change.ID, o.paint(outcomeStyle(t.Change.Outcome), t.Change.Outcome),
			t.Change.CommittedAt.UTC().Format(time.RFC3339), noticeWords(o, t.Change.Notice))
		if s := t.Change.Supersedes; s != nil && s.Awaiting > 0 {
			o.printf("  it superseded change %s, which still awaited %d stream(s)\n", s.ID, s.Awaiting)
		}
		if len(t.Streams) == 0 {
			o.printf("  no stream was online at the change: nothing to restart\n")
			continue
		}
		rows := make([][]cell, 0, len(t.Streams))
		for _, s := range t.Streams {
			var when string
			style := styleNone
			switch s.State {
			case outbox.Restarted:
				when, style = "at "+s.At.UTC().Format(time.RFC3339), styleGreen
			case outbox.Awaiting:
				when, style = "since "+s.Since.UTC().Format(time.RFC3339)+" ("+now.Sub(s.Since).Round(time.Second).String()+")", styleYellow
			case outbox.Offline:
				when, style = "seen offline at "+s.At.UTC().Format(time.RFC3339), styleDim
			}
			state := s.State
			if state == outbox.Awaiting {
				state = "awaiting restart"
			}
			rows = append(rows, []cell{{state, style}, {s.AppName + "/" + s.StreamName, styleNone}, {when, styleNone}})
			if p := s.Probe; p != nil {
				verdict := "playback matches " + orWord(p.Protocol, "plain HLS")
				if !p.Match {
					verdict = "playback does not match " + orWord(p.Protocol, "plain HLS") + ": " + strings.Join(p.Failed, "; ")
				}
				rows = append(rows, []cell{{"    probe " + p.At.UTC().Format(time.RFC3339) + ": " + verdict, styleDim}})
			}
		}
		o.table("  ", nil, rows)
		if r := t.Reminder; r != nil {
			state := "queued"
			if !r.Queued {
				state = "decided, not yet queued"
			}
			o.printf("  restart-overdue reminder %s at %s for %d stream(s): %s\n", r.ID, r.At.UTC().Format(time.RFC3339), r.Streams, state)
		}
	}
	s := doc.Summary
	o.printf("\nStreams: %d restarted, %d awaiting restart (%d overdue), %d offline; %d online-list call(s).\n",
		s.Restarted, s.Awaiting, s.Overdue, s.Offline, s.Calls)
}

func orWord(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// describeConfig says a config in a few words.
func describeConfig(c *policy.Config) string {
	if c == nil {
		return "no config (deleted)"
	}
	s := fmt.Sprintf("%s, %d segments of %d s", c.Protocol, c.SegmentNum, c.SegmentDuration)
	if c.PartDuration > 0 {
		s += fmt.Sprintf(", parts of %d ms", c.PartDuration)
	}
	return s
}

// noticeWords says where a notice went: each sink's state, or that no sink is configured.
func noticeWords(o output, states map[string]string) string {
	if len(states) == 0 {
		return "owed to no sink (LIVEPACK_NOTIFY unset: the result carried it)"
	}
	sinks := make([]string, 0, len(states))
	for s := range states {
		sinks = append(sinks, s)
	}
	sort.Strings(sinks)
	parts := make([]string, 0, len(sinks))
	for _, s := range sinks {
		st := states[s]
		word := outbox.State(st)
		if word == outbox.Pending {
			st = "owed" + strings.TrimPrefix(st, outbox.Pending)
		}
		parts = append(parts, s+" "+o.paint(outcomeStyle(word), st))
	}
	return strings.Join(parts, ", ")
}
