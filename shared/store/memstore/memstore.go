// Package memstore is the store contract in this process's memory: the CLI's state on the
// embedded emulator, tests, and a single instance that accepts losing its state
// (LIVEPACK_VOLATILE_STATE=1). Expired items are swept as writes go by, so it holds only what
// lives.
package memstore

import (
	"context"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/livepack/livepack/shared/store"
)

// Store is the in-memory backend.
type Store struct {
	mu     sync.Mutex
	items  map[string]store.Item
	now    func() time.Time
	writes int
}

// New returns an empty store on the clock now (nil: time.Now).
func New(now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{items: map[string]store.Item{}, now: now}
}

func (s *Store) live(key string) (store.Item, bool) {
	it, ok := s.items[key]
	if !ok || !it.Live(s.now()) {
		return store.Item{}, false
	}
	return it, true
}

func (s *Store) put(key string, value []byte, expires time.Time) int64 {
	s.writes++
	if s.writes%256 == 0 {
		now := s.now()
		for k, it := range s.items {
			if !it.Live(now) {
				delete(s.items, k)
			}
		}
	}
	v := store.NewVersion()
	s.items[key] = store.Item{Key: key, Value: append([]byte(nil), value...), Version: v, Expires: expires}
	return v
}

// Get implements store.Store.
func (s *Store) Get(_ context.Context, key string) (store.Item, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.live(key)
	if !ok {
		return store.Item{}, store.ErrNotFound
	}
	it.Value = append([]byte(nil), it.Value...)
	return it, nil
}

// Create implements store.Store.
func (s *Store) Create(_ context.Context, key string, value []byte, expires time.Time) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.live(key); ok {
		return 0, store.ErrConflict
	}
	return s.put(key, value, expires), nil
}

// Update implements store.Store.
func (s *Store) Update(_ context.Context, key string, version int64, value []byte, expires time.Time) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if it, ok := s.live(key); !ok || it.Version != version {
		return 0, store.ErrConflict
	}
	return s.put(key, value, expires), nil
}

// Delete implements store.Store.
func (s *Store) Delete(_ context.Context, key string, version int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if it, ok := s.live(key); !ok || it.Version != version {
		return store.ErrConflict
	}
	delete(s.items, key)
	return nil
}

// List implements store.Store.
func (s *Store) List(_ context.Context, prefix, after string, limit int) ([]store.Item, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var keys []string
	for k, it := range s.items {
		if strings.HasPrefix(k, prefix) && k > after && it.Live(now) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	if limit > 0 && len(keys) > limit {
		keys = keys[:limit]
	}
	out := make([]store.Item, len(keys))
	for i, k := range keys {
		it := s.items[k]
		it.Value = append([]byte(nil), it.Value...)
		out[i] = it
	}
	return out, nil
}

// Close implements store.Store.
func (s *Store) Close() error { return nil }

// Len counts the items held, live or not yet swept (tests check that expiry frees memory).
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.items)
}
