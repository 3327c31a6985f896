// Package outbox makes every committed change announced exactly once, whatever happens to the
// event that caused it (DESIGN §1, §8, §10; STATE.md).
//
// Per target, an intent is recorded with a conditional create before any write is sent; its id
// is the change's and its notice's id, fixed there and kept by every retry, settlement and
// relay. After the write the intent is committed: the notice is queued, once per sink, in a due
// index ordered by next-attempt time, and the intent is cleared. An ambiguous write is settled
// by a fresh read of the API (by the caller, through Settler): committed only if the change is
// in place, abandoned otherwise. A relay, which every invocation runs within a budget, settles
// intents whose holder vanished and delivers what is due, each (notice, sink) under a claim
// renewed while it is sent; a failure is rescheduled with backoff, so a stuck notice never
// blocks the rest, and after DeadAfter it is dead-lettered.
//
// Records, in kinds of the store contract:
//
//	open/TARGET            the target's open intent (one at most: conditional create)
//	change/TARGET          the target's last committed change (what `livepack status` shows)
//	due/TIME|ID|SINK       an owed delivery, keyed by its next-attempt time
//	sent/ID|SINK           a delivery made
//	dead/ID|SINK           a delivery given up after DeadAfter, kept for inspection
package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/livepack/livepack/shared/notify"
	"github.com/livepack/livepack/shared/policy"
	"github.com/livepack/livepack/shared/store"
)

// Periods of the protocol.
const (
	// IntentTTL is an intent's lease: its holder renews it every 4 s (with its trigger key's)
	// while the write is in flight; a holder that vanished leaves it to lapse, and the next
	// relay or writer settles it. Shorter than a trigger key's 12 s lease by one renewal, so an
	// intent recorded after the key's last renewal still lapses first: the platform's
	// redelivery of a crashed run's event finds its intents lapsed, and its relay announces them.
	IntentTTL = 8 * time.Second
	// ClaimTTL is a delivery claim: renewed every ClaimTTL/4 while the notice is sent, and
	// longer than any one attempt (AttemptTimeout), so no second sender starts meanwhile.
	ClaimTTL = 60 * time.Second
	// AttemptTimeout bounds one delivery attempt (the sink's own retries included).
	AttemptTimeout = 30 * time.Second
	// DeadAfter is how long a delivery is attempted before it is dead-lettered.
	DeadAfter = 8 * 24 * time.Hour
	// keep is how long sent and dead records and a target's last change are kept.
	keep = 9 * 24 * time.Hour
)

// Intent is a change of one target about to be written.
type Intent struct {
	// ID names the change occurrence: the notice's id.
	ID     string        `json:"id"`
	Target policy.Target `json:"target"`
	// Outcome is what the write does: created, updated or deleted.
	Outcome string `json:"outcome"`
	// Desired is the config the write puts in place (nil: deleted); Previous the one it
	// replaces (nil: none).
	Desired    *policy.Config `json:"desired"`
	Previous   *policy.Config `json:"previous"`
	Holder     string         `json:"holder"`
	LeaseUntil time.Time      `json:"leaseUntil"`
	CreatedAt  time.Time      `json:"createdAt"`
	// version is the store version of the open record as this process last wrote it (0:
	// unknown): clearing the intent then needs no read, and a version that moved on (a renewal,
	// another run) only sends the caller back to reading.
	version int64
}

// Same reports whether in asks for the same end state as other: racing runs that want the same
// change share one intent.
func (in Intent) Same(other Intent) bool {
	if (in.Desired == nil) != (other.Desired == nil) {
		return false
	}
	return in.Desired == nil || *in.Desired == *other.Desired
}

