package idempotency

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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
	// Token is the fencing token of the lease that wrote the record: every Acquire that takes
	// the key draws a new one, and a write carrying an older one fails with ErrFenced. Empty
	// on a Put writes unconditionally, which only a record no run holds may do.
	Token string `json:"token,omitempty"`
}

// PendingNotice is a notice still owed to some sinks.
type PendingNotice struct {
	ID string `json:"id"`
	// Event is the notice's CloudEvent JSON, delivered byte for byte as first built.
	Event json.RawMessage `json:"event"`
	// Sinks names the sinks (notify.Sink.Name) that have not acknowledged it yet.
	Sinks []string `json:"sinks"`
}

// Claim is the answer of ClaimNotice.
type Claim int

const (
	// Claimed: the caller sends the notice to the sink now, then calls SettleNotice.
	Claimed Claim = iota + 1
	// AlreadyDelivered: some run delivered this notice to this sink: it is not sent again.
	AlreadyDelivered
	// InFlight: another run is sending it right now; the caller keeps it pending.
	InFlight
)

// Store keeps idempotency records. Implementations must make Acquire atomic across every
// process that shares the store.
type Store interface {
	// Acquire takes the key's lease until leaseUntil, in one atomic step, and returns the
	// lease's fencing token:
	//   - no record, or an expired one (ExpiresAt past): a new InProgress record is written;
	//     Acquire returns (token, nil, nil).
	//   - InProgress whose lease has lapsed (its worker crashed or timed out): the lease is
	//     taken over (the record keeps its Pending) and the previous record is returned, so the
	//     new holder learns which notices the crashed run had planned.
	//   - a record with another PayloadHash: ErrPayloadMismatch (checked on every path).
	//   - a live lease (LeaseUntil in the future, any status but Completed): ErrInProgress.
	//   - Applied with no live lease: the lease is taken and the record returned, so its
	//     caller delivers Pending and nobody else does meanwhile.
	//   - Completed: the record is returned unchanged, no lease taken (token "").
	Acquire(ctx context.Context, key, payloadHash string, leaseUntil time.Time) (token string, prev *Record, err error)
	// Renew extends the lease of the holder of token (the heartbeat of a run at work); it
	// fails with ErrFenced when the key is no longer the token's.
	Renew(ctx context.Context, key, token string, leaseUntil time.Time) error
	// Plan appends one notice to the key's planned notices, before the write it announces:
	// one notice is written, not the key's whole list, so a run of n changes writes O(n), not
	// O(n²). A later Acquire that takes the key over returns them in prev.Pending. token must
	// hold the key (ErrFenced otherwise).
	Plan(ctx context.Context, key, token string, pn PendingNotice) error
	// Put writes rec (the holder saving its progress, Applied or Completed); rec.Pending
	// replaces the planned notices. rec.Token must be the key's current token, else ErrFenced
	// and nothing is written.
	Put(ctx context.Context, rec Record) error
	// Delete removes the key if token is still its token (ErrFenced otherwise): a failed
	// apply gives it up so a retry starts fresh.
	Delete(ctx context.Context, key, token string) error
	// Pending lists Applied records whose lease has lapsed: notices some earlier run could not
	// deliver.
	Pending(ctx context.Context) ([]Record, error)
	// ClaimNotice is the delivered-notices record, keyed by notice id (the change's id) and
	// sink: it answers AlreadyDelivered once any run delivered the notice there, InFlight while
	// another run's claim lives (until its until), and otherwise claims it for token.
	ClaimNotice(ctx context.Context, id, sink, token string, until time.Time) (Claim, error)
	// SettleNotice ends token's claim: delivered records the delivery (kept for
	// DeliveredTTL), otherwise the claim is dropped so a later run may send it. target names
	// what the notice is about (its subject): a delivery forgets the delivery of the target's
	// previous, different change, so a change made again later (A to B, back to A, then to B
	// again) is a new occurrence and announced again, while racing copies of one occurrence
	// are not.
	SettleNotice(ctx context.Context, id, target, sink, token string, delivered bool) error
	Close() error
}

