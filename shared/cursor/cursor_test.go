package cursor_test

import (
	"context"
	"errors"
	"github.com/livepack/livepack/shared/cursor"
	"github.com/livepack/livepack/shared/store/everystore"
	"strings"
	"testing"
	"time"
)

// TestCursorContract: one holder at a time, saves fenced by the holder and extending the lease,
// pages and marks per cursor — the same in every store.
func TestCursorContract(t *testing.T) {
	ctx := context.Background()
	for name, mk := range everystore.Backends(t) {
		t.Run(name, func(t *testing.T) {
			s := mk()
			defer s.Close()
			c := cursor.New(s, nil)
			now := time.Now()
			live, lapsed := now.Add(time.Minute), now.Add(-time.Second)

			if st, err := c.Claim(ctx, "c", "run1", live); st != nil || err != nil {
				t.Fatalf("fresh: %q, %v", st, err)
			}
			_, err := c.Claim(ctx, "c", "run2", live)
			if !errors.Is(err, cursor.ErrHeld) || !strings.Contains(err.Error(), live.UTC().Format(time.RFC3339)) {
				t.Fatalf("second claim: %v", err)
			}
			if err := c.Save(ctx, "c", "run1", []byte(`{"n":1}`), live); err != nil {
				t.Fatal(err)
			}
			if err := c.Save(ctx, "c", "run2", []byte(`{"n":9}`), live); !errors.Is(err, cursor.ErrLost) {
				t.Fatalf("save by a non-holder: %v", err)
			}
			// A lapsed lease is taken over; the old holder's saves are then fenced off.
			if err := c.Save(ctx, "c", "run1", []byte(`{"n":2}`), lapsed); err != nil {
				t.Fatal(err)
			}
			if st, err := c.Claim(ctx, "c", "run2", live); err != nil || string(st) != `{"n":2}` {
				t.Fatalf("takeover: %q, %v", st, err)
			}
			if err := c.Save(ctx, "c", "run1", []byte(`{"n":3}`), live); !errors.Is(err, cursor.ErrLost) {
				t.Fatalf("save after losing the lease: %v", err)
			}
			// Releasing (zero lease) lets anyone claim at once, and keeps the state.
			if err := c.Save(ctx, "c", "run2", []byte(`{"n":4}`), time.Time{}); err != nil {
				t.Fatal(err)
			}
			if st, err := c.Claim(ctx, "c", "run3", live); err != nil || string(st) != `{"n":4}` {
				t.Fatalf("after release: %q, %v", st, err)
			}
			// Another cursor is independent.
			if _, err := c.Claim(ctx, "other", "run1", live); err != nil {
				t.Fatalf("other cursor: %v", err)
			}

			// Pages.
			if err := c.PutPage(ctx, "c", 0, []string{"a.example.com", "b.example.com"}); err != nil {
				t.Fatal(err)
			}
			if err := c.PutPage(ctx, "c", 1, []string{}); err != nil {
				t.Fatal(err)
			}
			if err := c.PutPage(ctx, "other", 0, []string{"z"}); err != nil {
				t.Fatal(err)
			}
			if p, err := c.Page(ctx, "c", 0); err != nil || strings.Join(p, ",") != "a.example.com,b.example.com" {
				t.Fatalf("page 0: %q, %v", p, err)
			}
			if p, err := c.Page(ctx, "c", 1); err != nil || p == nil || len(p) != 0 {
				t.Fatalf("empty page: %#v, %v", p, err)
			}
			if p, err := c.Page(ctx, "c", 2); err != nil || p != nil {
				t.Fatalf("missing page: %#v, %v", p, err)
			}
			if err := c.DropPages(ctx, "c"); err != nil {
				t.Fatal(err)
			}
			if p, err := c.Page(ctx, "c", 0); err != nil || p != nil {
				t.Fatalf("dropped page: %q, %v", p, err)
			}
			if p, err := c.Page(ctx, "other", 0); err != nil || len(p) != 1 {
				t.Fatalf("other cursor's page: %q, %v", p, err)
			}

			// Marks.
			if err := c.SetMarks(ctx, "c", map[string]string{"a": "1", "b": "2"}); err != nil {
				t.Fatal(err)
			}
			if err := c.SetMarks(ctx, "c", map[string]string{"a": "", "c": "3"}); err != nil {
				t.Fatal(err)
			}
			m, err := c.Marks(ctx, "c", []string{"a", "b", "c", "d"})
			if err != nil || len(m) != 2 || m["b"] != "2" || m["c"] != "3" {
				t.Fatalf("marks: %v, %v", m, err)
			}
			if m, err := c.Marks(ctx, "other", []string{"b"}); err != nil || len(m) != 0 {
				t.Fatalf("other cursor's marks: %v, %v", m, err)
			}
		})
	}
}
