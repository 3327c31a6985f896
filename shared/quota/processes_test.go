package quota_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aliyun/credentials-go/credentials"

	"github.com/livepack/livepack/shared/emulator"
	"github.com/livepack/livepack/shared/liveapi"
	"github.com/livepack/livepack/shared/quota"
	"github.com/livepack/livepack/shared/redistest"
	"github.com/livepack/livepack/shared/store"
	"github.com/livepack/livepack/shared/store/boltstore"
	"github.com/livepack/livepack/shared/store/dynamostore"
	"github.com/livepack/livepack/shared/store/dynamostore/dynalitetest"
	"github.com/livepack/livepack/shared/store/otsstore"
	"github.com/livepack/livepack/shared/store/redisstore"
)

// childEnv makes the test binary one instance spending a shared budget (spendShared).
const childEnv = "LIVEPACK_QUOTATEST_CHILD"

func TestMain(m *testing.M) {
	dynalitetest.Isolate()
	if job := os.Getenv(childEnv); job != "" {
		n, err := spendShared(job)
		if err != nil {
			fmt.Fprintln(os.Stderr, "quota child:", err)
			os.Exit(1)
		}
		fmt.Println(n)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// spendShared calls the emulator through a limiter shared on the store the job names until its
// time is up, and returns how many calls it made. job: backend, spec, emulator URL, budget,
// limiter window and run time, joined by the unit separator.
func spendShared(job string) (int, error) {
	f := strings.Split(job, "\x1f")
	if len(f) != 6 {
		return 0, fmt.Errorf("bad job %q", job)
	}
	budget, err := strconv.Atoi(f[3])
	if err != nil {
		return 0, err
	}
	window, err := time.ParseDuration(f[4])
	if err != nil {
		return 0, err
	}
	run, err := time.ParseDuration(f[5])
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), run)
	defer cancel()
	var s store.Store
	switch f[0] {
	case "redis":
		s, err = redisstore.Open(ctx, f[1], "procs")
	case "bolt":
		s, err = boltstore.Open(f[1], "procs")
	case "dynamodb":
		if err = os.Setenv("AWS_ENDPOINT_URL_DYNAMODB", f[1]); err == nil {
			s, err = dynamostore.Open(ctx, "livepack-state", "procs")
		}
	case "tablestore":
		s, err = otsstore.Open(ctx, otsOptions(f[1]))
	default:
		err = fmt.Errorf("backend %q", f[0])
	}
	if err != nil {
		return 0, err
	}
	defer s.Close()
	c, err := client(f[2], quota.NewShared(s, "quota", budget, quota.WithWindow(window)))
	if err != nil {
		return 0, err
	}
	n := 0
	for {
		_, err := c.DescribePackageConfigs(ctx, "play.example.com")
		switch {
		case err == nil:
			n++
		case errors.Is(err, quota.ErrExhausted) || ctx.Err() != nil:
			return n, nil
		default:
			return n, err
		}
	}
}

// otsOptions opens the Tablestore store of the emulator at endpoint.
func otsOptions(endpoint string) otsstore.Options {
	return otsstore.Options{Endpoint: endpoint, Instance: "livepack", Table: "livepack_state", Namespace: "procs",
		Credentials: otsstore.StaticCredentials(emulator.AccessKeyID, emulator.AccessKeySecret, "")}
}

func client(endpoint string, lim liveapi.Limiter) (*liveapi.Client, error) {
	typ, id, secret := "access_key", emulator.AccessKeyID, emulator.AccessKeySecret
	cred, err := credentials.NewCredential(&credentials.Config{Type: &typ, AccessKeyId: &id, AccessKeySecret: &secret})
	if err != nil {
		return nil, err
	}
	return liveapi.New(liveapi.Options{Endpoint: endpoint, Credential: cred, Limiter: lim, MaxAttempts: 10})
}

// TestProcessesShareABudget: three OS processes spend one budget through a shared store; the
// emulator, counting the same budget over its own window, never throttles one of their calls,
// and together they spend the budget window after window rather than idling.
func TestProcessesShareABudget(t *testing.T) {
	const (
		budget = 4
		procs  = 3
		// The emulator counts a second; the limiters a tenth more, the slack DefaultWindow's
		// extra second gives the API's minute.
		window = time.Second
		slack  = 100 * time.Millisecond
		run    = 3 * time.Second
	)
	backends := map[string]func(t *testing.T) string{
		"bolt": func(t *testing.T) string { return filepath.Join(t.TempDir(), "state.db") },
		"redis": func(t *testing.T) string {
			return "redis://" + redistest.Start(t).Addr() + "/0"
		},
		"dynamodb": func(t *testing.T) string {
			endpoint := dynalitetest.Start(t)
			t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", endpoint)
			c, err := dynamostore.NewClient(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := dynamostore.Init(context.Background(), c, "livepack-state"); err != nil {
				t.Fatal(err)
			}
			return endpoint
		},
		"tablestore": func(t *testing.T) string {
			srv := httptest.NewServer(emulator.New(emulator.Options{}))
			t.Cleanup(srv.Close)
			if err := otsstore.Init(context.Background(), otsOptions(srv.URL)); err != nil {
				t.Fatal(err)
			}
			return srv.URL
		},
	}
	for name, spec := range backends {
		t.Run(name, func(t *testing.T) {
			spec := spec(t)
			emu := emulator.New(emulator.Options{Seed: emulator.DefaultSeed(), Rate: budget, Window: window, Quota: emulator.QuotaWindow})
			srv := httptest.NewServer(emu)
			t.Cleanup(srv.Close)
			job := strings.Join([]string{name, spec, srv.URL, strconv.Itoa(budget), (window + slack).String(), run.String()}, "\x1f")
			var cmds []*exec.Cmd
			var outs []*bytes.Buffer
			for range procs {
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), childEnv+"="+job)
				var out, errs bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &errs
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				cmds, outs = append(cmds, cmd), append(outs, &out)
				t.Cleanup(func() {
					if t.Failed() {
						t.Logf("process stderr: %s", errs.String())
					}
				})
			}
			// Every process is waited for before any failure is reported, so the report reads
			// their finished output.
			waits := make([]error, len(cmds))
			for i, cmd := range cmds {
				waits[i] = cmd.Wait()
			}
			total := 0
			for i, err := range waits {
				if err != nil {
					t.Fatalf("process %d: %v", i, err)
				}
				n, err := strconv.Atoi(strings.TrimSpace(outs[i].String()))
				if err != nil {
					t.Fatalf("process %d printed %q", i, outs[i])
				}
				total += n
			}
			calls := len(emu.Calls())
			t.Logf("%d processes made %d calls (%d reached the emulator) on a budget of %d per %s", procs, total, calls, budget, window)
			if n := throttles(emu); n != 0 {
				t.Fatalf("%d of %d calls throttled: the processes spent more than the budget in a window", n, calls)
			}
			if total < 2*budget {
				t.Fatalf("%d calls in %s on a budget of %d per %s: the shared budget was not spent", total, run, budget, window)
			}
		})
	}
}
