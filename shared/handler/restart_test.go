package handler_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aliyun/credentials-go/credentials"

	"github.com/livepack/livepack/shared/apply"
	"github.com/livepack/livepack/shared/emulator"
	"github.com/livepack/livepack/shared/handler"
	"github.com/livepack/livepack/shared/liveapi"
	"github.com/livepack/livepack/shared/notify"
	"github.com/livepack/livepack/shared/restart"
	"github.com/livepack/livepack/shared/store"
	"github.com/livepack/livepack/shared/store/everystore"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type recorder struct {
	mu  sync.Mutex
	got map[string]int
}

func (r *recorder) Name() string { return "rec" }
func (r *recorder) Deliver(_ context.Context, n notify.Notice) error {
	var ev struct{ Type string }
	_ = json.Unmarshal(n.JSON, &ev)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got[ev.Type]++
	return nil
}

func (r *recorder) count(typ string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got[typ]
}

// TestScheduleTracksRestarts: the scheduled run refreshes restart tracking before its
// reconcile, its result carries the counts, and once a stream has awaited past the grace the
// change's one reminder is sent, however many schedules (on instances of their own, sharing the
// store) race: on every backend.
func TestScheduleTracksRestarts(t *testing.T) {
	for name, mk := range everystore.Backends(t) {
		t.Run(name, func(t *testing.T) {
			s := mk()
			defer s.Close()
			scheduleTracksRestarts(t, s)
		})
	}
}

func scheduleTracksRestarts(t *testing.T, s store.Store) {
	ctx := context.Background()
	emu := emulator.New(emulator.Options{Seed: emulator.DefaultSeed()})
	srv := httptest.NewServer(emu)
	defer srv.Close()
	typ, id, key := "access_key", emulator.AccessKeyID, emulator.AccessKeySecret
	cred, _ := credentials.NewCredential(&credentials.Config{Type: &typ, AccessKeyId: &id, AccessKeySecret: &key})
	api, err := liveapi.New(liveapi.Options{Endpoint: srv.URL, Credential: cred})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := emu.ChangeStream(emulator.StreamChange{Action: emulator.StreamStart, DomainName: "play.example.com", AppName: "sports", StreamName: "highlights"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // its PublishTime's second is before the change's
	clk := &clock{now: time.Now()}
	rec := &recorder{got: map[string]int{}}
	newH := func() *handler.Handler {
		h := handler.New(apply.Options{API: api, Store: s, Sinks: []notify.Sink{rec}, Now: clk.Now}, nil, slog.New(slog.DiscardHandler))
		h.Restart = restart.Settings{Grace: 30 * time.Minute}
		return h
	}
	doc := `{"policies":[{"DomainName":"play.example.com","AppName":"sports","StreamName":"*","Protocol":"LLHLS_CMAF"}]}`
	if _, err := newH().Invoke(ctx, []byte(doc)); err != nil {
		t.Fatal(err)
	}
	if rec.count(notify.TypeRestart) != 1 {
		t.Fatalf("restart notices %v", rec.got)
	}
	if _, err := emu.ChangeStream(emulator.StreamChange{Action: emulator.StreamRestart, DomainName: "play.example.com", AppName: "sports", StreamName: "final"}); err != nil {
		t.Fatal(err)
	}
	schedule := func(h *handler.Handler, key string) *restart.Summary {
		ev := fmt.Sprintf(`{"triggerTime": %q, "triggerName": "reconcile", "payload": "{\"mode\": \"report\"}"}`, key)
		resp, err := h.Invoke(ctx, []byte(ev))
		if err != nil {
			t.Error(err)
			return nil
		}
		return resp.Result.Restart
	}
	sum := schedule(newH(), "2026-11-24T08:15:00Z")
	if sum == nil || sum.Awaiting != 1 || sum.Restarted != 1 || sum.Calls != 1 || sum.Reminders != 0 {
		t.Fatalf("first schedule: %+v", sum)
	}
	clk.add(31 * time.Minute)
	var wg sync.WaitGroup
	var mu sync.Mutex
	reminders := 0
	for i := range 4 {
		wg.Go(func() {
			sum := schedule(newH(), fmt.Sprintf("2026-11-24T08:%02d:00Z", 30+i))
			if sum != nil {
				mu.Lock()
				reminders += sum.Reminders
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	sum = schedule(newH(), "2026-11-24T09:00:00Z")
	if reminders+sum.Reminders != 1 || rec.count(notify.TypeOverdue) != 1 || sum.Overdue != 1 || sum.Awaiting != 1 {
		t.Fatalf("reminders owed %d, delivered %d; last summary %+v", reminders+sum.Reminders, rec.count(notify.TypeOverdue), sum)
	}
}
