package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/livepack/livepack/shared/apply"
	"github.com/livepack/livepack/shared/notify"
	"github.com/livepack/livepack/shared/policy"
)

// printInvocation prints a result in a few lines: a heading (HTTP status, trigger, key, calls),
// one line per policy and one per notice. body is a webhook answer that carries no result
// document (a 401, say), printed as its message.
func printInvocation(o output, res *apply.Result, status int, body []byte, inv invocation) {
	var head []string
	if status != 0 {
		st := fmt.Sprintf("HTTP %d %s", status, http.StatusText(status))
		style := styleGreen
		if status != http.StatusOK {
			style = styleRed
		}
		head = append(head, o.paint(style, st))
	}
	if res != nil {
		head = append(head, "trigger "+res.Trigger)
		if res.Key != "" {
			head = append(head, "key "+short(res.Key, 20))
		}
		if res.Replayed {
			head = append(head, o.paint(styleYellow, "replayed: the stored result, no call made"))
		}
	}
	head = append(head, plural(int(inv.calls), "Live API call"))
	o.printf("%s\n", strings.Join(head, "  "))
	if res == nil {
		msg := strings.TrimSpace(string(body))
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		if msg != "" {
			o.printf("  %s\n", msg)
		}
		return
	}
	if res.Note != "" {
		o.printf("  %s\n", res.Note)
	}
	if rc := res.Reconcile; rc != nil {
		o.printf("  reconcile %s: %d of %d play domains checked, %d drift, %s\n", rc.Mode, rc.Checked, rc.Domains, rc.Drift,
			map[bool]string{true: "pass complete", false: "pass incomplete"}[rc.Complete])
		if rc.Note != "" {
			o.printf("  %s\n", rc.Note)
		}
	}
	if rs := res.Restart; rs != nil && (rs.Changes > 0 || rs.Reminders > 0 || len(rs.Failed) > 0) {
		o.printf("  restart tracking: %d stream(s) awaiting restart (%d overdue), %d restarted, %d offline; %d reminder(s) owed, %d online-list call(s)\n",
			rs.Awaiting, rs.Overdue, rs.Restarted, rs.Offline, rs.Reminders, rs.Calls)
	}
	for _, fe := range res.Errors {
		o.printf("  %s  %s\n", o.paint(styleRed, "error"), fe.Message)
	}
	rows := make([][]cell, 0, len(res.Results))
	for _, r := range res.Results {
		rows = append(rows, []cell{{r.Outcome, outcomeStyle(r.Outcome)}, {target(r.DomainName, r.AppName, r.StreamName), styleNone},
			{resultDetail(r), styleNone}})
	}
	var header []string
	if o.headers {
		header = []string{"OUTCOME", "TARGET", "CHANGE"}
	}
	if len(rows) > 0 {
		o.table("  ", header, rows)
	}
	if rc := res.Reconcile; rc != nil && rc.Truncated > 0 {
		o.printf("  … and %d more (the result lists at most %d; the outcomes above count every config)\n", rc.Truncated, len(res.Results))
	}
	for _, n := range res.Notices {
		if res.Replayed {
			o.printf("  %s %s: sent by the run being replayed, not sent again\n", o.paint(styleBold, "notice"), short(n.ID, 12))
			continue
		}
		o.printf("  %s %s\n", o.paint(styleBold, "notice"), noticeLine(o, n, inv.notices[n.ID]))
	}
}

// resultDetail says in one line what happened to a policy and why.
func resultDetail(r apply.PolicyResult) string {
	var d string
	switch r.Outcome {
	case apply.Created:
		d = configSummary(r.Config)
	case apply.Updated:
		d = diffText(r.Previous, r.Config)
	case apply.Deleted:
		d = "was " + configSummary(r.Previous)
	case apply.Unchanged:
		d = configSummary(r.Config)
		if r.Reason != "" {
			d = r.Reason
		}
	case apply.Invalid:
		msgs := make([]string, len(r.Errors))
		for i, fe := range r.Errors {
			msgs[i] = fe.Message
			if len(r.Errors) > 1 {
				// One line per policy: what is wrong with each field; `livepack validate`
				// spells out what each accepts.
				msgs[i], _, _ = strings.Cut(fe.Message, "; accepted: ")
			}
		}
		d = strings.Join(msgs, "; ")
	case apply.Skipped:
		d = r.Reason
		if r.Drift != "" {
			d = "drift: would " + r.Drift
			switch r.Drift {
			case "update":
				d += ": " + diffText(r.Previous, r.Config)
			case "create":
				d += ": " + configSummary(r.Config)
			}
		}
	default:
		d = r.Reason
	}
	for _, w := range r.Warnings {
		d += " (warning: " + w + ")"
	}
	return d
}

