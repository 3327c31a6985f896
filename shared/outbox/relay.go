package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/livepack/livepack/shared/notify"
	"github.com/livepack/livepack/shared/store"
)

// delivery is one (notice, sink) owed: the due index's entry carries all a sender needs.
type delivery struct {
	ID      string          `json:"id"`
	Sink    string          `json:"sink"`
	Subject string          `json:"subject"`
	Event   json.RawMessage `json:"event"`
	// FirstAt is when the notice became owed: DeadAfter counts from it.
	FirstAt    time.Time `json:"firstAt"`
	Attempts   int       `json:"attempts,omitempty"`
	LastError  string    `json:"lastError,omitempty"`
	Holder     string    `json:"holder,omitempty"`
	ClaimUntil time.Time `json:"claimUntil,omitzero"`
}

func dueKey(at time.Time, id, sink string) string {
	return "due/" + fmt.Sprintf("%013d", at.UnixMilli()) + "|" + id + "|" + sink
}

// dueAt reads the next-attempt time out of a due key.
func dueAt(key string) time.Time {
	ms, _, _ := strings.Cut(strings.TrimPrefix(key, "due/"), "|")
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.UnixMilli(n)
}

func sentKey(id, sink string) string { return "sent/" + id + "|" + sink }
func deadKey(id, sink string) string { return "dead/" + id + "|" + sink }

// Delivery states as results show them.
const (
	Delivered = "delivered"
	Pending   = "pending"
	Failed    = "failed"
)

// busy is the state of a delivery another run holds the claim of.
const busy = Pending + ": being delivered by another run"

// State folds a sink state word ("pending: why") to its kind.
func State(s string) string {
	k, _, _ := strings.Cut(s, ":")
	return k
}

// backoff is the wait before the next attempt after attempts failures: 30 s doubling to an
// hour, with jitter so retries of many notices spread out.
func backoff(attempts int) time.Duration {
	d := 30 * time.Second << min(attempts-1, 7)
	d = min(d, time.Hour)
	return d/2 + rand.N(d/2+1)
}

// Deliver sends the deliveries at keys (a run's own notices, just committed) and returns each
// one's state by notice id and sink.
func (b *Outbox) Deliver(ctx context.Context, keys []string, holder string) map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, key := range keys {
		if it, ok := b.recall(key); ok {
			var d delivery
			if json.Unmarshal(it.Value, &d) == nil {
				if state := b.send(ctx, it, d, holder); state != busy {
					put(out, d.ID, d.Sink, state)
					continue
				}
			}
			// Another run changed the entry since it was created: read it as it is now.
		}
		it, err := b.s.Get(ctx, key)
		var d delivery
		switch {
		case errors.Is(err, store.ErrNotFound):
			_, id, sink := splitDue(key)
			state, serr := b.stateOf(ctx, id, sink)
			if serr != nil {
				state = Pending + ": " + serr.Error()
			}
			put(out, id, sink, state)
			continue
		case err == nil:
			err = json.Unmarshal(it.Value, &d)
		}
		if err != nil {
			_, id, sink := splitDue(key)
			put(out, id, sink, Pending+": "+err.Error())
			continue
		}
		put(out, d.ID, d.Sink, b.send(ctx, it, d, holder))
	}
	return out
}

func splitDue(key string) (time.Time, string, string) {
	parts := strings.SplitN(strings.TrimPrefix(key, "due/"), "|", 3)
	if len(parts) != 3 {
		return time.Time{}, "", ""
	}
	return dueAt(key), parts[1], parts[2]
}

func put(m map[string]map[string]string, id, sink, state string) {
	if m[id] == nil {
		m[id] = map[string]string{}
	}
	m[id][sink] = state
}

