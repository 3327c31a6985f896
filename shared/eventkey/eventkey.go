// Package eventkey makes a delivered event a replay: one record per trigger key, in progress
// under a fenced lease while a run works on it, then completed with its result and payload hash
// for the replay window (DESIGN §10). It holds no notices: a result names the notices its run
// caused, and their delivery is the outbox's business (STATE.md invariant 7).
package eventkey

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/livepack/livepack/shared/store"
)

// Errors of Acquire, Renew, Complete and Release; callers branch on them with errors.Is.
var (
	// ErrInProgress: another run holds a live lease on the key.
	ErrInProgress = errors.New("eventkey: key in progress")
	// ErrPayloadMismatch: the key was seen with a different payload.
	ErrPayloadMismatch = errors.New("eventkey: key reused with a different payload")
	// ErrFenced: the caller's lease is no longer the key's (it lapsed and another run took the
	// key over): the caller must stop writing.
	ErrFenced = errors.New("eventkey: lease taken over by another run")
)

// Lease and retention periods.
const (
	// LeaseTTL is a run's lease: short, so a crashed run's key is free within seconds; a live
	// run renews it every LeaseTTL/3.
	LeaseTTL = 12 * time.Second
	// ReplayWindow is how long a completed key answers with its stored result.
	ReplayWindow = 24 * time.Hour
	// inProgressTTL bounds a record whose run vanished without releasing it.
	inProgressTTL = time.Hour
)

// Record is one trigger key's record.
type Record struct {
	// Completed: the run finished and Result is what a replay returns.
	Completed   bool            `json:"completed,omitempty"`
	PayloadHash string          `json:"hash"`
	Holder      string          `json:"holder,omitempty"`
	Fence       int64           `json:"fence,omitempty"`
	LeaseUntil  time.Time       `json:"leaseUntil,omitzero"`
	Result      json.RawMessage `json:"result,omitempty"`
}

// Keys keeps trigger keys in a store.
type Keys struct {
	s   store.Store
	now func() time.Time
}

// New returns the trigger keys kept in s, on the clock now (nil: time.Now).
func New(s store.Store, now func() time.Time) *Keys {
	if now == nil {
		now = time.Now
	}
	return &Keys{s: s, now: now}
}

// Lease is a held key.
type Lease struct {
	Key    string
	Holder string
	// Fence counts the runs that took the key: a run that took over a lapsed lease has a higher
	// one than the run it replaced.
	Fence int64
	// TookOver: the key was held by a run whose lease lapsed (it crashed or timed out).
	TookOver bool

	// hash and version are the record as the holder last wrote it: while the store still
	// shows that version, the record is the holder's own, so renewing or completing it needs
	// no read first.
	hash    string
	version atomic.Int64
}

func storeKey(key string) string { return "key/" + key }

// Acquire takes key's lease for holder, or returns the completed record (a replay; no lease is
// taken). A replay costs one read.
func (k *Keys) Acquire(ctx context.Context, key, hash, holder string) (*Lease, *Record, error) {
	var lease *Lease
	var done *Record
	it, err := store.Modify(ctx, k.s, storeKey(key), func(cur *store.Item) (store.Change, error) {
		lease, done = nil, nil
		now := k.now()
		rec := Record{PayloadHash: hash}
		took := false
		if cur != nil {
			if err := json.Unmarshal(cur.Value, &rec); err != nil {
				return store.Change{}, fmt.Errorf("eventkey: record of %s: %w", key, err)
			}
			switch {
			case rec.PayloadHash != hash:
				return store.Change{}, fmt.Errorf("eventkey: %s: %w", key, ErrPayloadMismatch)
			case rec.Completed:
				done = &rec
				return store.Change{Keep: true}, nil
			case rec.LeaseUntil.After(now) && rec.Holder != holder:
				return store.Change{}, &store.HeldError{Err: ErrInProgress, Until: rec.LeaseUntil}
			}
			took = rec.Holder != holder
		}
		rec.Holder, rec.Fence, rec.LeaseUntil = holder, rec.Fence+1, now.Add(LeaseTTL)
		lease = &Lease{Key: key, Holder: holder, Fence: rec.Fence, TookOver: took, hash: hash}
		b, err := json.Marshal(rec)
		return store.Change{Value: b, Expires: now.Add(inProgressTTL)}, err
	})
	if err != nil {
		return nil, nil, err
	}
	if lease != nil {
		lease.version.Store(it.Version)
	}
	return lease, done, nil
}

// held runs a write of the holder of l: the record must still be l's.
func (k *Keys) held(ctx context.Context, l *Lease, f func(rec *Record, now time.Time) store.Change) error {
	if v := l.version.Load(); v != 0 {
		ch := f(&Record{PayloadHash: l.hash, Holder: l.Holder, Fence: l.Fence}, k.now())
		var nv int64
		var err error
		if ch.Delete {
			err = k.s.Delete(ctx, storeKey(l.Key), v)
		} else {
			nv, err = k.s.Update(ctx, storeKey(l.Key), v, ch.Value, ch.Expires)
		}
		if !errors.Is(err, store.ErrConflict) {
			if err == nil {
				l.version.Store(nv)
			}
			return err
		}
		// The record moved on (a lost answer, another run): read it and decide.
	}
	it, err := store.Modify(ctx, k.s, storeKey(l.Key), func(cur *store.Item) (store.Change, error) {
		if cur == nil {
			return store.Change{}, fmt.Errorf("eventkey: %s: record gone: %w", l.Key, ErrFenced)
		}
		var rec Record
		if err := json.Unmarshal(cur.Value, &rec); err != nil {
			return store.Change{}, fmt.Errorf("eventkey: record of %s: %w", l.Key, err)
		}
		if rec.Completed || rec.Holder != l.Holder || rec.Fence != l.Fence {
			return store.Change{}, fmt.Errorf("eventkey: %s: %w", l.Key, ErrFenced)
		}
		return f(&rec, k.now()), nil
	})
	if err == nil {
		l.version.Store(it.Version)
	}
	return err
}

// Renew extends l (the heartbeat of a run at work).
func (k *Keys) Renew(ctx context.Context, l *Lease) error {
	return k.held(ctx, l, func(rec *Record, now time.Time) store.Change {
		rec.LeaseUntil = now.Add(LeaseTTL)
		b, _ := json.Marshal(rec)
		return store.Change{Value: b, Expires: now.Add(inProgressTTL)}
	})
}

// Complete records the run's result: a redelivery of the event replays it for ReplayWindow.
func (k *Keys) Complete(ctx context.Context, l *Lease, result json.RawMessage) error {
	return k.held(ctx, l, func(rec *Record, now time.Time) store.Change {
		rec.Completed, rec.Result, rec.Holder, rec.LeaseUntil = true, result, "", time.Time{}
		b, _ := json.Marshal(rec)
		return store.Change{Value: b, Expires: now.Add(ReplayWindow)}
	})
}

// Release gives the key up after a run that must be redone: the next delivery starts afresh
// (from a fresh Describe; the outbox keeps what the run changed).
func (k *Keys) Release(ctx context.Context, l *Lease) error {
	return k.held(ctx, l, func(*Record, time.Time) store.Change { return store.Change{Delete: true} })
}

// RetryAfter returns when the lease err reports ends (zero when err carries none).
func RetryAfter(err error) time.Time { return store.HeldUntil(err) }

// NewHolder draws a run's holder token.
func NewHolder() string { return store.NewToken() }
