// Package emulator is a local Alibaba Cloud Live OpenAPI (2016-11-01) for tests and the demo:
// a real HTTP server that verifies V3 (ACS3-HMAC-SHA256) and V1 (HMAC-SHA1) signatures, takes
// parameters from the query or a form body, answers in the shapes the official SDKs decode,
// enforces the AddLivePackageConfig rules with the API's error codes, and throttles each
// AccessKey at the documented quota. Fault injection (seeded, so a run repeats) and two
// introspection endpoints (/_emulator/calls, /_emulator/state) serve the tests; streams start,
// stop and restart while it runs (/_emulator/streams), and each online stream has live
// playback (GET /APP/STREAM.m3u8 and .mpd with the play domain as Host) built from the config
// in force at its last publish, so a probe of what players get can be tested. On the same
// server it answers the Tablestore operations of livepack's state store, on the Tablestore
// SDK's wire protocol (tablestore.go).
//
// Its rule checks are a second, independent reading of the API page: it shares no code with
// the policy model, so a differential test can hold the two against each other.
package emulator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// The embedded key pair (DESIGN §7).
const (
	AccessKeyID     = "emulator"
	AccessKeySecret = "emulator-secret"
)

// Domain is a live domain in the seed and the state.
type Domain struct {
	DomainName     string `json:"DomainName"`
	LiveDomainType string `json:"LiveDomainType"`
	DomainStatus   string `json:"DomainStatus"`
	Region         string `json:"Region"`
	Scope          string `json:"Scope"`
	// PlayAuthKey turns on URL authentication type A for the domain's playback: a manifest
	// request without a valid auth_key signed with it is refused with 403.
	PlayAuthKey string `json:"PlayAuthKey,omitempty"`
}

// Stream is an online stream.
type Stream struct {
	DomainName  string `json:"DomainName"`
	AppName     string `json:"AppName"`
	StreamName  string `json:"StreamName"`
	PublishURL  string `json:"PublishUrl"`
	PublishTime string `json:"PublishTime"`
	// TranscodeTemplates are the transcoding templates applied to the stream: each makes a
	// transcoded copy named STREAM_TEMPLATE, listed with Transcoded "yes" (StreamType all or
	// trans) and played back like the stream.
	TranscodeTemplates []string `json:"TranscodeTemplates,omitempty"`
	// Packaging is the package config that matched the stream when it last started
	// publishing: the one its playback is built from, since a config change takes effect only
	// after the ingest restarts. The emulator sets it; nil means plain HLS (TS segments).
	Packaging *PackageConfig `json:"Packaging,omitempty"`
}

// PackageConfig is a stored package config, as DescribeLivePackageConfig reports it.
type PackageConfig struct {
	DomainName      string `json:"DomainName"`
	AppName         string `json:"AppName"`
	StreamName      string `json:"StreamName"`
	Protocol        string `json:"Protocol"`
	SegmentNum      int    `json:"SegmentNum"`
	SegmentDuration int    `json:"SegmentDuration"`
	PartDuration    int    `json:"PartDuration"`
	IgnoreTranscode bool   `json:"IgnoreTranscode"`
}

// Seed is the emulator's starting state (DESIGN §7); /_emulator/state answers in this shape.
type Seed struct {
	Domains        []Domain        `json:"domains"`
	OnlineStreams  []Stream        `json:"onlineStreams"`
	PackageConfigs []PackageConfig `json:"packageConfigs"`
	// PublishHistory is what DescribeLiveStreamsPublishList serves: past ingests (with
	// StopTime) and the open record of each online stream. A seed may give past ingests; the
	// online streams' records are added at start.
	PublishHistory []Publish `json:"publishHistory,omitempty"`
	// Secrets are the KMS Secrets Manager secrets GetSecretValue serves (name → SecretData),
	// so `livepack emulator -seed FILE` serves the Function Compute secrets path
	// (LIVEPACK_SECRET_NAME) to a function started outside the emulator's process. They are
	// never shown by /_emulator/state.
	Secrets map[string]string `json:"secrets,omitempty"`
	// Arriving are domains just added, as POST /_emulator/domains adds them: each unknown to
	// the API for its HiddenFor (a Go duration; default Options.DomainHidden), then
	// configuring for its ConfiguringFor, then online, counted from the emulator's start. In
	// /_emulator/state they are the domains still hidden, with the delays left, so a state
	// read back as a seed keeps their timeline.
	Arriving []NewDomain `json:"arriving,omitempty"`
}