// Change is a target's last committed change.
type Change struct {
	ID          string         `json:"id"`
	Target      policy.Target  `json:"target"`
	Outcome     string         `json:"outcome"`
	Config      *policy.Config `json:"config"`
	Previous    *policy.Config `json:"previous"`
	CommittedAt time.Time      `json:"committedAt"`
	// Notice is the CloudEvent, delivered byte for byte as built at the commit.
	Notice json.RawMessage `json:"notice"`
	// Sinks names the sinks the notice is owed to.
	Sinks []string `json:"sinks"`
	// Restart lists the streams whose ingest must restart for the change to apply.
	Restart []notify.Stream `json:"restart,omitempty"`
	// Tracking is where each of them stands (tracking.go); nil until first refreshed: every
	// one awaiting since CommittedAt.
	Tracking *Tracking `json:"tracking,omitempty"`
	// Supersedes names the target's previous change, which this one replaced; its tracking
	// ended here, with the streams it still awaited.
	Supersedes *Superseded `json:"supersedes,omitempty"`
}

// Begin answers.
type Begin int

const (
	// Mine: the intent is recorded for the caller, who may now send the write.
	Mine Begin = iota + 1
	// Joined: another live run holds an intent for the same end state: the caller writes
	// nothing and waits for it (Wait).
	Joined
	// Busy: another live run holds an intent for a different end state: the caller waits for
	// it to settle, then plans again from a fresh read.
	Busy
	// Lapsed: an intent whose holder vanished: the caller settles it (Settle), then begins again.
	Lapsed
)

// Settler reads the API to tell whether an intent's change is in place; when it is, it returns
// the notice to send (built from what the API shows now: the online streams to restart).
type Settler func(ctx context.Context, in Intent) (inPlace bool, n notify.Notice, restart []notify.Stream, err error)

// Outbox keeps intents, changes and deliveries in a store.
type Outbox struct {
	s     store.Store
	sinks map[string]notify.Sink
	names []string
	now   func() time.Time
	log   *slog.Logger
	claim time.Duration
	try   time.Duration

	// fresh holds the due entries this process just created, until its Deliver sends them:
	// sending needs the entry's version, and reading back what was just written would cost a
	// store read per notice. An entry another run changed meanwhile only fails the claim's
	// condition, and Deliver then reads it as it would have.
	mu    sync.Mutex
	fresh map[string]store.Item
}

// freshCap bounds the entries kept for Deliver; past it the map starts over (a commit whose
// notice is delivered by a relay instead leaves its entry behind).
const freshCap = 1024

func (b *Outbox) remember(it store.Item) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fresh == nil || len(b.fresh) >= freshCap {
		b.fresh = map[string]store.Item{}
	}
	b.fresh[it.Key] = it
}

// recall returns and forgets the entry at key as this process created it.
func (b *Outbox) recall(key string) (store.Item, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	it, ok := b.fresh[key]
	delete(b.fresh, key)
	return it, ok
}

func (b *Outbox) forget(keys []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, k := range keys {
		delete(b.fresh, k)
	}
}

// Options configure an Outbox.
type Options struct {
	Store store.Store
	// Sinks receive the notices; with none, a notice is owed to nobody and the result carries it.
	Sinks  []notify.Sink
	Now    func() time.Time
	Logger *slog.Logger
	// ClaimTTL and AttemptTimeout replace the package's periods (tests shorten them).
	ClaimTTL, AttemptTimeout time.Duration
}

