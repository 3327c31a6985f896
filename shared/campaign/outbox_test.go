package campaign_test

import (
	"context"
	"fmt"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livepack/livepack/shared/campaign"
	"github.com/livepack/livepack/shared/emulator"
	"github.com/livepack/livepack/shared/handler"
	"github.com/livepack/livepack/shared/store/storetest"
)

// The outbox scenarios: changes that recur, a sink refusing one notice, a crash nobody
// redelivers, a store failing at each step, and enforce under 5xx. Each runs on a state store
// the lab opens once (l.shared) and, but for the crash, in process, so the lab's clock skew
// jumps past leases and delivery backoff instead of waiting for them.

// backends picks the short run's backends or the soak's.
func backends(short, long []string) []string {
	if soak {
		return long
	}
	return short
}

// redeliverSkewed is redeliver for a lab whose clock the scenario moves: after each failed
// attempt the clock jumps past a trigger key's and an intent's lease, as the platform's own
// retry would come after them, so a run that left either behind never makes the next wait.
func redeliverSkewed(t testing.TB, l *lab, h *handler.Handler, raw []byte, budget time.Duration) int {
	t.Helper()
	end := time.Now().Add(budget)
	for attempt := 1; ; attempt++ {
		// The deadline is on the instances' clock: a run measuring its time left against it
		// (the reconcile) gets the 10 s a platform would give it.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second+time.Duration(l.skew.Load()))
		_, err := h.Invoke(ctx, raw)
		cancel()
		if err == nil {
			return attempt
		}
		if time.Now().After(end) {
			t.Fatalf("event not handled after %d attempts in %v: %v\n%s", attempt, budget, err, raw)
		}
		l.skew.Add(int64(15 * time.Second))
		time.Sleep(20 * time.Millisecond)
	}
}

// sweep runs later invocations (a replay of raw, whose relay delivers what is owed), each
// jump later (past the delivery backoff a scenario's failures can have reached), until the receiver holds want distinct notice ids (at least twice, so
// a notice delivered again would show).
func sweep(t testing.TB, l *lab, h *handler.Handler, raw []byte, want int, jump time.Duration) int {
	t.Helper()
	n := 0
	for ; n < 2 || n < 10 && distinct(l.recv.Deliveries()) < want; n++ {
		l.skew.Add(int64(jump))
		redeliverSkewed(t, l, h, raw, time.Minute)
	}
	return n
}

func distinct(ds []campaign.Delivery) int {
	ids := map[string]bool{}
	for _, d := range ds {
		ids[d.ID] = true
	}
	return len(ids)
}

// deliveriesOf counts the deliveries of target's notices, duplicates included, and their ids.
func deliveriesOf(ds []campaign.Delivery, target string) (n int, ids map[string]int) {
	ids = map[string]int{}
	for _, d := range ds {
		if d.Change.Target == target {
			n++
			ids[d.ID]++
		}
	}
	return n, ids
}