// noticeLine summarizes a notice: what restarts, when the change takes effect, and where it
// went.
func noticeLine(o output, n apply.NoticeResult, line json.RawMessage) string {
	if len(line) == 0 {
		line = n.Event
	}
	var ev struct {
		Type    string `json:"type"`
		Subject string `json:"subject"`
		Data    struct {
			Outcome        string `json:"outcome"`
			EffectiveAfter string `json:"effectiveAfter"`
			RestartIngest  []struct {
				AppName, StreamName string
			} `json:"restartIngest"`
			Count        int `json:"count"`
			Pass         int `json:"pass"`
			Domains      int `json:"domains"`
			DriftConfigs int `json:"driftConfigs"`
		} `json:"data"`
	}
	var what string
	if json.Unmarshal(line, &ev) == nil && ev.Type != "" {
		switch {
		case strings.HasSuffix(ev.Type, ".drift"):
			what = fmt.Sprintf("drift report: %s differ from the policies", plural(ev.Data.Count, "config"))
		case ev.Type == notify.TypePass:
			differ := "differ"
			if ev.Data.DriftConfigs == 1 {
				differ = "differs"
			}
			what = fmt.Sprintf("reconcile pass %d complete: %s checked, %s %s from the policies", ev.Data.Pass,
				plural(ev.Data.Domains, "play domain"), plural(ev.Data.DriftConfigs, "config"), differ)
		case ev.Data.Outcome == "":
			what = strings.TrimSpace(ev.Subject + " " + ev.Type)
		default:
			what = ev.Subject + " " + ev.Data.Outcome
			if ev.Data.EffectiveAfter != "" {
				what += ", effective after " + ev.Data.EffectiveAfter
			}
			var streams []string
			for _, s := range ev.Data.RestartIngest {
				streams = append(streams, s.AppName+"/"+s.StreamName)
			}
			if len(streams) > 0 {
				what += "; restart ingest of " + strings.Join(streams, ", ")
			} else {
				what += "; no stream online"
			}
		}
	} else {
		what = short(n.ID, 12)
	}
	names := make([]string, 0, len(n.Sinks))
	for name := range n.Sinks {
		names = append(names, name)
	}
	sort.Strings(names)
	var sinks []string
	for _, name := range names {
		state := n.Sinks[name]
		word, _, _ := strings.Cut(state, ":")
		sinks = append(sinks, name+" "+o.paint(outcomeStyle(word), state))
	}
	if len(sinks) == 0 {
		sinks = append(sinks, "no sink configured: the event is in the JSON result (-o json)")
	}
	return what + " → " + strings.Join(sinks, ", ")
}

func target(d, a, s string) string { return d + "/" + a + "/" + s }

// configSummary renders a config with the API's parameter names.
func configSummary(c *policy.Config) string {
	if c == nil {
		return "(none)"
	}
	s := fmt.Sprintf("%s SegmentNum=%d SegmentDuration=%d", c.Protocol, c.SegmentNum, c.SegmentDuration)
	if policy.IsLowLatency(c.Protocol) {
		s += " PartDuration=" + strconv.Itoa(c.PartDuration)
	}
	return s + " IgnoreTranscode=" + strconv.FormatBool(c.IgnoreTranscode)
}

// fieldChange is one field of a config that a change alters.
type fieldChange struct {
	Field   string `json:"field"`
	Current any    `json:"current"`
	Desired any    `json:"desired"`
}

// diff lists the fields that differ between the current and the desired config; a missing
// side is null.
func diff(cur, want *policy.Config) []fieldChange {
	val := func(c *policy.Config, f string) any {
		if c == nil {
			return nil
		}
		switch f {
		case "Protocol":
			return c.Protocol
		case "SegmentNum":
			return c.SegmentNum
		case "SegmentDuration":
			return c.SegmentDuration
		case "PartDuration":
			if !policy.IsLowLatency(c.Protocol) {
				return nil
			}
			return c.PartDuration
		default:
			return c.IgnoreTranscode
		}
	}
	var out []fieldChange
	for _, f := range []string{"Protocol", "SegmentNum", "SegmentDuration", "PartDuration", "IgnoreTranscode"} {
		a, b := val(cur, f), val(want, f)
		if a != b {
			out = append(out, fieldChange{Field: f, Current: a, Desired: b})
		}
	}
	return out
}

// diffText renders a diff as "Field current → desired" pairs.
func diffText(cur, want *policy.Config) string {
	var parts []string
	for _, c := range diff(cur, want) {
		parts = append(parts, fmt.Sprintf("%s %s → %s", c.Field, show(c.Current), show(c.Desired)))
	}
	if len(parts) == 0 {
		return "no field differs"
	}
	return strings.Join(parts, ", ")
}

func show(v any) string {
	if v == nil {
		return "(none)"
	}
	return fmt.Sprint(v)
}

func short(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	if strings.HasSuffix(word, "y") {
		return strconv.Itoa(n) + " " + strings.TrimSuffix(word, "y") + "ies"
	}
	return strconv.Itoa(n) + " " + word + "s"
}
