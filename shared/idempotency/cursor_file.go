package idempotency

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The file store keeps cursors in buckets of their own; pages and marks sit in one nested
// bucket per cursor, so dropping a pass's pages is one bucket delete.
var (
	cursorBucket = []byte("cursors")
	pagesBucket  = []byte("cursor-pages")
	marksBucket  = []byte("cursor-marks")
)

func itoa(n int) string { return strconv.Itoa(n) }

// sub returns the cursor's nested bucket under top, creating both when create is set (nil
// when absent and not created).
func sub(tx *bolt.Tx, top []byte, name string, create bool) (*bolt.Bucket, error) {
	if !create {
		b := tx.Bucket(top)
		if b == nil {
			return nil, nil
		}
		return b.Bucket([]byte(name)), nil
	}
	b, err := tx.CreateBucketIfNotExists(top)
	if err != nil {
		return nil, err
	}
	return b.CreateBucketIfNotExists([]byte(name))
}

func (f *File) updateCursor(name string, fn func(cursorRecord) (cursorRecord, error)) (cursorRecord, error) {
	var out cursorRecord
	var decision error
	err := f.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(cursorBucket)
		if err != nil {
			return err
		}
		var cur cursorRecord
		if v := b.Get([]byte(name)); v != nil {
			if err := json.Unmarshal(v, &cur); err != nil {
				return fmt.Errorf("cursor %s: %w", name, err)
			}
		}
		out, decision = fn(cur)
		if decision != nil {
			return nil
		}
		v, err := json.Marshal(out)
		if err != nil {
			return err
		}
		return b.Put([]byte(name), v)
	})
	if err != nil {
		return out, fmt.Errorf("idempotency: cursor %s: %w", name, err)
	}
	return out, decision
}

// ClaimCursor implements Cursors in one read-write transaction.
func (f *File) ClaimCursor(_ context.Context, name, holder string, leaseUntil time.Time) ([]byte, error) {
	c, err := f.updateCursor(name, func(c cursorRecord) (cursorRecord, error) { return c.claim(holder, leaseUntil, f.now()) })
	if err != nil {
		return nil, err
	}
	return c.State, nil
}

// SaveCursor implements Cursors.
func (f *File) SaveCursor(_ context.Context, name, holder string, state []byte, leaseUntil time.Time) error {
	_, err := f.updateCursor(name, func(c cursorRecord) (cursorRecord, error) { return c.save(holder, state, leaseUntil) })
	return err
}

// PutCursorPage implements Cursors.
func (f *File) PutCursorPage(_ context.Context, name string, n int, items []string) error {
	v, err := json.Marshal(items)
	if err != nil {
		return err
	}
	err = f.db.Update(func(tx *bolt.Tx) error {
		b, err := sub(tx, pagesBucket, name, true)
		if err != nil {
			return err
		}
		return b.Put([]byte(itoa(n)), v)
	})
	if err != nil {
		return fmt.Errorf("idempotency: cursor %s page %d: %w", name, n, err)
	}
	return nil
}

// CursorPage implements Cursors.
func (f *File) CursorPage(_ context.Context, name string, n int) ([]string, error) {
	var items []string
	err := f.db.View(func(tx *bolt.Tx) error {
		b, _ := sub(tx, pagesBucket, name, false)
		if b == nil {
			return nil
		}
		v := b.Get([]byte(itoa(n)))
		if v == nil {
			return nil
		}
		return json.Unmarshal(v, &items)
	})
	if err != nil {
		return nil, fmt.Errorf("idempotency: cursor %s page %d: %w", name, n, err)
	}
	return items, nil
}

// DropCursorPages implements Cursors.
func (f *File) DropCursorPages(_ context.Context, name string) error {
	err := f.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(pagesBucket)
		if b == nil || b.Bucket([]byte(name)) == nil {
			return nil
		}
		return b.DeleteBucket([]byte(name))
	})
	if err != nil {
		return fmt.Errorf("idempotency: cursor %s pages: %w", name, err)
	}
	return nil
}

// CursorMarks implements Cursors.
func (f *File) CursorMarks(_ context.Context, name string, items []string) (map[string]string, error) {
	out := map[string]string{}
	err := f.db.View(func(tx *bolt.Tx) error {
		b, _ := sub(tx, marksBucket, name, false)
		if b == nil {
			return nil
		}
		for _, it := range items {
			if v := b.Get([]byte(it)); v != nil {
				out[it] = string(v)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("idempotency: cursor %s marks: %w", name, err)
	}
	return out, nil
}

// SetCursorMarks implements Cursors.
func (f *File) SetCursorMarks(_ context.Context, name string, marks map[string]string) error {
	if len(marks) == 0 {
		return nil
	}
	err := f.db.Update(func(tx *bolt.Tx) error {
		b, err := sub(tx, marksBucket, name, true)
		if err != nil {
			return err
		}
		for it, v := range marks {
			if v == "" {
				err = b.Delete([]byte(it))
			} else {
				err = b.Put([]byte(it), []byte(v))
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("idempotency: cursor %s marks: %w", name, err)
	}
	return nil
}