// TestRecurringChanges: a few targets cycle through the same configs (A, B, A, B, deleted, A,
// B, …), one event per step, while the API fails 30% of its calls (5xx before the action,
// writes that commit and then answer 500, latency); 40% of events are delivered twice at once
// and 30% are followed by a duplicate of an earlier event. Every occurrence of a recurring
// change is its own change: written once, announced once under an id of its own.
func TestRecurringChanges(t *testing.T) {
	t.Parallel()
	for _, backend := range backends([]string{"memory", "redis"}, []string{"memory", "bbolt", "redis", "dynamodb"}) {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			l := newLab(t, labOptions{backend: backend, emulator: emulator.Options{FailRate: 0.3, FailSeed: 23,
				FailKinds: []string{emulator.FaultInternal, emulator.FaultUnavailable, emulator.FaultCommitThenFail, emulator.FaultLatency}}})
			h := l.instance(nil)
			m := newModel(29, 1, "play.example.com")
			targets := scale(2, 4)
			configs := make([][2]campaign.Config, targets)
			for i := range configs {
				app := fmt.Sprintf("loop%d", i)
				configs[i] = [2]campaign.Config{m.freshConfig(app), m.freshConfig(app)}
			}
			cycle := []string{"A", "B", "A", "B", "delete", "A", "B"}
			rounds := scale(len(cycle)+1, 6*len(cycle))
			var sent [][]byte
			deliveries, dups := 0, 0
			for round := range rounds {
				var doc []policy
				for i := range targets {
					app := fmt.Sprintf("loop%d", i)
					// Targets are a step apart, so one event updates one and deletes another.
					switch step := cycle[(round+i)%len(cycle)]; step {
					case "delete":
						if _, had := m.now[campaign.Target("play.example.com", app, "*")]; had {
							doc = append(doc, m.del("play.example.com", app))
						}
					default:
						doc = append(doc, m.put("play.example.com", app, configs[i][map[string]int{"A": 0, "B": 1}[step]]))
					}
				}
				if len(doc) == 0 {
					continue
				}
				raw := directEvent(fmt.Sprintf("recur-%d", round), doc)
				if round%2 == 1 {
					raw = busEvent(fmt.Sprintf("recur-%d", round), doc)
				}
				sent = append(sent, raw)
				var wg sync.WaitGroup
				var twice atomic.Int64
				if m.rnd.Float64() < 0.4 {
					dups++
					wg.Go(func() { twice.Add(int64(redeliver(t, h, raw, 10*time.Second, time.Minute))) })
				}
				deliveries += redeliver(t, h, raw, 10*time.Second, time.Minute)
				wg.Wait()
				deliveries += int(twice.Load())
				for m.rnd.Float64() < 0.3 {
					deliveries += redeliver(t, h, sent[m.rnd.Intn(len(sent))], 10*time.Second, time.Minute)
					dups++
				}
			}
			sweeps := sweep(t, l, h, sent[0], len(m.changes), 2*time.Hour)
			faults, committed := l.faults()
			report(t, "recurring/"+backend, l.judge(m), time.Since(start),
				fmt.Sprintf("targets=%d events=%d duplicates=%d invocations=%d sweeps=%d api-faults=%d commit-then-5xx=%d",
					targets, len(sent), dups, deliveries, sweeps, faults, committed))
		})
	}
}

// TestOneNoticeRefused: events of two changes each, while the receiver refuses (503) every
// notice of one target. The other notices are delivered by the invocation that made them, the
// refused one is rescheduled without holding them up, and once the receiver takes it again a
// later invocation delivers it, once.
func TestOneNoticeRefused(t *testing.T) {
	t.Parallel()
	for _, backend := range backends([]string{"memory", "redis"}, []string{"memory", "bbolt", "redis", "dynamodb"}) {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			l := newLab(t, labOptions{backend: backend})
			refused := campaign.Target("play.example.com", "refused", "*")
			var recovered atomic.Bool
			l.recv.Refuse = func(d campaign.Delivery) bool { return d.Change.Target == refused && !recovered.Load() }
			h := l.instance(nil)
			m := newModel(31, 1, "play.example.com", "global.example.com")
			events := scale(6, 60)
			var first []byte
			for i := range events {
				apps := []string{fmt.Sprintf("a%02d", i), fmt.Sprintf("b%02d", i)}
				if i == events/3 {
					apps[1] = "refused"
				}
				var doc []policy
				for j, app := range apps {
					d := m.domains[j]
					if app == "refused" {
						d = "play.example.com"
					}
					doc = append(doc, m.put(d, app, m.freshConfig(app)))
				}
				raw := directEvent(fmt.Sprintf("refuse-%d", i), doc)
				if first == nil {
					first = raw
				}
				redeliver(t, h, raw, 10*time.Second, time.Minute)
				// On time: each notice but the refused one is in by the end of its invocation.
				got := l.recv.Deliveries()
				for j, app := range apps {
					target := campaign.Target(m.domains[j], app, "*")
					if app == "refused" {
						target = refused
					}
					n, _ := deliveriesOf(got, target)
					want := 1
					if target == refused {
						want = 0
					}
					if n != want {
						t.Errorf("event %d: %s delivered %d times by the end of its invocation, want %d", i, target, n, want)
					}
				}
			}
			attempts := len(l.recv.Refused())
			if attempts == 0 {
				t.Error("the receiver never refused a notice: the scenario tested nothing")
			}
			recovered.Store(true)
			sweeps := sweep(t, l, h, first, len(m.changes), 2*time.Hour)
			n, ids := deliveriesOf(l.recv.Deliveries(), refused)
			if n != 1 || len(ids) != 1 {
				t.Errorf("the refused notice was delivered %d times under %d ids after the receiver recovered, want once", n, len(ids))
			}
			for _, d := range l.recv.Refused() {
				if ids[d.ID] == 0 {
					t.Errorf("the receiver refused notice %s (%s), which was never delivered", d.ID, d.Change)
				}
			}
			report(t, "one-refused/"+backend, l.judge(m), time.Since(start),
				fmt.Sprintf("events=%d refused-attempts=%d sweeps=%d", events, attempts, sweeps))
		})
	}
}

