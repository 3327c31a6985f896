package storetest

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/livepack/livepack/shared/store"
)

// Ops counts store operations by kind: what a protocol costs a backend per event, whatever the
// backend (each operation is one request on DynamoDB, Tablestore and Redis).
type Ops struct {
	Get, List, Create, Update, Delete int
}

// Reads counts the operations that read (Get, List).
func (o Ops) Reads() int { return o.Get + o.List }

// Writes counts the operations that write (Create, Update, Delete), whether or not their
// condition held: a refused conditional write is still a request the backend bills.
func (o Ops) Writes() int { return o.Create + o.Update + o.Delete }

// Sub returns the operations of o made since before.
func (o Ops) Sub(before Ops) Ops {
	return Ops{Get: o.Get - before.Get, List: o.List - before.List, Create: o.Create - before.Create,
		Update: o.Update - before.Update, Delete: o.Delete - before.Delete}
}

func (o Ops) String() string {
	return fmt.Sprintf("%d reads (get %d, list %d), %d writes (create %d, update %d, delete %d)",
		o.Reads(), o.Get, o.List, o.Writes(), o.Create, o.Update, o.Delete)
}

// Counting wraps a store and counts the operations made through it, by kind and by the kind
// of record (the key's part before '/'), so a test can pin what a protocol costs and say where
// a change came from when the count moves.
type Counting struct {
	store.Store
	mu     sync.Mutex
	ops    Ops
	byKind map[string]int
}

// NewCounting returns a counting wrapper of s.
func NewCounting(s store.Store) *Counting { return &Counting{Store: s, byKind: map[string]int{}} }

// Ops returns the operations counted so far.
func (c *Counting) Ops() Ops {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ops
}

// Trace returns the counts so far by operation and record kind ("get key: 1, create open: 1"),
// in a fixed order: the detail a failing count shows.
func (c *Counting) Trace() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	parts := make([]string, 0, len(c.byKind))
	for k, n := range c.byKind {
		parts = append(parts, fmt.Sprintf("%s: %d", k, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// Reset sets every count back to zero.
func (c *Counting) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ops, c.byKind = Ops{}, map[string]int{}
}

func (c *Counting) count(n *int, op, key string) {
	kind, _, _ := store.Kind(key)
	c.mu.Lock()
	defer c.mu.Unlock()
	*n++
	c.byKind[op+" "+kind]++
}

// Get implements store.Store.
func (c *Counting) Get(ctx context.Context, key string) (store.Item, error) {
	c.count(&c.ops.Get, "get", key)
	return c.Store.Get(ctx, key)
}

// Create implements store.Store.
func (c *Counting) Create(ctx context.Context, key string, value []byte, expires time.Time) (int64, error) {
	c.count(&c.ops.Create, "create", key)
	return c.Store.Create(ctx, key, value, expires)
}

// Update implements store.Store.
func (c *Counting) Update(ctx context.Context, key string, version int64, value []byte, expires time.Time) (int64, error) {
	c.count(&c.ops.Update, "update", key)
	return c.Store.Update(ctx, key, version, value, expires)
}

// Delete implements store.Store.
func (c *Counting) Delete(ctx context.Context, key string, version int64) error {
	c.count(&c.ops.Delete, "delete", key)
	return c.Store.Delete(ctx, key, version)
}

// List implements store.Store.
func (c *Counting) List(ctx context.Context, prefix, after string, limit int) ([]store.Item, error) {
	c.count(&c.ops.List, "list", prefix)
	return c.Store.List(ctx, prefix, after, limit)
}
