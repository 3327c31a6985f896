// Package boltstore is the store contract in one bbolt file: the CLI's state between runs, and
// a single machine's.
//
// The file is opened per operation: each call opens it, runs one transaction and closes it, so
// the file's lock is held for that operation alone. A long-running `livepack serve` and a
// `livepack plan` share the file: the reader waits at most for one write, never for the server
// to exit. Reads (Get, List) open the file read-only, under a shared lock, and never create it.
// The lock is taken blocking (the kernel wakes a waiter as soon as the holder lets go) rather
// than bbolt's polling every 50 ms, which a process writing in a loop could starve forever.
//
// Layout: one top-level bucket per namespace ("ns:" + namespace) holding every item under its
// full key ("kind/rest"), so List is one cursor seek and scan; kinds need no buckets of their
// own. A value is a format byte (1), the version and the expiry (Unix ns, 0: never) as 8 bytes
// big-endian each, then the item's bytes. Expired items are never shown; a write removes them
// from its namespace at most once a minute (the last sweep's time lives in the "sweeps"
// bucket, so every process sharing the file shares the schedule).
package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/livepack/livepack/shared/store"
)

// LockWait bounds how long an operation waits for another process's lock when its context has
// no earlier deadline: operations hold the lock for one transaction, so a longer wait means a
// process stuck holding it.
const LockWait = 30 * time.Second

// sweepEvery is how often a write removes its namespace's expired items.
const sweepEvery = time.Minute

const format = 1

var sweeps = []byte("sweeps")

// errEmpty: the file exists but holds nothing yet (a writer created it and has not yet
// written the first pages); a read finds no items in it.
var errEmpty = errors.New("boltstore: empty file")

// Store is the bbolt backend of one namespace in one file.
type Store struct {
	path   string
	bucket []byte
	ns     []byte
	now    func() time.Time
	// mu orders this process's operations, so they contend for the file's lock only with
	// other processes.
	mu sync.RWMutex
}

var _ store.Store = (*Store)(nil)

// Open returns the store of namespace in the file at path, creating the directory and the file
// when they do not exist. It holds nothing open: every operation opens the file.
func Open(path, namespace string) (*Store, error) {
	s := &Store{path: path, bucket: []byte("ns:" + namespace), ns: []byte(namespace), now: time.Now}
	if info, err := os.Stat(path); err == nil && info.Size() > 0 {
		return s, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("boltstore: %s: %w", path, err)
	}
	if err := s.update(context.Background(), "open", func(*bolt.Tx) error { return nil }); err != nil {
		return nil, err
	}
	return s, nil
}

// Close implements store.Store; the store holds nothing open between operations.
func (s *Store) Close() error { return nil }

// open opens the file for one operation, its lock taken under ctx.
func (s *Store) open(ctx context.Context, readOnly bool) (*bolt.DB, error) {
	how := syscall.LOCK_EX
	if readOnly {
		how = syscall.LOCK_SH
	}
	opts := &bolt.Options{
		ReadOnly: readOnly,
		// bbolt's own lock then finds the lock held by this very open file, and passes at once.
		OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
			f, err := os.OpenFile(name, flag, perm)
			if err != nil {
				return nil, err
			}
			if err := lock(ctx, f, how); err != nil {
				if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
					return nil, fmt.Errorf("%s is locked by another process: %w", name, err)
				}
				return nil, fmt.Errorf("lock %s: %w", name, err)
			}
			if readOnly {
				if info, err := f.Stat(); err != nil || info.Size() == 0 {
					_ = f.Close()
					return nil, errEmpty
				}
			}
			return f, nil
		},
	}
	return bolt.Open(s.path, 0o600, opts)
}

// lock takes a flock on f, waiting blocked (not polling) until ctx ends or LockWait passes.
func lock(ctx context.Context, f *os.File, how int) error {
	fd := int(f.Fd())
	err := syscall.Flock(fd, how|syscall.LOCK_NB)
	if !errors.Is(err, syscall.EWOULDBLOCK) {
		if err != nil {
			_ = f.Close()
		}
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, LockWait)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		for {
			err := syscall.Flock(fd, how)
			if !errors.Is(err, syscall.EINTR) {
				done <- err
				return
			}
		}
	}()
	select {
	case err := <-done:
		if err != nil {
			_ = f.Close()
		}
		return err
	case <-ctx.Done():
		// A blocked flock cannot be called off: it takes the lock when the holder lets go, and
		// gives it back at once.
		go func() {
			<-done
			_ = f.Close()
		}()
		return ctx.Err()
	}
}

// view runs f in a read-only transaction; a file or namespace not there yet runs f on nil.
func (s *Store) view(ctx context.Context, op string, f func(b *bolt.Bucket) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	db, err := s.open(ctx, true)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errEmpty) {
		return f(nil)
	}
	if err != nil {
		return fmt.Errorf("boltstore: %s: %w", op, err)
	}
	defer db.Close()
	if err := db.View(func(tx *bolt.Tx) error { return f(tx.Bucket(s.bucket)) }); err != nil {
		return fmt.Errorf("boltstore: %s: %w", op, err)
	}
	return nil
}

