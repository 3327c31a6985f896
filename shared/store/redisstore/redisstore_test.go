package redisstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/livepack/livepack/shared/redisconn"
	"github.com/livepack/livepack/shared/redistest"
	"github.com/livepack/livepack/shared/store"
	"github.com/livepack/livepack/shared/store/redisstore"
	"github.com/livepack/livepack/shared/store/storetest"
)

func TestMain(m *testing.M) {
	storetest.Main(m, func(ctx context.Context, spec, ns string) (store.Store, error) {
		return redisstore.Open(ctx, spec, ns)
	})
}

func TestConformance(t *testing.T) {
	pool := redistest.Start(t)
	storetest.Run(t, storetest.Backend{
		Open: func(_ testing.TB, ns string) store.Store { return redisstore.New(pool, ns) },
		Spec: "redis://" + pool.Addr() + "/0",
	})
}

// proxy forwards connections to a Redis and, when armed, lets the next script reach Redis and
// run there, then cuts the connection before the reply reaches the client: a reply lost on the
// way back, which redisconn answers by sending the command again.
type proxy struct {
	l      net.Listener
	target string
	armed  atomic.Bool
	// between runs after the script ran and before the client sees the cut.
	between func()
	cuts    atomic.Int32
}

func newProxy(t *testing.T, target string) *proxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l, target: target}
	t.Cleanup(func() { _ = l.Close() })
	go p.serve()
	return p
}

func (p *proxy) serve() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		go p.handle(c)
	}
}

