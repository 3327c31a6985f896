package boltstore

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// SetSweepDue moves s's clock a sweep period ahead, so its next write sweeps.
func SetSweepDue(s *Store) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now
	s.now = func() time.Time { return now().Add(sweepEvery) }
}

// Held counts the items s's namespace holds in the file, expired or not.
func Held(t *testing.T, s *Store) int {
	t.Helper()
	n := 0
	if err := s.view(context.Background(), "count", func(b *bolt.Bucket) error {
		if b != nil {
			n = b.Stats().KeyN
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// FlockEx takes an exclusive lock on f, as another process holding the file would.
func FlockEx(f *os.File) error { return syscall.Flock(int(f.Fd()), syscall.LOCK_EX) }
