package storetest

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/livepack/livepack/shared/store"
)

// ErrInjected is the error a Faulty store returns where it was told to fail.
var ErrInjected = errors.New("storetest: injected store failure")

// When is where an injected failure strikes.
type When int

// Before fails the operation without doing it; After does it and then reports failure (a reply
// lost on the way back: the caller cannot tell it from Before).
const (
	Before When = iota + 1
	After
)

// Faulty wraps a store and fails the operations Fail picks: a protocol written on the contract
// must keep its invariants whichever step fails, and whether the failed step took effect or not.
type Faulty struct {
	store.Store
	mu sync.Mutex
	// Fail sees each operation ("get", "create", "update", "delete", "list") and its key (the
	// prefix for list), numbered from 1 in the order they arrive, and says whether and when it
	// fails (0: it does not).
	Fail func(n int, op, key string) When
	n    int
}

func (f *Faulty) pick(op, key string) When {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	if f.Fail == nil {
		return 0
	}
	return f.Fail(f.n, op, key)
}

// Ops counts the operations seen so far.
func (f *Faulty) Ops() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// Get implements store.Store.
func (f *Faulty) Get(ctx context.Context, key string) (store.Item, error) {
	w := f.pick("get", key)
	if w == Before {
		return store.Item{}, ErrInjected
	}
	it, err := f.Store.Get(ctx, key)
	if w == After {
		return store.Item{}, ErrInjected
	}
	return it, err
}

// Create implements store.Store.
func (f *Faulty) Create(ctx context.Context, key string, value []byte, expires time.Time) (int64, error) {
	w := f.pick("create", key)
	if w == Before {
		return 0, ErrInjected
	}
	v, err := f.Store.Create(ctx, key, value, expires)
	if w == After {
		return 0, ErrInjected
	}
	return v, err
}

// Update implements store.Store.
func (f *Faulty) Update(ctx context.Context, key string, version int64, value []byte, expires time.Time) (int64, error) {
	w := f.pick("update", key)
	if w == Before {
		return 0, ErrInjected
	}
	v, err := f.Store.Update(ctx, key, version, value, expires)
	if w == After {
		return 0, ErrInjected
	}
	return v, err
}

// Delete implements store.Store.
func (f *Faulty) Delete(ctx context.Context, key string, version int64) error {
	w := f.pick("delete", key)
	if w == Before {
		return ErrInjected
	}
	err := f.Store.Delete(ctx, key, version)
	if w == After {
		return ErrInjected
	}
	return err
}

// List implements store.Store.
func (f *Faulty) List(ctx context.Context, prefix, after string, limit int) ([]store.Item, error) {
	w := f.pick("list", prefix)
	if w == Before {
		return nil, ErrInjected
	}
	items, err := f.Store.List(ctx, prefix, after, limit)
	if w == After {
		return nil, ErrInjected
	}
	return items, err
}
