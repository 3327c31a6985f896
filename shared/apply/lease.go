package apply

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/livepack/livepack/shared/eventkey"
)

// lease is a held trigger key: a heartbeat renews it (and the open intent of the write in
// flight) every eventkey.LeaseTTL/3 while the run works, so a crashed run's key is free within
// seconds, and the run's context is cancelled the moment the key is lost (another run took it
// over, or renewals failed past the lease's end), so the losing run stops writing the API.
type lease struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	done   chan struct{}
	once   sync.Once
	wg     sync.WaitGroup
}

// hold starts the heartbeat of l and of s's open intents.
func (e *Engine) hold(ctx context.Context, l *eventkey.Lease, s *session, log *slog.Logger) *lease {
	lctx, cancel := context.WithCancelCause(ctx)
	h := &lease{ctx: lctx, cancel: cancel, done: make(chan struct{})}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		t := time.NewTicker(eventkey.LeaseTTL / 3)
		defer t.Stop()
		held := e.now().Add(eventkey.LeaseTTL)
		for {
			select {
			case <-h.done:
				return
			case <-t.C:
			}
			rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), eventkey.LeaseTTL/3)
			s.renewIntents(rctx)
			err := e.keys.Renew(rctx, l)
			rcancel()
			switch {
			case err == nil:
				held = e.now().Add(eventkey.LeaseTTL)
			case errors.Is(err, eventkey.ErrFenced):
				log.Error("lease taken over by another run: stopping", "err", err)
				cancel(fmt.Errorf("apply: %s: %w", l.Key, err))
				return
			case e.now().After(held):
				log.Error("lease lapsed: its renewals failed; stopping", "err", err)
				cancel(fmt.Errorf("apply: %s: renewals failed past the lease: %w (%w)", l.Key, eventkey.ErrFenced, err))
				return
			default:
				log.Warn("renewing the lease failed; retrying", "err", err)
			}
		}
	}()
	return h
}

// lost returns why the lease was lost, or nil while it is held.
func (l *lease) lost() error {
	if l == nil || l.ctx.Err() == nil {
		return nil
	}
	if c := context.Cause(l.ctx); errors.Is(c, eventkey.ErrFenced) {
		return c
	}
	return nil
}

// stop ends the heartbeat.
func (l *lease) stop() {
	if l == nil {
		return
	}
	l.once.Do(func() { close(l.done) })
	l.wg.Wait()
	l.cancel(nil)
}
