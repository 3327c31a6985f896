package idempotency

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Errors of the cursor methods; callers branch on them with errors.Is.
var (
	// ErrCursorHeld: another run holds a live lease on the cursor.
	ErrCursorHeld = errors.New("idempotency: cursor held by another run")
	// ErrCursorLost: the caller's lease lapsed and another run took the cursor over; the
	// caller must stop writing it (its saves are fenced off by the holder check).
	ErrCursorLost = errors.New("idempotency: cursor lease lost to another run")
)

// Cursors keeps the resumable position of long, repeated work — the scheduled reconcile's pass
// over every domain — in the same store as the idempotency records, so every instance sharing
// the store resumes where the last run stopped. Memory, File and Redis implement it.
//
// A cursor has one holder at a time. Its lease works like a trigger key's, with two
// differences: every save extends it (a heartbeat, so a long run keeps the cursor), and every
// save names the holder, so a run whose lease lapsed and was taken over cannot overwrite the
// new holder's progress (fencing by holder id).
type Cursors interface {
	// ClaimCursor takes name's lease for holder until leaseUntil and returns the stored state
	// (nil when there is none). A live lease of another holder: ErrCursorHeld, with the
	// lease's end in the message.
	ClaimCursor(ctx context.Context, name, holder string, leaseUntil time.Time) ([]byte, error)
	// SaveCursor writes state and moves the lease to leaseUntil (zero releases it), only while
	// holder holds the cursor: ErrCursorLost otherwise.
	SaveCursor(ctx context.Context, name, holder string, state []byte, leaseUntil time.Time) error
	// PutCursorPage stores page n of the list the cursor walks (a pass's domains).
	PutCursorPage(ctx context.Context, name string, n int, items []string) error
	// CursorPage returns page n (nil when it does not exist).
	CursorPage(ctx context.Context, name string, n int) ([]string, error)
	// DropCursorPages removes every page of the cursor: a new pass lists afresh.
	DropCursorPages(ctx context.Context, name string) error
	// CursorMarks returns the marks stored for items (absent items are left out): a short
	// digest per item that lets the walker tell what changed since it last looked.
	CursorMarks(ctx context.Context, name string, items []string) (map[string]string, error)
	// SetCursorMarks writes marks; an empty mark deletes the item's.
	SetCursorMarks(ctx context.Context, name string, marks map[string]string) error
}

// cursorTTL bounds how long an abandoned cursor (its policies changed, so its name is never
// claimed again) lingers in the stores that expire keys.
const cursorTTL = 30 * 24 * time.Hour

// cursorRecord is a cursor as the stores keep it.
type cursorRecord struct {
	Holder     string    `json:"holder"`
	LeaseUntil time.Time `json:"leaseUntil"`
	State      []byte    `json:"state,omitempty"`
}

// claim is the ClaimCursor rule shared by the stores that run it in Go (memory, file); the
// Redis store runs the same rule in Lua.
func (c cursorRecord) claim(holder string, leaseUntil, now time.Time) (cursorRecord, error) {
	if c.Holder != "" && c.Holder != holder && c.LeaseUntil.After(now) {
		return c, cursorHeld(c.LeaseUntil)
	}
	c.Holder, c.LeaseUntil = holder, leaseUntil
	return c, nil
}

// save is the SaveCursor rule.
func (c cursorRecord) save(holder string, state []byte, leaseUntil time.Time) (cursorRecord, error) {
	if c.Holder != holder {
		return c, ErrCursorLost
	}
	c.State, c.LeaseUntil = append([]byte(nil), state...), leaseUntil
	if leaseUntil.IsZero() {
		c.Holder = ""
	}
	return c, nil
}

func cursorHeld(until time.Time) error {
	return &heldError{until: until}
}

// heldError carries the other run's lease end, so the refused run can say when to expect it.
type heldError struct{ until time.Time }

func (e *heldError) Error() string {
	return ErrCursorHeld.Error() + " until " + e.until.UTC().Format(time.RFC3339)
}

func (e *heldError) Unwrap() error { return ErrCursorHeld }

func jsonList(items []string) (string, error) {
	b, err := json.Marshal(items)
	return string(b), err
}

func parseList(s string) ([]string, error) {
	var items []string
	err := json.Unmarshal([]byte(s), &items)
	return items, err
}