func (p *proxy) handle(c net.Conn) {
	defer c.Close()
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer s.Close()
	var drop atomic.Bool
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				if bytes.Contains(buf[:n], []byte("EVAL")) && p.armed.CompareAndSwap(true, false) {
					drop.Store(true)
				}
				if _, err := s.Write(buf[:n]); err != nil {
					return
				}
			}
			if err != nil {
				_ = s.Close()
				return
			}
		}
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := s.Read(buf)
		if n > 0 && drop.Load() {
			if p.between != nil {
				p.between()
			}
			p.cuts.Add(1)
			return
		}
		if n > 0 {
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// TestResendAfterLostReply: each conditional write runs in Redis, its reply is lost, and the
// resend on a fresh connection answers what the first run did.
func TestResendAfterLostReply(t *testing.T) {
	ctx := context.Background()
	direct := redistest.Start(t)
	px := newProxy(t, direct.Addr())
	pool, err := redisconn.New("redis://"+px.l.Addr().String()+"/0", redisconn.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pool.Close() })
	s := redisstore.New(pool, "resend")
	other := redisstore.New(direct, "resend")
	// Warm the script cache, so the cut reply is a script's, not NOSCRIPT.
	if _, err := s.Create(ctx, "warm/a", nil, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "warm/a", 1); !errors.Is(err, store.ErrConflict) {
		t.Fatal(err)
	}
	if _, err := s.Update(ctx, "warm/a", 1, nil, time.Time{}); !errors.Is(err, store.ErrConflict) {
		t.Fatal(err)
	}
	lost := func(t *testing.T, between func()) {
		t.Helper()
		px.between = between
		px.armed.Store(true)
		t.Cleanup(func() {
			if px.armed.Load() {
				t.Error("no script reply was cut")
			}
		})
	}
	cuts := px.cuts.Load()
	checkCut := func(t *testing.T) {
		t.Helper()
		if n := px.cuts.Load(); n != cuts+1 {
			t.Fatalf("%d replies cut, want 1", n-cuts)
		}
		cuts++
	}

	t.Run("create", func(t *testing.T) {
		lost(t, nil)
		v, err := s.Create(ctx, "k/c", []byte("one"), time.Time{})
		checkCut(t)
		if err != nil {
			t.Fatalf("resent Create: %v, want the success its first run had", err)
		}
		it, err := other.Get(ctx, "k/c")
		if err != nil || it.Version != v || string(it.Value) != "one" {
			t.Fatalf("after a resent Create: %+v, %v (version %d)", it, err, v)
		}
		if _, err := s.Create(ctx, "k/c", []byte("two"), time.Time{}); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("a second Create: %v, want ErrConflict", err)
		}
	})

	t.Run("update", func(t *testing.T) {
		v1, err := other.Create(ctx, "k/u", []byte("1"), time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		lost(t, nil)
		v2, err := s.Update(ctx, "k/u", v1, []byte("2"), time.Time{})
		checkCut(t)
		if err != nil {
			t.Fatalf("resent Update: %v, want the success its first run had", err)
		}
		if it, err := other.Get(ctx, "k/u"); err != nil || it.Version != v2 || string(it.Value) != "2" {
			t.Fatalf("after a resent Update: %+v, %v", it, err)
		}
	})

	t.Run("update-then-another-writer", func(t *testing.T) {
		// Between the run and the resend another writer reads the new value and writes on it:
		// the resend must still answer success (the increment landed), not ErrConflict (which
		// would make a read-modify-write apply it twice).
		v1, err := other.Create(ctx, "k/n", []byte("1"), time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		var later int64
		lost(t, func() {
			it, err := other.Get(ctx, "k/n")
			if err != nil || string(it.Value) != "2" {
				t.Errorf("another writer read %+v, %v", it, err)
				return
			}
			later, err = other.Update(ctx, "k/n", it.Version, []byte("3"), time.Time{})
			if err != nil {
				t.Error(err)
			}
		})
		if _, err := s.Update(ctx, "k/n", v1, []byte("2"), time.Time{}); err != nil {
			t.Fatalf("resent Update after another write: %v, want success", err)
		}
		checkCut(t)
		if it, err := other.Get(ctx, "k/n"); err != nil || it.Version != later || string(it.Value) != "3" {
			t.Fatalf("the later write was lost: %+v, %v", it, err)
		}
	})

	t.Run("delete", func(t *testing.T) {
		v, err := other.Create(ctx, "k/d", []byte("x"), time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		lost(t, nil)
		if err := s.Delete(ctx, "k/d", v); err != nil {
			t.Fatalf("resent Delete: %v, want the success its first run had", err)
		}
		checkCut(t)
		if _, err := other.Get(ctx, "k/d"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("after a resent Delete: %v", err)
		}
		// A first send finding nothing is still a conflict.
		if err := s.Delete(ctx, "k/d", v); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("Delete of an absent key: %v, want ErrConflict", err)
		}
	})

	t.Run("create-index-once", func(t *testing.T) {
		n, err := redis.Int(direct.Do(ctx, "ZCARD", redisstore.KeyPrefix("resend")+"index:k"))
		if err != nil || n != 3 {
			t.Fatalf("index of k holds %d members (%v), want 3 (c, u, n)", n, err)
		}
	})
}

// TestIndexStaysBounded: members of expired items leave the index as Creates go by, though
// nothing lists the kind.
func TestIndexStaysBounded(t *testing.T) {
	ctx := context.Background()
	pool := redistest.Start(t)
	s := redisstore.New(pool, "bounded")
	const n = 400
	for i := range n {
		if _, err := s.Create(ctx, fmt.Sprintf("e/%d", i), nil, time.Now().Add(20*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		if i%50 == 49 {
			time.Sleep(25 * time.Millisecond)
		}
	}
	time.Sleep(25 * time.Millisecond)
	for i := range n {
		if _, err := s.Create(ctx, fmt.Sprintf("e/live%d", i), nil, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	members, err := redis.Int(pool.Do(ctx, "ZCARD", redisstore.KeyPrefix("bounded")+"index:e"))
	if err != nil {
		t.Fatal(err)
	}
	if members > 2*n {
		t.Fatalf("index holds %d members for %d live items", members, n)
	}
	items, err := s.List(ctx, "e/", "", 0)
	if err != nil || len(items) != n {
		t.Fatalf("List: %d items, %v; want %d", len(items), err, n)
	}
	if m, _ := redis.Int(pool.Do(ctx, "ZCARD", redisstore.KeyPrefix("bounded")+"index:e")); m != n {
		t.Fatalf("after List the index holds %d members, want %d", m, n)
	}
}

// BenchmarkOps times each operation against a local redis-server.
func BenchmarkOps(b *testing.B) {
	storetest.Bench(b, redisstore.New(redistest.Start(b), "bench"))
}
