package notify

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/livepack/livepack/shared/policy"
)

// Source and types of livepack's CloudEvents: receivers route on type and deduplicate on
// source plus id.
const (
	Source          = "livepack"
	TypeRestart     = "livepack.ingest.restart-required"
	TypeDrift       = "livepack.reconcile.drift"
	effectiveWithin = 5 * time.Minute
)

// Stream is an online stream a change affects: its ingest must restart for the new packaging
// to apply, and PublishURL tells the operator which encoder to restart.
type Stream struct {
	AppName    string `json:"AppName"`
	StreamName string `json:"StreamName"`
	PublishURL string `json:"PublishUrl"`
}

// Change is one config change the engine made, with what a notice needs to tell an operator
// what to do about it.
type Change struct {
	// ID names the change occurrence (its intent's id): the notice's id.
	ID     string
	Target policy.Target
	// Outcome is created, updated or deleted.
	Outcome string
	// Config is the config now in place; nil for deleted.
	Config *policy.Config
	// Previous is the config before an update or delete; nil for created.
	Previous *policy.Config
	At       time.Time
	// Scope is the domain's acceleration region: domestic, overseas or global.
	Scope string
	// Online lists every online stream of the domain; Build keeps those the config matches.
	Online []Stream
}

type restartData struct {
	DomainName     string         `json:"DomainName"`
	AppName        string         `json:"AppName"`
	StreamName     string         `json:"StreamName"`
	Outcome        string         `json:"outcome"`
	Config         *policy.Config `json:"config"`
	Previous       *policy.Config `json:"previous"`
	EffectiveAfter string         `json:"effectiveAfter"`
	RestartIngest  []Stream       `json:"restartIngest"`
	Message        string         `json:"message"`
}

// Build makes the restart-ingest notice for one change (DESIGN §8). The API applies a
// packaging config only to streams pushed after it takes effect, so the notice lists the
// online streams to restart. Its id is the change occurrence's (c.ID, fixed when the change's
// intent was recorded): every retry, settlement and relay of the change carries it, and a
// change that recurs is a new occurrence with a new id.
func Build(c Change) (Notice, error) {
	if c.ID == "" {
		return Notice{}, fmt.Errorf("notify: change of %s has no id", c.Target)
	}
	at := c.At.UTC().Truncate(time.Second)
	effective := at.Add(effectiveWithin)
	restart := Restart(c)
	data := restartData{DomainName: c.Target.DomainName, AppName: c.Target.AppName, StreamName: c.Target.StreamName,
		Outcome: c.Outcome, Config: c.Config, Previous: c.Previous, EffectiveAfter: effective.Format(time.RFC3339),
		RestartIngest: restart, Message: message(c, effective, restart)}
	return encode(c.ID, TypeRestart, c.Target.String(), at, data)
}

// Restart returns the online streams the change's config matches: those whose ingest must
// restart for it to apply.
func Restart(c Change) []Stream {
	restart := []Stream{}
	for _, s := range c.Online {
		if matches(c.Target.AppName, s.AppName) && matches(c.Target.StreamName, s.StreamName) {
			restart = append(restart, s)
		}
	}
	return restart
}

func matches(pattern, name string) bool { return pattern == "*" || pattern == name }

func message(c Change, effective time.Time, restart []Stream) string {
	var b strings.Builder
	switch c.Outcome {
	case "deleted":
		fmt.Fprintf(&b, "Packaging for %s was deleted", c.Target)
	case "updated":
		fmt.Fprintf(&b, "Packaging for %s was updated to %s", c.Target, describe(c.Config))
	default:
		fmt.Fprintf(&b, "Packaging for %s was created: %s", c.Target, describe(c.Config))
	}
	fmt.Fprintf(&b, "; it takes effect by %s (3 to 5 minutes) and only for streams pushed after that.", effective.Format(time.RFC3339))
	if len(restart) == 0 {
		b.WriteString(" No matching stream is online; the config applies from the next push.")
	} else {
		names := make([]string, len(restart))
		for i, s := range restart {
			names[i] = s.AppName + "/" + s.StreamName
		}
		fmt.Fprintf(&b, " Restart ingest of %d stream(s): %s.", len(restart), strings.Join(names, ", "))
	}
	if c.Scope == "overseas" || c.Scope == "global" {
		fmt.Fprintf(&b, " This is an %s domain: playback outside the Chinese mainland may see higher latency, so test playback after the change takes effect.", c.Scope)
	}
	return b.String()
}

func describe(c *policy.Config) string {
	if c == nil {
		return "no config"
	}
	s := fmt.Sprintf("%s, %d segments of %d s", c.Protocol, c.SegmentNum, c.SegmentDuration)
	if c.PartDuration > 0 {
		s += fmt.Sprintf(", parts of %d ms", c.PartDuration)
	}
	return s
}

// Drift is one difference a report-mode reconcile found, kept with both sides so a reader can
// judge whether enforcing would be right.
type Drift struct {
	Target policy.Target `json:"target"`
	// Change is what enforce would do: create, update or delete.
	Change  string         `json:"change"`
	Current *policy.Config `json:"current"`
	Desired *policy.Config `json:"desired"`
}

type driftData struct {
	Drift   []Drift `json:"drift"`
	Count   int     `json:"count"`
	Message string  `json:"message"`
}

// Summary makes the one notice of a report-mode reconcile: every drift found, so operators get
// one message per run rather than one per config.
func Summary(key string, at time.Time, drift []Drift) (Notice, error) {
	if drift == nil {
		drift = []Drift{} // "drift": [] rather than null, and nil and empty share an id
	}
	b, err := json.Marshal(drift)
	if err != nil {
		return Notice{}, fmt.Errorf("notify: encode drift: %w", err)
	}
	id := digest("reconcile", key, string(b))
	msg := "The scheduled reconcile found every config in line with the default policies."
	if len(drift) > 0 {
		msg = fmt.Sprintf("The scheduled reconcile found %d config(s) that differ from the default policies; run it in enforce mode, or apply the policies, to repair them.", len(drift))
	}
	return encode(id, TypeDrift, "reconcile", at.UTC().Truncate(time.Second), driftData{Count: len(drift), Drift: drift, Message: msg})
}

func digest(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// encode builds the CloudEvent with the SDK, which validates the required attributes.
func encode(id, typ, subject string, at time.Time, data any) (Notice, error) {
	ev := event.New(event.CloudEventsVersionV1)
	ev.SetID(id)
	ev.SetSource(Source)
	ev.SetType(typ)
	ev.SetSubject(subject)
	ev.SetTime(at)
	if err := ev.SetData(event.ApplicationJSON, data); err != nil {
		return Notice{}, fmt.Errorf("notify: encode %s: %w", typ, err)
	}
	if err := ev.Validate(); err != nil {
		return Notice{}, fmt.Errorf("notify: %s: %w", typ, err)
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return Notice{}, fmt.Errorf("notify: encode %s: %w", typ, err)
	}
	return Notice{ID: id, JSON: b}, nil
}