// DefaultSeed is the embedded seed: the domains the sample events name.
func DefaultSeed() Seed {
	return Seed{
		Domains: []Domain{
			{DomainName: "play.example.com", LiveDomainType: "liveVideo", DomainStatus: "online", Region: "cn-shanghai", Scope: "domestic"},
			{DomainName: "push.example.com", LiveDomainType: "liveEdge", DomainStatus: "online", Region: "cn-shanghai", Scope: "domestic"},
			{DomainName: "new.example.com", LiveDomainType: "liveVideo", DomainStatus: "online", Region: "cn-shanghai", Scope: "domestic"},
			{DomainName: "global.example.com", LiveDomainType: "liveVideo", DomainStatus: "online", Region: "cn-shanghai", Scope: "global"},
			{DomainName: "staging.example.com", LiveDomainType: "liveVideo", DomainStatus: "configuring", Region: "cn-shanghai", Scope: "domestic"},
		},
		OnlineStreams: []Stream{
			{DomainName: "play.example.com", AppName: "sports", StreamName: "final", PublishURL: "rtmp://push.example.com/sports/final", PublishTime: "2026-11-24T08:00:00Z"},
			{DomainName: "play.example.com", AppName: "news", StreamName: "evening", PublishURL: "rtmp://push.example.com/news/evening", PublishTime: "2026-11-24T07:30:00Z"},
			{DomainName: "global.example.com", AppName: "sports", StreamName: "match", PublishURL: "rtmp://push.example.com/sports/match", PublishTime: "2026-11-24T07:45:00Z"},
		},
		PackageConfigs: []PackageConfig{},
	}
}

