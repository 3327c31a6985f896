package host

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/livepack/livepack/shared/idempotency"
)

// TestNamespacedFileStore: two namespaces sharing one state file share no record, no
// delivered notice and no cursor, and each reads its own keys back as it wrote them.
func TestNamespacedFileStore(t *testing.T) {
	ctx := context.Background()
	f, err := idempotency.NewFile(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a, b := withNamespace(f, "cli.cn-shanghai.aaaaaaaa"), withNamespace(f, "cli.cn-shanghai.bbbbbbbb")
	now := time.Now()
	token, prev, err := a.Acquire(ctx, "direct:k1", "h1", idempotency.LeaseUntil(now))
	if err != nil || prev != nil {
		t.Fatalf("a: %v %v", prev, err)
	}
	if err := a.Put(ctx, idempotency.Record{Key: "direct:k1", Status: idempotency.Applied, PayloadHash: "h1", Token: token, LeaseUntil: now.Add(-time.Second),
		Pending: []idempotency.PendingNotice{{ID: "n1"}}}); err != nil {
		t.Fatal(err)
	}
	if recs, err := a.Pending(ctx); err != nil || len(recs) != 1 || recs[0].Key != "direct:k1" {
		t.Fatalf("a's pending: %+v %v", recs, err)
	}
	if recs, err := b.Pending(ctx); err != nil || len(recs) != 0 {
		t.Fatalf("b sees a's records: %+v %v", recs, err)
	}
	// Another payload under the same key is a new key in b, not a mismatch.
	if tok, prev, err := b.Acquire(ctx, "direct:k1", "h2", idempotency.LeaseUntil(now)); err != nil || prev != nil || tok == "" {
		t.Fatalf("b: %q %v %v", tok, prev, err)
	}
	if c, err := a.ClaimNotice(ctx, "n1", "stdout", "t1", now.Add(time.Minute)); err != nil || c != idempotency.Claimed {
		t.Fatalf("a claims n1: %v %v", c, err)
	}
	if err := a.SettleNotice(ctx, "n1", "play.example.com/a/*", "stdout", "t1", true); err != nil {
		t.Fatal(err)
	}
	if c, err := b.ClaimNotice(ctx, "n1", "stdout", "t2", now.Add(time.Minute)); err != nil || c != idempotency.Claimed {
		t.Fatalf("b finds a's delivery of n1: %v %v", c, err)
	}
	ca, ok := a.(idempotency.Cursors)
	cb, okb := b.(idempotency.Cursors)
	if !ok || !okb {
		t.Fatal("the namespaced file store keeps no cursor")
	}
	if _, err := ca.ClaimCursor(ctx, "reconcile:x", "ha", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := cb.ClaimCursor(ctx, "reconcile:x", "hb", now.Add(time.Minute)); err != nil {
		t.Fatalf("b's cursor is held by a: %v", err)
	}
}
