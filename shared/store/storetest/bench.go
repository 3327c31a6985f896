package storetest

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/livepack/livepack/shared/store"
)

// Bench times each operation of s, one sub-benchmark each (a backend's BenchmarkOps): Get,
// Create, Update, a List of 100 items and a Modify (a Get and an Update), on values of 256
// bytes.
func Bench(b *testing.B, s store.Store) {
	ctx := context.Background()
	value := bytes.Repeat([]byte("v"), 256)
	for i := range 100 {
		if _, err := s.Create(ctx, fmt.Sprintf("list/%03d", i), value, time.Time{}); err != nil {
			b.Fatal(err)
		}
	}
	v, err := s.Create(ctx, "u/x", value, time.Time{})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("get", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.Get(ctx, "u/x"); err != nil {
				b.Fatal(err)
			}
		}
	})
	n := 0
	b.Run("create", func(b *testing.B) {
		for b.Loop() {
			n++
			if _, err := s.Create(ctx, fmt.Sprintf("c/%d", n), value, time.Time{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("update", func(b *testing.B) {
		for b.Loop() {
			if v, err = s.Update(ctx, "u/x", v, value, time.Time{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("list100", func(b *testing.B) {
		for b.Loop() {
			if items, err := s.List(ctx, "list/", "", 100); err != nil || len(items) != 100 {
				b.Fatal(len(items), err)
			}
		}
	})
	b.Run("modify", func(b *testing.B) {
		for b.Loop() {
			if _, err := store.Modify(ctx, s, "m/x", func(*store.Item) (store.Change, error) {
				return store.Change{Value: value}, nil
			}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