// LoadSeed reads a seed file; unknown fields are errors, so a typo does not silently empty it.
func LoadSeed(path string) (Seed, error) {
	f, err := os.Open(path)
	if err != nil {
		return Seed{}, fmt.Errorf("emulator: seed: %w", err)
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	var s Seed
	if err := dec.Decode(&s); err != nil {
		return Seed{}, fmt.Errorf("emulator: seed %s: %w", path, err)
	}
	return s, nil
}

// Options configure a Server.
type Options struct {
	Seed Seed
	// Rate is the package-config actions' quota, calls per minute per AccessKeyId before
	// Throttling.User; 0 means 300, the documented account quota. DescribeLiveDomainDetail,
	// DescribeLiveUserDomains and DescribeLiveStreamsOnlineList have their documented quotas
	// (3,000, 6,000 and 10,000 per minute), or Rate when it is higher.
	Rate int
	// Quota is how a quota is counted: QuotaWindow (the default) or QuotaBucket.
	Quota string
	// Window is the span a quota counts over; 0 means a minute. A shorter one compresses time
	// (Rate calls per Window), so a quota-bound run finishes in seconds.
	Window time.Duration
	// FailRate is the fraction of calls that meet an injected fault: 500 InternalErr, 503
	// ServiceUnavailable or 400 Throttling before the action runs (as a gateway's would), added
	// latency (then served normally), or, for writes, a 500 InternalErr after the change was
	// committed (as a timeout after the commit looks to a caller).
	FailRate float64
	// FailSeed seeds the faults, so a run repeats.
	FailSeed int64
	// FailKinds narrows the injected faults to some of FaultInternal, FaultUnavailable,
	// FaultThrottling, FaultCommitThenFail and FaultLatency; empty means all five.
	FailKinds []string
	// DomainHidden is how long a domain added with POST /_emulator/domains stays unknown to
	// every action (InvalidDomain.NotFound, absent from DescribeLiveUserDomains), as the API
	// page says a new domain cannot be queried for several minutes.
	DomainHidden time.Duration
	// DomainConfiguring is how long such a domain then reports `configuring` (package config
	// writes refused with InvalidDomain.Configuring) before it is `online`.
	DomainConfiguring time.Duration
	// Credentials maps AccessKeyId to secret; nil means the embedded pair.
	Credentials map[string]string
	// Secrets are KMS Secrets Manager secrets GetSecretValue serves (name → SecretData), in
	// addition to the seed's; a name in both takes this one.
	Secrets map[string]string
	// TablestorePage caps the rows of one GetRange answer below the service's 5,000, so that
	// tests page through next_start_primary_key with few rows; 0 means 5,000.
	TablestorePage int
	Logger         *slog.Logger
	// Now is the clock for signatures and the quota; nil means time.Now.
	Now func() time.Time
}

// The injected fault kinds (Options.FailKinds).
const (
	FaultInternal       = "internal"    // 500 InternalErr before the action runs
	FaultUnavailable    = "unavailable" // 503 ServiceUnavailable before the action runs
	FaultThrottling     = "throttling"  // 400 Throttling before the action runs
	FaultCommitThenFail = "commit"      // a write takes effect, then the answer is 500 InternalErr
	FaultLatency        = "latency"     // served normally after a delay
)

// faultKinds is the order a fault draw indexes, fixed so a seed repeats across versions.
var faultKinds = []string{FaultInternal, FaultUnavailable, FaultThrottling, FaultCommitThenFail, FaultLatency}

// Call is one request the emulator answered, for /_emulator/calls.
type Call struct {
	Action      string            `json:"action"`
	Params      map[string]string `json:"params"`
	Status      int               `json:"status"`
	Code        string            `json:"code,omitempty"`
	AccessKeyID string            `json:"accessKeyId,omitempty"`
	Signature   string            `json:"signature,omitempty"`
	// Committed marks an injected fault that answered an error after the write took effect.
	Committed bool      `json:"committed,omitempty"`
	Time      time.Time `json:"time"`
}

// Server is the emulator. It is safe for concurrent use.
type Server struct {
	opts  Options
	log   *slog.Logger
	now   func() time.Time
	creds map[string]string

	mu      sync.Mutex
	state   Seed
	calls   []Call
	quota   *quotas
	nonces  map[string]time.Time
	rnd     *rand.Rand
	kinds   []string
	reqSeq  int
	hostID  string
	latency time.Duration
	// arrivals are domains added while running, by name: when each becomes visible and online.
	arrivals map[string]arrival
	// tables are the Tablestore tables the emulator serves (tablestore.go).
	tables otsTables
	// secrets are the KMS secrets served: the seed's and Options.Secrets.
	secrets map[string]string
}

// New returns a Server holding a copy of opts.Seed.
func New(opts Options) *Server {
	s := &Server{opts: opts, log: opts.Logger, now: opts.Now, creds: opts.Credentials,
		nonces: map[string]time.Time{},
		rnd:    rand.New(rand.NewSource(opts.FailSeed)), hostID: "live.aliyuncs.com", latency: 150 * time.Millisecond}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.creds == nil {
		s.creds = map[string]string{AccessKeyID: AccessKeySecret}
	}
	if s.opts.Rate <= 0 {
		s.opts.Rate = 300
	}
	s.quota = newQuotas(s.opts.Quota, s.opts.Rate, s.opts.Window)
	s.kinds = faultKinds
	if len(opts.FailKinds) > 0 {
		s.kinds = append([]string(nil), opts.FailKinds...)
	}
	s.arrivals = map[string]arrival{}
	s.state.Domains = append([]Domain{}, opts.Seed.Domains...)
	s.state.OnlineStreams = append([]Stream{}, opts.Seed.OnlineStreams...)
	s.state.PackageConfigs = append([]PackageConfig{}, opts.Seed.PackageConfigs...)
	s.seedStreams(opts.Seed)
	for _, nd := range opts.Seed.Arriving {
		if _, err := s.AddDomain(nd); err != nil {
			s.log.Warn("seed: arriving domain left out", "domain", nd.DomainName, "err", err)
		}
	}
	s.secrets = maps.Clone(opts.Seed.Secrets)
	if s.secrets == nil {
		s.secrets = map[string]string{}
	}
	maps.Copy(s.secrets, opts.Secrets)
	return s
}

// Serve listens on addr and serves until ctx ends; it returns the base URL once listening.
func Serve(ctx context.Context, addr string, opts Options) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("emulator: listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: New(opts), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && opts.Logger != nil {
			opts.Logger.Error("emulator stopped", "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	return "http://" + ln.Addr().String(), nil
}

// Calls returns every call answered so far (an empty list, never nil, so it encodes as []).
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call{}, s.calls...)
}

