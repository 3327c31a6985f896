package apply

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/livepack/livepack/shared/idempotency"
)

// lease is a held trigger key: a heartbeat renews it every LeaseTTL/3 while the run works, so
// a crashed run's key is free within seconds, and the run's context is cancelled the moment
// the key is lost (another run took it over, or renewals failed past the lease's end), so the
// losing run stops writing the API.
type lease struct {
	key, token string
	ctx        context.Context
	cancel     context.CancelCauseFunc
	done       chan struct{}
	once       sync.Once
	wg         sync.WaitGroup
}

// hold starts the heartbeat of the lease token holds on key.
func (e *Engine) hold(ctx context.Context, key, token string, log *slog.Logger) *lease {
	lctx, cancel := context.WithCancelCause(ctx)
	l := &lease{key: key, token: token, ctx: lctx, cancel: cancel, done: make(chan struct{})}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		t := time.NewTicker(idempotency.LeaseTTL / 3)
		defer t.Stop()
		held := idempotency.LeaseUntil(time.Now())
		for {
			select {
			case <-l.done:
				return
			case <-t.C:
			}
			rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), idempotency.LeaseTTL/3)
			err := e.store.Renew(rctx, key, token, idempotency.LeaseUntil(time.Now()))
			rcancel()
			switch {
			case err == nil:
				held = idempotency.LeaseUntil(time.Now())
			case errors.Is(err, idempotency.ErrFenced):
				log.Error("lease taken over by another run: stopping", "err", err)
				cancel(fmt.Errorf("apply: %s: %w", key, err))
				return
			case time.Now().After(held):
				log.Error("lease lapsed: its renewals failed; stopping", "err", err)
				cancel(fmt.Errorf("apply: %s: renewals failed past the lease: %w (%w)", key, idempotency.ErrFenced, err))
				return
			default:
				log.Warn("renewing the lease failed; retrying", "err", err)
			}
		}
	}()
	return l
}

// lost returns why the lease was lost, or nil while it is held.
func (l *lease) lost() error {
	if l == nil || l.ctx.Err() == nil {
		return nil
	}
	if c := context.Cause(l.ctx); errors.Is(c, idempotency.ErrFenced) {
		return c
	}
	return nil
}

// stop ends the heartbeat (the record was written with the lease released or completed).
func (l *lease) stop() {
	if l == nil {
		return
	}
	l.once.Do(func() { close(l.done) })
	l.wg.Wait()
	l.cancel(nil)
}
