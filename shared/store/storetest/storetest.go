// Package storetest is the store contract's conformance suite: every backend runs the same
// tests, in process and across several OS processes racing on one key, so the protocols written
// on the contract hold on each of them. It also gives the protocols' tests a store that fails
// where they ask (Faulty).
package storetest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livepack/livepack/shared/store"
)

// Backend is a backend under test.
type Backend struct {
	// Open returns a store of the backend for namespace ns; the test closes it.
	Open func(t testing.TB, ns string) store.Store
	// Spec, when set, is what a child process passes to the opener its TestMain gave Main, so
	// that several processes race on one store; empty for a store no other process can reach
	// (memory).
	Spec string
	// Tick is the backend's expiry resolution (zero: a millisecond); expiry tests wait past it.
	Tick time.Duration
}

// Opener opens a store from a spec in a child process.
type Opener func(ctx context.Context, spec, namespace string) (store.Store, error)

const childEnv = "LIVEPACK_STORETEST_CHILD"

// Main is a backend package's TestMain: in a child process started by the suite it runs the
// child's work on the store open gives and exits; otherwise it runs the tests.
func Main(m *testing.M, open Opener) {
	if job := os.Getenv(childEnv); job != "" {
		if err := child(job, open); err != nil {
			fmt.Fprintln(os.Stderr, "storetest child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// jobSep separates a child's job fields: an environment variable cannot hold NUL, and no spec,
// namespace or key holds the ASCII unit separator.
const jobSep = "\x1f"

// child runs one racing worker: job is spec, namespace, key, n and id joined by jobSep.
func child(job string, open Opener) error {
	f := strings.Split(job, jobSep)
	if len(f) != 5 {
		return fmt.Errorf("bad job %q", job)
	}
	n, err := strconv.Atoi(f[3])
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := open(ctx, f[0], f[1])
	if err != nil {
		return err
	}
	defer s.Close()
	if _, err := s.Create(ctx, f[2]+"/first", []byte(f[4]), time.Time{}); err != nil && !errors.Is(err, store.ErrConflict) {
		return err
	}
	for range n {
		if err := increment(ctx, s, f[2]+"/counter"); err != nil {
			return err
		}
	}
	return nil
}

func increment(ctx context.Context, s store.Store, key string) error {
	_, err := store.Modify(ctx, s, key, func(cur *store.Item) (store.Change, error) {
		var n uint64
		if cur != nil {
			n = binary.BigEndian.Uint64(cur.Value)
		}
		return store.Change{Value: binary.BigEndian.AppendUint64(nil, n+1)}, nil
	})
	return err
}

func counter(t *testing.T, s store.Store, key string) uint64 {
	t.Helper()
	it, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get %s: %v", key, err)
	}
	return binary.BigEndian.Uint64(it.Value)
}

// Run runs the conformance suite on b.
func Run(t *testing.T, b Backend) {
	tick := b.Tick
	if tick <= 0 {
		tick = time.Millisecond
	}
	ns := func(t *testing.T) string { return fmt.Sprintf("t%d", time.Now().UnixNano()) }
	open := func(t *testing.T) store.Store {
		s := b.Open(t, ns(t))
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	ctx := context.Background()

	t.Run("absent", func(t *testing.T) {
		s := open(t)
		if _, err := s.Get(ctx, "k/none"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Get of an absent key: %v, want ErrNotFound", err)
		}
		if _, err := s.Update(ctx, "k/none", 1, []byte("x"), time.Time{}); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("Update of an absent key: %v, want ErrConflict", err)
		}
		if err := s.Delete(ctx, "k/none", 1); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("Delete of an absent key: %v, want ErrConflict", err)
		}
		items, err := s.List(ctx, "k/", "", 10)
		if err != nil || len(items) != 0 {
			t.Fatalf("List of an empty kind: %v, %v", items, err)
		}
	})

	t.Run("create-update-delete", func(t *testing.T) {
		s := open(t)
		v1, err := s.Create(ctx, "k/a", []byte("one"), time.Time{})
		if err != nil || v1 == 0 {
			t.Fatalf("Create: %d, %v", v1, err)
		}
		if _, err := s.Create(ctx, "k/a", []byte("again"), time.Time{}); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("second Create: %v, want ErrConflict", err)
		}
		it, err := s.Get(ctx, "k/a")
		if err != nil || string(it.Value) != "one" || it.Version != v1 || it.Key != "k/a" {
			t.Fatalf("Get: %+v, %v", it, err)
		}
		v2, err := s.Update(ctx, "k/a", v1, []byte("two"), time.Time{})
		if err != nil || v2 == v1 || v2 == 0 {
			t.Fatalf("Update: %d (was %d), %v", v2, v1, err)
		}
		if _, err := s.Update(ctx, "k/a", v1, []byte("stale"), time.Time{}); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("Update with a stale version: %v, want ErrConflict", err)
		}
		if err := s.Delete(ctx, "k/a", v1); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("Delete with a stale version: %v, want ErrConflict", err)
		}
		if it, _ := s.Get(ctx, "k/a"); string(it.Value) != "two" {
			t.Fatalf("after refused writes: %q, want two", it.Value)
		}
		if err := s.Delete(ctx, "k/a", v2); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if _, err := s.Get(ctx, "k/a"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Get after Delete: %v", err)
		}
		v3, err := s.Create(ctx, "k/a", []byte("three"), time.Time{})
		if err != nil || v3 == v1 || v3 == v2 {
			t.Fatalf("Create after Delete: %d, %v (a version must not come back)", v3, err)
		}
	})

	t.Run("values", func(t *testing.T) {
		s := open(t)
		big := bytes.Repeat([]byte{0, 1, 2, 0xff, '"', '\\'}, 64<<10/6)
		for i, v := range [][]byte{{}, {0}, []byte("{\"json\": true}"), big} {
			key := fmt.Sprintf("v/%d", i)
			if _, err := s.Create(ctx, key, v, time.Time{}); err != nil {
				t.Fatalf("Create %d bytes: %v", len(v), err)
			}
			it, err := s.Get(ctx, key)
			if err != nil || !bytes.Equal(it.Value, v) {
				t.Fatalf("value of %d bytes came back as %d bytes (%v)", len(v), len(it.Value), err)
			}
		}
	})

	t.Run("keys", func(t *testing.T) {
		s := open(t)
		keys := []string{"odd/a b", "odd/a|b", "odd/a\x01b", "odd/é/ü", "odd/" + strings.Repeat("x", 400), "odd/a/b/c"}
		for _, k := range keys {
			if _, err := s.Create(ctx, k, []byte(k), time.Time{}); err != nil {
				t.Fatalf("Create %q: %v", k, err)
			}
		}
		for _, k := range keys {
			if it, err := s.Get(ctx, k); err != nil || string(it.Value) != k {
				t.Fatalf("Get %q: %q, %v", k, it.Value, err)
			}
		}
		items, err := s.List(ctx, "odd/", "", 100)
		if err != nil || len(items) != len(keys) {
			t.Fatalf("List: %d items, %v; want %d", len(items), err, len(keys))
		}
	})

	t.Run("list", func(t *testing.T) {
		s := open(t)
		for _, k := range []string{"due/0003|b", "due/0001|a", "due/0002|c", "due/0010|d", "dues/x", "du/y", "other/z"} {
			if _, err := s.Create(ctx, k, []byte(k), time.Time{}); err != nil {
				t.Fatal(err)
			}
		}
		keysOf := func(items []store.Item) string {
			var ks []string
			for _, it := range items {
				if string(it.Value) != it.Key || it.Version == 0 {
					t.Fatalf("listed item %+v does not carry its value and version", it)
				}
				ks = append(ks, it.Key)
			}
			return strings.Join(ks, ",")
		}
		cases := []struct {
			prefix, after string
			limit         int
			want          string
		}{
			{"due/", "", 10, "due/0001|a,due/0002|c,due/0003|b,due/0010|d"},
			{"due/", "", 2, "due/0001|a,due/0002|c"},
			{"due/", "due/0002|c", 10, "due/0003|b,due/0010|d"},
			{"due/000", "", 10, "due/0001|a,due/0002|c,due/0003|b"},
			{"due/0002", "", 10, "due/0002|c"},
			{"due/1", "", 10, ""},
			{"dues/", "", 10, "dues/x"},
		}
		for _, c := range cases {
			items, err := s.List(ctx, c.prefix, c.after, c.limit)
			if err != nil {
				t.Fatalf("List(%q, %q, %d): %v", c.prefix, c.after, c.limit, err)
			}
			if got := keysOf(items); got != c.want {
				t.Errorf("List(%q, %q, %d) = %s, want %s", c.prefix, c.after, c.limit, got, c.want)
			}
		}
	})

	t.Run("list-many", func(t *testing.T) {
		s := open(t)
		const n = 250
		for i := range n {
			if _, err := s.Create(ctx, fmt.Sprintf("many/%05d", i), []byte("x"), time.Time{}); err != nil {
				t.Fatal(err)
			}
		}
		seen, after := 0, ""
		for {
			items, err := s.List(ctx, "many/", after, 100)
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range items {
				if want := fmt.Sprintf("many/%05d", seen); it.Key != want {
					t.Fatalf("item %d is %s, want %s", seen, it.Key, want)
				}
				seen++
			}
			if len(items) < 100 {
				break
			}
			after = items[len(items)-1].Key
		}
		if seen != n {
			t.Fatalf("paged through %d items, want %d", seen, n)
		}
	})

	t.Run("expiry", func(t *testing.T) {
		s := open(t)
		life := 300*time.Millisecond + tick
		exp := time.Now().Add(life)
		v, err := s.Create(ctx, "exp/a", []byte("short"), exp)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Create(ctx, "exp/b", []byte("long"), time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		it, err := s.Get(ctx, "exp/a")
		if err != nil || it.Expires.Sub(exp).Abs() > tick {
			t.Fatalf("Get before expiry: %+v, %v (want expires %v)", it, err, exp)
		}
		time.Sleep(life + tick + 50*time.Millisecond)
		if _, err := s.Get(ctx, "exp/a"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Get after expiry: %v, want ErrNotFound", err)
		}
		if _, err := s.Update(ctx, "exp/a", v, []byte("late"), time.Time{}); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("Update of an expired item: %v, want ErrConflict", err)
		}
		if err := s.Delete(ctx, "exp/a", v); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("Delete of an expired item: %v, want ErrConflict", err)
		}
		items, err := s.List(ctx, "exp/", "", 10)
		if err != nil || len(items) != 1 || items[0].Key != "exp/b" {
			t.Fatalf("List shows %+v, %v; want exp/b alone", items, err)
		}
		if _, err := s.Create(ctx, "exp/a", []byte("new"), time.Time{}); err != nil {
			t.Fatalf("Create over an expired item: %v", err)
		}
		if it, err := s.Get(ctx, "exp/a"); err != nil || string(it.Value) != "new" || !it.Expires.IsZero() {
			t.Fatalf("Get after re-create: %+v, %v", it, err)
		}
		// Update may change and clear an expiry.
		it, _ = s.Get(ctx, "exp/b")
		if _, err := s.Update(ctx, "exp/b", it.Version, []byte("long"), time.Time{}); err != nil {
			t.Fatal(err)
		}
		if it, _ := s.Get(ctx, "exp/b"); !it.Expires.IsZero() {
			t.Fatalf("Update to no expiry left %v", it.Expires)
		}
	})

	t.Run("namespaces", func(t *testing.T) {
		a, bs := open(t), open(t)
		if _, err := a.Create(ctx, "ns/k", []byte("a"), time.Time{}); err != nil {
			t.Fatal(err)
		}
		if _, err := bs.Get(ctx, "ns/k"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("another namespace sees the key: %v", err)
		}
		if items, _ := bs.List(ctx, "ns/", "", 10); len(items) != 0 {
			t.Fatalf("another namespace lists %d items", len(items))
		}
		if _, err := bs.Create(ctx, "ns/k", []byte("b"), time.Time{}); err != nil {
			t.Fatalf("Create in another namespace: %v", err)
		}
	})

	t.Run("racing-goroutines", func(t *testing.T) {
		s := open(t)
		const workers, each = 8, 25
		var wg sync.WaitGroup
		var wins sync.Map
		errs := make(chan error, workers)
		for w := range workers {
			wg.Go(func() {
				if _, err := s.Create(ctx, "race/first", []byte{byte(w)}, time.Time{}); err == nil {
					wins.Store(w, true)
				} else if !errors.Is(err, store.ErrConflict) {
					errs <- err
				}
				for range each {
					if err := increment(ctx, s, "race/counter"); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		n := 0
		wins.Range(func(any, any) bool { n++; return true })
		if n != 1 {
			t.Fatalf("%d racing Creates won, want exactly 1", n)
		}
		if got := counter(t, s, "race/counter"); got != workers*each {
			t.Fatalf("counter = %d after %d increments: a conditional write lost an update", got, workers*each)
		}
	})

	t.Run("racing-processes", func(t *testing.T) {
		if b.Spec == "" {
			t.Skip("the backend lives in one process")
		}
		namespace := ns(t)
		const procs, each = 3, 20
		var cmds []*exec.Cmd
		var outs []*bytes.Buffer
		for p := range procs {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), childEnv+"="+strings.Join([]string{b.Spec, namespace, "proc", strconv.Itoa(each), strconv.Itoa(p)}, jobSep))
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			cmds, outs = append(cmds, cmd), append(outs, &out)
		}
		for i, cmd := range cmds {
			if err := cmd.Wait(); err != nil {
				t.Fatalf("process %d: %v: %s", i, err, outs[i])
			}
		}
		s := b.Open(t, namespace)
		defer s.Close()
		if got := counter(t, s, "proc/counter"); got != procs*each {
			t.Fatalf("counter = %d after %d increments from %d processes", got, procs*each, procs)
		}
		if _, err := s.Get(ctx, "proc/first"); err != nil {
			t.Fatalf("first: %v", err)
		}
	})
}
