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
	//   - no record, or an expired one (ExpiresAt past; or InProgress with its lease past):
	//     a new InProgress record is written; Acquire returns (nil, nil).
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