// stateOf says where a delivery no longer due stands: delivered, dead, or pending (queued
// under another time).
func (b *Outbox) stateOf(ctx context.Context, id, sink string) (string, error) {
	if _, err := b.s.Get(ctx, sentKey(id, sink)); err == nil {
		return Delivered, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	if it, err := b.s.Get(ctx, deadKey(id, sink)); err == nil {
		var d delivery
		_ = json.Unmarshal(it.Value, &d)
		return Failed + ": dead-lettered after " + strconv.Itoa(d.Attempts) + " attempts: " + d.LastError, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	return Pending, nil
}

// States returns the delivery state of each notice id at each sink, read from the outbox: a
// replayed result reports what became of its notices since.
func (b *Outbox) States(ctx context.Context, ids []string, sinks []string) map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, id := range ids {
		for _, sink := range sinks {
			state, err := b.stateOf(ctx, id, sink)
			if err != nil {
				state = Pending + ": " + err.Error()
			}
			put(out, id, sink, state)
		}
	}
	return out
}

// send claims one due delivery, sends it under a renewed claim, and records the outcome: sent,
// rescheduled with backoff, or dead-lettered. It returns the state word.
func (b *Outbox) send(ctx context.Context, it store.Item, d delivery, holder string) string {
	now := b.now()
	if d.Holder != "" && d.Holder != holder && d.ClaimUntil.After(now) {
		return busy
	}
	if _, err := b.s.Get(ctx, sentKey(d.ID, d.Sink)); err == nil {
		// Sent before a crash kept its entry from being cleared: never send twice.
		_ = b.s.Delete(ctx, it.Key, it.Version)
		return Delivered
	} else if !errors.Is(err, store.ErrNotFound) {
		return Pending + ": " + err.Error()
	}
	sink := b.sinks[d.Sink]
	if sink == nil {
		d.LastError = "sink " + d.Sink + " is no longer configured"
		return b.dead(ctx, it, d)
	}
	d.Holder, d.ClaimUntil = holder, now.Add(b.claim)
	v, _ := json.Marshal(d)
	ver, err := b.s.Update(ctx, it.Key, it.Version, v, it.Expires)
	if errors.Is(err, store.ErrConflict) {
		return busy
	}
	if err != nil {
		return Pending + ": " + err.Error()
	}
	it.Version, it.Value = ver, v
	// The claim is renewed while the attempt runs; losing it stops the attempt.
	actx, cancel := context.WithTimeout(ctx, b.try)
	var mu sync.Mutex
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(b.claim / 4)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			mu.Lock()
			d.ClaimUntil = b.now().Add(b.claim)
			v, _ := json.Marshal(d)
			nv, err := b.s.Update(context.WithoutCancel(ctx), it.Key, it.Version, v, it.Expires)
			if err == nil {
				it.Version, it.Value = nv, v
			} else if errors.Is(err, store.ErrConflict) {
				b.log.Error("a delivery claim was lost while sending", "notice", d.ID, "sink", d.Sink)
				cancel()
			}
			mu.Unlock()
		}
	})
	serr := sink.Deliver(actx, notify.Notice{ID: d.ID, JSON: d.Event})
	close(stop)
	wg.Wait()
	cancel()
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer rcancel()
	if serr == nil {
		// Recorded with a few tries: a store hiccup here is the one window in which a
		// delivered notice could be sent again (receivers deduplicate by id).
		if err := retryStore(rctx, func() error {
			_, err := b.s.Create(rctx, sentKey(d.ID, d.Sink), []byte(`{}`), b.now().Add(keep))
			if errors.Is(err, store.ErrConflict) {
				return nil
			}
			return err
		}); err != nil {
			b.log.Warn("recording a delivery failed", "notice", d.ID, "sink", d.Sink, "err", err)
		}
		if err := retryStore(rctx, func() error {
			err := b.s.Delete(rctx, it.Key, it.Version)
			if errors.Is(err, store.ErrConflict) {
				return nil // a lost answer to a delete that took effect
			}
			return err
		}); err != nil {
			b.log.Warn("clearing a delivered entry failed; the next relay finds it sent and clears it", "notice", d.ID, "sink", d.Sink, "err", err)
		}
		return Delivered
	}
	d.Attempts++
	d.LastError = serr.Error()
	d.Holder, d.ClaimUntil = "", time.Time{}
	if errors.Is(serr, notify.ErrPermanent) || b.now().Sub(d.FirstAt) >= DeadAfter {
		return b.deadAt(rctx, it, d)
	}
	next := b.now().Add(backoff(d.Attempts))
	v, _ = json.Marshal(d)
	if _, err := b.s.Create(rctx, dueKey(next, d.ID, d.Sink), v, it.Expires); err != nil {
		b.log.Warn("rescheduling a delivery failed; its claim lapses and it is retried as it was", "notice", d.ID, "sink", d.Sink, "err", err)
		return Pending + ": " + d.LastError
	}
	if err := b.s.Delete(rctx, it.Key, it.Version); err != nil {
		b.log.Warn("clearing a rescheduled entry failed", "notice", d.ID, "sink", d.Sink, "err", err)
	}
	b.log.Warn("notice delivery failed; rescheduled", "notice", d.ID, "sink", d.Sink, "attempts", d.Attempts, "next", next.UTC().Format(time.RFC3339), "err", serr)
	return Pending + ": " + d.LastError
}

