package apply

import (
	"context"
	"time"

	"github.com/livepack/livepack/shared/outbox"
	"github.com/livepack/livepack/shared/quota"
	"github.com/livepack/livepack/shared/restart"
)

// RestartBudget bounds the restart-tracking refresh of a scheduled run: it reads one online
// list per domain with an open change, so it is short, and it must leave the reconcile its time.
const RestartBudget = 20 * time.Second

// TrackRestarts refreshes the restart tracking of every change still awaiting a stream's ingest
// restart (shared/restart), in the scheduled lane: the schedule runs it before its reconcile,
// within RestartBudget (and a quarter of the time left, when that is less). It owes the
// restart-overdue reminders and returns the counts the result carries (nil without a store).
func (e *Engine) TrackRestarts(ctx context.Context, s restart.Settings) *restart.Summary {
	if e.box == nil {
		return nil
	}
	budget := RestartBudget
	if dl, ok := ctx.Deadline(); ok {
		budget = min(budget, time.Until(dl)/4)
	}
	ctx, cancel := context.WithTimeout(quota.WithLane(ctx, quota.Scheduled), budget)
	defer cancel()
	_, sum, err := restart.Refresh(ctx, restart.Options{Settings: s, Box: e.box, API: e.api, Holder: outbox.NewID(), Now: e.now, Log: e.log})
	if err != nil {
		sum.Failed = append(sum.Failed, "reading the change records: "+err.Error())
		e.log.Warn("restart tracking: reading the change records failed", "err", err)
	}
	return &sum
}

// Status reads the targets' last changes (domain: a glob, "" for all) and, unless noRefresh,
// refreshes the open ones first, in ctx's lane: what `livepack status` shows.
func (e *Engine) Status(ctx context.Context, s restart.Settings, domain string, noRefresh bool) ([]outbox.Change, restart.Summary, error) {
	return restart.Refresh(ctx, restart.Options{Settings: s, Box: e.box, API: e.api, Domain: domain, NoRefresh: noRefresh,
		Holder: outbox.NewID(), Now: e.now, Log: e.log})
}

// NoticeStates returns the delivery state of a change's notice at each of its sinks.
func (e *Engine) NoticeStates(ctx context.Context, ch outbox.Change) map[string]string {
	return e.box.States(ctx, []string{ch.ID}, ch.Sinks)[ch.ID]
}
