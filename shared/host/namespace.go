package host

import (
	"context"
	"strings"
	"time"

	"github.com/livepack/livepack/shared/idempotency"
)

// namespacedStore keeps one namespace's records apart in a store shared by several: the file
// store is one bbolt file that the command line points at every endpoint and account in turn,
// and it has no namespace of its own (Redis keys carry theirs), so without a prefix a record
// kept against one emulator would be replayed against the next. Every key, notice id and
// cursor name gets the prefix on the way in and loses it on the way out.
type namespacedStore struct {
	inner  idempotency.Store
	prefix string
}

// namespacedCursors is a namespacedStore over a store that also keeps reconcile cursors.
type namespacedCursors struct {
	namespacedStore
	cur idempotency.Cursors
}

var (
	_ idempotency.Store   = namespacedStore{}
	_ idempotency.Cursors = namespacedCursors{}
)

// withNamespace wraps s so that namespace's records are its own; the result keeps cursors when s
// does.
func withNamespace(s idempotency.Store, namespace string) idempotency.Store {
	ns := namespacedStore{inner: s, prefix: namespace + "/"}
	if cur, ok := s.(idempotency.Cursors); ok {
		return namespacedCursors{namespacedStore: ns, cur: cur}
	}
	return ns
}

func (n namespacedStore) key(k string) string { return n.prefix + k }

// own strips the prefix from a record read back, so the engine sees the keys it wrote.
func (n namespacedStore) own(rec *idempotency.Record) *idempotency.Record {
	if rec != nil {
		rec.Key = strings.TrimPrefix(rec.Key, n.prefix)
	}
	return rec
}

func (n namespacedStore) Acquire(ctx context.Context, key, payloadHash string, leaseUntil time.Time) (string, *idempotency.Record, error) {
	token, prev, err := n.inner.Acquire(ctx, n.key(key), payloadHash, leaseUntil)
	return token, n.own(prev), err
}

func (n namespacedStore) Renew(ctx context.Context, key, token string, leaseUntil time.Time) error {
	return n.inner.Renew(ctx, n.key(key), token, leaseUntil)
}

func (n namespacedStore) Plan(ctx context.Context, key, token string, pn idempotency.PendingNotice) error {
	return n.inner.Plan(ctx, n.key(key), token, pn)
}

func (n namespacedStore) Put(ctx context.Context, rec idempotency.Record) error {
	rec.Key = n.key(rec.Key)
	return n.inner.Put(ctx, rec)
}

func (n namespacedStore) Delete(ctx context.Context, key, token string) error {
	return n.inner.Delete(ctx, n.key(key), token)
}

// Pending lists this namespace's records only.
func (n namespacedStore) Pending(ctx context.Context) ([]idempotency.Record, error) {
	all, err := n.inner.Pending(ctx)
	var out []idempotency.Record
	for _, rec := range all {
		if strings.HasPrefix(rec.Key, n.prefix) {
			out = append(out, *n.own(&rec))
		}
	}
	return out, err
}

func (n namespacedStore) ClaimNotice(ctx context.Context, id, sink, token string, until time.Time) (idempotency.Claim, error) {
	return n.inner.ClaimNotice(ctx, n.key(id), sink, token, until)
}

func (n namespacedStore) SettleNotice(ctx context.Context, id, target, sink, token string, delivered bool) error {
	return n.inner.SettleNotice(ctx, n.key(id), n.key(target), sink, token, delivered)
}

func (n namespacedStore) Close() error { return n.inner.Close() }

func (n namespacedCursors) ClaimCursor(ctx context.Context, name, holder string, leaseUntil time.Time) ([]byte, error) {
	return n.cur.ClaimCursor(ctx, n.key(name), holder, leaseUntil)
}

func (n namespacedCursors) SaveCursor(ctx context.Context, name, holder string, state []byte, leaseUntil time.Time) error {
	return n.cur.SaveCursor(ctx, n.key(name), holder, state, leaseUntil)
}

func (n namespacedCursors) PutCursorPage(ctx context.Context, name string, page int, items []string) error {
	return n.cur.PutCursorPage(ctx, n.key(name), page, items)
}

func (n namespacedCursors) CursorPage(ctx context.Context, name string, page int) ([]string, error) {
	return n.cur.CursorPage(ctx, n.key(name), page)
}

func (n namespacedCursors) DropCursorPages(ctx context.Context, name string) error {
	return n.cur.DropCursorPages(ctx, n.key(name))
}

func (n namespacedCursors) CursorMarks(ctx context.Context, name string, items []string) (map[string]string, error) {
	return n.cur.CursorMarks(ctx, n.key(name), items)
}

func (n namespacedCursors) SetCursorMarks(ctx context.Context, name string, marks map[string]string) error {
	return n.cur.SetCursorMarks(ctx, n.key(name), marks)
}
