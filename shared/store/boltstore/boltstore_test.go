package boltstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/livepack/livepack/shared/store"
	"github.com/livepack/livepack/shared/store/boltstore"
	"github.com/livepack/livepack/shared/store/storetest"
)

// writerEnv makes the test binary a process that writes to the file it names in a loop.
const writerEnv = "LIVEPACK_BOLTTEST_WRITER"

func TestMain(m *testing.M) {
	if path := os.Getenv(writerEnv); path != "" {
		if err := writeLoop(path, 4*time.Second); err != nil {
			fmt.Fprintln(os.Stderr, "writer:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	storetest.Main(m, func(_ context.Context, spec, ns string) (store.Store, error) {
		return boltstore.Open(spec, ns)
	})
}

// writeLoop rewrites w/counter back to back for d, one write after another with nothing
// between them, as a busy server's writes come.
func writeLoop(path string, d time.Duration) error {
	s, err := boltstore.Open(path, "busy")
	if err != nil {
		return err
	}
	ctx, begin := context.Background(), time.Now()
	v, err := s.Create(ctx, "w/counter", []byte("1"), time.Time{})
	for n := 2; err == nil && time.Since(begin) < d; n++ {
		v, err = s.Update(ctx, "w/counter", v, []byte(strconv.Itoa(n)), time.Time{})
	}
	return err
}

func TestConformance(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "livepack.db")
	storetest.Run(t, storetest.Backend{
		Open: func(t testing.TB, ns string) store.Store {
			s, err := boltstore.Open(path, ns)
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		Spec: path,
	})
}

// TestReadsDoNotWaitForABusyWriter: another process writes in a loop; reads here get their
// turn between its writes, each promptly, never after bbolt's lock timeout.
func TestReadsDoNotWaitForABusyWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "livepack.db")
	s, err := boltstore.Open(path, "busy")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), writerEnv+"="+path)
	out, err := os.CreateTemp(t.TempDir(), "writer")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	ctx := context.Background()
	counter := func() int {
		it, err := s.Get(ctx, "w/counter")
		if errors.Is(err, store.ErrNotFound) {
			return 0
		}
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.Atoi(string(it.Value))
		return n
	}
	for deadline := time.Now().Add(5 * time.Second); counter() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the writer never wrote")
		}
	}
	first := counter()
	var worst time.Duration
	reads := 0
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); reads++ {
		start := time.Now()
		if reads%2 == 0 {
			counter()
		} else if _, err := s.List(ctx, "w/", "", 10); err != nil {
			t.Fatal(err)
		}
		worst = max(worst, time.Since(start))
	}
	last := counter()
	if last-first < 10 {
		t.Fatalf("the writer made %d writes while %d reads ran: it was not busy", last-first, reads)
	}
	t.Logf("%d reads beside %d writes of another process; the slowest read took %s", reads, last-first, worst)
	if worst > 500*time.Millisecond {
		t.Fatalf("a read waited %s for the writer's lock", worst)
	}
}

// TestReadsNeverCreate: a read of a file not there yet finds nothing and leaves no file.
func TestReadsNeverCreate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "livepack.db")
	s, err := boltstore.Open(path, "ns")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.Get(ctx, "k/a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get: %v", err)
	}
	if items, err := s.List(ctx, "k/", "", 0); err != nil || len(items) != 0 {
		t.Fatalf("List: %v, %v", items, err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a read created the file: %v", err)
	}
	if _, err := s.Create(ctx, "k/a", []byte("x"), time.Time{}); err != nil {
		t.Fatalf("Create recreates the file: %v", err)
	}
}

// TestLockWaitEndsWithContext: a write waiting for a lock another holder keeps gives up when
// its context ends, with an error naming the lock.
func TestLockWaitEndsWithContext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "livepack.db")
	s, err := boltstore.Open(path, "ns")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := boltstore.FlockEx(f); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = s.Create(ctx, "k/a", nil, time.Time{})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Fatalf("Create under a held lock: %v after %s", err, time.Since(start))
	}
	if _, err := s.Get(ctx, "k/a"); err == nil {
		t.Fatal("Get under an exclusive lock succeeded with an ended context")
	}
	_ = f.Close()
	if _, err := s.Create(context.Background(), "k/a", nil, time.Time{}); err != nil {
		t.Fatalf("Create once the lock is free: %v", err)
	}
}

// TestSweep: expired items leave the file as writes go by.
func TestSweep(t *testing.T) {
	path := filepath.Join(t.TempDir(), "livepack.db")
	s, err := boltstore.Open(path, "ns")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.Create(ctx, "k/old", nil, time.Now().Add(10*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	boltstore.SetSweepDue(s)
	if _, err := s.Create(ctx, "k/new", nil, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if n := boltstore.Held(t, s); n != 1 {
		t.Fatalf("%d items held, want the expired one swept", n)
	}
}

func BenchmarkOps(b *testing.B) {
	s, err := boltstore.Open(filepath.Join(b.TempDir(), "livepack.db"), "bench")
	if err != nil {
		b.Fatal(err)
	}
	storetest.Bench(b, s)
}