// apiAction names the Live API action of a request (V3 in a header, V1 in the parameters).
func apiAction(r *http.Request) string {
	if a := r.Header.Get("x-acs-action"); a != "" {
		return a
	}
	return r.URL.Query().Get("Action")
}

// TestCrashWithoutRedelivery: `livepack invoke` of a document of creates dies (SIGKILL) right
// after one of its writes reached the API and before the answer came back, and the platform
// never delivers the event again. A later invocation of another event (later) or the scheduled
// enforce (schedule) still announces every change the dead run made, its last one included.
func TestCrashWithoutRedelivery(t *testing.T) {
	t.Parallel()
	for _, backend := range backends([]string{"bbolt", "redis"}, []string{"bbolt", "redis", "dynamodb"}) {
		for _, then := range []string{"later", "schedule"} {
			t.Run(backend+"/"+then, func(t *testing.T) {
				t.Parallel()
				bin := binary(t)
				start := time.Now()
				rnd := rand.New(rand.NewSource(int64(len(backend) + len(then))))
				rounds := scale(1, 8)
				var lines []string
				for round := range rounds {
					n := scale(4, 10)
					killAt := 1 + rnd.Intn(n)
					var victim atomic.Pointer[exec.Cmd]
					var writes atomic.Int32
					killed := make(chan struct{})
					l := newLab(t, labOptions{backend: backend, api: func(next http.Handler) http.Handler {
						return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
							a := apiAction(r)
							if !strings.HasPrefix(a, "Add") && !strings.HasPrefix(a, "Update") && !strings.HasPrefix(a, "Delete") ||
								int(writes.Add(1)) != killAt {
								next.ServeHTTP(w, r)
								return
							}
							// The write takes effect; its process dies before the answer.
							next.ServeHTTP(httptest.NewRecorder(), r)
							for victim.Load() == nil { // started a moment ago
								time.Sleep(time.Millisecond)
							}
							_ = victim.Load().Process.Kill()
							<-killed
							panic(http.ErrAbortHandler)
						})
					}})
					m := newModel(int64(round), 1, "play.example.com")
					var doc []policy
					for i := range n {
						app := fmt.Sprintf("c%02d", i)
						p := m.put("play.example.com", app, m.freshConfig(app))
						doc = append(doc, p)
					}
					// Creates are written in document order: the dead run made the first killAt.
					if then == "later" {
						m = newModel(int64(round), 1, "play.example.com")
						for _, p := range doc[:killAt] {
							m.put("play.example.com", p["AppName"].(string), configOfPolicy(p))
						}
					}
					file := filepath.Join(t.TempDir(), "doc.json")
					if err := os.WriteFile(file, directEvent(fmt.Sprintf("crash-%d", round), doc), 0o600); err != nil {
						t.Fatal(err)
					}
					cmd := exec.Command(bin, "invoke", "-event", file)
					cmd.Env = l.environ(nil)
					if err := cmd.Start(); err != nil {
						t.Fatal(err)
					}
					victim.Store(cmd)
					err := cmd.Wait()
					close(killed)
					if err == nil {
						t.Fatalf("round %d: the process was not killed at write %d", round, killAt)
					}
					if got := len(ledgerWrites(t, l)); got != killAt {
						t.Fatalf("round %d: %d writes reached the API before the crash, want %d", round, got, killAt)
					}
					if n := len(l.recv.Deliveries()); n != 0 {
						t.Fatalf("round %d: %d notices before any invocation after the crash", round, n)
					}
					// Never delivered again. A later invocation comes after the dead run's
					// leases, as any would that is not its redelivery.
					l.skew.Add(int64(time.Minute))
					var h *handler.Handler
					var raw []byte
					switch then {
					case "later":
						h = l.instance(nil)
						raw = directEvent(fmt.Sprintf("later-%d", round), []policy{m.put("play.example.com", "later", m.freshConfig("later"))})
					case "schedule":
						h = l.instance(map[string]string{"LIVEPACK_POLICIES": string(mustJSON(map[string]any{"policies": doc}))})
						raw = timerEvent(l, "enforce")
					}
					redeliverSkewed(t, l, h, raw, time.Minute)
					// That one invocation announced them: no sweep needed.
					if got, want := distinct(l.recv.Deliveries()), len(m.changes); got != want {
						t.Errorf("round %d (killed at write %d of %d): the invocation after the crash left %d of %d notices undelivered",
							round, killAt, n, want-got, want)
					}
					v := l.judge(m)
					for _, p := range v.Problems {
						t.Errorf("round %d (killed at write %d of %d): %s", round, killAt, n, p)
					}
					lines = append(lines, fmt.Sprintf("%d/%d", killAt, n))
				}
				fmt.Printf("campaign %-28s rounds=%d killed-at-write=%s took=%v\n", "crash-no-redelivery/"+backend+"/"+then, rounds,
					strings.Join(lines, ","), time.Since(start).Round(10*time.Millisecond))
			})
		}
	}
}

