package idempotency

import (
	"context"
	"sync"
	"time"
)

// Memory is a Store in this process's memory: enough for the CLI's tests and for a single
// instance, useless across instances (the cloud default warns about it).
type Memory struct {
	mu   sync.Mutex
	recs map[string]Record
	now  func() time.Time
}

// NewMemory returns an empty Memory store.
func NewMemory() *Memory { return &Memory{recs: map[string]Record{}, now: time.Now} }

// Acquire implements Store.
func (m *Memory) Acquire(_ context.Context, key, hash string, leaseUntil time.Time) (*Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var cur *Record
	if r, ok := m.recs[key]; ok {
		cur = &r
	}
	write, out, err := decide(cur, key, hash, leaseUntil, m.now())
	if write != nil {
		m.recs[key] = clone(*write)
	}
	if out != nil {
		c := clone(*out)
		out = &c
	}
	return out, err
}

// Put implements Store.
func (m *Memory) Put(_ context.Context, rec Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs[rec.Key] = clone(withExpiry(rec, m.now()))
	return nil
}

// Delete implements Store.
func (m *Memory) Delete(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.recs, key)
	return nil
}

// Pending implements Store.
func (m *Memory) Pending(context.Context) ([]Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	var out []Record
	for _, r := range m.recs {
		if isPending(r, now) {
			out = append(out, clone(r))
		}
	}
	return out, nil
}

// Close implements Store.
func (m *Memory) Close() error { return nil }

func isPending(r Record, now time.Time) bool {
	return r.Status == Applied && !r.LeaseUntil.After(now) && (r.ExpiresAt.IsZero() || r.ExpiresAt.After(now))
}

// clone copies the slices a caller could otherwise mutate under the store.
func clone(r Record) Record {
	r.Result = append([]byte(nil), r.Result...)
	r.Pending = append([]PendingNotice(nil), r.Pending...)
	for i := range r.Pending {
		r.Pending[i].Sinks = append([]string(nil), r.Pending[i].Sinks...)
	}
	return r
}
