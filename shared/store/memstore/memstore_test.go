package memstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/livepack/livepack/shared/store"
	"github.com/livepack/livepack/shared/store/memstore"
	"github.com/livepack/livepack/shared/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Backend{Open: func(testing.TB, string) store.Store { return memstore.New(nil) }})
}

// TestSweep: expired items leave memory as writes go by, so a long-lived process holds only
// what lives.
func TestSweep(t *testing.T) {
	now := time.Unix(1000, 0)
	s := memstore.New(func() time.Time { return now })
	ctx := context.Background()
	for i := range 300 {
		if _, err := s.Create(ctx, "k/"+string(rune('a'+i%26))+string(rune(i)), nil, now.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(2 * time.Second)
	for i := range 256 {
		if _, err := s.Create(ctx, "n/"+string(rune(i)), nil, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.Len(); n > 300 {
		t.Fatalf("%d items held, want the 300 expired ones swept", n)
	}
}
