package storetest_test

import (
	"context"
	"testing"
	"time"

	"github.com/livepack/livepack/shared/store"
	"github.com/livepack/livepack/shared/store/memstore"
	"github.com/livepack/livepack/shared/store/storetest"
)

// TestCountingCountsEachOperationOnce: every operation lands in its own column once, refused
// conditional writes included, and Modify costs a read and a write.
func TestCountingCountsEachOperationOnce(t *testing.T) {
	ctx := context.Background()
	c := storetest.NewCounting(memstore.New(nil))
	v, err := c.Create(ctx, "a/1", []byte("x"), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Create(ctx, "a/1", []byte("x"), time.Time{}) // refused: still a request
	if _, err := c.Get(ctx, "a/1"); err != nil {
		t.Fatal(err)
	}
	if v, err = c.Update(ctx, "a/1", v, []byte("y"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.List(ctx, "a/", "", 10); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "a/1", v); err != nil {
		t.Fatal(err)
	}
	want := storetest.Ops{Get: 1, List: 1, Create: 2, Update: 1, Delete: 1}
	if got := c.Ops(); got != want || got.Reads() != 2 || got.Writes() != 4 {
		t.Fatalf("counted %v, want %v", got, want)
	}
	if got, want := c.Trace(), "create a: 2, delete a: 1, get a: 1, list a: 1, update a: 1"; got != want {
		t.Fatalf("trace %q, want %q", got, want)
	}
	before := c.Ops()
	if _, err := store.Modify(ctx, c, "b/1", func(*store.Item) (store.Change, error) { return store.Change{Value: []byte("z")}, nil }); err != nil {
		t.Fatal(err)
	}
	if got := c.Ops().Sub(before); got != (storetest.Ops{Get: 1, Create: 1}) {
		t.Fatalf("Modify of an absent key: %v", got)
	}
	c.Reset()
	if c.Ops() != (storetest.Ops{}) || c.Trace() != "" {
		t.Fatalf("after Reset: %v, %q", c.Ops(), c.Trace())
	}
}
