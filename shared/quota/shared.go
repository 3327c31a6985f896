package quota

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/livepack/livepack/shared/store"
)

// NewShared returns a limiter of perMinute calls per window (at least one) shared by every
// limiter built on the same store (the same namespace of the same backend) with the same key:
// the account's quota is global, so scaled-out instances draw from one budget, not one each.
//
// Each budget group is one item, key/GROUP ("quota" when key is empty), holding the window
// state the local limiter keeps in memory; every admission and throttle is a compare-and-set of
// it (store.Modify), so the rules are the local limiter's own on every backend. Instances judge
// the window by their own clocks: the second DefaultWindow adds to the API's minute covers
// their skew as well as the call's transit.
func NewShared(s store.Store, key string, perMinute int, opts ...Option) *Limiter {
	if key == "" {
		key = "quota"
	}
	l := newLimiter(perMinute, nil, opts)
	l.st = &shared{s: s, key: key, span: l.set.window, now: l.set.now}
	return l
}

type shared struct {
	s    store.Store
	key  string
	span time.Duration
	now  func() time.Time
	// locks holds a mutex per group: this process's calls of one budget take turns, so they
	// race other instances for the item but not each other.
	locks sync.Map
}

func (b *shared) lock(group string) func() {
	m, _ := b.locks.LoadOrStore(group, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// modify runs f on group's window as stored (a fresh one when there is none) and writes it back
// when f says so.
func (b *shared) modify(ctx context.Context, group string, capacity int, f func(w *window, now time.Time) bool) error {
	defer b.lock(group)()
	_, err := store.Modify(ctx, b.s, b.key+"/"+group, func(cur *store.Item) (store.Change, error) {
		w := b.decode(cur, capacity)
		now := b.now()
		if !f(w, now) {
			return store.Change{Keep: true}, nil
		}
		return store.Change{Value: encodeWindow(w), Expires: b.expiry(w, now)}, nil
	})
	if err != nil {
		return fmt.Errorf("quota: %s budget on the state store: %w", group, err)
	}
	return nil
}

// expiry is when the store may drop the item: when the model would forget it (forgetAt), on
// the store's clock, and a minute later, so a store's clock a little ahead of the limiter's
// never drops state the model still holds. Only storage hangs on it: an item the store keeps
// longer is forgotten by the model all the same.
func (b *shared) expiry(w *window, now time.Time) time.Time {
	at := w.forgetAt()
	if at.IsZero() {
		return time.Time{}
	}
	return time.Now().Add(at.Sub(now) + time.Minute)
}

func (b *shared) admit(ctx context.Context, group string, l limits) (time.Duration, error) {
	var wait time.Duration
	err := b.modify(ctx, group, l.capacity, func(w *window, now time.Time) bool {
		wait = w.admit(now, l)
		return wait <= 0
	})
	return wait, err
}

func (b *shared) throttled(ctx context.Context, group string, capacity int, retryAfter time.Duration) error {
	return b.modify(ctx, group, capacity, func(w *window, now time.Time) bool {
		w.throttled(now, capacity, retryAfter)
		return true
	})
}

// windowFormat is the first byte of a stored window.
const windowFormat = 1

// errWindow: a stored window this version cannot read.
var errWindow = errors.New("quota: unreadable budget state")

// decode reads the stored window; none, or one this version cannot read (another format),
// starts afresh: a budget state is at most a window old, and refusing every call for it would
// be worse than one window counted anew.
func (b *shared) decode(cur *store.Item, capacity int) *window {
	if cur != nil {
		if w, err := decodeWindow(cur.Value, b.span); err == nil {
			return w
		}
	}
	return &window{span: b.span, cwnd: float64(capacity)}
}

// encodeWindow writes w compactly: the format, the cap, the pause, the last decrease and the
// last touch (Unix ns, 0 for none), then the log as a count, its first time and the gaps
// between the next ones (varints: a few bytes a call).
func encodeWindow(w *window) []byte {
	out := make([]byte, 0, 33+len(w.log)*5)
	out = append(out, windowFormat)
	out = binary.BigEndian.AppendUint64(out, math.Float64bits(w.cwnd))
	for _, t := range []time.Time{w.pause, w.decreased, w.touched} {
		out = binary.BigEndian.AppendUint64(out, uint64(unixNano(t)))
	}
	out = binary.AppendUvarint(out, uint64(len(w.log)))
	var last int64
	for i, t := range w.log {
		n := t.UnixNano()
		if i == 0 {
			out = binary.AppendVarint(out, n)
		} else {
			out = binary.AppendUvarint(out, uint64(n-last))
		}
		last = n
	}
	return out
}

func decodeWindow(v []byte, span time.Duration) (*window, error) {
	if len(v) < 33 || v[0] != windowFormat {
		return nil, errWindow
	}
	w := &window{span: span, cwnd: math.Float64frombits(binary.BigEndian.Uint64(v[1:]))}
	w.pause = fromUnixNano(int64(binary.BigEndian.Uint64(v[9:])))
	w.decreased = fromUnixNano(int64(binary.BigEndian.Uint64(v[17:])))
	w.touched = fromUnixNano(int64(binary.BigEndian.Uint64(v[25:])))
	rest := v[33:]
	n, k := binary.Uvarint(rest)
	if k <= 0 || n > uint64(len(rest)) {
		return nil, errWindow
	}
	rest = rest[k:]
	w.log = make([]time.Time, 0, n)
	var last int64
	for i := range n {
		var d int64
		if i == 0 {
			d, k = binary.Varint(rest)
		} else {
			var u uint64
			u, k = binary.Uvarint(rest)
			d = last + int64(u)
		}
		if k <= 0 {
			return nil, errWindow
		}
		rest, last = rest[k:], d
		w.log = append(w.log, time.Unix(0, d))
	}
	if math.IsNaN(w.cwnd) || w.cwnd < 1 {
		return nil, errWindow
	}
	return w, nil
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}
