package liveapi

import (
	"context"
	"time"
)

// PackageConfig is one live package config as DescribeLivePackageConfig reports it.
type PackageConfig struct {
	DomainName      string
	AppName         string
	StreamName      string
	Protocol        string
	SegmentNum      int
	SegmentDuration int
	PartDuration    int
	IgnoreTranscode bool
}

// Domain is what livepack needs to know about a live domain. LiveDomainType is liveVideo for a
// play (streaming) domain and liveEdge for an ingest domain; Scope is domestic, overseas or
// global.
type Domain struct {
	DomainName     string
	LiveDomainType string
	DomainStatus   string
	Region         string
	Scope          string
}

// Stream is one online stream (DescribeLiveStreamsOnlineList).
type Stream struct {
	DomainName  string
	AppName     string
	StreamName  string
	PublishURL  string
	PublishTime string
}

// API is the part of the Live OpenAPI livepack drives. *Client implements it against the real
// service or the emulator; every list method returns every page.
type API interface {
	AddPackageConfig(ctx context.Context, c PackageConfig) error
	UpdatePackageConfig(ctx context.Context, c PackageConfig) error
	DeletePackageConfig(ctx context.Context, domain, app, stream string) error
	DescribePackageConfigs(ctx context.Context, domain string) ([]PackageConfig, error)
	DescribeDomain(ctx context.Context, domain string) (Domain, error)
	// ListDomains returns the account's domains of one LiveDomainType (empty: all) and one
	// status (empty: all), from DescribeLiveUserDomains.
	ListDomains(ctx context.Context, liveDomainType, status string) ([]Domain, error)
	// DomainsPage reads one page of the same listing (see pages.go).
	DomainsPage(ctx context.Context, liveDomainType, status string, pageNumber int) (DomainPage, error)
	OnlineStreams(ctx context.Context, domain string) ([]Stream, error)
	// OnlinePage reads one light page of the domain's online raw streams (see online.go).
	OnlinePage(ctx context.Context, domain string, pageNum int) (OnlinePage, error)
}

// Limiter spends the API quota. shared/quota implements it.
type Limiter interface {
	// Wait spends one call of action's budget, waiting at most as long as ctx allows.
	Wait(ctx context.Context, action string) error
	// Throttled reports that the API refused a call of action for quota, with the wait it
	// asked for (0: none named), so the limiter slows down for every caller, not just this one.
	Throttled(action string, retryAfter time.Duration)
}
