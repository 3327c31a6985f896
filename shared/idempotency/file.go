package idempotency

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

var bucket = []byte("idempotency")

// lockTimeout is how long a second process waits for the file's lock before failing: long
// enough to outlast a short CLI run, short enough to report a stuck one.
var lockTimeout = 5 * time.Second

// File is a Store in one bbolt file: the CLI's default, so a replay survives between runs.
// bbolt locks the file, so a second process waits briefly and then fails clearly.
type File struct {
	db  *bolt.DB
	now func() time.Time
}

// NewFile opens (creating) the store at path.
func NewFile(path string) (*File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("idempotency: file store %s: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("idempotency: file store %s is locked by another livepack process: %w", path, err)
		}
		return nil, fmt.Errorf("idempotency: file store %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucketIfNotExists(bucket); return err }); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("idempotency: file store %s: %w", path, err)
	}
	return &File{db: db, now: time.Now}, nil
}

func get(b *bolt.Bucket, key string) (*Record, error) {
	v := b.Get([]byte(key))
	if v == nil {
		return nil, nil
	}
	var r Record
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("idempotency: record %s: %w", key, err)
	}
	return &r, nil
}

func put(b *bolt.Bucket, rec Record) error {
	v, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return b.Put([]byte(rec.Key), v)
}

// Acquire implements Store in one read-write transaction.
func (f *File) Acquire(_ context.Context, key, hash string, leaseUntil time.Time) (*Record, error) {
	var out *Record
	var decision error
	err := f.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		cur, err := get(b, key)
		if err != nil {
			return err
		}
		write, o, derr := decide(cur, key, hash, leaseUntil, f.now())
		out, decision = o, derr
		if write != nil {
			return put(b, *write)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("idempotency: acquire %s: %w", key, err)
	}
	return out, decision
}

// Put implements Store.
func (f *File) Put(_ context.Context, rec Record) error {
	rec = withExpiry(rec, f.now())
	if err := f.db.Update(func(tx *bolt.Tx) error { return put(tx.Bucket(bucket), rec) }); err != nil {
		return fmt.Errorf("idempotency: put %s: %w", rec.Key, err)
	}
	return nil
}

// Delete implements Store.
func (f *File) Delete(_ context.Context, key string) error {
	if err := f.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Delete([]byte(key)) }); err != nil {
		return fmt.Errorf("idempotency: delete %s: %w", key, err)
	}
	return nil
}

// Pending implements Store; it also drops expired records, the file store's only cleanup.
func (f *File) Pending(context.Context) ([]Record, error) {
	var out []Record
	now := f.now()
	err := f.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		var expired [][]byte
		err := b.ForEach(func(k, v []byte) error {
			var r Record
			if json.Unmarshal(v, &r) != nil {
				return nil
			}
			if !r.ExpiresAt.IsZero() && !r.ExpiresAt.After(now) {
				expired = append(expired, append([]byte(nil), k...))
				return nil
			}
			if isPending(r, now) {
				out = append(out, r)
			}
			return nil
		})
		for _, k := range expired {
			_ = b.Delete(k)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("idempotency: pending: %w", err)
	}
	return out, nil
}

// Close implements Store.
func (f *File) Close() error { return f.db.Close() }