// New returns an Outbox.
func New(o Options) *Outbox {
	b := &Outbox{s: o.Store, sinks: map[string]notify.Sink{}, now: o.Now, log: o.Logger, claim: o.ClaimTTL, try: o.AttemptTimeout}
	if b.claim <= 0 {
		b.claim = ClaimTTL
	}
	if b.try <= 0 {
		b.try = min(AttemptTimeout, b.claim/2)
	}
	for _, s := range o.Sinks {
		b.sinks[s.Name()] = s
		b.names = append(b.names, s.Name())
	}
	if b.now == nil {
		b.now = time.Now
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	return b
}

// Sinks names the configured sinks.
func (b *Outbox) Sinks() []string { return b.names }

// NewID draws a change id: random, so a change that recurs (A→B→A→B) is a new occurrence with
// a new id each time.
func NewID() string { return store.NewToken() }

func targetKey(t policy.Target) string {
	return strings.ToLower(t.DomainName) + "|" + t.AppName + "|" + t.StreamName
}

func openKey(t policy.Target) string   { return "open/" + targetKey(t) }
func changeKey(t policy.Target) string { return "change/" + targetKey(t) }

// Begin records the intent of writing in (its ID and timestamps are filled here) for holder.
// It returns the intent as stored: the caller's (Mine) or the other run's.
func (b *Outbox) Begin(ctx context.Context, in Intent, holder string) (Intent, Begin, error) {
	// Most targets have no open intent: the conditional create alone decides, and only a
	// refused one reads what holds the target.
	now := b.now()
	got := in
	got.ID, got.Holder, got.CreatedAt, got.LeaseUntil = NewID(), holder, now.UTC(), now.Add(IntentTTL)
	v, err := json.Marshal(got)
	if err != nil {
		return Intent{}, 0, fmt.Errorf("outbox: record intent for %s: %w", in.Target, err)
	}
	if got.version, err = b.s.Create(ctx, openKey(in.Target), v, time.Time{}); err == nil {
		return got, Mine, nil
	} else if !errors.Is(err, store.ErrConflict) {
		return Intent{}, 0, fmt.Errorf("outbox: record intent for %s: %w", in.Target, err)
	}
	got = Intent{}
	var ans Begin
	it, err := store.Modify(ctx, b.s, openKey(in.Target), func(cur *store.Item) (store.Change, error) {
		now := b.now()
		if cur != nil {
			if err := json.Unmarshal(cur.Value, &got); err != nil {
				return store.Change{}, fmt.Errorf("outbox: open intent of %s: %w", in.Target, err)
			}
			switch {
			case !got.LeaseUntil.After(now):
				ans = Lapsed
			case in.Same(got):
				ans = Joined
			default:
				ans = Busy
			}
			return store.Change{Keep: true}, nil
		}
		got = in
		got.ID, got.Holder, got.CreatedAt, got.LeaseUntil = NewID(), holder, now.UTC(), now.Add(IntentTTL)
		ans = Mine
		v, err := json.Marshal(got)
		return store.Change{Value: v}, err
	})
	if err != nil {
		return Intent{}, 0, fmt.Errorf("outbox: record intent for %s: %w", in.Target, err)
	}
	if ans == Mine {
		got.version = it.Version
	}
	return got, ans, nil
}

// open rewrites in's open intent while it is still the same intent (same id); gone reports it
// settled by someone else.
func (b *Outbox) open(ctx context.Context, in Intent, f func(cur *Intent, now time.Time) (store.Change, error)) (gone bool, err error) {
	_, err = store.Modify(ctx, b.s, openKey(in.Target), func(cur *store.Item) (store.Change, error) {
		gone = false
		if cur == nil {
			gone = true
			return store.Change{Keep: true}, nil
		}
		var got Intent
		if err := json.Unmarshal(cur.Value, &got); err != nil {
			return store.Change{}, fmt.Errorf("outbox: open intent of %s: %w", in.Target, err)
		}
		if got.ID != in.ID {
			gone = true
			return store.Change{Keep: true}, nil
		}
		return f(&got, b.now())
	})
	return gone, err
}

// ErrLost: the intent is no longer the caller's (its lease lapsed and another run took it).
var ErrLost = errors.New("outbox: intent taken over by another run")

// Renew extends the lease of the holder's intent.
func (b *Outbox) Renew(ctx context.Context, in Intent) error {
	gone, err := b.open(ctx, in, func(cur *Intent, now time.Time) (store.Change, error) {
		if cur.Holder != in.Holder {
			return store.Change{}, ErrLost
		}
		cur.LeaseUntil = now.Add(IntentTTL)
		v, err := json.Marshal(cur)
		return store.Change{Value: v}, err
	})
	if err == nil && gone {
		err = ErrLost
	}
	return err
}

// Release lets the intent lapse at once: its holder stops without knowing whether the write
// took effect, and the next relay or writer settles it from a fresh read.
func (b *Outbox) Release(ctx context.Context, in Intent) error {
	_, err := b.open(ctx, in, func(cur *Intent, now time.Time) (store.Change, error) {
		if cur.Holder != in.Holder {
			return store.Change{Keep: true}, nil
		}
		cur.LeaseUntil = now
		v, err := json.Marshal(cur)
		return store.Change{Value: v}, err
	})
	return err
}

// take makes a lapsed intent the caller's, so that one settler at a time reads and decides.
func (b *Outbox) take(ctx context.Context, in Intent, holder string) (Intent, bool, error) {
	var got Intent
	taken := false
	gone, err := b.open(ctx, in, func(cur *Intent, now time.Time) (store.Change, error) {
		if cur.LeaseUntil.After(now) {
			return store.Change{Keep: true}, nil
		}
		cur.Holder, cur.LeaseUntil = holder, now.Add(IntentTTL)
		got, taken = *cur, true
		v, err := json.Marshal(cur)
		return store.Change{Value: v}, err
	})
	return got, taken && !gone, err
}

// Abandon clears an intent whose change is not in place: nothing is announced.
func (b *Outbox) Abandon(ctx context.Context, in Intent) error {
	if in.version != 0 {
		// The record as this process wrote it is this intent: delete it without reading it.
		err := b.s.Delete(ctx, openKey(in.Target), in.version)
		if !errors.Is(err, store.ErrConflict) {
			if err != nil {
				return fmt.Errorf("outbox: abandon %s: %w", in.ID, err)
			}
			return nil
		}
	}
	_, err := b.open(ctx, in, func(*Intent, time.Time) (store.Change, error) { return store.Change{Delete: true}, nil })
	if err != nil {
		return fmt.Errorf("outbox: abandon %s: %w", in.ID, err)
	}
	return nil
}

// Commit records that in's change is in place, with its notice: the notice is owed to every
// sink, and the intent is cleared. It is idempotent: a settler committing an intent its holder
// already committed changes nothing. It returns the change as recorded (the first commit's)
// and the keys of the deliveries it owes.
func (b *Outbox) Commit(ctx context.Context, in Intent, n notify.Notice, restart []notify.Stream) (Change, []string, error) {
	now := b.now().UTC()
	ch := Change{ID: in.ID, Target: in.Target, Outcome: in.Outcome, Config: in.Desired, Previous: in.Previous,
		CommittedAt: now, Notice: n.JSON, Sinks: b.names, Restart: restart}
	if ch.Sinks == nil {
		ch.Sinks = []string{}
	}
	_, err := store.Modify(ctx, b.s, changeKey(in.Target), func(cur *store.Item) (store.Change, error) {
		ch.Supersedes = nil
		if cur != nil {
			var prev Change
			if err := json.Unmarshal(cur.Value, &prev); err == nil && prev.ID == in.ID {
				ch = prev
				return store.Change{Keep: true}, nil
			} else if err == nil {
				ch.Supersedes = supersede(prev)
			}
		}
		v, err := json.Marshal(ch)
		return store.Change{Value: v, Expires: now.Add(keep)}, err
	})
	if err != nil {
		return Change{}, nil, fmt.Errorf("outbox: commit %s: %w", in.ID, err)
	}
	var keys []string
	for _, sink := range ch.Sinks {
		d := delivery{ID: ch.ID, Sink: sink, Subject: in.Target.String(), Event: ch.Notice, FirstAt: ch.CommittedAt}
		key := dueKey(ch.CommittedAt, ch.ID, sink)
		v, err := json.Marshal(d)
		if err != nil {
			return Change{}, nil, fmt.Errorf("outbox: commit %s: %w", in.ID, err)
		}
		expires := ch.CommittedAt.Add(DeadAfter + time.Hour)
		ver, err := b.s.Create(ctx, key, v, expires)
		switch {
		case err == nil:
			b.remember(store.Item{Key: key, Value: v, Version: ver, Expires: expires})
		case !errors.Is(err, store.ErrConflict):
			return Change{}, nil, fmt.Errorf("outbox: commit %s: queue for %s: %w", in.ID, sink, err)
		}
		keys = append(keys, key)
	}
	if err := b.Abandon(ctx, in); err != nil {
		// The change and its deliveries are recorded; a settler meeting the intent commits it
		// again, which changes nothing.
		return ch, keys, fmt.Errorf("outbox: commit %s: clear intent: %w", in.ID, err)
	}
	return ch, keys, nil
}

// Settle decides an intent whose holder vanished (or whose write was ambiguous): the settler
// reads the API; in place → committed (with the settler's notice), otherwise abandoned. holder
// takes the intent first, so two settlers never decide it at once. It returns the change when
// committed (nil otherwise) and its delivery keys.
func (b *Outbox) Settle(ctx context.Context, in Intent, holder string, read Settler) (*Change, []string, error) {
	if in.Holder != holder {
		got, taken, err := b.take(ctx, in, holder)
		if err != nil || !taken {
			return nil, nil, err
		}
		in = got
	}
	inPlace, n, restart, err := read(ctx, in)
	if err != nil {
		_ = b.Release(context.WithoutCancel(ctx), in)
		return nil, nil, fmt.Errorf("outbox: settle %s: %w", in.ID, err)
	}
	if !inPlace {
		b.log.Info("an intent's change is not in place: abandoned, nothing announced", "change", in.ID, "target", in.Target.String())
		return nil, nil, b.Abandon(ctx, in)
	}
	if n.ID != in.ID {
		return nil, nil, fmt.Errorf("outbox: settle %s: the settler built notice %s", in.ID, n.ID)
	}
	ch, keys, err := b.Commit(ctx, in, n, restart)
	if err != nil {
		return nil, keys, err
	}
	return &ch, keys, nil
}

// Wait polls the target's open intent until in is settled (or ctx ends) and returns the
// target's last change then: a run that joined another's intent learns whether it committed.
func (b *Outbox) Wait(ctx context.Context, in Intent) (*Change, error) {
	for {
		it, err := b.s.Get(ctx, openKey(in.Target))
		if errors.Is(err, store.ErrNotFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("outbox: wait for %s: %w", in.ID, err)
		}
		var cur Intent
		if err := json.Unmarshal(it.Value, &cur); err != nil {
			return nil, fmt.Errorf("outbox: open intent of %s: %w", in.Target, err)
		}
		if cur.ID != in.ID || !cur.LeaseUntil.After(b.now()) {
			return nil, nil // another intent now, or this one lapsed: the caller plans again
		}
		t := time.NewTimer(200 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
	ch, err := b.Last(ctx, in.Target)
	if err != nil || ch == nil || ch.ID != in.ID {
		return nil, err
	}
	return ch, nil
}

// Last returns the target's last committed change (nil: none kept).
func (b *Outbox) Last(ctx context.Context, t policy.Target) (*Change, error) {
	it, err := b.s.Get(ctx, changeKey(t))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("outbox: last change of %s: %w", t, err)
	}
	var ch Change
	if err := json.Unmarshal(it.Value, &ch); err != nil {
		return nil, fmt.Errorf("outbox: last change of %s: %w", t, err)
	}
	return &ch, nil
}

// Enqueue owes a notice that announces no write of a target (a reconcile's drift report) to
// every sink, and returns its delivery keys. Its id must be unique to what it reports.
func (b *Outbox) Enqueue(ctx context.Context, n notify.Notice, subject string) ([]string, error) {
	now := b.now().UTC()
	var keys []string
	for _, sink := range b.names {
		d := delivery{ID: n.ID, Sink: sink, Subject: subject, Event: n.JSON, FirstAt: now}
		v, err := json.Marshal(d)
		if err != nil {
			return keys, err
		}
		key := dueKey(now, n.ID, sink)
		if _, err := b.s.Create(ctx, key, v, now.Add(DeadAfter+time.Hour)); err != nil && !errors.Is(err, store.ErrConflict) {
			return keys, fmt.Errorf("outbox: queue %s for %s: %w", n.ID, sink, err)
		}
		keys = append(keys, key)
	}
	return keys, nil
}
