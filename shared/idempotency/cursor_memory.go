package idempotency

import (
	"context"
	"strings"
	"sync"
	"time"
)

// memCursors holds each Memory store's cursors beside its records, so the cursor capability
// stays apart from the record code.
var memCursors sync.Map // *Memory → *memCursorData

type memCursorData struct {
	mu      sync.Mutex
	cursors map[string]cursorRecord
	pages   map[string][]string // name + "\x00" + page number
	marks   map[string]map[string]string
}

func (m *Memory) cursorData() *memCursorData {
	d, _ := memCursors.LoadOrStore(m, &memCursorData{cursors: map[string]cursorRecord{}, pages: map[string][]string{}, marks: map[string]map[string]string{}})
	return d.(*memCursorData)
}

func pageKey(name string, n int) string { return name + "\x00" + itoa(n) }

// ClaimCursor implements Cursors.
func (m *Memory) ClaimCursor(_ context.Context, name, holder string, leaseUntil time.Time) ([]byte, error) {
	d := m.cursorData()
	d.mu.Lock()
	defer d.mu.Unlock()
	c, err := d.cursors[name].claim(holder, leaseUntil, m.now())
	if err != nil {
		return nil, err
	}
	d.cursors[name] = c
	return append([]byte(nil), c.State...), nil
}

// SaveCursor implements Cursors.
func (m *Memory) SaveCursor(_ context.Context, name, holder string, state []byte, leaseUntil time.Time) error {
	d := m.cursorData()
	d.mu.Lock()
	defer d.mu.Unlock()
	c, err := d.cursors[name].save(holder, state, leaseUntil)
	if err != nil {
		return err
	}
	d.cursors[name] = c
	return nil
}

// PutCursorPage implements Cursors.
func (m *Memory) PutCursorPage(_ context.Context, name string, n int, items []string) error {
	d := m.cursorData()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pages[pageKey(name, n)] = append([]string{}, items...)
	return nil
}

// CursorPage implements Cursors.
func (m *Memory) CursorPage(_ context.Context, name string, n int) ([]string, error) {
	d := m.cursorData()
	d.mu.Lock()
	defer d.mu.Unlock()
	p, ok := d.pages[pageKey(name, n)]
	if !ok {
		return nil, nil
	}
	return append([]string{}, p...), nil
}

// DropCursorPages implements Cursors.
func (m *Memory) DropCursorPages(_ context.Context, name string) error {
	d := m.cursorData()
	d.mu.Lock()
	defer d.mu.Unlock()
	for k := range d.pages {
		if strings.HasPrefix(k, name+"\x00") {
			delete(d.pages, k)
		}
	}
	return nil
}

// CursorMarks implements Cursors.
func (m *Memory) CursorMarks(_ context.Context, name string, items []string) (map[string]string, error) {
	d := m.cursorData()
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]string{}
	for _, it := range items {
		if v, ok := d.marks[name][it]; ok {
			out[it] = v
		}
	}
	return out, nil
}

// SetCursorMarks implements Cursors.
func (m *Memory) SetCursorMarks(_ context.Context, name string, marks map[string]string) error {
	d := m.cursorData()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.marks[name] == nil {
		d.marks[name] = map[string]string{}
	}
	for it, v := range marks {
		if v == "" {
			delete(d.marks[name], it)
		} else {
			d.marks[name][it] = v
		}
	}
	return nil
}