// configOfPolicy reads back the config a policy built by model.put carries.
func configOfPolicy(p policy) campaign.Config {
	c := campaign.Config{Protocol: p["Protocol"].(string), SegmentNum: p["SegmentNum"].(int),
		SegmentDuration: p["SegmentDuration"].(int), IgnoreTranscode: p["IgnoreTranscode"].(bool)}
	if d, ok := p["PartDuration"].(int); ok {
		c.PartDuration = d
	}
	return c
}

func ledgerWrites(t testing.TB, l *lab) []campaign.Write {
	t.Helper()
	ledger, err := campaign.ReadLedger(context.Background(), l.ledgerTo)
	if err != nil {
		t.Fatal(err)
	}
	return ledger.Writes()
}

var timerSeq atomic.Int64

// timerEvent is an FC timer event of the schedule in mode, at a time of its own (its key).
func timerEvent(l *lab, mode string) []byte {
	at := l.started.Add(time.Duration(timerSeq.Add(1)) * time.Minute).UTC().Format(time.RFC3339)
	return mustJSON(map[string]any{"triggerTime": at, "triggerName": "reconcile", "payload": `{"mode": "` + mode + `"}`})
}

// TestStoreFaultAtEveryStep: one event of one change, run once for each operation it makes on
// the state store, with that operation failing, before it takes effect and then after (its
// answer lost). A failure before the API write means no write and an invocation that fails
// (the platform delivers it again); whatever the step, once the event went through, the
// change is written once and announced once.
func TestStoreFaultAtEveryStep(t *testing.T) {
	t.Parallel()
	for _, backend := range backends([]string{"memory", "redis"}, []string{"memory", "bbolt", "redis", "dynamodb"}) {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			l := newLab(t, labOptions{backend: backend})
			h := l.instance(nil)
			m := newModel(37, 1, "play.example.com")
			// Two events measure the steps of one: the first also meets an empty store.
			var ops int
			for i := range 2 {
				raw := directEvent(fmt.Sprintf("probe-%d", i), []policy{m.put("play.example.com", fmt.Sprintf("probe%d", i), m.freshConfig("probe"))})
				base := l.shared.Ops()
				redeliverSkewed(t, l, h, raw, time.Minute)
				ops = l.shared.Ops() - base
			}
			if ops == 0 {
				t.Fatal("the instance made no operation on the lab's store")
			}
			policies := scale(1, 2)
			retried, beforeWrite, struck := 0, 0, 0
			for step := 1; step <= ops; step++ {
				for _, when := range []storetest.When{storetest.Before, storetest.After} {
					name := fmt.Sprintf("%s op %d", map[storetest.When]string{storetest.Before: "before", storetest.After: "after"}[when], step)
					var doc []policy
					var targets []string
					for j := range policies {
						app := fmt.Sprintf("f%02d%d%d", step, when, j)
						doc = append(doc, m.put("play.example.com", app, m.freshConfig(app)))
						targets = append(targets, campaign.Target("play.example.com", app, "*"))
					}
					raw := directEvent("fault-"+strings.ReplaceAll(name, " ", "-"), doc)
					base := l.shared.Ops()
					var hit atomic.Value
					var hitAt atomic.Int64
					l.failStore(func(n int, op, key string) storetest.When {
						if n == base+step {
							hit.Store(op + " " + key)
							hitAt.Store(time.Now().UnixNano())
							return when
						}
						return 0
					})
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					_, err := h.Invoke(ctx, raw)
					cancel()
					l.failStore(nil)
					if hit.Load() == nil {
						continue // this event made fewer operations
					}
					struck++
					name += " (" + hit.Load().(string) + ")"
					written := writesOf(ledgerWrites(t, l), targets[0])
					// Write-ahead: failing to record the intent (its open/ record, read or
					// written before the write) means the write is not sent.
					if strings.Contains(hit.Load().(string), " open/") && len(written) > 0 && written[0].At.UnixNano() > hitAt.Load() {
						t.Errorf("%s: the intent could not be recorded, yet the write was sent", name)
					}
					if len(written) == 0 {
						beforeWrite++
						if err == nil {
							t.Errorf("%s: no write, yet the invocation succeeded: nobody retries the change", name)
						}
					}
					if err != nil {
						retried++
						l.skew.Add(int64(15 * time.Second))
						redeliverSkewed(t, l, h, raw, time.Minute)
					}
					// One fault reschedules a delivery once at most: 30 s of backoff, jittered.
					sweep(t, l, h, raw, len(m.changes), 5*time.Minute)
					all := ledgerWrites(t, l)
					for _, target := range targets {
						if w := len(writesOf(all, target)); w != 1 {
							t.Errorf("%s: %s written %d times, want once", name, target, w)
						}
						if n, ids := deliveriesOf(l.recv.Deliveries(), target); n != 1 || len(ids) != 1 {
							t.Errorf("%s: %s announced %d times under %d ids, want once", name, target, n, len(ids))
						}
					}
				}
			}
			report(t, "store-fault-each-step/"+backend, l.judge(m), time.Since(start),
				fmt.Sprintf("ops-per-event=%d faults=%d before-write=%d retried=%d", ops, struck, beforeWrite, retried))
		})
	}
}

