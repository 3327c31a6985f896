package apply_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aliyun/credentials-go/credentials"

	"github.com/livepack/livepack/shared/apply"
	"github.com/livepack/livepack/shared/classify"
	"github.com/livepack/livepack/shared/emulator"
	"github.com/livepack/livepack/shared/eventkey"
	"github.com/livepack/livepack/shared/liveapi"
	"github.com/livepack/livepack/shared/policy"
)

// TestRacingTriggersOneNotice: every kind of trigger (two webhooks with different ids, the
// policy bus, a direct document, a domain-created event and an enforce schedule) racing to make
// the same change, on two engines sharing one store as two instances would, announce it once:
// the notice's id is the change's, and the delivered-notices record lets it out once.
func TestRacingTriggersOneNotice(t *testing.T) {
	for name, mk := range stores(t) {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, mk())
			ps, hash := parse(t, sportsLL)
			// One client per trigger, as separate invocations and instances have.
			engine := func() *apply.Engine {
				opts := e.opts
				opts.Defaults = ps
				opts.API = newClient(t, e.url)
				return apply.New(opts)
			}
			runs := []func(context.Context, *apply.Engine) (apply.Result, error){
				func(ctx context.Context, en *apply.Engine) (apply.Result, error) {
					return en.Apply(ctx, "cms-webhook", "msg_a", hash, ps)
				},
				func(ctx context.Context, en *apply.Engine) (apply.Result, error) {
					return en.Apply(ctx, "cms-webhook", "msg_b", hash, ps)
				},
				func(ctx context.Context, en *apply.Engine) (apply.Result, error) {
					return en.Apply(ctx, "policy-bus", "bus-1", hash, ps)
				},
				func(ctx context.Context, en *apply.Engine) (apply.Result, error) {
					return en.Apply(ctx, "direct", hash, hash, ps)
				},
				func(ctx context.Context, en *apply.Engine) (apply.Result, error) {
					return en.DomainCreated(ctx, "domain-created", "evt-1", "play.example.com", time.Now())
				},
				func(ctx context.Context, en *apply.Engine) (apply.Result, error) {
					return en.Reconcile(ctx, "schedule", "schedule@minute", apply.Enforce, nil)
				},
			}
			var wg sync.WaitGroup
			start := make(chan struct{})
			errs := make([]error, len(runs))
			for i, run := range runs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					// A retried delivery, as the platform makes after a 503 or a failed
					// invocation.
					for range 20 {
						_, err := run(ctxT(t, 20*time.Second), engine())
						errs[i] = err
						if classify.Of(err) != classify.Retry {
							return
						}
						time.Sleep(50 * time.Millisecond)
					}
				}()
			}
			close(start)
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("trigger %d: %v", i, err)
				}
			}
			made := 0
			for _, c := range e.emu.Calls() {
				if strings.HasPrefix(c.Action, "Add") && c.Status == 200 {
					made++
				}
			}
			if made != 1 {
				t.Fatalf("%d successful writes, want 1", made)
			}
			if n, total, bad := e.recv.counts(); n != 1 || total != 1 || bad != 0 {
				t.Fatalf("receiver got %d distinct / %d total notices (%d bad), want 1 / 1", n, total, bad)
			}
		})
	}
}

