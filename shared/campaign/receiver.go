package campaign

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// Delivery is one notice as a receiver got it.
type Delivery struct {
	// ID is the webhook-id header (the notice id), else the CloudEvent's id.
	ID     string
	Change Change
	// At is when the receiver got it.
	At time.Time
}

// Receiver records notices POSTed to it (livepack's generic webhook sink: a structured
// CloudEvent whose data names the target, the outcome and the config).
type Receiver struct {
	// Refuse, when set, picks the deliveries the receiver answers 503 instead of taking: a
	// sink failing for some notices only. It is called with the receiver's lock held.
	Refuse func(Delivery) bool

	mu         sync.Mutex
	deliveries []Delivery
	refused    []Delivery
	bad        []string
}

// ServeHTTP records one delivery and answers 204.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil {
		http.Error(w, "read", http.StatusBadRequest)
		return
	}
	var ev struct {
		ID   string `json:"id"`
		Type string `json:"type"`
		Data struct {
			DomainName string         `json:"DomainName"`
			AppName    string         `json:"AppName"`
			StreamName string         `json:"StreamName"`
			Outcome    string         `json:"outcome"`
			Config     map[string]any `json:"config"`
			Previous   map[string]any `json:"previous"`
		} `json:"data"`
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := json.Unmarshal(body, &ev); err != nil || ev.Data.DomainName == "" {
		r.bad = append(r.bad, string(body))
		http.Error(w, "not a restart notice", http.StatusBadRequest)
		return
	}
	id := req.Header.Get("webhook-id")
	if id == "" {
		id = ev.ID
	}
	d := ev.Data
	got := Delivery{ID: id, At: time.Now(), Change: Change{
		Target: Target(d.DomainName, d.AppName, d.StreamName), Kind: kindOf(d.Outcome), Config: configString(d.Config)}}
	if r.Refuse != nil && r.Refuse(got) {
		r.refused = append(r.refused, got)
		// Later than one attempt lasts: the sink hands it back to livepack's outbox at once.
		w.Header().Set("Retry-After", "3600")
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	r.deliveries = append(r.deliveries, got)
	w.WriteHeader(http.StatusNoContent)
}

// Deliveries returns every delivery so far, duplicates included.
func (r *Receiver) Deliveries() []Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Delivery(nil), r.deliveries...)
}

// Refused returns the deliveries answered 503 because Refuse picked them.
func (r *Receiver) Refused() []Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Delivery(nil), r.refused...)
}

// Malformed returns the bodies the receiver could not read as a restart notice.
func (r *Receiver) Malformed() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.bad...)
}

// Change is one config change: a target, what happened to it, and the config in place after
// it ("" for a delete).
type Change struct {
	Target string
	Kind   string
	Config string
}

func (c Change) String() string { return c.Kind + " " + c.Target + " " + c.Config }

// Target names a config by domain, app and stream.
func Target(domain, app, stream string) string {
	return strings.ToLower(domain) + "/" + app + "/" + stream
}

// Kinds of change.
const (
	Create = "create"
	Update = "update"
	Delete = "delete"
)

func kindOf(outcome string) string {
	switch outcome {
	case "created":
		return Create
	case "updated":
		return Update
	case "deleted":
		return Delete
	}
	return outcome
}

// Config is a full package config, every setting explicit.
type Config struct {
	Protocol        string
	SegmentNum      int
	SegmentDuration int
	PartDuration    int
	IgnoreTranscode bool
}

// String is the canonical form Change.Config holds.
func (c Config) String() string {
	return fmt.Sprintf("%s n=%d d=%d p=%d it=%v", c.Protocol, c.SegmentNum, c.SegmentDuration, c.PartDuration, c.IgnoreTranscode)
}

// configString reads a config from decoded JSON (a notice's or the emulator's), in canonical
// form; a missing PartDuration is 0, as DescribeLivePackageConfig reports it.
func configString(m map[string]any) string {
	if m == nil {
		return ""
	}
	num := func(k string) int {
		f, _ := m[k].(float64)
		return int(f)
	}
	it, _ := m["IgnoreTranscode"].(bool)
	p, _ := m["Protocol"].(string)
	return Config{Protocol: p, SegmentNum: num("SegmentNum"), SegmentDuration: num("SegmentDuration"), PartDuration: num("PartDuration"), IgnoreTranscode: it}.String()
}

// sortedKeys returns a map's keys in order, for stable reports.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