// update runs f in a read-write transaction, after a sweep when one is due.
func (s *Store) update(ctx context.Context, op string, f func(tx *bolt.Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	db, err := s.open(ctx, false)
	if err != nil {
		return fmt.Errorf("boltstore: %s: %w", op, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if err := s.sweep(tx); err != nil {
			return err
		}
		return f(tx)
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil && !errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("boltstore: %s: %w", op, err)
	}
	return err
}

// sweep removes the namespace's expired items when the last sweep is a minute old.
func (s *Store) sweep(tx *bolt.Tx) error {
	now := s.now()
	m, err := tx.CreateBucketIfNotExists(sweeps)
	if err != nil {
		return err
	}
	if v := m.Get(s.ns); len(v) == 8 && now.Sub(time.Unix(0, int64(binary.BigEndian.Uint64(v)))) < sweepEvery {
		return nil
	}
	if b := tx.Bucket(s.bucket); b != nil {
		var dead [][]byte
		if err := b.ForEach(func(k, v []byte) error {
			if it, err := decode(k, v); err != nil || !it.Live(now) {
				dead = append(dead, bytes.Clone(k))
			}
			return nil
		}); err != nil {
			return err
		}
		for _, k := range dead {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
	}
	return m.Put(s.ns, binary.BigEndian.AppendUint64(nil, uint64(now.UnixNano())))
}

func encode(version int64, expires time.Time, value []byte) []byte {
	var exp int64
	if !expires.IsZero() {
		exp = max(expires.UnixNano(), 1)
	}
	out := make([]byte, 0, 17+len(value))
	out = append(out, format)
	out = binary.BigEndian.AppendUint64(out, uint64(version))
	out = binary.BigEndian.AppendUint64(out, uint64(exp))
	return append(out, value...)
}

// decode copies the item out of bbolt's memory, which is valid only inside its transaction.
func decode(k, v []byte) (store.Item, error) {
	if len(v) < 17 || v[0] != format {
		return store.Item{}, fmt.Errorf("item %q: unknown encoding", k)
	}
	it := store.Item{Key: string(k), Version: int64(binary.BigEndian.Uint64(v[1:])), Value: bytes.Clone(v[17:])}
	if it.Value == nil {
		it.Value = []byte{}
	}
	if exp := int64(binary.BigEndian.Uint64(v[9:])); exp != 0 {
		it.Expires = time.Unix(0, exp)
	}
	return it, nil
}

// live returns the live item at key in b.
func (s *Store) live(b *bolt.Bucket, key string) (store.Item, bool, error) {
	if b == nil {
		return store.Item{}, false, nil
	}
	v := b.Get([]byte(key))
	if v == nil {
		return store.Item{}, false, nil
	}
	it, err := decode([]byte(key), v)
	if err != nil {
		return store.Item{}, false, err
	}
	return it, it.Live(s.now()), nil
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, key string) (store.Item, error) {
	var it store.Item
	var ok bool
	err := s.view(ctx, "get "+key, func(b *bolt.Bucket) (err error) {
		it, ok, err = s.live(b, key)
		return err
	})
	if err != nil {
		return store.Item{}, err
	}
	if !ok {
		return store.Item{}, store.ErrNotFound
	}
	return it, nil
}

// Create implements store.Store.
func (s *Store) Create(ctx context.Context, key string, value []byte, expires time.Time) (int64, error) {
	v := store.NewVersion()
	err := s.update(ctx, "create "+key, func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(s.bucket)
		if err != nil {
			return err
		}
		if _, ok, err := s.live(b, key); err != nil || ok {
			return cmp(err, store.ErrConflict)
		}
		return b.Put([]byte(key), encode(v, expires, value))
	})
	if err != nil {
		return 0, err
	}
	return v, nil
}

// cmp returns err, or else conflict.
func cmp(err, conflict error) error {
	if err != nil {
		return err
	}
	return conflict
}

// Update implements store.Store.
func (s *Store) Update(ctx context.Context, key string, version int64, value []byte, expires time.Time) (int64, error) {
	v := store.NewVersion()
	err := s.update(ctx, "update "+key, func(tx *bolt.Tx) error {
		b := tx.Bucket(s.bucket)
		if it, ok, err := s.live(b, key); err != nil || !ok || it.Version != version {
			return cmp(err, store.ErrConflict)
		}
		return b.Put([]byte(key), encode(v, expires, value))
	})
	if err != nil {
		return 0, err
	}
	return v, nil
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, key string, version int64) error {
	return s.update(ctx, "delete "+key, func(tx *bolt.Tx) error {
		b := tx.Bucket(s.bucket)
		if it, ok, err := s.live(b, key); err != nil || !ok || it.Version != version {
			return cmp(err, store.ErrConflict)
		}
		return b.Delete([]byte(key))
	})
}

// List implements store.Store.
func (s *Store) List(ctx context.Context, prefix, after string, limit int) ([]store.Item, error) {
	var out []store.Item
	err := s.view(ctx, "list "+prefix, func(b *bolt.Bucket) error {
		if b == nil {
			return nil
		}
		now := s.now()
		p := []byte(prefix)
		start := p
		if after >= prefix {
			start = []byte(after)
		}
		c := b.Cursor()
		for k, v := c.Seek(start); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			if string(k) <= after {
				continue
			}
			it, err := decode(k, v)
			if err != nil {
				return err
			}
			if !it.Live(now) {
				continue
			}
			out = append(out, it)
			if limit > 0 && len(out) == limit {
				break
			}
		}
		return nil
	})
	return out, err
}