func newClient(t *testing.T, url string) *liveapi.Client {
	t.Helper()
	cred, err := credentials.NewCredential(&credentials.Config{Type: ptr("access_key"),
		AccessKeyId: ptr(emulator.AccessKeyID), AccessKeySecret: ptr(emulator.AccessKeySecret)})
	if err != nil {
		t.Fatal(err)
	}
	c, err := liveapi.New(liveapi.Options{Endpoint: url, Credential: cred})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSameChangeAgainIsAnnouncedAgain: a config changed from A to B, back to A, then to B again
// makes three changes; the third has the first's id (the same target, previous and new
// config), yet it is a new occurrence and is announced.
func TestSameChangeAgainIsAnnouncedAgain(t *testing.T) {
	e := newEnv(t, nil)
	doc := func(n int) ([]policy.Policy, string) {
		return parse(t, strings.Replace(sportsLL, `"LLHLS_CMAF"`, fmt.Sprintf(`"LLHLS_CMAF","SegmentNum":%d`, n), 1))
	}
	for i, n := range []int{3, 4, 3, 4} {
		ps, hash := doc(n)
		if _, err := e.engine().Apply(ctxT(t, 20*time.Second), "cms-webhook", fmt.Sprint("msg_", i), hash, ps); err != nil {
			t.Fatal(err)
		}
	}
	if distinct, total, _ := e.recv.counts(); distinct != 4 || total != 4 {
		t.Fatalf("receiver got %d distinct / %d total, want 4 / 4 (create, update, update back, update again: four occurrences, four ids)", distinct, total)
	}
}

// stealingAPI lets another run take the key over during the first write, as a run that
// outlived its lease (a long pause, a partition) finds on its return.
type stealingAPI struct {
	liveapi.API
	steal func()
	once  sync.Once
}

func (s *stealingAPI) AddPackageConfig(ctx context.Context, pc liveapi.PackageConfig) error {
	err := s.API.AddPackageConfig(ctx, pc)
	s.once.Do(s.steal)
	return err
}

// TestFencedRunStops: once another run holds the key, the old run's record writes fail
// (fencing) and it stops without writing the API further; the new holder's record stays.
func TestFencedRunStops(t *testing.T) {
	for name, mk := range stores(t) {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, mk())
			ps, hash := parse(t, `{"policies":[`+sportsLL+`,{"DomainName":"play.example.com","AppName":"news","StreamName":"*","Protocol":"HLS_CMAF"}]}`)
			opts := e.opts
			opts.API = &stealingAPI{API: e.api, steal: func() {
				// Another run takes the key over, as one does when this run's lease lapsed; the
				// heartbeat finds out within a third of a lease.
				it, err := e.store.Get(context.Background(), "key/cms-webhook:msg_f")
				if err != nil {
					t.Error(err)
					return
				}
				thief := []byte(`{"hash":"` + hash + `","holder":"thief","fence":99,"leaseUntil":"` + time.Now().Add(time.Minute).UTC().Format(time.RFC3339Nano) + `"}`)
				if _, err := e.store.Update(context.Background(), it.Key, it.Version, thief, time.Now().Add(time.Hour)); err != nil {
					t.Error(err)
				}
				time.Sleep(eventkey.LeaseTTL/3 + time.Second)
			}}
			res, err := apply.New(opts).Apply(ctxT(t, 20*time.Second), "cms-webhook", "msg_f", hash, ps)
			if !errors.Is(err, eventkey.ErrFenced) || classify.Of(err) != classify.Retry {
				t.Fatalf("err %v (%s), want fenced, retry", err, classify.Of(err))
			}
			if e.writes() != 1 {
				t.Fatalf("%d writes, want 1: the fenced run wrote on (%+v)", e.writes(), res.Results)
			}
			if _, _, err := eventkey.New(e.store, nil).Acquire(context.Background(), "cms-webhook:msg_f", hash, "another"); !errors.Is(err, eventkey.ErrInProgress) {
				t.Fatalf("the new holder's record was overwritten or released: %v", err)
			}
			// The write that happened is announced all the same: it is in the outbox.
			if n, _, _ := e.recv.counts(); n != 1 {
				t.Fatalf("%d notices, want 1 for the one write", n)
			}
		})
	}
}

// TestReportAndEnforceSameKey: a report and an enforce schedule of the same minute are two
// runs.
func TestReportAndEnforceSameKey(t *testing.T) {
	e := newEnv(t, nil)
	ps, _ := parse(t, sportsLL)
	opts := e.opts
	opts.Defaults = ps
	en := apply.New(opts)
	rep, err := en.Reconcile(ctxT(t, 20*time.Second), "schedule", "schedule@2026-11-29T17:00:00Z", apply.Report, nil)
	if err != nil || rep.Reconcile.Drift != 1 {
		t.Fatalf("report: %v %+v", err, rep.Reconcile)
	}
	enf, err := en.Reconcile(ctxT(t, 20*time.Second), "schedule", "schedule@2026-11-29T17:00:00Z", apply.Enforce, nil)
	if err != nil || enf.Replayed || len(enf.Results) != 1 || enf.Results[0].Outcome != apply.Created {
		t.Fatalf("enforce: %v %+v", err, enf)
	}
}

// slowAPI makes the first write take longer than a lease, as a slow API or a long document does.
type slowAPI struct {
	liveapi.API
	d       time.Duration
	started chan struct{}
}

func (s *slowAPI) AddPackageConfig(ctx context.Context, pc liveapi.PackageConfig) error {
	close(s.started)
	select {
	case <-time.After(s.d):
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.API.AddPackageConfig(ctx, pc)
}

// TestHeartbeatKeepsTheKey: a run that works longer than its lease keeps its key (its heartbeat
// renews the lease), so no redelivery takes it over meanwhile; it finishes and completes.
func TestHeartbeatKeepsTheKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ps, hash := parse(t, sportsLL)
	slow := &slowAPI{API: e.api, d: eventkey.LeaseTTL + 2*time.Second, started: make(chan struct{})}
	opts := e.opts
	opts.API = slow
	done := make(chan error, 1)
	go func() {
		_, err := apply.New(opts).Apply(ctxT(t, time.Minute), "cms-webhook", "msg_slow", hash, ps)
		done <- err
	}()
	<-slow.started
	time.Sleep(eventkey.LeaseTTL + time.Second) // past the first lease's end
	if _, err := e.engine().Apply(ctxT(t, 20*time.Second), "cms-webhook", "msg_slow", hash, ps); !errors.Is(err, eventkey.ErrInProgress) {
		t.Fatalf("a redelivery while the run works: %v, want in progress", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if e.writes() != 1 {
		t.Fatalf("%d writes, want 1", e.writes())
	}
}
