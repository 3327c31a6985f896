package idempotency

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Status is where a trigger key stands.
type Status string

const (
	// InProgress: a worker holds the lease and is applying.
	InProgress Status = "INPROGRESS"
	// Applied: the API calls are done and the result is stored, but some notice is still
	// undelivered (Record.Pending). A retry delivers it without applying again.
	Applied Status = "APPLIED"
	// Completed: applied and every notice delivered; a replay returns Record.Result.
	Completed Status = "COMPLETED"
)

// Errors Acquire returns; callers branch on them with errors.Is.
var (
	// ErrInProgress: another worker holds a live lease on the key.
	ErrInProgress = errors.New("idempotency: key in progress")
	// ErrPayloadMismatch: the key was seen with a different payload hash.
	ErrPayloadMismatch = errors.New("idempotency: key reused with a different payload")
	// ErrFenced: a write carried a lease token that is no longer the key's: another run took
	// the key over, and the caller must stop writing (the store and the API).
	ErrFenced = errors.New("idempotency: lease taken over by another run")
)

// Record is the one record kept per trigger key.
type Record struct {
	Key         string          `json:"key"`
	Status      Status          `json:"status"`
	PayloadHash string          `json:"payloadHash"`
	LeaseUntil  time.Time       `json:"leaseUntil"`
	ExpiresAt   time.Time       `json:"expiresAt"`
	Result      json.RawMessage `json:"result,omitempty"`
	// Pending holds the notices not yet delivered to every sink.
	Pending []PendingNotice `json:"pending,omitempty"`
}

// PendingNotice is a notice still owed to some sinks.
type PendingNotice struct {
	ID string `json:"id"`
	// Event is the notice's CloudEvent JSON, delivered byte for byte as first built.
	Event json.RawMessage `json:"event"`
	// Sinks names the sinks (notify.Sink.Name) that have not acknowledged it yet.
	Sinks []string `json:"sinks"`
}

// Store keeps idempotency records. Implementations must make Acquire atomic across every
// process that shares the store.
type Store interface {
	// Acquire takes the key's lease until leaseUntil, in one atomic step:
	//   - no record, or an expired one (ExpiresAt past): a new InProgress record is written;
	//     Acquire returns (nil, nil).
	//   - InProgress whose lease has lapsed (its worker crashed or timed out): the lease is
	//     taken over (the record keeps its Pending) and the previous record is returned, so the
	//     new holder learns which notices the crashed run had planned.
	//   - a record with another PayloadHash: ErrPayloadMismatch (checked on every path).
	//   - a live lease (LeaseUntil in the future, any status but Completed): ErrInProgress.
	//   - Applied with no live lease: the lease is taken and the record returned, so its
	//     caller delivers Pending and nobody else does meanwhile.
	//   - Completed: the record is returned unchanged, no lease taken.
	Acquire(ctx context.Context, key, payloadHash string, leaseUntil time.Time) (*Record, error)
	// Put writes rec (the holder saving Applied or Completed, clearing or keeping its lease).
	Put(ctx context.Context, rec Record) error
	// Delete removes the key: a failed apply gives it up so a retry starts fresh.
	Delete(ctx context.Context, key string) error
	// Pending lists Applied records whose lease has lapsed: notices some earlier run could not
	// deliver.
	Pending(ctx context.Context) ([]Record, error)
	Close() error
}

// Lease and retention periods.
const (
	// leaseGrace outlasts the deadline a little: the platform may still be delivering the
	// invocation's answer when the deadline passes, and every instance compares leases with its
	// own clock, so the grace absorbs a few seconds of clock skew between them.
	leaseGrace = 10 * time.Second
	// shortLease is the lease of an invocation with no time left: long enough to finish its
	// writes, short enough that a retry is never blocked for long.
	shortLease = 10 * time.Second
	// noDeadline bounds the lease of a caller with no deadline (the CLI): generous, yet a
	// crashed run still frees its key within minutes.
	noDeadline = 5 * time.Minute
	// completedTTL is the replay window: a retry within it gets the stored result.
	completedTTL = 24 * time.Hour
	// appliedTTL keeps an undelivered notice long after any retry policy gives up, so it is
	// delivered by a later invocation rather than silently dropped.
	appliedTTL = 7 * 24 * time.Hour
)

// LeaseUntil returns the lease end for an invocation with the given deadline (ok false: none),
// as Powertools for AWS Lambda does: the lease follows the invocation's remaining time (plus a
// short grace), so a crashed or timed-out run blocks the platform's retries only until its own
// deadline instead of for a fixed, long lock period. With no deadline known the lease is a
// generous five minutes; a deadline already past still gets a short lease, enough to finish
// the writes in flight.
func LeaseUntil(now, deadline time.Time, ok bool) time.Time {
	switch {
	case !ok:
		return now.Add(noDeadline)
	case deadline.After(now):
		return deadline.Add(leaseGrace)
	default:
		return now.Add(shortLease)
	}
}

// withExpiry fills a zero ExpiresAt: completed results are kept for replay, applied records
// until their notices go out.
func withExpiry(rec Record, now time.Time) Record {
	if rec.ExpiresAt.IsZero() {
		if rec.Status == Completed {
			rec.ExpiresAt = now.Add(completedTTL)
		} else {
			rec.ExpiresAt = now.Add(appliedTTL)
		}
	}
	return rec
}

// decide is the Acquire rule shared by the stores that run it in Go (memory, file); the Redis
// store runs the same rule in Lua. It returns the record to write (nil: none) and the answer.
func decide(cur *Record, key, hash string, leaseUntil, now time.Time) (write *Record, out *Record, err error) {
	if cur == nil || (!cur.ExpiresAt.IsZero() && !cur.ExpiresAt.After(now)) {
		rec := withExpiry(Record{Key: key, Status: InProgress, PayloadHash: hash, LeaseUntil: leaseUntil}, now)
		return &rec, nil, nil
	}
	if cur.PayloadHash != hash {
		return nil, nil, ErrPayloadMismatch
	}
	if cur.Status == Completed {
		c := *cur
		return nil, &c, nil
	}
	if cur.LeaseUntil.After(now) {
		return nil, nil, ErrInProgress
	}
	prev := *cur
	next := *cur
	next.LeaseUntil = leaseUntil
	return &next, &prev, nil
}
