// Package store is the one contract every piece of livepack's state is written on (DESIGN §10):
// event keys and their leases, the outbox of changes and deliveries, the reconcile cursor and
// the shared quota. A backend only translates five operations (get, create if absent, update or
// delete if the version matches, list by key prefix in order) and expiry; every protocol lives
// once, above this interface, so a guarantee proved on one backend holds on all of them.
//
// Keys are "kind/rest": the part before the first '/' names a kind of record and is the unit a
// backend may partition by (a DynamoDB partition key, a Tablestore primary-key column, a bbolt
// bucket, a Redis sorted set); List's prefix always includes it. A store is opened for one
// namespace and never sees another's keys.
package store

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Errors of the contract; callers branch on them with errors.Is.
var (
	// ErrNotFound: Get found no item, or only an expired one.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict: a condition failed. Create found a live item; Update or Delete found no live
	// item or one with another version. The caller reads again and decides afresh.
	ErrConflict = errors.New("store: condition failed")
)

// Item is one stored value.
type Item struct {
	Key   string
	Value []byte
	// Version changes on every write and is never reused for a key: Update and Delete take the
	// version the caller read, so a write based on a stale read fails instead of losing another
	// writer's change.
	Version int64
	// Expires is when the item stops existing for every operation (zero: never). Backends may
	// keep an expired item until a sweep or their own TTL removes it, but never show it.
	Expires time.Time
}

// Live reports whether the item exists at now.
func (it Item) Live(now time.Time) bool { return it.Expires.IsZero() || it.Expires.After(now) }

// Store is the contract. Every method is atomic across every process sharing the store.
type Store interface {
	// Get returns the live item at key, or ErrNotFound.
	Get(ctx context.Context, key string) (Item, error)
	// Create writes a new item at key when no live item is there (an expired one is replaced),
	// and returns its version; ErrConflict when a live item exists.
	Create(ctx context.Context, key string, value []byte, expires time.Time) (int64, error)
	// Update replaces the live item at key whose version is version, and returns the new
	// version; ErrConflict otherwise.
	Update(ctx context.Context, key string, version int64, value []byte, expires time.Time) (int64, error)
	// Delete removes the live item at key whose version is version; ErrConflict otherwise.
	Delete(ctx context.Context, key string, version int64) error
	// List returns up to limit live items whose key starts with prefix and sorts after after
	// ("" from the start), in byte order of their keys. prefix includes the kind and its '/'.
	List(ctx context.Context, prefix, after string, limit int) ([]Item, error)
	// Close releases the store's connections.
	Close() error
}

// NewVersion draws a version: random, so a key deleted and created again never hands out a
// version an old reader still holds.
func NewVersion() int64 {
	for {
		if v := rand.Int64(); v != 0 {
			return v
		}
	}
}

// Kind returns the kind of key (the part before its first '/'), and whether key has one.
func Kind(key string) (kind, rest string, ok bool) {
	kind, rest, ok = strings.Cut(key, "/")
	return kind, rest, ok && kind != ""
}

// Expiry returns the expiry of an item written at now to live for ttl (zero ttl: never).
func Expiry(now time.Time, ttl time.Duration) time.Time {
	if ttl <= 0 {
		return time.Time{}
	}
	return now.Add(ttl)
}

// Change is what a Modify step decides for the item it was shown: write Value (with Expires),
// delete the item (Delete), or leave it as it is (Keep).
type Change struct {
	Value   []byte
	Expires time.Time
	Delete  bool
	Keep    bool
}

// Modify runs a read-modify-write of key until it lands: f sees the live item (nil when there
// is none) and decides; a conflict (another writer in between) reads again and asks f again, up
// to 50 times. It returns the item as written (zero Item after a delete or a Keep of nothing).
// f may return an error to stop; it is returned as is.
func Modify(ctx context.Context, s Store, key string, f func(cur *Item) (Change, error)) (Item, error) {
	for attempt := range 50 {
		var cur *Item
		it, err := s.Get(ctx, key)
		switch {
		case err == nil:
			cur = &it
		case !errors.Is(err, ErrNotFound):
			return Item{}, err
		}
		ch, err := f(cur)
		if err != nil {
			return Item{}, err
		}
		var v int64
		switch {
		case ch.Keep:
			if cur == nil {
				return Item{}, nil
			}
			return *cur, nil
		case ch.Delete && cur == nil:
			return Item{}, nil
		case ch.Delete:
			err = s.Delete(ctx, key, cur.Version)
		case cur == nil:
			v, err = s.Create(ctx, key, ch.Value, ch.Expires)
		default:
			v, err = s.Update(ctx, key, cur.Version, ch.Value, ch.Expires)
		}
		if errors.Is(err, ErrConflict) {
			// Another writer got in between: back off a little, growing, so that many
			// writers of one hot key (a shared quota) take turns instead of colliding again.
			t := time.NewTimer(time.Duration(rand.Int64N(int64(time.Millisecond) << min(attempt, 6))))
			select {
			case <-ctx.Done():
				t.Stop()
				return Item{}, ctx.Err()
			case <-t.C:
			}
			continue
		}
		if err != nil || ch.Delete {
			return Item{}, err
		}
		return Item{Key: key, Value: ch.Value, Version: v, Expires: ch.Expires}, nil
	}
	return Item{}, fmt.Errorf("store: %s: too many concurrent writers: %w", key, ErrConflict)
}

// NewToken draws a random token (a run's holder name, a change id): 128 bits, hex.
func NewToken() string {
	var b [16]byte
	_, _ = crand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// HeldError refuses a caller because another holder's lease is live; it carries the lease's
// end, so the refused caller can say when to try again. Err is the protocol's own sentinel.
type HeldError struct {
	Err   error
	Until time.Time
}

func (e *HeldError) Error() string {
	return e.Err.Error() + " until " + e.Until.UTC().Format(time.RFC3339)
}

// Unwrap exposes the protocol's sentinel to errors.Is.
func (e *HeldError) Unwrap() error { return e.Err }

// HeldUntil returns when the lease err reports ends (zero when err carries none).
func HeldUntil(err error) time.Time {
	var h *HeldError
	if errors.As(err, &h) {
		return h.Until
	}
	return time.Time{}
}
