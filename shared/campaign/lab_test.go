package campaign_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/livepack/livepack/shared/campaign"
	"github.com/livepack/livepack/shared/config"
	"github.com/livepack/livepack/shared/emulator"
	"github.com/livepack/livepack/shared/handler"
	"github.com/livepack/livepack/shared/host"
	"github.com/livepack/livepack/shared/redistest"
	"github.com/livepack/livepack/shared/store"
	"github.com/livepack/livepack/shared/store/dynamostore"
	"github.com/livepack/livepack/shared/store/dynamostore/dynalitetest"
	"github.com/livepack/livepack/shared/store/memstore"
	"github.com/livepack/livepack/shared/store/stores"
	"github.com/livepack/livepack/shared/store/storetest"
)

// soak is set by `make soak`: every scenario runs long.
var soak = os.Getenv("LIVEPACK_SOAK") == "1"

// scale picks the short run's figure or the soak's.
func scale(short, long int) int {
	if soak {
		return long
	}
	return short
}

// webhookSecret signs the scenarios' CMS webhooks.
const webhookSecret = "whsec_Y2FtcGFpZ24tc2VjcmV0LWZvci10aGUtZmF1bHQtY2FtcGFpZ24="

// lab is one scenario's world: the Live API emulator, a notice receiver and optionally Redis,
// each behind a proxy that can take it away.
type lab struct {
	t testing.TB
	// skew moves the in-process instances' clock ahead (a sweep jumps past the outbox's
	// backoff instead of waiting for it).
	skew     atomic.Int64
	emu      *emulator.Server
	api      *campaign.Proxy
	recv     *campaign.Receiver
	sink     *campaign.Proxy
	redis    *campaign.Proxy
	state    string
	env      map[string]string
	started  time.Time
	ledgerTo string
	// shared is the store every in-process instance uses when the scenario picked a backend,
	// wrapped so that it fails the operations fail picks.
	shared *storetest.Faulty
	fail   atomic.Pointer[func(n int, op, key string) storetest.When]
}

type labOptions struct {
	emulator emulator.Options
	// redis: the idempotency store (and the shared quota) is a real redis-server behind a
	// proxy; else a bbolt file.
	redis bool
	// delay slows every API call, so a process can be killed in the middle of its writes.
	delay time.Duration
	// backend, when set, is the state store the lab opens once and every in-process instance
	// shares: "memory", "bbolt", "redis" (redis-server behind the proxy) or "dynamodb"
	// (dynalite). bbolt, redis and dynamodb are also what livepack processes reach through
	// LIVEPACK_STATE, under the same namespace.
	backend string
	// api wraps the emulator's handler (after delay), to see or hold the calls livepack makes.
	api func(http.Handler) http.Handler
}

func newLab(t testing.TB, o labOptions) *lab {
	t.Helper()
	l := &lab{t: t, started: time.Now(), recv: &campaign.Receiver{}}
	if o.emulator.Seed.Domains == nil {
		o.emulator.Seed = emulator.DefaultSeed()
	}
	if o.emulator.Rate == 0 {
		o.emulator.Rate = 1 << 30
	}
	l.emu = emulator.New(o.emulator)
	var apiHandler http.Handler = l.emu
	if o.delay > 0 {
		apiHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.HasPrefix(r.URL.Path, "/_emulator/") {
				time.Sleep(o.delay)
			}
			l.emu.ServeHTTP(w, r)
		})
	}
	if o.api != nil {
		apiHandler = o.api(apiHandler)
	}
	emuSrv := httptest.NewServer(apiHandler)
	t.Cleanup(emuSrv.Close)
	l.ledgerTo = emuSrv.URL
	l.api = mustProxy(t, strings.TrimPrefix(emuSrv.URL, "http://"))
	recvSrv := httptest.NewServer(l.recv)
	t.Cleanup(recvSrv.Close)
	l.sink = mustProxy(t, strings.TrimPrefix(recvSrv.URL, "http://"))
	if o.backend == "redis" {
		o.redis = true
	}
	if o.redis {
		rdb := redistest.Start(t)
		l.redis = mustProxy(t, rdb.Addr())
		l.state = "redis://" + l.redis.Addr() + "/0"
	} else {
		l.state = "file:" + t.TempDir() + "/state.db"
	}
	l.env = map[string]string{
		"LIVEPACK_ENDPOINT":       "http://" + l.api.Addr(),
		"LIVEPACK_STATE":          l.state,
		"LIVEPACK_NOTIFY":         "http://" + l.sink.Addr() + "/notices",
		"LIVEPACK_WEBHOOK_SECRET": webhookSecret,
		"LIVEPACK_NAMESPACE":      "campaign",
		"LIVEPACK_RATE":           "100000",
		"HOME":                    t.TempDir(),
	}
	if o.backend != "" {
		l.openShared(o.backend)
	}
	return l
}

