package redisconn_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/livepack/livepack/shared/classify"
	"github.com/livepack/livepack/shared/redisconn"
	"github.com/livepack/livepack/shared/redistest"
)

func TestNewRefusesBadURLs(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"http://127.0.0.1:6379/0", "want redis://"},
		{"redis:///0", "want redis://"},
		{"127.0.0.1:6379", "want redis://"},
		{"redis://127.0.0.1:6379/zero", "invalid database"},
		{"rediss://user:s3cret@127.0.0.1:6379/x", "invalid database"},
		{"redis://127.0.0.1:6379/3abc", "invalid database"},
		{"redis://127.0.0.1:6379/-1", "invalid database"},
		{"redis://:s3cret@127.0.0.1:6379/0?dial_timeout=1s", "query are not supported"},
		{"redis://:s3cret@127.0.0.1:6379/%zz", "want redis://"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			_, err := redisconn.New(tc.url, redisconn.Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one saying %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("the password is in the message: %v", err)
			}
		})
	}
	for _, ok := range []string{"redis://127.0.0.1:6379", "redis://127.0.0.1:6379/3", "rediss://u:p@cache.example:6380/0"} {
		if _, err := redisconn.New(ok, redisconn.Options{}); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
}

// TestSurvivesCutConnections: connections the server dropped (a restart, an idle timeout) sit
// in the pool looking healthy; the next command goes out on a fresh one. Without the retry the
// same sequence fails, which the second half shows.
func TestSurvivesCutConnections(t *testing.T) {
	ctx := context.Background()
	admin := redistest.Start(t)
	url := "redis://" + admin.Addr() + "/0"
	for _, tc := range []struct {
		retries int
		wantErr bool
	}{{0, false}, {-1, true}} {
		p, err := redisconn.New(url, redisconn.Options{Retries: tc.retries})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Do(ctx, "SET", "k", "v"); err != nil {
			t.Fatal(err)
		}
		// The idle connection is now dead; it was used less than a second ago, so the pool
		// does not test it before lending it.
		if _, err := admin.Do(ctx, "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"); err != nil {
			t.Fatal(err)
		}
		v, err := redis.String(p.Do(ctx, "GET", "k"))
		if tc.wantErr != (err != nil) || (err == nil && v != "v") {
			t.Errorf("retries %d: GET after the cut: %q, %v", tc.retries, v, err)
		}
		_ = p.Close()
	}
}

func TestOpenPingsAndCloseSticks(t *testing.T) {
	ctx := context.Background()
	if _, err := redisconn.Open(ctx, "redis://127.0.0.1:1/0"); err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("Open of a closed port: %v, want an error naming the address", err)
	}
	p, err := redisconn.Open(ctx, "redis://"+redistest.Start(t).Addr()+"/0")
	if err != nil {
		t.Fatal(err)
	}
	_ = p.Close()
	if _, err := p.Do(ctx, "PING"); !errors.Is(err, redisconn.ErrClosed) {
		t.Fatalf("after Close: %v, want ErrClosed", err)
	}
}

func TestTxAndEval(t *testing.T) {
	ctx := context.Background()
	p := redistest.Start(t)
	if _, err := p.Tx(ctx, redisconn.Cmd{Name: "HSET", Args: []any{"h", "a", 1}},
		redisconn.Cmd{Name: "PEXPIRE", Args: []any{"h", time.Minute.Milliseconds()}}); err != nil {
		t.Fatal(err)
	}
	s := redis.NewScript(1, `return redis.call('HGET', KEYS[1], ARGV[1]) .. ':' .. redis.call('PTTL', KEYS[1])`)
	v, err := redis.String(p.Eval(ctx, s, "h", "a"))
	if err != nil || !strings.HasPrefix(v, "1:") || v == "1:-1" {
		t.Fatalf("script: %q, %v", v, err)
	}
	if _, err := p.Do(ctx, "NOSUCHCOMMAND"); err == nil {
		t.Fatal("an unknown command succeeded")
	} else if _, ok := errors.AsType[redis.Error](err); !ok {
		t.Fatalf("a server reply is not a redis.Error: %T %v", err, err)
	}
}

// FuzzNew: any LIVEPACK_STATE value is accepted or refused without a panic, and a refusal names
// the URL without its password.
func FuzzNew(f *testing.F) {
	for _, s := range []string{"redis://127.0.0.1:6379/0", "rediss://u:pw@h:1/2", "redis://:pw@h/x?y=z", "redis://%zz", "redis://:s3cret@h/%zz", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := redisconn.New(raw, redisconn.Options{})
		if err == nil {
			_ = p.Close()
			return
		}
		red := redisconn.Redact(raw)
		if u, perr := url.Parse(red); perr == nil && u.User != nil {
			if _, ok := u.User.Password(); ok {
				t.Fatalf("Redact(%q) = %q keeps a password", raw, red)
			}
		}
		if u, perr := url.Parse(raw); perr == nil && u.User != nil {
			if _, ok := u.User.Password(); ok && strings.Contains(err.Error(), raw) {
				t.Fatalf("the URL with its password is in %q", err)
			}
		}
	})
}

// TestRefusedPassword: a wrong or missing password is Redis's refusal, not a connection error:
// it is not retried, it names no password, and the classification table calls it a
// misconfiguration (an invocation that fails loudly until the configuration is fixed).
func TestRefusedPassword(t *testing.T) {
	ctx := context.Background()
	admin := redistest.StartWithPassword(t, "right-password")
	addr := admin.Addr()
	connections := func() int {
		info, err := redis.String(admin.Do(ctx, "INFO", "stats"))
		if err != nil {
			t.Fatal(err)
		}
		_, v, _ := strings.Cut(info, "total_connections_received:")
		n, _ := strconv.Atoi(strings.TrimSpace(strings.SplitN(v, "\n", 2)[0]))
		return n
	}
	for name, u := range map[string]string{"wrong": "redis://:wrong-password@" + addr + "/0", "missing": "redis://" + addr + "/0"} {
		t.Run(name, func(t *testing.T) {
			before := connections()
			_, err := redisconn.Open(ctx, u)
			if n := connections() - before; n != 1 {
				t.Errorf("%d connections for one refused Open, want 1: a refusal is not a connection error", n)
			}
			if err == nil {
				t.Fatal("Open succeeded")
			}
			if c := classify.Of(fmt.Errorf("host: LIVEPACK_STATE: %w", err)); c != classify.Misconfig {
				t.Errorf("class %s, want misconfiguration: %v", c, err)
			}
			if strings.Contains(err.Error(), "wrong-password") {
				t.Errorf("the password is in %q", err)
			}
		})
	}
}
