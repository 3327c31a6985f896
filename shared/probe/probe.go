// Package probe checks what players get from a play domain against the packaging config that
// should be in force: it fetches a stream's live manifests as a player does (HLS and/or DASH,
// signed with URL authentication type A when the domain requires it) and compares container,
// target duration, window and LL-HLS parts with the config. A config applies only once the
// ingest restarts, so a probe is how an operator (or restart tracking) sees that a change has
// reached the audience, not just the API.
package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/livepack/livepack/shared/policy"
)

// DefaultTimeout bounds one manifest fetch.
const DefaultTimeout = 5 * time.Second

// maxManifest is the largest manifest read; a live manifest is a few kilobytes.
const maxManifest = 4 << 20

// Target is the stream a probe checks. PublishTime, when known (the online list's), tells a
// window still filling after the ingest (re)started from one that is too short.
type Target struct {
	DomainName  string    `json:"DomainName"`
	AppName     string    `json:"AppName"`
	StreamName  string    `json:"StreamName"`
	PublishTime time.Time `json:"PublishTime,omitzero"`
}

// String names the target as domain/app/stream.
func (t Target) String() string { return t.DomainName + "/" + t.AppName + "/" + t.StreamName }

// Options configure a Prober.
type Options struct {
	// PlayAuthKey is the play domain's URL authentication (type A) private key; empty sends
	// unsigned URLs. It and the signed URLs are never logged nor put in a Verdict.
	PlayAuthKey string
	// PlaybackBase, when set, is where requests go (http://HOST:PORT), with the play domain as
	// the Host header: an emulator, or one CDN node. Unset, the play domain is resolved.
	PlaybackBase string
	// Scheme of the playback URLs players get: https (default) or http.
	Scheme string
	// Timeout bounds each fetch; 0 means DefaultTimeout.
	Timeout time.Duration
	// Client sends the requests; nil means a client of its own.
	Client *http.Client
	Logger *slog.Logger
	// Now is the clock for signing and a window's age; nil means time.Now.
	Now func() time.Time
}

// Prober fetches and checks manifests. It is safe for concurrent use.
type Prober struct {
	o    Options
	base *url.URL
}

// New checks o and returns a Prober.
func New(o Options) (*Prober, error) {
	p := &Prober{o: o}
	if p.o.Scheme == "" {
		p.o.Scheme = "https"
	}
	if p.o.Scheme != "http" && p.o.Scheme != "https" {
		return nil, fmt.Errorf("probe: scheme %q: want http or https", o.Scheme)
	}
	if o.PlaybackBase != "" {
		u, err := url.Parse(o.PlaybackBase)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			return nil, fmt.Errorf("probe: playback base %q: want http(s)://HOST[:PORT]", o.PlaybackBase)
		}
		p.base = u
	}
	if p.o.Timeout <= 0 {
		p.o.Timeout = DefaultTimeout
	}
	if p.o.Client == nil {
		p.o.Client = &http.Client{}
	}
	if p.o.Logger == nil {
		p.o.Logger = slog.New(slog.DiscardHandler)
	}
	if p.o.Now == nil {
		p.o.Now = time.Now
	}
	return p, nil
}

// Check is one comparison: its name, what the config implies, what the manifest says.
type Check struct {
	// Manifest is hls or dash.
	Manifest string `json:"manifest"`
	Name     string `json:"name"`
	Expected string `json:"expected"`
	Found    string `json:"found"`
	OK       bool   `json:"ok"`
}

// Fetch is one manifest request: the URL players get (unsigned), the status and how long the
// answer took.
type Fetch struct {
	Manifest  string        `json:"manifest"`
	URL       string        `json:"url"`
	Status    int           `json:"status"`
	Latency   time.Duration `json:"-"`
	LatencyMs int64         `json:"latencyMs"`
	Error     string        `json:"error,omitempty"`
}

// Verdict is a probe's outcome: Match when every manifest was fetched and every check passed.
type Verdict struct {
	Target
	// Protocol is the packaging expected; "" expects plain HLS with TS segments (no config).
	Protocol string `json:"Protocol"`
	Match    bool   `json:"match"`
	// Unreachable is set when a manifest could not be fetched or parsed.
	Unreachable bool    `json:"unreachable"`
	Checks      []Check `json:"checks"`
	Fetches     []Fetch `json:"fetches"`
}

// Failed returns the checks that did not pass.
func (v Verdict) Failed() []Check {
	var out []Check
	for _, c := range v.Checks {
		if !c.OK {
			out = append(out, c)
		}
	}
	return out
}

// Manifests lists the manifest kinds a protocol is played through: "" (no config) and the
// HLS protocols hls, DASH_CMAF dash, HLSDASH_CMAF both.
func Manifests(protocol string) []string {
	switch protocol {
	case policy.DASHCMAF:
		return []string{"dash"}
	case policy.HLSDASHCMAF:
		return []string{"hls", "dash"}
	}
	return []string{"hls"}
}

