package outbox

// Restart tracking (DESIGN §8, §10): a committed change's notice names the online streams whose
// ingest must restart (Change.Restart); the change record then tracks each of them until it
// publishes again after the commit, goes offline, or a newer change of the same target
// supersedes the change (Commit replaces the record, noting what the old one still awaited).
// shared/restart refreshes the tracking from the online list; this file keeps it on the record,
// by compare-and-set only, and owes the one overdue reminder per change.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/livepack/livepack/shared/notify"
	"github.com/livepack/livepack/shared/policy"
	"github.com/livepack/livepack/shared/store"
)

// Stream states of restart tracking.
const (
	// Awaiting: online, still on the packaging from before the change.
	Awaiting = "awaiting"
	// Restarted: published again after the commit (and, where probed, its manifest shows the
	// change's packaging).
	Restarted = "restarted"
	// Offline: no longer online; its next push gets the packaging in force then.
	Offline = "offline"
)

// Tracking is where each stream of a change's restart list stands.
type Tracking struct {
	Streams []StreamTrack `json:"streams"`
	// CheckedAt is the last refresh that read the streams; DoneAt when none was left awaiting.
	CheckedAt time.Time `json:"checkedAt,omitzero"`
	DoneAt    time.Time `json:"doneAt,omitzero"`
	// Reminder is the change's one restart-overdue notice, once owed.
	Reminder *Reminder `json:"reminder,omitempty"`
}

// StreamTrack is one stream's tracking.
type StreamTrack struct {
	AppName    string `json:"AppName"`
	StreamName string `json:"StreamName"`
	State      string `json:"state"`
	// Since is when the stream began awaiting its restart: the commit.
	Since time.Time `json:"since"`
	// At is when it restarted (its new PublishTime) or was first seen offline.
	At time.Time `json:"at,omitzero"`
	// Probe is the last probe of its playback, where probing is configured.
	Probe *ProbeNote `json:"probe,omitempty"`
}

// Name is app/stream.
func (s StreamTrack) Name() string { return s.AppName + "/" + s.StreamName }

// ProbeNote is what the last probe of a stream's manifests found.
type ProbeNote struct {
	At          time.Time `json:"at"`
	Match       bool      `json:"match"`
	Unreachable bool      `json:"unreachable,omitempty"`
	// Protocol is the packaging the probe expected; Failed the checks that did not pass.
	Protocol string   `json:"Protocol"`
	Failed   []string `json:"failed,omitempty"`
}

// Reminder is a change's restart-overdue notice: decided once (by compare-and-set on the change
// record), its id fixed by the change, and queued under a key fixed by the record, so racing
// runs owe it once and the relay sends it once.
type Reminder struct {
	ID string    `json:"id"`
	At time.Time `json:"at"`
	// Streams are the overdue streams, each with the time it has awaited since.
	Streams []StreamTrack   `json:"streams"`
	Notice  json.RawMessage `json:"notice"`
	// Queued: its deliveries are owed in the due index.
	Queued bool `json:"queued"`
}

// Superseded is what a change's tracking ended with when a newer change replaced it.
type Superseded struct {
	ID string `json:"id"`
	// Awaiting counts the streams it still awaited; the newer change's own restart list names
	// those still online.
	Awaiting int `json:"awaiting"`
}

func supersede(prev Change) *Superseded {
	t := prev.Track()
	return &Superseded{ID: prev.ID, Awaiting: t.Count(Awaiting)}
}

// Track returns the change's tracking: as recorded, or (before its first refresh) every stream
// of its restart list awaiting since the commit. The result is the caller's to change.
func (ch Change) Track() Tracking {
	if ch.Tracking != nil {
		t := *ch.Tracking
		t.Streams = append([]StreamTrack(nil), t.Streams...)
		return t
	}
	t := Tracking{Streams: make([]StreamTrack, 0, len(ch.Restart))}
	for _, s := range ch.Restart {
		t.Streams = append(t.Streams, StreamTrack{AppName: s.AppName, StreamName: s.StreamName, State: Awaiting, Since: ch.CommittedAt})
	}
	return t
}

// Open reports whether any stream of the change still awaits its restart.
func (ch Change) Open() bool { return ch.Track().Count(Awaiting) > 0 }

// Count counts the streams in state.
func (t Tracking) Count(state string) int {
	n := 0
	for _, s := range t.Streams {
		if s.State == state {
			n++
		}
	}
	return n
}

// ChangesPageSize is how many change records one Changes call reads.
const ChangesPageSize = 100

// Changes reads one page of the targets' last changes, in key order after after ("" from the
// start); next is "" after the last page.
func (b *Outbox) Changes(ctx context.Context, after string) (changes []Change, next string, err error) {
	items, err := b.s.List(ctx, "change/", after, ChangesPageSize)
	if err != nil {
		return nil, "", fmt.Errorf("outbox: list changes: %w", err)
	}
	for _, it := range items {
		var ch Change
		if err := json.Unmarshal(it.Value, &ch); err != nil {
			b.log.Error("a change record cannot be read; left for inspection", "key", it.Key, "err", err)
			continue
		}
		changes = append(changes, ch)
	}
	if len(items) == ChangesPageSize {
		next = items[len(items)-1].Key
	}
	return changes, next, nil
}