func writesOf(ws []campaign.Write, target string) []campaign.Write {
	var out []campaign.Write
	for _, w := range ws {
		if w.Target == target {
			out = append(out, w)
		}
	}
	return out
}

// TestEnforceUnder5xx: the scheduled reconcile in enforce mode repairs drift while the API
// answers 30% of its calls with a 5xx: before the action (the write not applied:
// not-applied), or after applying a write (applied). The default policies alternate between
// two sets, so configs recur; each set is enforced by schedule runs until the API shows it.
func TestEnforceUnder5xx(t *testing.T) {
	t.Parallel()
	type variant struct {
		name  string
		kinds []string
	}
	variants := []variant{{"not-applied", []string{emulator.FaultInternal, emulator.FaultUnavailable}}, {"applied", []string{emulator.FaultCommitThenFail}}}
	for _, backend := range backends([]string{"memory", "redis"}, []string{"memory", "bbolt", "redis", "dynamodb"}) {
		for _, v := range variants {
			t.Run(backend+"/"+v.name, func(t *testing.T) {
				t.Parallel()
				start := time.Now()
				m := newModel(int64(41+len(v.name)), 1, "play.example.com", "global.example.com")
				seed := emulator.DefaultSeed()
				// Drift to begin with: one config to update, one already as the first set wants.
				apps := scale(3, 6)
				sets := [2][]policy{}
				for s := range sets {
					for i := range apps {
						for _, d := range m.domains {
							app := fmt.Sprintf("e%d", i)
							c := m.freshConfig(d + app)
							sets[s] = append(sets[s], policy{"DomainName": d, "AppName": app, "StreamName": "*", "Protocol": c.Protocol,
								"SegmentNum": c.SegmentNum, "SegmentDuration": c.SegmentDuration, "IgnoreTranscode": c.IgnoreTranscode})
							if c.PartDuration > 0 {
								sets[s][len(sets[s])-1]["PartDuration"] = c.PartDuration
							}
						}
					}
				}
				for i, p := range sets[0][:2] {
					c := configOfPolicy(p)
					if i == 0 {
						c = m.freshConfig("seed")
					}
					seed.PackageConfigs = append(seed.PackageConfigs, emulator.PackageConfig{DomainName: p["DomainName"].(string),
						AppName: p["AppName"].(string), StreamName: "*", Protocol: c.Protocol, SegmentNum: c.SegmentNum,
						SegmentDuration: c.SegmentDuration, PartDuration: c.PartDuration, IgnoreTranscode: c.IgnoreTranscode})
					m.now[campaign.Target(p["DomainName"].(string), p["AppName"].(string), "*")] = c
				}
				l := newLab(t, labOptions{backend: backend, emulator: emulator.Options{Seed: seed, FailRate: 0.3, FailSeed: int64(len(v.name)), FailKinds: v.kinds}})
				hs := [2]*handler.Handler{}
				for s := range sets {
					hs[s] = l.instance(map[string]string{"LIVEPACK_POLICIES": string(mustJSON(sets[s]))})
				}
				rounds := scale(3, 12)
				runs := 0
				var last []byte
				for round := range rounds {
					s := round % 2
					for _, p := range sets[s] {
						m.put(p["DomainName"].(string), p["AppName"].(string), configOfPolicy(p))
					}
					for try := 0; ; try++ {
						last = timerEvent(l, "enforce")
						redeliverSkewed(t, l, hs[s], last, 2*time.Minute)
						runs++
						if v := l.judge(m); !hasStateProblem(v) {
							break
						}
						if try == 10 {
							t.Fatalf("round %d: the API does not show the default policies after %d enforce runs", round, try+1)
						}
					}
				}
				sweeps := sweep(t, l, hs[0], last, len(m.changes), 2*time.Hour)
				faults, committed := l.faults()
				report(t, "enforce-5xx/"+backend+"/"+v.name, l.judge(m), time.Since(start),
					fmt.Sprintf("rounds=%d enforce-runs=%d sweeps=%d api-faults=%d commit-then-5xx=%d", rounds, runs, sweeps, faults, committed))
			})
		}
	}
}

func hasStateProblem(v campaign.Verdict) bool {
	for _, p := range v.Problems {
		if strings.HasPrefix(p, "state:") {
			return true
		}
	}
	return false
}
