package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"
)

// arrival is a domain added while the emulator runs: unknown to the API until visibleAt, then
// configuring until onlineAt.
type arrival struct {
	domain    Domain
	visibleAt time.Time
	onlineAt  time.Time
}

// NewDomain is the body of POST /_emulator/domains: the AddLiveDomain parameters, and optional
// per-domain delays (Go durations, "90s"; the HTTP body may also give a number of seconds)
// overriding Options.DomainHidden and Options.DomainConfiguring.
type NewDomain struct {
	DomainName     string `json:"DomainName"`
	LiveDomainType string `json:"LiveDomainType"`
	Region         string `json:"Region"`
	Scope          string `json:"Scope"`
	HiddenFor      string `json:"HiddenFor,omitempty"`
	ConfiguringFor string `json:"ConfiguringFor,omitempty"`
}

// AddedDomain answers POST /_emulator/domains: when the domain becomes visible and online.
type AddedDomain struct {
	DomainName string    `json:"DomainName"`
	VisibleAt  time.Time `json:"visibleAt"`
	OnlineAt   time.Time `json:"onlineAt"`
}

// ErrDomainExists is returned by AddDomain for a name already known or arriving.
var ErrDomainExists = errors.New("emulator: domain already exists")

// AddDomain adds a domain as AddLiveDomain would: the Live API does not know it for the hidden
// delay, then reports it `configuring`, then `online`. Defaults: liveVideo, cn-shanghai, domestic.
func (s *Server) AddDomain(nd NewDomain) (AddedDomain, error) {
	hidden, configuring := s.opts.DomainHidden, s.opts.DomainConfiguring
	for _, f := range []struct {
		name, v string
		d       *time.Duration
	}{{"HiddenFor", nd.HiddenFor, &hidden}, {"ConfiguringFor", nd.ConfiguringFor, &configuring}} {
		if f.v == "" {
			continue
		}
		d, err := time.ParseDuration(f.v)
		if err != nil || d < 0 {
			return AddedDomain{}, fmt.Errorf("emulator: %s %q is not a non-negative duration", f.name, f.v)
		}
		*f.d = d
	}
	d := Domain{DomainName: strings.ToLower(strings.TrimSpace(nd.DomainName)), LiveDomainType: nd.LiveDomainType,
		Region: nd.Region, Scope: nd.Scope}
	if d.DomainName == "" || strings.ContainsAny(d.DomainName, " /*?") {
		return AddedDomain{}, fmt.Errorf("emulator: DomainName %q is not a domain name", nd.DomainName)
	}
	if d.LiveDomainType == "" {
		d.LiveDomainType = "liveVideo"
	}
	if d.LiveDomainType != "liveVideo" && d.LiveDomainType != "liveEdge" {
		return AddedDomain{}, fmt.Errorf("emulator: LiveDomainType %q is not liveVideo or liveEdge", nd.LiveDomainType)
	}
	if d.Region == "" {
		d.Region = "cn-shanghai"
	}
	if d.Scope == "" {
		d.Scope = "domestic"
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, known := s.arrivals[d.DomainName]; known {
		return AddedDomain{}, fmt.Errorf("%w: %s", ErrDomainExists, d.DomainName)
	}
	if _, err := s.domain(d.DomainName); err == nil {
		return AddedDomain{}, fmt.Errorf("%w: %s", ErrDomainExists, d.DomainName)
	}
	a := arrival{domain: d, visibleAt: now.Add(hidden), onlineAt: now.Add(hidden + configuring)}
	s.arrivals[d.DomainName] = a
	s.settle()
	return AddedDomain{DomainName: d.DomainName, VisibleAt: a.visibleAt, OnlineAt: a.onlineAt}, nil
}

// settle moves arrivals along their timeline: into the state as configuring once visible, then
// online. The caller holds s.mu.
func (s *Server) settle() {
	if len(s.arrivals) == 0 {
		return
	}
	now := s.now()
	for name, a := range s.arrivals {
		if now.Before(a.visibleAt) {
			continue
		}
		status := "configuring"
		if !now.Before(a.onlineAt) {
			status = "online"
		}
		d, err := s.domain(name)
		if err != nil {
			nd := a.domain
			nd.DomainStatus = status
			s.state.Domains = append(s.state.Domains, nd)
		} else {
			d.DomainStatus = status
		}
		if status == "online" {
			delete(s.arrivals, name)
		}
	}
}

// hidden lists the arrivals not yet visible, with the delays they have left, in name order.
// The caller holds s.mu.
func (s *Server) hidden() []NewDomain {
	now := s.now()
	var out []NewDomain
	for _, a := range s.arrivals {
		if !now.Before(a.visibleAt) {
			continue
		}
		nd := NewDomain{DomainName: a.domain.DomainName, LiveDomainType: a.domain.LiveDomainType, Region: a.domain.Region,
			Scope: a.domain.Scope, HiddenFor: a.visibleAt.Sub(now).String(), ConfiguringFor: a.onlineAt.Sub(a.visibleAt).String()}
		out = append(out, nd)
	}
	slices.SortFunc(out, func(a, b NewDomain) int { return strings.Compare(a.DomainName, b.DomainName) })
	return out
}

// serveAddDomain is POST /_emulator/domains.
func (s *Server) serveAddDomain(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "POST a domain"})
		return
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
	dec.DisallowUnknownFields()
	var wire struct {
		NewDomain
		// The delays as sent: a Go duration ("90s") or a number of seconds (90).
		HiddenFor      json.RawMessage `json:"HiddenFor,omitempty"`
		ConfiguringFor json.RawMessage `json:"ConfiguringFor,omitempty"`
	}
	err := dec.Decode(&wire)
	nd := wire.NewDomain
	if err == nil {
		nd.HiddenFor, err = delay("HiddenFor", wire.HiddenFor)
	}
	if err == nil {
		nd.ConfiguringFor, err = delay("ConfiguringFor", wire.ConfiguringFor)
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body: " + err.Error()})
		return
	}
	added, err := s.AddDomain(nd)
	switch {
	case err == nil:
		s.log.Info("domain added", "domain", added.DomainName, "visibleAt", added.VisibleAt, "onlineAt", added.OnlineAt)
		writeJSON(w, http.StatusCreated, added)
	case errors.Is(err, ErrDomainExists):
		writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
	default:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
	}
}

// delay reads a delay of POST /_emulator/domains as AddDomain takes it: a JSON string is a Go
// duration, a JSON number a count of seconds, as scripts most often write one.
func delay(name string, raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var secs float64
	if err := json.Unmarshal(raw, &secs); err != nil {
		return "", fmt.Errorf("%s: want a duration such as \"90s\" or a number of seconds, got %s", name, raw)
	}
	if secs < 0 || secs > float64(math.MaxInt64/int64(time.Second)) {
		return "", fmt.Errorf("%s: %s seconds is not a non-negative duration", name, raw)
	}
	return time.Duration(secs * float64(time.Second)).String(), nil
}