// Lease and retention periods.
const (
	// LeaseTTL is a run's lease: short, so the key of a run that crashed (kill -9, an instance
	// lost) is free again within seconds. A live run renews it every LeaseTTL/3 (its
	// heartbeat), however long it works.
	LeaseTTL = 12 * time.Second
	// completedTTL is the replay window: a retry within it gets the stored result.
	completedTTL = 24 * time.Hour
	// appliedTTL keeps an undelivered notice long after any retry policy gives up, so it is
	// delivered by a later invocation rather than silently dropped.
	appliedTTL = 7 * 24 * time.Hour
	// DeliveredTTL is how long the delivered-notices record remembers a delivery: as long as
	// any copy of the notice may still be pending somewhere, so none is sent twice.
	DeliveredTTL = appliedTTL + 24*time.Hour
	// maxPending bounds one Pending listing: the backlog is worked off in bounded steps.
	maxPending = 100
)

// LeaseUntil returns the end of a lease taken or renewed at now.
func LeaseUntil(now time.Time) time.Time { return now.Add(LeaseTTL) }

// NewToken draws a fencing token.
func NewToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
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
// store runs the same rule in Lua. It returns the record to write (nil: none), the token taken
// ("" when none) and the answer.
func decide(cur *Record, key, hash string, leaseUntil, now time.Time) (write *Record, token string, out *Record, err error) {
	if cur == nil || (!cur.ExpiresAt.IsZero() && !cur.ExpiresAt.After(now)) {
		token = NewToken()
		rec := withExpiry(Record{Key: key, Status: InProgress, PayloadHash: hash, LeaseUntil: leaseUntil, Token: token}, now)
		return &rec, token, nil, nil
	}
	if cur.PayloadHash != hash {
		return nil, "", nil, ErrPayloadMismatch
	}
	if cur.Status == Completed {
		c := *cur
		return nil, "", &c, nil
	}
	if cur.LeaseUntil.After(now) {
		return nil, "", nil, ErrInProgress
	}
	prev := *cur
	next := *cur
	next.LeaseUntil = leaseUntil
	next.Token = NewToken()
	return &next, next.Token, &prev, nil
}

// fenced checks a holder's write against the stored record.
func fenced(cur *Record, token string, now time.Time) error {
	if token == "" {
		return nil
	}
	if cur == nil || cur.Token != token || (!cur.ExpiresAt.IsZero() && !cur.ExpiresAt.After(now)) {
		return ErrFenced
	}
	return nil
}

// mark is one entry of the delivered-notices record.
type mark struct {
	Token     string    `json:"token,omitempty"`
	Until     time.Time `json:"until"`
	Delivered bool      `json:"delivered,omitempty"`
}

// claim is ClaimNotice's rule for the stores that run it in Go.
func claim(cur *mark, token string, until, now time.Time) (*mark, Claim) {
	switch {
	case cur != nil && cur.Delivered && cur.Until.After(now):
		return nil, AlreadyDelivered
	case cur != nil && !cur.Delivered && cur.Until.After(now) && cur.Token != token:
		return nil, InFlight
	}
	return &mark{Token: token, Until: until}, Claimed
}

// settle is SettleNotice's rule: the write (nil: delete), or keep when the mark is another's.
func settle(cur *mark, token string, delivered bool, now time.Time) (write *mark, del bool) {
	if delivered {
		return &mark{Delivered: true, Until: now.Add(DeliveredTTL)}, false
	}
	if cur != nil && !cur.Delivered && cur.Token == token {
		return nil, true
	}
	return nil, false
}

func noticeKey(id, sink string) string { return sink + "\x00" + id }

func lastKey(target, sink string) string { return "last\x00" + sink + "\x00" + target }
