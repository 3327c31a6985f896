// Package quota spends the Live API's call budget (300 calls per minute per account) so that
// livepack never draws Throttling.User: per process with golang.org/x/time/rate, or shared by
// every instance through one Redis (GCRA, atomic in a Lua script). Both wait only as long as
// the caller's context allows and otherwise fail fast with ErrExhausted, so a function answers
// "retry later" instead of timing out.
package quota

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"
)

// ErrExhausted: the quota has no call to spare before the caller's deadline. Webhooks answer it
// with 429 and Retry-After.
var ErrExhausted = errors.New("quota: exhausted before the deadline")

// burst is how many calls may go at once after a quiet spell: a second's worth, so a burst
// never outruns the per-minute budget by more than one second's share.
func burst(perMinute int) int { return max(1, perMinute/60) }

// atLeastOne treats a budget below one call per minute as one: a zero budget would block
// every call forever (or divide by zero) instead of failing fast.
func atLeastOne(perMinute int) int { return max(1, perMinute) }

// Local is a per-process budget: enough for the CLI and a single instance, which need no
// shared store to stay under the account's limit.
type Local struct {
	lim *rate.Limiter
}

// NewLocal returns a budget of perMinute calls per minute (at least one), with a second's
// worth of burst so a quiet process does not hoard a minute's calls.
func NewLocal(perMinute int) *Local {
	perMinute = atLeastOne(perMinute)
	return &Local{lim: rate.NewLimiter(rate.Limit(float64(perMinute)/60), burst(perMinute))}
}

// Wait spends one call, sleeping until it is due, or fails at once with ErrExhausted when it
// would be due only after ctx's deadline.
func (l *Local) Wait(ctx context.Context) error {
	r := l.lim.Reserve()
	if !r.OK() {
		return fmt.Errorf("no call can ever be due: %w", ErrExhausted)
	}
	delay := r.Delay()
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < delay {
		r.Cancel()
		return fmt.Errorf("next call due in %s: %w", delay.Round(time.Millisecond), ErrExhausted)
	}
	if delay == 0 {
		return nil
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		r.Cancel()
		return fmt.Errorf("%w: %w", ErrExhausted, ctx.Err())
	}
}

// Redis is a budget shared through Redis by every process using the same key: the account's
// limit is global, so scaled-out instances must draw from one budget, not one each.
type Redis struct {
	rdb       redis.UniversalClient
	key       string
	interval  time.Duration
	tolerance time.Duration
}

// NewRedis returns a shared budget of perMinute calls per minute (at least one) kept at key;
// every limiter built with the same Redis and key spends the same budget.
func NewRedis(rdb redis.UniversalClient, key string, perMinute int) *Redis {
	perMinute = atLeastOne(perMinute)
	interval := time.Minute / time.Duration(perMinute)
	return &Redis{rdb: rdb, key: key, interval: interval, tolerance: interval * time.Duration(burst(perMinute)-1)}
}

// gcra admits a call when the theoretical arrival time (TAT) is no further ahead than the
// burst tolerance; it returns 0, or the ms to wait. Redis's own clock is the one clock every
// instance shares.
var gcra = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allow_at = tat - tolerance
if now < allow_at then
  return math.ceil((allow_at - now) / 1000)
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1000)
return 0
`)

// Wait spends one call of the shared budget, like Local.Wait: it sleeps the retry-after the
// script names while the deadline allows, and fails fast with ErrExhausted otherwise.
func (q *Redis) Wait(ctx context.Context) error {
	for {
		ms, err := gcra.Run(ctx, q.rdb, []string{q.key}, q.interval.Microseconds(), q.tolerance.Microseconds()).Int64()
		if err != nil {
			return fmt.Errorf("quota: redis: %w", err)
		}
		if ms == 0 {
			return nil
		}
		wait := time.Duration(ms) * time.Millisecond
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return fmt.Errorf("next shared call due in %s: %w", wait, ErrExhausted)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w: %w", ErrExhausted, ctx.Err())
		}
	}
}
