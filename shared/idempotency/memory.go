package idempotency

import (
	"context"
	"sync"
	"time"
)

// Memory is a Store in this process's memory: enough for the CLI's tests and for a single
// instance, useless across instances (the cloud default warns about it).
type Memory struct {
	mu    sync.Mutex
	recs  map[string]Record
	marks map[string]mark
	now   func() time.Time
}

// NewMemory returns an empty Memory store.
func NewMemory() *Memory {
	return &Memory{recs: map[string]Record{}, marks: map[string]mark{}, now: time.Now}
}

func (m *Memory) get(key string) *Record {
	if r, ok := m.recs[key]; ok {
		return &r
	}
	return nil
}

// Acquire implements Store.
func (m *Memory) Acquire(_ context.Context, key, hash string, leaseUntil time.Time) (string, *Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	write, token, out, err := decide(m.get(key), key, hash, leaseUntil, m.now())
	if write != nil {
		m.recs[key] = clone(*write)
	}
	if out != nil {
		c := clone(*out)
		out = &c
	}
	return token, out, err
}

// Renew implements Store.
func (m *Memory) Renew(_ context.Context, key, token string, leaseUntil time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur := m.get(key)
	if token == "" {
		return ErrFenced
	}
	if err := fenced(cur, token, m.now()); err != nil {
		return err
	}
	cur.LeaseUntil = leaseUntil
	m.recs[key] = *cur
	return nil
}

// Plan implements Store.
func (m *Memory) Plan(_ context.Context, key, token string, pn PendingNotice) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur := m.get(key)
	if token == "" {
		return ErrFenced
	}
	if err := fenced(cur, token, m.now()); err != nil {
		return err
	}
	cur.Pending = append(cur.Pending, pn)
	m.recs[key] = clone(*cur)
	return nil
}

// Put implements Store.
func (m *Memory) Put(_ context.Context, rec Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := fenced(m.get(rec.Key), rec.Token, m.now()); err != nil {
		return err
	}
	m.recs[rec.Key] = clone(withExpiry(rec, m.now()))
	return nil
}

// Delete implements Store.
func (m *Memory) Delete(_ context.Context, key, token string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := fenced(m.get(key), token, m.now()); err != nil {
		return err
	}
	delete(m.recs, key)
	return nil
}

// ClaimNotice implements Store.
func (m *Memory) ClaimNotice(_ context.Context, id, sink, token string, until time.Time) (Claim, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := noticeKey(id, sink)
	var cur *mark
	if v, ok := m.marks[k]; ok {
		cur = &v
	}
	w, c := claim(cur, token, until, m.now())
	if w != nil {
		m.marks[k] = *w
	}
	return c, nil
}

// SettleNotice implements Store.
func (m *Memory) SettleNotice(_ context.Context, id, target, sink, token string, delivered bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := noticeKey(id, sink)
	if delivered {
		lk := lastKey(target, sink)
		if last, ok := m.marks[lk]; ok && last.Token != id {
			delete(m.marks, noticeKey(last.Token, sink))
		}
		m.marks[lk] = mark{Token: id, Until: m.now().Add(DeliveredTTL)}
	}
	var cur *mark
	if v, ok := m.marks[k]; ok {
		cur = &v
	}
	w, del := settle(cur, token, delivered, m.now())
	switch {
	case w != nil:
		m.marks[k] = *w
	case del:
		delete(m.marks, k)
	}
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