// openShared opens the lab's one store on backend, under the namespace livepack derives from
// the lab's environment, and wraps it to fail what l.fail picks.
func (l *lab) openShared(backend string) {
	t := l.t
	t.Helper()
	var st store.Store
	switch backend {
	case "memory":
		st = memstore.New(nil)
	case "dynamodb":
		endpoint := dynalitetest.Start(t)
		maps.Copy(l.env, map[string]string{"LIVEPACK_STATE": "dynamodb://livepack-state", "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
			"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"})
		// The endpoint goes to this client only: the process's environment is shared by the
		// scenarios running in parallel.
		ac, err := awsconfig.LoadDefaultConfig(context.Background(), awsconfig.WithRegion("us-east-1"),
			awsconfig.WithCredentialsProvider(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
				return aws.Credentials{AccessKeyID: "x", SecretAccessKey: "x"}, nil
			})))
		if err != nil {
			t.Fatal(err)
		}
		client := dynamodb.NewFromConfig(ac, func(o *dynamodb.Options) { o.BaseEndpoint = &endpoint })
		if _, err := dynamostore.Init(context.Background(), client, "livepack-state"); err != nil {
			t.Fatal(err)
		}
		if st, err = dynamostore.New(client, "livepack-state", l.namespace()); err != nil {
			t.Fatal(err)
		}
	case "bbolt", "redis":
		var err error
		if st, err = stores.Open(context.Background(), l.state, l.namespace(), nil); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("lab: unknown backend %q", backend)
	}
	t.Cleanup(func() { _ = st.Close() })
	l.shared = &storetest.Faulty{Store: st, Fail: func(n int, op, key string) storetest.When {
		if f := l.fail.Load(); f != nil {
			return (*f)(n, op, key)
		}
		return 0
	}}
}

// namespace is the namespace livepack derives from the lab's environment.
func (l *lab) namespace() string {
	cfg, err := config.FromEnv(config.CLI, func(k string) string { return l.env[k] })
	if err != nil {
		l.t.Fatal(err)
	}
	return cfg.Namespace
}

// failStore makes the shared store fail the operations f picks (nil: none).
func (l *lab) failStore(f func(n int, op, key string) storetest.When) {
	if f == nil {
		l.fail.Store(nil)
		return
	}
	l.fail.Store(&f)
}

