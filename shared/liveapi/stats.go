package liveapi

import (
	"context"
	"sync/atomic"
)

// Stats counts what an invocation spent on the Live API: the metrics record, the reconcile
// summary and the benchmarks read the calls actually sent (retries included), not the logical
// operations, because the quota counts every request the API receives.
type Stats struct {
	// Calls is every request sent, retries included.
	Calls atomic.Int64
	// Throttles is the requests the API refused with a Throttling* code.
	Throttles atomic.Int64
	// Retries is the attempts made after a retryable failure.
	Retries atomic.Int64
}

type statsKey struct{}

// WithStats returns ctx counting every Live API call made with it (or a context derived from
// it) into s. Counters are atomic: concurrent calls may share one Stats.
func WithStats(ctx context.Context, s *Stats) context.Context {
	return context.WithValue(ctx, statsKey{}, s)
}

// StatsFrom returns the Stats WithStats attached to ctx, or nil.
func StatsFrom(ctx context.Context) *Stats {
	s, _ := ctx.Value(statsKey{}).(*Stats)
	return s
}