// URL is the playback URL players get for a target's manifest kind (hls or dash).
func (p *Prober) URL(t Target, kind string) *url.URL {
	ext := ".m3u8"
	if kind == "dash" {
		ext = ".mpd"
	}
	return &url.URL{Scheme: p.o.Scheme, Host: t.DomainName, Path: "/" + t.AppName + "/" + t.StreamName + ext}
}

// Check fetches the target's manifests for cfg's protocol (cfg nil: plain HLS with TS segments,
// what a stream gets without a config) and compares them with cfg. An unreachable or
// unreadable manifest is a Verdict that does not match, not an error: the error is for a
// target that cannot be probed at all.
func (p *Prober) Check(ctx context.Context, t Target, cfg *policy.Config) (Verdict, error) {
	if t.DomainName == "" || t.AppName == "" || t.StreamName == "" || strings.ContainsAny(t.AppName+t.StreamName, "/*?#") {
		return Verdict{}, fmt.Errorf("probe: target %s: want one domain, app and stream", t)
	}
	v := Verdict{Target: t, Checks: []Check{}, Fetches: []Fetch{}}
	if cfg != nil {
		v.Protocol = cfg.Protocol
	}
	for _, kind := range Manifests(v.Protocol) {
		body, f := p.fetch(ctx, t, p.URL(t, kind), kind)
		if body != nil && kind == "hls" {
			body, f = p.followMaster(ctx, t, body, f)
		}
		v.Fetches = append(v.Fetches, f)
		if body == nil {
			v.Unreachable = true
			v.Checks = append(v.Checks, Check{Manifest: kind, Name: "reachable", Expected: "200", Found: fetchFound(f)})
			continue
		}
		var checks []Check
		var err error
		if kind == "hls" {
			checks, err = p.checkHLS(t, cfg, body)
		} else {
			checks, err = p.checkDASH(cfg, body)
		}
		if err != nil {
			v.Unreachable = true
			checks = []Check{{Manifest: kind, Name: "readable", Expected: "a valid manifest", Found: err.Error()}}
		}
		v.Checks = append(v.Checks, checks...)
	}
	v.Match = len(v.Failed()) == 0
	p.o.Logger.Info("probed", "target", t.String(), "protocol", v.Protocol, "match", v.Match, "failed", len(v.Failed()))
	return v, nil
}

func fetchFound(f Fetch) string {
	if f.Error != "" {
		return f.Error
	}
	return fmt.Sprintf("%d %s", f.Status, http.StatusText(f.Status))
}

// fetch gets one manifest: signed when a play auth key is set, sent to the playback base with
// the play domain as Host when one is set. body is nil unless the answer is a 200.
func (p *Prober) fetch(ctx context.Context, t Target, u *url.URL, kind string) ([]byte, Fetch) {
	f := Fetch{Manifest: kind, URL: u.String()}
	target := u
	if p.o.PlayAuthKey != "" {
		s, err := Sign(u, p.o.PlayAuthKey, p.o.Now())
		if err != nil {
			f.Error = err.Error()
			return nil, f
		}
		target = s
	}
	send := *target
	if p.base != nil {
		send.Scheme, send.Host = p.base.Scheme, p.base.Host
	}
	ctx, cancel := context.WithTimeout(ctx, p.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, send.String(), nil)
	if err != nil {
		f.Error = "request: " + err.Error()
		return nil, f
	}
	req.Host = t.DomainName
	req.Header.Set("User-Agent", "livepack-probe")
	started := time.Now()
	resp, err := p.o.Client.Do(req)
	if err != nil {
		f.Latency = time.Since(started)
		f.LatencyMs = f.Latency.Milliseconds()
		// The error names the URL it failed on: keep only its cause, never the auth_key.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		f.Error = "fetch: " + err.Error()
		return nil, f
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxManifest+1))
	f.Latency = time.Since(started)
	f.LatencyMs = f.Latency.Milliseconds()
	f.Status = resp.StatusCode
	switch {
	case err != nil:
		f.Error = "read: " + err.Error()
	case len(body) > maxManifest:
		f.Error = fmt.Sprintf("manifest over %d bytes", maxManifest)
	case resp.StatusCode != http.StatusOK:
		return nil, f
	default:
		return body, f
	}
	return nil, f
}

// followMaster fetches a master playlist's first variant, the media playlist the checks are
// about; a media playlist is returned as is.
func (p *Prober) followMaster(ctx context.Context, t Target, body []byte, f Fetch) ([]byte, Fetch) {
	h, err := ParseHLS(body)
	if err != nil || !h.Master {
		return body, f
	}
	ref, err := url.Parse(h.Variants[0])
	if err != nil {
		f.Error = "variant URI: " + err.Error()
		return nil, f
	}
	u := p.URL(t, "hls").ResolveReference(ref)
	if u.Host != t.DomainName {
		f.Error = "variant on another host: " + u.Host
		return nil, f
	}
	u.RawQuery = ""
	vb, vf := p.fetch(ctx, t, u, "hls")
	vf.Latency += f.Latency
	vf.LatencyMs = vf.Latency.Milliseconds()
	return vb, vf
}