func (b *Outbox) dead(ctx context.Context, it store.Item, d delivery) string {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return b.deadAt(rctx, it, d)
}

// deadAt dead-letters a delivery: kept under dead/ for inspection, logged at error level.
func (b *Outbox) deadAt(ctx context.Context, it store.Item, d delivery) string {
	d.Holder, d.ClaimUntil = "", time.Time{}
	v, _ := json.Marshal(d)
	if _, err := b.s.Create(ctx, deadKey(d.ID, d.Sink), v, b.now().Add(keep)); err != nil && !errors.Is(err, store.ErrConflict) {
		b.log.Warn("dead-lettering a delivery failed; retried later", "notice", d.ID, "sink", d.Sink, "err", err)
		return Pending + ": " + d.LastError
	}
	if err := b.s.Delete(ctx, it.Key, it.Version); err != nil {
		b.log.Warn("clearing a dead-lettered entry failed", "notice", d.ID, "sink", d.Sink, "err", err)
	}
	b.log.Error("notice dead-lettered: it will not be sent again", "notice", d.ID, "sink", d.Sink, "subject", d.Subject,
		"attempts", d.Attempts, "firstAt", d.FirstAt.UTC().Format(time.RFC3339), "err", d.LastError)
	return Failed + ": " + d.LastError
}

// Report is what one relay run did and saw.
type Report struct {
	Delivered, Rescheduled, Dead int
	// Settled and Abandoned count lapsed intents decided this run.
	Settled, Abandoned int
	// Owed counts the deliveries still owed store-wide after the run (at most backlogCap
	// counted); Oldest is when the oldest of them became owed (zero: none).
	Owed   int
	Oldest time.Time
	// Notices are the deliveries this run made or tried, by notice id and sink.
	Notices map[string]map[string]string
}

// backlogCap bounds the count of owed deliveries a relay reads: past it, the metric says "at
// least" rather than paging through an unbounded backlog each invocation.
const backlogCap = 1000

// RelayOptions bound a relay run.
type RelayOptions struct {
	// Budget is the most time the run takes; it also ends a second before ctx's deadline.
	Budget time.Duration
	// Holder names the run (its claims and settlements).
	Holder string
	// Settle reads the API for lapsed intents; nil leaves them to a relay that has it.
	Settle Settler
	// MaxSettle bounds the intents settled per run (each costs API reads).
	MaxSettle int
}