// ErrSuperseded: the change record is no longer the given change's (a newer change of the
// target committed, or the record expired): its tracking has ended.
var ErrSuperseded = errors.New("outbox: the change was superseded")

// UpdateTracking rewrites the tracking of change id of target by compare-and-set: f sees the
// record as stored and changes its tracking (returning false to leave it as it is). It returns
// the record as it stands after, or ErrSuperseded.
func (b *Outbox) UpdateTracking(ctx context.Context, t policy.Target, id string, f func(ch *Change, tr *Tracking) bool) (Change, error) {
	var out Change
	_, err := store.Modify(ctx, b.s, changeKey(t), func(cur *store.Item) (store.Change, error) {
		out = Change{}
		if cur == nil {
			return store.Change{Keep: true}, ErrSuperseded
		}
		if err := json.Unmarshal(cur.Value, &out); err != nil {
			return store.Change{}, fmt.Errorf("outbox: change of %s: %w", t, err)
		}
		if out.ID != id {
			return store.Change{Keep: true}, ErrSuperseded
		}
		tr := out.Track()
		if !f(&out, &tr) {
			return store.Change{Keep: true}, nil
		}
		out.Tracking = &tr
		v, err := json.Marshal(out)
		return store.Change{Value: v, Expires: cur.Expires}, err
	})
	if err != nil {
		return out, err
	}
	return out, nil
}

// Remind owes change id's restart-overdue notice, exactly once whatever runs race: the first
// run decides the reminder on the change record by compare-and-set (build makes it from the
// record as stored), and every run that finds it not yet queued queues it under the key the
// record fixes, so a second queueing meets the first (or, once sent, the relay's sent record).
// It returns the record, the delivery keys it queued (nil when another run had) and whether
// this call decided the reminder.
func (b *Outbox) Remind(ctx context.Context, t policy.Target, id string, build func(ch Change, tr Tracking) (*Reminder, error)) (Change, []string, bool, error) {
	decided := false
	ch, err := b.UpdateTracking(ctx, t, id, func(ch *Change, tr *Tracking) bool {
		decided = false
		if tr.Reminder != nil {
			return false
		}
		r, err := build(*ch, *tr)
		if err != nil || r == nil {
			if err != nil {
				b.log.Error("building a restart-overdue reminder failed", "change", id, "err", err)
			}
			return false
		}
		tr.Reminder, decided = r, true
		return true
	})
	if err != nil {
		return ch, nil, false, err
	}
	r := ch.Tracking
	if r == nil || r.Reminder == nil || r.Reminder.Queued {
		return ch, nil, decided, nil
	}
	keys, err := b.enqueueAt(ctx, notify.Notice{ID: r.Reminder.ID, JSON: r.Reminder.Notice}, t.String(), r.Reminder.At)
	if err != nil {
		// The record says not queued: the next refresh queues it under the same keys.
		return ch, keys, decided, fmt.Errorf("outbox: queue reminder %s: %w", r.Reminder.ID, err)
	}
	ch, err = b.UpdateTracking(ctx, t, id, func(_ *Change, tr *Tracking) bool {
		if tr.Reminder == nil || tr.Reminder.Queued || tr.Reminder.ID != r.Reminder.ID {
			return false
		}
		tr.Reminder.Queued = true
		return true
	})
	if errors.Is(err, ErrSuperseded) {
		err = nil // queued all the same: the notice was owed before the newer change came
	}
	return ch, keys, decided, err
}

// enqueueAt owes n to every sink under keys fixed by (at, n.ID): queueing the same notice again
// finds its entry (a conflict, which is success), and one already sent is cleared unsent by the
// relay, which checks the sent record before every attempt.
func (b *Outbox) enqueueAt(ctx context.Context, n notify.Notice, subject string, at time.Time) ([]string, error) {
	var keys []string
	for _, sink := range b.names {
		if _, err := b.s.Get(ctx, sentKey(n.ID, sink)); err == nil {
			continue // delivered already
		} else if !errors.Is(err, store.ErrNotFound) {
			return keys, err
		}
		d := delivery{ID: n.ID, Sink: sink, Subject: subject, Event: n.JSON, FirstAt: at}
		v, err := json.Marshal(d)
		if err != nil {
			return keys, err
		}
		key := dueKey(at, n.ID, sink)
		if _, err := b.s.Create(ctx, key, v, at.Add(DeadAfter+time.Hour)); err != nil && !errors.Is(err, store.ErrConflict) {
			return keys, fmt.Errorf("for %s: %w", sink, err)
		}
		keys = append(keys, key)
	}
	return keys, nil
}