func mustProxy(t testing.TB, target string) *campaign.Proxy {
	t.Helper()
	p, err := campaign.NewProxy(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// instance wires one livepack instance in process, as the CLI host does from the lab's
// environment; the quota is lifted so a scenario's figures measure faults, not the quota.
func (l *lab) instance(extra map[string]string) *handler.Handler {
	l.t.Helper()
	cfg, err := config.FromEnv(config.CLI, func(k string) string {
		if v, ok := extra[k]; ok {
			return v
		}
		return l.env[k]
	})
	if err != nil {
		l.t.Fatal(err)
	}
	cfg.Rate = 1 << 30
	logger := slog.New(slog.DiscardHandler)
	if os.Getenv("CAMPAIGN_DEBUG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	o := host.Options{Stdout: io.Discard, Now: func() time.Time { return time.Now().Add(time.Duration(l.skew.Load())) }}
	if l.shared != nil {
		o.Store = l.shared
	}
	w, err := host.Build(context.Background(), cfg, logger, o)
	if err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(w.Close)
	return w.Handler
}

// environ is the lab's environment for a livepack process.
func (l *lab) environ(extra map[string]string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "ALIBABA_CLOUD_ECS_METADATA_DISABLED=true", "NO_COLOR=1"}
	for k, v := range l.env {
		if _, over := extra[k]; !over {
			env = append(env, k+"="+v)
		}
	}
	for k, v := range extra {
		env = append(env, k+"="+v)
	}
	return env
}

// judge reads the emulator's ledger and holds the scenario against its model.
func (l *lab) judge(m *model) campaign.Verdict {
	l.t.Helper()
	ledger, err := campaign.ReadLedger(context.Background(), l.ledgerTo)
	if err != nil {
		l.t.Fatal(err)
	}
	return campaign.Judge(ledger, l.recv.Deliveries(), m.domains, m.desired(), m.changes)
}

// report prints the scenario's line and fails the test on any broken equality.
func report(t testing.TB, name string, v campaign.Verdict, took time.Duration, extra ...string) {
	t.Helper()
	fmt.Println(campaign.Line(name, v, took, extra...))
	for _, p := range v.Problems {
		t.Error(p)
	}
}

// model is the desired state a scenario's events lead to, and the changes on the way.
type model struct {
	rnd     *rand.Rand
	domains []string
	apps    int
	now     map[string]campaign.Config
	used    map[string]map[string]bool
	changes []campaign.Change
}

func newModel(seed int64, apps int, domains ...string) *model {
	return &model{rnd: rand.New(rand.NewSource(seed)), domains: domains, apps: apps,
		now: map[string]campaign.Config{}, used: map[string]map[string]bool{}}
}

func (m *model) desired() map[string]string {
	out := map[string]string{}
	for t, c := range m.now {
		out[t] = c.String()
	}
	return out
}

// policy is one entry of a policy document, with every setting explicit.
type policy map[string]any

// freshConfig draws a config never used before on the target, so every change of a target is
// a change no earlier one repeats.
func (m *model) freshConfig(target string) campaign.Config {
	if m.used[target] == nil {
		m.used[target] = map[string]bool{}
	}
	for {
		c := campaign.Config{SegmentNum: 3 + m.rnd.Intn(8), IgnoreTranscode: m.rnd.Intn(2) == 0}
		switch p := []string{"HLS_CMAF", "DASH_CMAF", "HLSDASH_CMAF", "LLHLS_TS", "LLHLS_CMAF"}[m.rnd.Intn(5)]; p {
		case "LLHLS_TS", "LLHLS_CMAF":
			c.Protocol, c.SegmentDuration = p, 1+m.rnd.Intn(2)
			c.PartDuration = 100 + 50*m.rnd.Intn(map[int]int{1: 9, 2: 19}[c.SegmentDuration])
		default:
			c.Protocol, c.SegmentDuration = p, 1+m.rnd.Intn(10)
		}
		if !m.used[target][c.String()] {
			m.used[target][c.String()] = true
			return c
		}
	}
}

// put plans config c on domain/app/*, records the change it makes and returns the policy.
func (m *model) put(domain, app string, c campaign.Config) policy {
	t := campaign.Target(domain, app, "*")
	prev, had := m.now[t]
	switch {
	case !had:
		m.changes = append(m.changes, campaign.Change{Target: t, Kind: campaign.Create, Config: c.String()})
	case prev != c:
		m.changes = append(m.changes, campaign.Change{Target: t, Kind: campaign.Update, Config: c.String()})
	}
	m.now[t] = c
	p := policy{"DomainName": domain, "AppName": app, "StreamName": "*", "Protocol": c.Protocol,
		"SegmentNum": c.SegmentNum, "SegmentDuration": c.SegmentDuration, "IgnoreTranscode": c.IgnoreTranscode}
	if c.PartDuration > 0 {
		p["PartDuration"] = c.PartDuration
	}
	return p
}

// del plans the deletion of domain/app/*, which must exist.
func (m *model) del(domain, app string) policy {
	t := campaign.Target(domain, app, "*")
	delete(m.now, t)
	m.changes = append(m.changes, campaign.Change{Target: t, Kind: campaign.Delete})
	return policy{"DomainName": domain, "AppName": app, "StreamName": "*", "Delete": true}
}

// randomDocument plans one to three policies on distinct targets: a fresh config, or (a
// quarter of the time, when the target has one) a delete.
func (m *model) randomDocument() []policy {
	n := 1 + m.rnd.Intn(3)
	picked := map[string]bool{}
	var ps []policy
	for len(ps) < n {
		d := m.domains[m.rnd.Intn(len(m.domains))]
		app := fmt.Sprintf("app%02d", m.rnd.Intn(m.apps))
		t := campaign.Target(d, app, "*")
		if picked[t] {
			continue
		}
		picked[t] = true
		if _, had := m.now[t]; had && m.rnd.Intn(4) == 0 {
			ps = append(ps, m.del(d, app))
		} else {
			ps = append(ps, m.put(d, app, m.freshConfig(t)))
		}
	}
	return ps
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// Events, as the triggers deliver them.
func directEvent(id string, ps []policy) []byte {
	return mustJSON(map[string]any{"id": id, "policies": ps})
}

func busEvent(id string, ps []policy) []byte {
	return mustJSON(map[string]any{"specversion": "1.0", "id": id, "source": "cms", "type": "livepack.policies",
		"datacontenttype": "application/json", "time": time.Now().UTC().Format(time.RFC3339), "data": map[string]any{"policies": ps}})
}

// signedWebhook is a CMS webhook request to url.
func signedWebhook(t testing.TB, url, id string, body []byte) *http.Request {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(webhookSecret)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	sig, err := wh.Sign(id, now, body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	return req
}

// redeliver hands raw to the handler as a platform would: again after every error, with a
// growing pause, until it succeeds or budget runs out. It returns the attempts made.
func redeliver(t testing.TB, h *handler.Handler, raw []byte, timeout, budget time.Duration) int {
	t.Helper()
	end := time.Now().Add(budget)
	pause := 20 * time.Millisecond
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		_, err := h.Invoke(ctx, raw)
		cancel()
		if err == nil {
			return attempt
		}
		if time.Now().After(end) {
			t.Fatalf("event not handled after %d attempts in %v: %v\n%s", attempt, budget, err, raw)
		}
		time.Sleep(pause)
		pause = min(2*pause, 500*time.Millisecond)
	}
}

// sendWebhook posts a signed webhook until it is answered 200, honouring Retry-After (capped,
// to keep the run short) as a CMS would; it returns the statuses seen.
func sendWebhook(t testing.TB, client *http.Client, url func(int) string, id string, body []byte, budget time.Duration) []int {
	end := time.Now().Add(budget)
	var statuses []int
	for attempt := 0; ; attempt++ {
		resp, err := client.Do(signedWebhook(t, url(attempt), id, body))
		status := 0
		var wait time.Duration = 100 * time.Millisecond
		if err == nil {
			status = resp.StatusCode
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if s, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil {
				wait = min(time.Duration(s)*time.Second, time.Second)
			}
		}
		statuses = append(statuses, status)
		if status == http.StatusOK {
			return statuses
		}
		if status != 0 && status != http.StatusTooManyRequests && status != http.StatusServiceUnavailable && status < 500 {
			t.Errorf("webhook %s answered %d", id, status)
			return statuses
		}
		if time.Now().After(end) {
			t.Errorf("webhook %s not answered 200 within %v: statuses %v", id, budget, statuses)
			return statuses
		}
		time.Sleep(wait)
	}
}

// counter counts things by name, safely across goroutines.
type counter struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *counter) add(k string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]int{}
	}
	c.m[k] += n
}

func (c *counter) get(k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[k]
}