// Relay settles lapsed intents and delivers what is due, within the budget.
func (b *Outbox) Relay(ctx context.Context, o RelayOptions) Report {
	rep := Report{Notices: map[string]map[string]string{}}
	if o.Budget <= 0 {
		o.Budget = 3 * time.Second
	}
	if dl, ok := ctx.Deadline(); ok {
		o.Budget = min(o.Budget, time.Until(dl)-time.Second)
	}
	if o.Budget <= 0 {
		b.backlog(context.WithoutCancel(ctx), &rep)
		return rep
	}
	ctx, cancel := context.WithTimeout(ctx, o.Budget)
	defer cancel()
	if o.Settle != nil {
		b.settleLapsed(ctx, o, &rep)
	}
	after := ""
	// whole is the due index when one page held all of it: what it still owes after the sends
	// below is the backlog, without listing the index a second time.
	var whole []store.Item
	oneList := false
	cleared := map[string]bool{}
	pages := 0
	for ctx.Err() == nil {
		items, err := b.s.List(ctx, "due/", after, 100)
		if err != nil {
			b.log.Warn("listing owed notices failed", "err", err)
			pages = -1
			break
		}
		if pages++; pages == 1 && len(items) < 100 {
			whole, oneList = items, true
		}
		now := b.now()
		more := false
		for _, it := range items {
			if dueAt(it.Key).After(now) || ctx.Err() != nil {
				break
			}
			more = true
			var d delivery
			if err := json.Unmarshal(it.Value, &d); err != nil {
				b.log.Error("an owed delivery cannot be read; left for inspection", "key", it.Key, "err", err)
				continue
			}
			state := b.send(ctx, it, d, o.Holder)
			put(rep.Notices, d.ID, d.Sink, state)
			switch State(state) {
			case Delivered:
				rep.Delivered++
				cleared[it.Key] = true
			case Failed:
				rep.Dead++
				cleared[it.Key] = true
			default:
				rep.Rescheduled++
			}
		}
		if !more || len(items) < 100 {
			break
		}
		after = items[len(items)-1].Key
	}
	if pages == 1 && oneList {
		// A rescheduled delivery is still owed (under a later key), with the same FirstAt.
		for _, it := range whole {
			if !cleared[it.Key] {
				rep.count(it)
			}
		}
		return rep
	}
	b.backlog(context.WithoutCancel(ctx), &rep)
	return rep
}

// count adds an owed delivery to the backlog.
func (rep *Report) count(it store.Item) {
	var d delivery
	if json.Unmarshal(it.Value, &d) == nil && (rep.Oldest.IsZero() || d.FirstAt.Before(rep.Oldest)) {
		rep.Oldest = d.FirstAt
	}
	rep.Owed++
}

func (b *Outbox) settleLapsed(ctx context.Context, o RelayOptions, rep *Report) {
	limit := o.MaxSettle
	if limit <= 0 {
		limit = 10
	}
	// Open intents are few (writes in flight, or lapsed), but a page of them may all be live:
	// page on until the limit is spent, so a lapsed intent behind many live ones is reached.
	now := b.now()
	for after := ""; ; {
		items, err := b.s.List(ctx, "open/", after, openPage)
		if err != nil {
			b.log.Warn("listing open intents failed", "err", err)
			return
		}
		for _, it := range items {
			if limit == 0 || ctx.Err() != nil {
				return
			}
			after = it.Key
			var in Intent
			if err := json.Unmarshal(it.Value, &in); err != nil {
				b.log.Error("an open intent cannot be read; left for inspection", "key", it.Key, "err", err)
				continue
			}
			if in.LeaseUntil.After(now) {
				continue
			}
			limit--
			ch, keys, err := b.Settle(ctx, in, o.Holder, o.Settle)
			b.forget(keys) // the relay lists them below
			switch {
			case err != nil:
				b.log.Warn("settling a lapsed intent failed; retried by a later relay", "change", in.ID, "target", in.Target.String(), "err", err)
			case ch != nil:
				rep.Settled++
				b.log.Info("a lapsed intent's change is in place: committed", "change", in.ID, "target", in.Target.String())
			default:
				rep.Abandoned++
			}
		}
		if len(items) < openPage {
			return
		}
	}
}

// openPage is how many open intents one List reads.
var openPage = 100

// backlog counts the owed deliveries store-wide and finds the oldest.
func (b *Outbox) backlog(ctx context.Context, rep *Report) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	after := ""
	for rep.Owed < backlogCap {
		items, err := b.s.List(ctx, "due/", after, 200)
		if err != nil {
			b.log.Warn("counting owed notices failed", "err", err)
			return
		}
		for _, it := range items {
			rep.count(it)
		}
		if len(items) < 200 {
			return
		}
		after = items[len(items)-1].Key
	}
}

// retryStore runs a store write up to three times, a moment apart.
func retryStore(ctx context.Context, f func() error) error {
	var err error
	for i := range 3 {
		if err = f(); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(i+1) * 50 * time.Millisecond):
		}
	}
	return err
}
