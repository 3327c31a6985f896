// Package quota spends the Live API's call budgets so that livepack never draws
// Throttling.User, yet never paces calls the quota would allow at once. A budget is N calls in
// any 60 s: a call goes out at once while the window holds fewer than N, and waits for the
// oldest call to leave the window otherwise (a sliding-window log, exact, per process or shared
// by every instance through one item per budget on the state store).
//
// Two refinements sit on top of the window:
//   - priority lanes: the scheduled reconcile (Scheduled lane) may only fill the window up to
//     N minus a reserved share, so interactive triggers always find calls left;
//   - AIMD: when the API still answers Throttling* (another client spends the same account, or
//     the API smooths per second), the limiter pauses for the API's hint and caps calls per
//     second at half of what the last second held, then raises that cap by about one call per
//     second again.
//
// Waits never outlast the caller's context: a call the budget cannot cover before the deadline
// fails at once with ErrExhausted, so a function answers "retry later" instead of timing out.
package quota

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrExhausted: the quota has no call to spare before the caller's deadline. Webhooks answer it
// with 429 and Retry-After.
var ErrExhausted = errors.New("quota: exhausted before the deadline")

// Lane is a call's priority.
type Lane uint8

// Lanes.
const (
	// Interactive is every trigger someone is waiting on: webhook, domain-created, bus, direct.
	Interactive Lane = iota
	// Scheduled is the scheduled reconcile: it uses only what Interactive leaves.
	Scheduled
)

// String names the lane.
func (l Lane) String() string {
	if l == Scheduled {
		return "scheduled"
	}
	return "interactive"
}

type laneKey struct{}

// WithLane returns ctx whose Live API calls spend the budget in lane l.
func WithLane(ctx context.Context, l Lane) context.Context {
	return context.WithValue(ctx, laneKey{}, l)
}

// LaneOf returns the lane WithLane set on ctx; Interactive by default.
func LaneOf(ctx context.Context) Lane {
	l, _ := ctx.Value(laneKey{}).(Lane)
	return l
}

// DefaultReserve is the share of each budget kept for interactive triggers: the scheduled
// reconcile fills at most 80% of any window.
const DefaultReserve = 0.2

// DefaultWindow is the span a budget is counted over: the API's minute plus a second of slack
// for the time between admitting a call and the API receiving it, so the API's own window never
// sees more than the budget.
const DefaultWindow = 61 * time.Second

// documented are the per-action quotas the API pages give (calls per minute) where they exceed
// the account's 300/min; every other action (the package-config family) shares the configured
// rate, the conservative reading of pages that say 300/min and 300/s in different languages.
var documented = map[string]int{
	"DescribeLiveStreamsOnlineList": 10000,
	"DescribeLiveDomainDetail":      3000, // 50/s
	"DescribeLiveUserDomains":       6000, // 100/s
}

// Budget returns the budget an action spends from: its group name and calls per minute, given
// the configured rate. Actions with a documented quota of their own get it (or rate, when
// higher: an account whose quota was raised); the rest share one budget of rate.
func Budget(action string, rate int) (group string, perMinute int) {
	rate = max(1, rate)
	if q, ok := documented[action]; ok {
		return action, max(q, rate)
	}
	return "package", rate
}

// Option adjusts a Limiter.
type Option func(*settings)

type settings struct {
	reserve float64
	window  time.Duration
	now     func() time.Time
}

// WithReserve sets the share of every budget kept for the Interactive lane, from 0 to 0.9.
func WithReserve(share float64) Option {
	return func(s *settings) { s.reserve = min(max(share, 0), 0.9) }
}

// WithWindow sets the span budgets are counted over (tests shorten it; the rate stays per
// window).
func WithWindow(d time.Duration) Option { return func(s *settings) { s.window = d } }

// WithClock sets the clock a limiter judges its windows by (tests). A shared limiter's items
// still expire on the store's own clock; the window model forgets idle state by this one.
func WithClock(now func() time.Time) Option { return func(s *settings) { s.now = now } }

// backend admits calls and takes throttle feedback for one budget state (this process's, or
// the store's every instance shares).
type backend interface {
	// admit admits one call of group in the given limits at once, or returns how long to wait
	// before asking again.
	admit(ctx context.Context, group string, l limits) (time.Duration, error)
	// throttled records that the API refused a call of group for quota.
	throttled(ctx context.Context, group string, capacity int, retryAfter time.Duration) error
}

// limits are one admission's bounds.
type limits struct {
	// capacity is the budget per window; laneLimit is what this lane may fill of it.
	capacity, laneLimit int
	// share is this lane's part of the per-second cap AIMD sets.
	share float64
}

// Limiter spends per-action budgets in lanes. It implements liveapi.Limiter.
type Limiter struct {
	rate int
	set  settings
	st   backend
}

func newLimiter(perMinute int, st backend, opts []Option) *Limiter {
	s := settings{reserve: DefaultReserve, window: DefaultWindow, now: time.Now}
	for _, o := range opts {
		o(&s)
	}
	return &Limiter{rate: max(1, perMinute), set: s, st: st}
}

// limitsFor returns the bounds of a call of action in lane.
func (l *Limiter) limitsFor(action string, lane Lane) (string, limits) {
	group, capacity := Budget(action, l.rate)
	lim := limits{capacity: capacity, laneLimit: capacity, share: 1}
	if lane == Scheduled {
		lim.share = 1 - l.set.reserve
		lim.laneLimit = max(1, int(math.Floor(float64(capacity)*lim.share)))
	}
	return group, lim
}

// Wait spends one call of action's budget in ctx's lane, sleeping while the window is full,
// or fails at once with ErrExhausted when the call could not be due before ctx's deadline.
func (l *Limiter) Wait(ctx context.Context, action string) error {
	group, lim := l.limitsFor(action, LaneOf(ctx))
	for {
		wait, err := l.st.admit(ctx, group, lim)
		if err != nil && ctx.Err() != nil {
			// The deadline cut the shared budget's read or write short: the call could not be
			// admitted in time, the same answer as a window that stays full.
			return fmt.Errorf("%w: %w", ErrExhausted, err)
		}
		if err != nil {
			return err
		}
		if wait <= 0 {
			return nil
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return fmt.Errorf("next %s call due in %s: %w", group, wait.Round(time.Millisecond), ErrExhausted)
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

// Throttled records that the API refused a call of action for quota, with the wait it asked
// for (0 when it named none): every caller of that budget pauses that long (at least a second)
// and the per-second cap is halved.
func (l *Limiter) Throttled(action string, retryAfter time.Duration) {
	group, capacity := Budget(action, l.rate)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = l.st.throttled(ctx, group, capacity, max(retryAfter, time.Second))
}
