package campaign

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Ledger is what the Live API emulator saw: its calls and its final state.
type Ledger struct {
	Calls []struct {
		Action    string            `json:"action"`
		Params    map[string]string `json:"params"`
		Status    int               `json:"status"`
		Code      string            `json:"code"`
		Committed bool              `json:"committed"`
		Time      time.Time         `json:"time"`
	}
	State struct {
		PackageConfigs []map[string]any `json:"packageConfigs"`
	}
}

// ReadLedger fetches GET /_emulator/calls and /_emulator/state from the emulator at base.
func ReadLedger(ctx context.Context, base string) (Ledger, error) {
	var l Ledger
	for path, v := range map[string]any{"/_emulator/calls": &l.Calls, "/_emulator/state": &l.State} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+path, nil)
		if err != nil {
			return l, fmt.Errorf("campaign: %s: %w", path, err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return l, fmt.Errorf("campaign: %s: %w", path, err)
		}
		err = json.NewDecoder(resp.Body).Decode(v)
		resp.Body.Close()
		if err != nil {
			return l, fmt.Errorf("campaign: %s: %w", path, err)
		}
	}
	return l, nil
}

// Write is a write call that took effect: the change it made and when the emulator took it.
type Write struct {
	Change
	At time.Time
}

// Writes are the write calls that took effect: answered 200, or committed before an injected
// fault answered an error.
func (l Ledger) Writes() []Write {
	var out []Write
	for _, c := range l.Calls {
		kind := map[string]string{"AddLivePackageConfig": Create, "UpdateLivePackageConfig": Update, "DeleteLivePackageConfig": Delete}[c.Action]
		if kind == "" || (c.Status != http.StatusOK && !c.Committed) {
			continue
		}
		ch := Change{Target: Target(c.Params["DomainName"], c.Params["AppName"], c.Params["StreamName"]), Kind: kind}
		if kind != Delete {
			ch.Config = paramsConfig(c.Params)
		}
		out = append(out, Write{Change: ch, At: c.Time})
	}
	return out
}

// paramsConfig reads the config a write call sent, in canonical form (a missing PartDuration
// is 0, as for a non-LL protocol the client leaves it out).
func paramsConfig(p map[string]string) string {
	num := func(k string) int {
		n, _ := strconv.Atoi(p[k])
		return n
	}
	return Config{Protocol: p["Protocol"], SegmentNum: num("SegmentNum"), SegmentDuration: num("SegmentDuration"),
		PartDuration: num("PartDuration"), IgnoreTranscode: p["IgnoreTranscode"] == "true"}.String()
}

// Faults counts the calls that met an injected fault, and those of them that committed first.
func (l Ledger) Faults() (faults, committed int) {
	for _, c := range l.Calls {
		switch {
		case c.Committed:
			faults++
			committed++
		case c.Code == "InternalErr" || c.Code == "ServiceUnavailable" || c.Code == "Throttling":
			faults++
		}
	}
	return faults, committed
}

// Configs is the final state: target → config, for the given domains (all when none given).
func (l Ledger) Configs(domains ...string) map[string]string {
	out := map[string]string{}
	for _, c := range l.State.PackageConfigs {
		d, _ := c["DomainName"].(string)
		if len(domains) > 0 && !contains(domains, strings.ToLower(d)) {
			continue
		}
		a, _ := c["AppName"].(string)
		s, _ := c["StreamName"].(string)
		out[Target(d, a, s)] = configString(c)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// Verdict is a scenario's outcome against the three equalities, with its figures.
type Verdict struct {
	Changes, Writes, Notices, Deliveries int
	// Problems lists every broken equality; empty means the scenario held.
	Problems []string
}

// OK reports whether every equality held.
func (v Verdict) OK() bool { return len(v.Problems) == 0 }

func (v *Verdict) fail(format string, args ...any) {
	if len(v.Problems) < 12 {
		v.Problems = append(v.Problems, fmt.Sprintf(format, args...))
	}
}

// Judge holds a scenario's outcome against what it meant to happen: desired is the final
// state expected on the scenario's domains (target → Config.String()), changes the changes
// that state took to reach. It checks final API state = desired, writes = changes (each change
// written once, nothing else written) and notices = changes (one notice id per change, none
// lost; a redelivery of the same id is counted, not a fault). It also checks that no notice
// came before its change: each notice id's first delivery follows a write that made the change
// it announces.
func Judge(l Ledger, deliveries []Delivery, domains []string, desired map[string]string, changes []Change) Verdict {
	v := Verdict{Changes: len(changes), Deliveries: len(deliveries)}
	got := l.Configs(domains...)
	for _, t := range sortedKeys(desired) {
		if got[t] != desired[t] {
			v.fail("state: %s is %q, want %q", t, got[t], desired[t])
		}
	}
	for _, t := range sortedKeys(got) {
		if _, ok := desired[t]; !ok {
			v.fail("state: %s is %q, want no config", t, got[t])
		}
	}

	writes := l.Writes()
	v.Writes = len(writes)
	want := map[string]int{}
	for _, c := range changes {
		want[c.Kind+" "+c.Target]++
	}
	have := map[string]int{}
	for _, w := range writes {
		have[w.Kind+" "+w.Target]++
	}
	diffCounts(&v, "writes", want, have)

	byID := map[string]Change{}
	for _, d := range deliveries {
		if prev, seen := byID[d.ID]; seen && prev != d.Change {
			v.fail("notices: id %s announced both %s and %s", d.ID, prev, d.Change)
		}
		if _, seen := byID[d.ID]; !seen && !writtenBefore(writes, d) {
			v.fail("notices: %s (id %s) received at %s, before any write that made it", d.Change, d.ID, d.At.Format(time.RFC3339Nano))
		}
		byID[d.ID] = d.Change
	}
	v.Notices = len(byID)
	want = map[string]int{}
	for _, c := range changes {
		want[c.String()]++
	}
	have = map[string]int{}
	for _, c := range byID {
		have[c.String()]++
	}
	diffCounts(&v, "notices", want, have)
	return v
}

// writtenBefore reports whether a write made d's change before d was received (a delivery
// without a receipt time, from an older receiver, is not held to it).
func writtenBefore(writes []Write, d Delivery) bool {
	if d.At.IsZero() {
		return true
	}
	for _, w := range writes {
		if w.Change == d.Change && !w.At.After(d.At) {
			return true
		}
	}
	return false
}

func diffCounts(v *Verdict, what string, want, have map[string]int) {
	for _, k := range sortedKeys(want) {
		if have[k] < want[k] {
			v.fail("%s: %s: %d, want %d (lost)", what, k, have[k], want[k])
		}
	}
	for _, k := range sortedKeys(have) {
		if have[k] > want[k] {
			v.fail("%s: %s: %d, want %d (duplicate)", what, k, have[k], want[k])
		}
	}
}

// Line is a scenario's one-line report: its name, the verdict's figures and any extra
// figures, in order.
func Line(name string, v Verdict, took time.Duration, extra ...string) string {
	status := "ok"
	if !v.OK() {
		status = fmt.Sprintf("FAILED (%d problems)", len(v.Problems))
	}
	parts := []string{fmt.Sprintf("campaign %-28s %s", name, status),
		fmt.Sprintf("changes=%d writes=%d notices=%d deliveries=%d", v.Changes, v.Writes, v.Notices, v.Deliveries)}
	parts = append(parts, extra...)
	parts = append(parts, "took="+took.Round(10*time.Millisecond).String())
	return strings.Join(parts, " ")
}
