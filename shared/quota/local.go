package quota

import (
	"context"
	"math"
	"sort"
	"sync"
	"time"
)

// NewLocal returns a limiter of perMinute calls per window (at least one) for this process
// alone: enough for the CLI and a single instance.
func NewLocal(perMinute int, opts ...Option) *Limiter {
	l := newLimiter(perMinute, nil, opts)
	l.st = &local{window: l.set.window, now: l.set.now, groups: map[string]*window{}}
	return l
}

type local struct {
	window time.Duration
	now    func() time.Time
	mu     sync.Mutex
	groups map[string]*window
}

func (s *local) group(name string, capacity int) *window {
	w, ok := s.groups[name]
	if !ok {
		w = &window{span: s.window, cwnd: float64(capacity)}
		s.groups[name] = w
	}
	return w
}

func (s *local) admit(_ context.Context, group string, l limits) (time.Duration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.group(group, l.capacity).admit(s.now(), l), nil
}

func (s *local) throttled(_ context.Context, group string, capacity int, retryAfter time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.group(group, capacity).throttled(s.now(), capacity, retryAfter)
	return nil
}

// window is one budget's state: the admission log of the last span, the AIMD per-second cap
// and the pause a throttle imposed. A local limiter keeps it in memory; a shared one keeps it
// in one store item (shared.go), so both follow these rules and no other.
type window struct {
	span time.Duration
	// log holds admission times, oldest first, none older than span.
	log []time.Time
	// cwnd caps calls per second; at capacity it caps nothing the window would not.
	cwnd float64
	// pause holds every call until then; decreased is when cwnd was last halved.
	pause, decreased time.Time
	// touched is when the state last changed for a call: an admission or a throttle.
	touched time.Time
}

// idleGrace is how long past its span (and past its pause) a budget must sit untouched before
// its AIMD state is forgotten.
const idleGrace = time.Second

// forgetAt is when the state is forgotten if nothing touches it: a span (and a second) after
// the last admission or throttle, and a second after the pause ends. The cap and the pause
// describe what the API refused in the last second it saw calls; once a whole window has gone
// by without a call, the API's own count has emptied too, and the budget starts afresh as a new
// one would, at its full cap. A shared limiter's item expires then as well (a zero time: there
// is nothing to forget).
func (w *window) forgetAt() time.Time {
	if w.touched.IsZero() {
		return time.Time{}
	}
	at := w.touched.Add(w.span + idleGrace)
	if p := w.pause.Add(idleGrace); !w.pause.IsZero() && p.After(at) {
		at = p
	}
	return at
}

// forget resets the state when it has sat idle until forgetAt.
func (w *window) forget(now time.Time, capacity int) {
	if at := w.forgetAt(); !at.IsZero() && !now.Before(at) {
		*w = window{span: w.span, cwnd: float64(capacity), log: w.log[:0]}
	}
}

// prune drops admissions older than span; it copies when the dead prefix is large, so the
// backing array does not grow without bound.
func (w *window) prune(now time.Time) {
	i := sort.Search(len(w.log), func(i int) bool { return w.log[i].After(now.Add(-w.span)) })
	if i > len(w.log)/2 {
		w.log = append(w.log[:0:0], w.log[i:]...)
	} else {
		w.log = w.log[i:]
	}
}

// since counts admissions after t.
func (w *window) since(t time.Time) int {
	return len(w.log) - sort.Search(len(w.log), func(i int) bool { return w.log[i].After(t) })
}

// admit admits one call at now and returns 0, or returns how long until one could be admitted.
func (w *window) admit(now time.Time, l limits) time.Duration {
	w.forget(now, l.capacity)
	if now.Before(w.pause) {
		return w.pause.Sub(now)
	}
	w.prune(now)
	n := len(w.log)
	if n >= l.laneLimit {
		// The call waits for the oldest admissions to leave until fewer than laneLimit remain.
		return w.log[n-l.laneLimit].Add(w.span).Sub(now)
	}
	if w.cwnd < float64(l.capacity) {
		perSecond := max(1, int(math.Floor(w.cwnd*l.share)))
		if w.since(now.Add(-time.Second)) >= perSecond {
			return w.log[n-perSecond].Add(time.Second).Sub(now)
		}
		// Additive increase: about one call per second more for each second of calls.
		w.cwnd = min(float64(l.capacity), w.cwnd+1/w.cwnd)
	}
	// Instances sharing a budget read the time from their own clocks: an admission is logged
	// no earlier than the last, so the log stays in order (and a call is counted late, never
	// early).
	if n > 0 && now.Before(w.log[n-1]) {
		now = w.log[n-1]
	}
	w.log = append(w.log, now)
	w.touched = now
	return 0
}

// throttled halves the per-second cap (once a second at most: the calls in flight when the
// API started refusing report together) and pauses every call for retryAfter.
func (w *window) throttled(now time.Time, capacity int, retryAfter time.Duration) {
	w.forget(now, capacity)
	w.touched = now
	if now.Sub(w.decreased) >= time.Second {
		w.prune(now)
		recent := float64(w.since(now.Add(-time.Second)))
		w.cwnd = max(1, min(w.cwnd, recent)/2)
		w.decreased = now
	}
	if p := now.Add(retryAfter); p.After(w.pause) {
		w.pause = p
	}
}
