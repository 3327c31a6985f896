package idempotency

import (
	"bytes"
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

var (
	bucket = []byte("idempotency")
	// delivered is the delivered-notices record.
	delivered = []byte("delivered")
	// planned holds each key's planned notices, one entry per notice (key NUL id).
	planned = []byte("planned")
)

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
	if err := db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucket); err != nil {
			return err
		}
		if _, err := tx.CreateBucketIfNotExists(planned); err != nil {
			return err
		}
		_, err := tx.CreateBucketIfNotExists(delivered)
		return err
	}); err != nil {
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
func (f *File) Acquire(_ context.Context, key, hash string, leaseUntil time.Time) (string, *Record, error) {
	var out *Record
	var token string
	var decision error
	err := f.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		cur, err := get(b, key)
		if err != nil {
			return err
		}
		write, t, o, derr := decide(cur, key, hash, leaseUntil, f.now())
		out, token, decision = o, t, derr
		if o != nil {
			ps, err := plannedOf(tx, key)
			if err != nil {
				return err
			}
			o.Pending = append(o.Pending, ps...)
		}
		if write != nil {
			if o == nil { // a fresh record: notices planned under an expired one are gone
				if err := clearPlanned(tx, key); err != nil {
					return err
				}
			}
			return put(b, *write)
		}
		return nil
	})
	if err != nil {
		return "", nil, fmt.Errorf("idempotency: acquire %s: %w", key, err)
	}
	return token, out, decision
}

func plannedPrefix(key string) []byte { return []byte(key + "\x00") }

func plannedOf(tx *bolt.Tx, key string) ([]PendingNotice, error) {
	var out []PendingNotice
	c := tx.Bucket(planned).Cursor()
	p := plannedPrefix(key)
	for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		var pn PendingNotice
		if err := json.Unmarshal(v, &pn); err != nil {
			return nil, fmt.Errorf("idempotency: planned notice of %s: %w", key, err)
		}
		out = append(out, pn)
	}
	return out, nil
}

func clearPlanned(tx *bolt.Tx, key string) error {
	c := tx.Bucket(planned).Cursor()
	p := plannedPrefix(key)
	for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Seek(p) {
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}

// Plan implements Store: one small write per notice.
func (f *File) Plan(_ context.Context, key, token string, pn PendingNotice) error {
	if token == "" {
		return ErrFenced
	}
	v, err := json.Marshal(pn)
	if err != nil {
		return err
	}
	err = f.holder(key, token, func(tx *bolt.Tx, _ *bolt.Bucket, _ *Record) error {
		return tx.Bucket(planned).Put(append(plannedPrefix(key), pn.ID...), v)
	})
	if err != nil {
		return fmt.Errorf("idempotency: plan %s: %w", key, err)
	}
	return nil
}

// holder runs fn on the key's record in one transaction, if token still holds it.
func (f *File) holder(key, token string, fn func(tx *bolt.Tx, b *bolt.Bucket, cur *Record) error) error {
	return f.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		cur, err := get(b, key)
		if err != nil {
			return err
		}
		if err := fenced(cur, token, f.now()); err != nil {
			return err
		}
		return fn(tx, b, cur)
	})
}

// Renew implements Store.
func (f *File) Renew(_ context.Context, key, token string, leaseUntil time.Time) error {
	if token == "" {
		return ErrFenced
	}
	err := f.holder(key, token, func(_ *bolt.Tx, b *bolt.Bucket, cur *Record) error {
		cur.LeaseUntil = leaseUntil
		return put(b, *cur)
	})
	if err != nil {
		return fmt.Errorf("idempotency: renew %s: %w", key, err)
	}
	return nil
}

// Put implements Store.
func (f *File) Put(_ context.Context, rec Record) error {
	rec = withExpiry(rec, f.now())
	put := func(tx *bolt.Tx, b *bolt.Bucket, _ *Record) error {
		if err := clearPlanned(tx, rec.Key); err != nil {
			return err
		}
		return put(b, rec)
	}
	if err := f.holder(rec.Key, rec.Token, put); err != nil {
		return fmt.Errorf("idempotency: put %s: %w", rec.Key, err)
	}
	return nil
}

// Delete implements Store.
func (f *File) Delete(_ context.Context, key, token string) error {
	del := func(tx *bolt.Tx, b *bolt.Bucket, _ *Record) error {
		if err := clearPlanned(tx, key); err != nil {
			return err
		}
		return b.Delete([]byte(key))
	}
	if err := f.holder(key, token, del); err != nil {
		return fmt.Errorf("idempotency: delete %s: %w", key, err)
	}
	return nil
}

func getMark(b *bolt.Bucket, k string) *mark {
	v := b.Get([]byte(k))
	if v == nil {
		return nil
	}
	var m mark
	if json.Unmarshal(v, &m) != nil {
		return nil
	}
	return &m
}

// ClaimNotice implements Store.
func (f *File) ClaimNotice(_ context.Context, id, sink, token string, until time.Time) (Claim, error) {
	var c Claim
	err := f.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(delivered)
		k := noticeKey(id, sink)
		w, res := claim(getMark(b, k), token, until, f.now())
		c = res
		if w == nil {
			return nil
		}
		v, err := json.Marshal(w)
		if err != nil {
			return err
		}
		return b.Put([]byte(k), v)
	})
	if err != nil {
		return 0, fmt.Errorf("idempotency: claim notice %s: %w", id, err)
	}
	return c, nil
}

// SettleNotice implements Store.
func (f *File) SettleNotice(_ context.Context, id, target, sink, token string, ok bool) error {
	err := f.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(delivered)
		k := noticeKey(id, sink)
		if ok {
			lk := lastKey(target, sink)
			if last := getMark(b, lk); last != nil && last.Token != id {
				if err := b.Delete([]byte(noticeKey(last.Token, sink))); err != nil {
					return err
				}
			}
			v, err := json.Marshal(mark{Token: id, Until: f.now().Add(DeliveredTTL)})
			if err != nil {
				return err
			}
			if err := b.Put([]byte(lk), v); err != nil {
				return err
			}
		}
		w, del := settle(getMark(b, k), token, ok, f.now())
		switch {
		case w != nil:
			v, err := json.Marshal(w)
			if err != nil {
				return err
			}
			return b.Put([]byte(k), v)
		case del:
			return b.Delete([]byte(k))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("idempotency: settle notice %s: %w", id, err)
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
			_ = clearPlanned(tx, string(k))
		}
		if err != nil {
			return err
		}
		d := tx.Bucket(delivered)
		var old [][]byte
		_ = d.ForEach(func(k, v []byte) error {
			var m mark
			if json.Unmarshal(v, &m) == nil && !m.Until.After(now) {
				old = append(old, append([]byte(nil), k...))
			}
			return nil
		})
		for _, k := range old {
			_ = d.Delete(k)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("idempotency: pending: %w", err)
	}
	return out, nil
}

// Close implements Store.
func (f *File) Close() error { return f.db.Close() }
