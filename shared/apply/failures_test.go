package apply_test

import (
	"errors"
	"testing"
	"time"

	"github.com/aliyun/credentials-go/credentials"

	"github.com/livepack/livepack/shared/apply"
	"github.com/livepack/livepack/shared/classify"
	"github.com/livepack/livepack/shared/emulator"
	"github.com/livepack/livepack/shared/eventkey"
	"github.com/livepack/livepack/shared/liveapi"
	"github.com/livepack/livepack/shared/quota"
	"github.com/livepack/livepack/shared/redisconn"
	"github.com/livepack/livepack/shared/store/redisstore"
)

// TestWrongCredentialsFailLoudly: the API refusing livepack's key is a misconfiguration: the
// run fails (it never ends as a success or a completed failure), and once the key is fixed the
// same event applies.
func TestWrongCredentialsFailLoudly(t *testing.T) {
	e := newEnv(t, nil)
	ps, hash := parse(t, sportsLL)
	cred, err := credentials.NewCredential(&credentials.Config{Type: ptr("access_key"),
		AccessKeyId: ptr(emulator.AccessKeyID), AccessKeySecret: ptr("not-the-secret")})
	if err != nil {
		t.Fatal(err)
	}
	bad, err := liveapi.New(liveapi.Options{Endpoint: e.url, Credential: cred})
	if err != nil {
		t.Fatal(err)
	}
	opts := e.opts
	opts.API = bad
	res, err := apply.New(opts).Apply(ctxT(t, 20*time.Second), "direct", "k", hash, ps)
	if classify.Of(err) != classify.Misconfig || !errors.Is(err, classify.ErrMisconfigured) || res.Results[0].Outcome != apply.Failed {
		t.Fatalf("class %s: %v %+v", classify.Of(err), err, res.Results)
	}
	res, err = e.engine().Apply(ctxT(t, 20*time.Second), "direct", "k", hash, ps)
	if err != nil || res.Replayed || res.Results[0].Outcome != apply.Created {
		t.Fatalf("after the fix: %v %+v", err, res)
	}
}

// TestEnforceAmbiguousWriteAnnounced: an enforce reconcile whose write the API commits and then
// answers with a 5xx finishes (a reconcile reports rather than retries), and still announces
// the change it finds in place: a change made is never left unannounced.
func TestEnforceAmbiguousWriteAnnounced(t *testing.T) {
	e := newEnv(t, nil, func(o *emulator.Options, _ *liveapi.Options) {
		o.FailRate, o.FailKinds = 1, []string{emulator.FaultCommitThenFail}
	})
	ps, _ := parse(t, sportsLL)
	opts := e.opts
	opts.Defaults = ps
	res, err := apply.New(opts).Reconcile(ctxT(t, 20*time.Second), "schedule", "s1", apply.Enforce, nil)
	if err != nil {
		t.Fatal(err)
	}
	committed := 0
	for _, c := range e.emu.Calls() {
		if c.Committed {
			committed++
		}
	}
	if committed != 1 || len(e.emu.State().PackageConfigs) != 1 {
		t.Fatalf("%d committed-then-failed writes, state %+v: the scenario did not happen", committed, e.emu.State().PackageConfigs)
	}
	if n, total, _ := e.recv.counts(); n != 1 || total != 1 {
		t.Fatalf("%d notices (%+v), want the change announced once", total, res.Notices)
	}
}

// TestRedisUnreachableIsRetried: with the shared quota's Redis gone, the limiter's error is a
// retry (the key released, the invocation failed for redelivery), never a completed failure
// that replays for a day.
func TestRedisUnreachableIsRetried(t *testing.T) {
	rdb, err := redisconn.New("redis://127.0.0.1:1/0", redisconn.Options{Retries: -1, DialTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	e := newEnv(t, nil, func(_ *emulator.Options, o *liveapi.Options) {
		o.Limiter = quota.NewShared(redisstore.New(rdb, "t"), "quota", 250)
	})
	ps, hash := parse(t, sportsLL)
	res, err := e.engine().Apply(ctxT(t, 20*time.Second), "cms-webhook", "msg_r", hash, ps)
	if classify.Of(err) != classify.Retry || res.Results[0].Outcome != apply.Failed || e.writes() != 0 {
		t.Fatalf("class %s (%v), %+v", classify.Of(err), err, res.Results)
	}
	// The key was released: the same delivery runs again rather than replaying the failure.
	_, err = e.engine().Apply(ctxT(t, 20*time.Second), "cms-webhook", "msg_r", hash, ps)
	if classify.Of(err) != classify.Retry || errors.Is(err, eventkey.ErrInProgress) {
		t.Fatalf("redelivery: %v", err)
	}
}
