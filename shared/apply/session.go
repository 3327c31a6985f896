package apply

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/livepack/livepack/shared/classify"
	"github.com/livepack/livepack/shared/liveapi"
	"github.com/livepack/livepack/shared/outbox"
)

// One run's view of the API: the domains it read, once each, and the notices and intents it
// holds.

// Play and ingest domain types (DescribeLiveDomainDetail's LiveDomainType).
const (
	playDomain   = "liveVideo"
	ingestDomain = "liveEdge"
)

// session is one invocation's view of the API: each domain's detail, configs and online
// streams are read at most once, and the notices of the changes it makes or joins are
// collected in order. A policy applied alongside others works in a session of its own (sub),
// which shares the domains read, the lock and the intents in flight, and collects its notices
// apart, so they are reported in the order a sequential run would report them.
type session struct {
	e       *Engine
	holder  string
	log     *slog.Logger
	domains map[string]*domainInfo

	mu *sync.Mutex
	// intents are the open intents of the writes in flight: the heartbeat renews them.
	intents map[string]outbox.Intent
	// owed are the delivery keys of the changes this run committed; notes the notices to report.
	owed  []string
	notes []note
}

// note is a notice a run reports: one it committed (with the event, for a result without
// sinks), one whose change another run made for it (joined), or one it could not record.
type note struct {
	id      string
	event   json.RawMessage
	joined  bool
	pending string
}

func newSession(e *Engine, holder string, log *slog.Logger) *session {
	return &session{e: e, holder: holder, log: log, domains: map[string]*domainInfo{}, mu: new(sync.Mutex), intents: map[string]outbox.Intent{}}
}

// sub returns a session sharing s's domains, lock and intents in flight (so the heartbeat
// renews its intents too), with notices of its own: absorb hands them to s.
func (s *session) sub() *session {
	return &session{e: s.e, holder: s.holder, log: s.log, domains: s.domains,
		mu: s.mu, intents: s.intents}
}

// absorb appends what a sub-session collected to s's notices.
func (s *session) absorb(c *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.owed = append(s.owed, c.owed...)
	s.notes = append(s.notes, c.notes...)
	c.owed, c.notes = nil, nil
}

// lookup returns what the session read of a domain, if it did.
func (s *session) lookup(name string) (*domainInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	di, ok := s.domains[name]
	return di, ok
}

// keep records what the session read of a domain; forget drops it.
func (s *session) keep(name string, di *domainInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.domains[name] = di
}

func (s *session) forget(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.domains, name)
}

type domainInfo struct {
	d liveapi.Domain
	// detailed: d came from DescribeLiveDomainDetail (DescribeLiveUserDomains has no Scope).
	detailed bool
	err      error
	configs  map[[2]string]liveapi.PackageConfig
	cfgErr   error
	// online is read once (onOnce), possibly while the domain's first write is in flight.
	online []liveapi.Stream
	onErr  error
	onOnce sync.Once
}

// domain looks the domain up once per invocation.
func (s *session) domain(ctx context.Context, name string) *domainInfo {
	if di, ok := s.lookup(name); ok {
		return di
	}
	di := &domainInfo{detailed: true}
	di.d, di.err = s.e.api.DescribeDomain(ctx, name)
	if di.err == nil && di.d.LiveDomainType == playDomain && di.d.DomainStatus == "configuring" {
		di.err = errConfiguring
	}
	s.keep(name, di)
	return di
}

// read gets what planning a domain's policies needs: its detail, then the configs of a play
// domain. The configs wait for the detail because only a play domain has any: reading them
// alongside would spend a call on every ingest or unknown domain a document names.
func (s *session) read(ctx context.Context, name string) *domainInfo {
	di := s.domain(ctx, name)
	if di.err == nil && di.d.LiveDomainType == playDomain {
		_ = s.loadConfigs(ctx, name, di, false) // a failure is applyOne's to report
	}
	return di
}

// readAll reads the named domains as read does, each domain alongside the others.
func (s *session) readAll(ctx context.Context, names []string) {
	var g errgroup.Group
	g.SetLimit(domainWorkers)
	for _, name := range names {
		g.Go(func() error { s.read(ctx, name); return nil })
	}
	_ = g.Wait()
}

// errConfiguring: a domain just added needs minutes of configuration before it takes configs.
var errConfiguring = fmt.Errorf("domain is still configuring: %w", classify.ErrDomainNotReady)

func isDomainNotFound(err error) bool {
	var ae *liveapi.Error
	return errors.As(err, &ae) && strings.HasPrefix(ae.Code, "InvalidDomain") && errors.Is(err, liveapi.ErrNotFound)
}

// loadConfigs reads every page of the domain's configs; fresh forces a new read (after a
// concurrent writer showed up).
func (s *session) loadConfigs(ctx context.Context, name string, di *domainInfo, fresh bool) error {
	if di.configs != nil && !fresh {
		return nil
	}
	cs, err := s.e.api.DescribePackageConfigs(ctx, name)
	if err != nil {
		di.cfgErr = err
		return err
	}
	di.configs = make(map[[2]string]liveapi.PackageConfig, len(cs))
	for _, c := range cs {
		di.configs[[2]string{c.AppName, c.StreamName}] = c
	}
	return nil
}

// onlineStreams lists the domain's online streams once; a caller arriving while the listing
// is in flight waits for it.
func (s *session) onlineStreams(ctx context.Context, name string, di *domainInfo) []liveapi.Stream {
	di.onOnce.Do(func() {
		di.online, di.onErr = s.e.api.OnlineStreams(ctx, name)
		if di.onErr != nil {
			s.log.Warn("listing online streams failed; the notice lists none", "domain", name, "err", di.onErr)
		}
	})
	return di.online
}