// State returns the current domains, streams and configs; a domain added while running
// appears once it is visible to the API, and until then under Arriving.
func (s *Server) State() Seed {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settle()
	return Seed{Domains: append([]Domain{}, s.state.Domains...), OnlineStreams: append([]Stream{}, s.state.OnlineStreams...),
		PackageConfigs: append([]PackageConfig{}, s.state.PackageConfigs...), PublishHistory: append([]Publish{}, s.state.PublishHistory...),
		Arriving: s.hidden()}
}

// apiError is an error answer in the API's body shape.
type apiError struct {
	Status  int
	Code    string
	Message string
	header  http.Header
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func fail(status int, code, format string, args ...any) *apiError {
	return &apiError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// ServeHTTP answers one RPC call, or an introspection request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/_emulator/calls":
		writeJSON(w, http.StatusOK, s.Calls())
		return
	case "/_emulator/state":
		writeJSON(w, http.StatusOK, s.State())
		return
	case "/_emulator/domains":
		s.serveAddDomain(w, r)
		return
	case "/_emulator/streams":
		s.serveStreams(w, r)
		return
	}
	if isTablestore(r) {
		s.serveTablestore(w, r)
		return
	}
	if isPlayback(r) {
		s.servePlayback(w, r)
		return
	}
	req, aerr := s.authenticate(r)
	call := Call{Action: req.action, Params: req.loggable(), AccessKeyID: req.accessKeyID, Signature: req.scheme, Time: s.now()}
	var body map[string]any
	if aerr == nil {
		aerr = s.admit(req)
	}
	if aerr == nil {
		body, aerr = s.dispatch(req)
		if aerr == nil && req.failAfter && isWrite(req.action) {
			call.Committed = true
			aerr = fail(http.StatusInternalServerError, "InternalErr", "Internal error, please try again later.")
		}
	}
	s.mu.Lock()
	s.reqSeq++
	requestID := fmt.Sprintf("EMU%05d-0000-4000-8000-%012d", s.reqSeq%100000, s.reqSeq)
	s.mu.Unlock()
	if aerr != nil {
		call.Status, call.Code = aerr.Status, aerr.Code
		for k, v := range aerr.header {
			w.Header()[k] = v
		}
		writeJSON(w, aerr.Status, map[string]string{"RequestId": requestID, "HostId": s.hostID, "Code": aerr.Code,
			"Message": aerr.Message, "Recommend": "https://api.alibabacloud.com/troubleshoot?q=" + aerr.Code + "&product=live"})
		s.log.Info("call refused", "action", req.action, "status", aerr.Status, "code", aerr.Code)
	} else {
		call.Status = http.StatusOK
		body["RequestId"] = requestID
		writeJSON(w, http.StatusOK, body)
		s.log.Debug("call served", "action", req.action)
	}
	s.mu.Lock()
	s.calls = append(s.calls, call)
	s.mu.Unlock()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// admit applies the per-AccessKey quota and the injected faults.
func (s *Server) admit(req *request) *apiError {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.quota.take(req.accessKeyID, req.action, now); e != nil {
		return e
	}
	if s.opts.FailRate > 0 && s.rnd.Float64() < s.opts.FailRate {
		switch s.kinds[s.rnd.Intn(len(s.kinds))] {
		case FaultInternal:
			return fail(http.StatusInternalServerError, "InternalErr", "Internal error, please try again later.")
		case FaultUnavailable:
			return fail(http.StatusServiceUnavailable, "ServiceUnavailable", "The request has failed due to a temporary failure of the server.")
		case FaultThrottling:
			e := fail(http.StatusBadRequest, "Throttling", "Request was denied due to request throttling.")
			e.header = http.Header{"X-Ratelimit-User-Api": {"Limit:50,Remain:0,TimeLeft:200"}}
			return e
		case FaultCommitThenFail:
			req.failAfter = true
		default:
			d := s.latency
			s.mu.Unlock()
			time.Sleep(d)
			s.mu.Lock()
		}
	}
	return nil
}

func (s *Server) dispatch(req *request) (map[string]any, *apiError) {
	if req.version == KMSVersion {
		return s.kms(req)
	}
	s.mu.Lock()
	s.settle()
	s.mu.Unlock()
	if req.version != "2016-11-01" {
		return nil, fail(http.StatusBadRequest, "InvalidVersion", "Specified parameter Version is not valid.")
	}
	switch req.action {
	case "AddLivePackageConfig":
		return s.putConfig(req, false)
	case "UpdateLivePackageConfig":
		return s.putConfig(req, true)
	case "DeleteLivePackageConfig":
		return s.deleteConfig(req)
	case "DescribeLivePackageConfig":
		return s.describeConfigs(req)
	case "DescribeLiveDomainDetail":
		return s.domainDetail(req)
	case "DescribeLiveUserDomains":
		return s.userDomains(req)
	case "DescribeLiveStreamsOnlineList":
		return s.onlineList(req)
	case "DescribeLiveStreamsPublishList":
		return s.publishList(req)
	case "":
		return nil, fail(http.StatusBadRequest, "MissingParameter", "The input parameter \"Action\" that is mandatory for processing this request is not supplied.")
	}
	return nil, fail(http.StatusNotFound, "InvalidAction.NotFound", "Specified api is not found, please check your url and method.")
}

// domain finds a domain; the caller holds s.mu.
func (s *Server) domain(name string) (*Domain, *apiError) {
	for i := range s.state.Domains {
		if strings.EqualFold(s.state.Domains[i].DomainName, name) {
			return &s.state.Domains[i], nil
		}
	}
	return nil, fail(http.StatusNotFound, "InvalidDomain.NotFound", "The domain provided does not exist in our records.")
}

func isWrite(action string) bool {
	return strings.HasPrefix(action, "Add") || strings.HasPrefix(action, "Update") || strings.HasPrefix(action, "Delete")
}

func trimmed(s string) string { return strings.TrimSpace(s) }

// ParseFaultKinds reads a comma-separated list of fault kinds (the -fail-kinds flag); empty
// means all.
func ParseFaultKinds(list string) ([]string, error) {
	var kinds []string
	for _, k := range strings.Split(list, ",") {
		k = strings.TrimSpace(k)
		if k == "" {
			continue
		}
		found := false
		for _, known := range faultKinds {
			found = found || k == known
		}
		if !found {
			return nil, fmt.Errorf("emulator: fault kind %q is not one of %s", k, strings.Join(faultKinds, ", "))
		}
		kinds = append(kinds, k)
	}
	return kinds, nil
}
