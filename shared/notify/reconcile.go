package notify

import (
	"encoding/json"
	"fmt"
	"time"
)

// TypePass is the notice a report-mode reconcile sends when it completes a pass over every
// domain.
const TypePass = "livepack.reconcile.pass-complete"

// DriftReport is what a report-mode reconcile tells operators: the drift that changed since the
// domains were last checked, and at the end of a pass the pass's totals.
type DriftReport struct {
	// Cursor names the reconcile (its policy set); Pass numbers the pass over every domain.
	Cursor string
	Pass   int
	// Changed lists the drift of domains whose drift changed in this run (new, different, or
	// gone: a domain in line again adds its name to Cleared instead), at most a capped number;
	// Truncated counts entries left out.
	Changed   []Drift
	Cleared   []string
	Truncated int
	// Complete marks the end of the pass; the fields below are then the pass's: its domains,
	// those checked, those deleted since the pass began (Gone), the configs that differ from
	// the policies and those that failed.
	Complete    bool
	StartedAt   time.Time
	Domains     int
	Checked     int
	Gone        int
	DriftConfig int
	Failed      int
	// Digest identifies the pass's drift set; SameAsLast says it equals the previous pass's.
	Digest     string
	SameAsLast bool
}

type passData struct {
	Pass      int      `json:"pass"`
	Changed   []Drift  `json:"drift"`
	Cleared   []string `json:"cleared"`
	Truncated int      `json:"truncated"`
	Count     int      `json:"count"`
	Complete  bool     `json:"complete"`
	// The pass's totals, in a pass-complete notice only, every count present even when zero,
	// so a receiver never mistakes a missing count for a clean pass.
	*passTotals
	Message string `json:"message"`
}

type passTotals struct {
	StartedAt   time.Time `json:"passStartedAt"`
	Domains     int       `json:"domains"`
	Checked     int       `json:"checked"`
	Gone        int       `json:"gone"`
	DriftConfig int       `json:"driftConfigs"`
	Failed      int       `json:"failed"`
	Digest      string    `json:"digest"`
	SameAsLast  bool      `json:"sameAsLastPass"`
}

// Report makes the one notice of a report-mode reconcile run: TypePass at the end of a pass,
// else TypeDrift for drift that changed. Its id is derived from the cursor, the pass and what
// it says, so a run redone after a crash sends the same id and the receiver drops the copy.
func Report(at time.Time, r DriftReport) (Notice, error) {
	if r.Changed == nil {
		r.Changed = []Drift{}
	}
	if r.Cleared == nil {
		r.Cleared = []string{}
	}
	d := passData{Pass: r.Pass, Changed: r.Changed, Cleared: r.Cleared, Truncated: r.Truncated,
		Count: len(r.Changed) + r.Truncated, Complete: r.Complete}
	typ := TypeDrift
	changes := fmt.Sprintf("%d config(s) drifted anew or differently", d.Count)
	if len(r.Cleared) > 0 {
		changes += fmt.Sprintf(" and %d domain(s) are back in line", len(r.Cleared))
	}
	d.Message = "Since these domains were last checked, " + changes + "; run the reconcile in enforce mode, or apply the policies, to repair drift."
	if r.Complete {
		typ = TypePass
		d.passTotals = &passTotals{StartedAt: r.StartedAt.UTC(), Domains: r.Domains, Checked: r.Checked, Gone: r.Gone,
			DriftConfig: r.DriftConfig, Failed: r.Failed, Digest: r.Digest, SameAsLast: r.SameAsLast}
		d.Message = fmt.Sprintf("The scheduled reconcile completed pass %d over %d domain(s): %d config(s) differ from the default policies, %d failed.", r.Pass, r.Domains, r.DriftConfig, r.Failed)
		switch {
		case r.DriftConfig == 0 && r.Failed == 0:
			d.Message += " Everything is in line; the next such notice comes in a day."
		case r.SameAsLast:
			d.Message += " The drift is the same as in the previous pass."
		}
	}
	b, err := json.Marshal(d)
	if err != nil {
		return Notice{}, fmt.Errorf("notify: encode reconcile report: %w", err)
	}
	id := digest("reconcile", r.Cursor, fmt.Sprint(r.Pass), string(b))
	return encode(id, typ, "reconcile", at.UTC().Truncate(time.Second), d)
}
