// Package cursor keeps the resumable position of long, repeated work (the scheduled
// reconcile's pass over every domain) in the state store, so every instance sharing the store
// resumes where the last run stopped (DESIGN §10).
//
// A cursor has one holder at a time. Every save extends the lease (a heartbeat, so a long run
// keeps it) and names the holder, so a run whose lease lapsed and was taken over cannot
// overwrite the new holder's progress.
package cursor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/livepack/livepack/shared/store"
)

// Errors of the cursor methods; callers branch on them with errors.Is.
var (
	// ErrHeld: another run holds a live lease on the cursor.
	ErrHeld = errors.New("cursor: held by another run")
	// ErrLost: the caller's lease lapsed and another run took the cursor over.
	ErrLost = errors.New("cursor: lease lost to another run")
)

// ttl bounds how long an abandoned cursor (its policies changed, so its name is never claimed
// again) and its pages and marks linger.
const ttl = 30 * 24 * time.Hour

// Cursors keeps cursors in a store.
type Cursors struct {
	s   store.Store
	now func() time.Time
}

// New returns the cursors kept in s (now nil: time.Now).
func New(s store.Store, now func() time.Time) *Cursors {
	if now == nil {
		now = time.Now
	}
	return &Cursors{s: s, now: now}
}

type record struct {
	Holder     string          `json:"holder,omitempty"`
	LeaseUntil time.Time       `json:"leaseUntil,omitzero"`
	State      json.RawMessage `json:"state,omitempty"`
}

func key(name string) string            { return "cursor/" + name }
func pageKey(name string, n int) string { return "cpage/" + name + "|" + fmt.Sprintf("%09d", n) }
func markKey(name, item string) string  { return "cmark/" + name + "|" + item }
func decode(it *store.Item) (record, error) {
	var r record
	if it == nil {
		return r, nil
	}
	err := json.Unmarshal(it.Value, &r)
	return r, err
}

// Claim takes name's lease for holder until leaseUntil and returns the stored state (nil when
// there is none). A live lease of another holder: ErrHeld, with the lease's end in the message.
func (c *Cursors) Claim(ctx context.Context, name, holder string, leaseUntil time.Time) ([]byte, error) {
	var state []byte
	_, err := store.Modify(ctx, c.s, key(name), func(cur *store.Item) (store.Change, error) {
		r, err := decode(cur)
		if err != nil {
			return store.Change{}, fmt.Errorf("cursor %s: %w", name, err)
		}
		if r.Holder != "" && r.Holder != holder && r.LeaseUntil.After(c.now()) {
			return store.Change{}, &store.HeldError{Err: ErrHeld, Until: r.LeaseUntil}
		}
		r.Holder, r.LeaseUntil = holder, leaseUntil
		state = r.State
		v, err := json.Marshal(r)
		return store.Change{Value: v, Expires: c.now().Add(ttl)}, err
	})
	if err != nil {
		return nil, err
	}
	return state, nil
}

// Save writes state and moves the lease to leaseUntil (zero releases it), only while holder
// holds the cursor: ErrLost otherwise.
func (c *Cursors) Save(ctx context.Context, name, holder string, state []byte, leaseUntil time.Time) error {
	_, err := store.Modify(ctx, c.s, key(name), func(cur *store.Item) (store.Change, error) {
		r, err := decode(cur)
		if err != nil {
			return store.Change{}, fmt.Errorf("cursor %s: %w", name, err)
		}
		if r.Holder != holder {
			return store.Change{}, ErrLost
		}
		r.State, r.LeaseUntil = state, leaseUntil
		if leaseUntil.IsZero() {
			r.Holder = ""
		}
		v, err := json.Marshal(r)
		return store.Change{Value: v, Expires: c.now().Add(ttl)}, err
	})
	return err
}

// PutPage stores page n of the list the cursor walks (a pass's domains).
func (c *Cursors) PutPage(ctx context.Context, name string, n int, items []string) error {
	v, err := json.Marshal(items)
	if err != nil {
		return err
	}
	_, err = store.Modify(ctx, c.s, pageKey(name, n), func(*store.Item) (store.Change, error) {
		return store.Change{Value: v, Expires: c.now().Add(ttl)}, nil
	})
	return err
}

// Page returns page n (nil when it does not exist).
func (c *Cursors) Page(ctx context.Context, name string, n int) ([]string, error) {
	it, err := c.s.Get(ctx, pageKey(name, n))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var items []string
	if err := json.Unmarshal(it.Value, &items); err != nil {
		return nil, fmt.Errorf("cursor %s page %d: %w", name, n, err)
	}
	return items, nil
}

// DropPages removes every page of the cursor: a new pass lists afresh.
func (c *Cursors) DropPages(ctx context.Context, name string) error {
	for {
		items, err := c.s.List(ctx, "cpage/"+name+"|", "", 100)
		if err != nil {
			return err
		}
		for _, it := range items {
			if err := c.s.Delete(ctx, it.Key, it.Version); err != nil && !errors.Is(err, store.ErrConflict) {
				return err
			}
		}
		if len(items) < 100 {
			return nil
		}
	}
}

// Marks returns the marks stored for items (absent items are left out): a short digest per
// item that lets the walker tell what changed since it last looked.
func (c *Cursors) Marks(ctx context.Context, name string, items []string) (map[string]string, error) {
	out := map[string]string{}
	for _, item := range items {
		it, err := c.s.Get(ctx, markKey(name, item))
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[item] = string(it.Value)
	}
	return out, nil
}

// SetMarks writes marks; an empty mark deletes the item's.
func (c *Cursors) SetMarks(ctx context.Context, name string, marks map[string]string) error {
	for item, mark := range marks {
		_, err := store.Modify(ctx, c.s, markKey(name, item), func(*store.Item) (store.Change, error) {
			if mark == "" {
				return store.Change{Delete: true}, nil
			}
			return store.Change{Value: []byte(mark), Expires: c.now().Add(ttl)}, nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// HeldUntil returns when the lease err reports ends (zero when err carries none).
func HeldUntil(err error) time.Time { return store.HeldUntil(err) }
