// Package redisconn provides the Redis connections the shared store and the shared quota use:
// one pool per process, dialled from a redis:// or rediss:// URL with fixed timeouts, with
// commands and scripts run under the caller's context and sent again when the connection
// failed under them.
//
// It is built on redigo, whose client is a fraction of the size of a full command-set client:
// livepack sends a handful of commands and Lua scripts, and every megabyte of the bootstrap is
// mapped on a cold start.
package redisconn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/gomodule/redigo/redis"
)

// Defaults of Options: the connect, read and write timeouts and the retries of go-redis's,
// which earlier versions used, so a deployment sees the same tolerance.
const (
	DefaultDialTimeout = 5 * time.Second
	DefaultIOTimeout   = 3 * time.Second
	DefaultRetries     = 3
)

// ErrClosed is returned by a Pool used after Close.
var ErrClosed = errors.New("redisconn: pool closed")

// Options adjust a Pool; the zero value takes the defaults.
type Options struct {
	DialTimeout time.Duration
	IOTimeout   time.Duration
	// Retries is how many times a command is sent again after a connection error (a refused
	// dial, a reset, a closed connection); a negative value sends it once.
	Retries int
}

// Pool is a process's connections to one Redis.
type Pool struct {
	pool    *redis.Pool
	addr    string
	retries int
}

// Cmd is one command of a transaction.
type Cmd struct {
	Name string
	Args []any
}

// New returns a pool for rawURL (redis://[user:password@]host:port/db, or rediss:// for TLS).
// It dials nothing: the first command does.
func New(rawURL string, o Options) (*Pool, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		return nil, fmt.Errorf("redisconn: %s: want redis://HOST:PORT/DB or rediss://HOST:PORT/DB", Redact(rawURL))
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.IOTimeout <= 0 {
		o.IOTimeout = DefaultIOTimeout
	}
	if o.Retries == 0 {
		o.Retries = DefaultRetries
	}
	opts := []redis.DialOption{redis.DialConnectTimeout(o.DialTimeout), redis.DialReadTimeout(o.IOTimeout),
		redis.DialWriteTimeout(o.IOTimeout)}
	// DialURL would find a malformed database number only at the first command, and would
	// ignore options in a query: both are refused here, so a bad LIVEPACK_STATE is a start-up
	// error and nothing in it is silently dropped.
	if db := strings.TrimPrefix(u.Path, "/"); db != "" {
		if n, err := strconv.Atoi(db); err != nil || n < 0 {
			return nil, fmt.Errorf("redisconn: %s: invalid database %q", Redact(rawURL), db)
		}
	}
	if u.RawQuery != "" {
		return nil, fmt.Errorf("redisconn: %s: options in the query are not supported", Redact(rawURL))
	}
	p := &redis.Pool{
		DialContext: func(ctx context.Context) (redis.Conn, error) {
			return redis.DialURLContext(ctx, rawURL, opts...)
		},
		// A connection that sat idle may have been cut (a Redis restart, an idle timeout on
		// the server): a PING finds out before a command is lost on it.
		TestOnBorrowContext: func(ctx context.Context, c redis.Conn, lastUsed time.Time) error {
			if time.Since(lastUsed) < time.Second {
				return nil
			}
			_, err := redis.DoContext(c, ctx, "PING")
			return err
		},
		MaxIdle:     10,
		IdleTimeout: 5 * time.Minute,
	}
	return &Pool{pool: p, addr: u.Host, retries: max(o.Retries, 0)}, nil
}

// Open returns a pool for rawURL after one PING, so an unreachable or misconfigured Redis is
// found at start.
func Open(ctx context.Context, rawURL string) (*Pool, error) {
	p, err := New(rawURL, Options{})
	if err != nil {
		return nil, err
	}
	if _, err := p.Do(ctx, "PING"); err != nil {
		_ = p.Close()
		return nil, fmt.Errorf("redisconn: redis at %s: %w", p.addr, err)
	}
	return p, nil
}

// Addr is the host:port the pool dials (no credentials).
func (p *Pool) Addr() string { return p.addr }

// Close closes the idle connections; commands after it fail with ErrClosed.
func (p *Pool) Close() error { return p.pool.Close() }

// Do sends one command.
func (p *Pool) Do(ctx context.Context, cmd string, args ...any) (any, error) {
	return p.with(ctx, func(c redis.Conn) (any, error) { return redis.DoContext(c, ctx, cmd, args...) })
}

// Eval runs a Lua script (EVALSHA, then EVAL when Redis does not have it yet).
func (p *Pool) Eval(ctx context.Context, s *redis.Script, keysAndArgs ...any) (any, error) {
	return p.with(ctx, func(c redis.Conn) (any, error) { return s.DoContext(ctx, c, keysAndArgs...) })
}

// Tx sends cmds in one MULTI/EXEC transaction and returns EXEC's replies.
func (p *Pool) Tx(ctx context.Context, cmds ...Cmd) (any, error) {
	return p.with(ctx, func(c redis.Conn) (any, error) {
		if err := c.Send("MULTI"); err != nil {
			return nil, err
		}
		for _, cmd := range cmds {
			if err := c.Send(cmd.Name, cmd.Args...); err != nil {
				return nil, err
			}
		}
		return redis.DoContext(c, ctx, "EXEC")
	})
}

// with runs f on a pooled connection, again on a fresh one after a connection error: the
// error came from the connection, not from Redis, so the command may not have run. Every
// command and script livepack sends may run twice: the scripts compare before they write.
func (p *Pool) with(ctx context.Context, f func(redis.Conn) (any, error)) (any, error) {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = 8*time.Millisecond, 512*time.Millisecond
	for attempt := 0; ; attempt++ {
		c, err := p.pool.GetContext(ctx)
		var v any
		if err == nil {
			v, err = f(c)
			_ = c.Close()
		}
		if err != nil && err.Error() == "redigo: get on closed pool" {
			return nil, ErrClosed
		}
		if err == nil || !connectionError(err) || attempt >= p.retries || ctx.Err() != nil {
			return v, err
		}
		t := time.NewTimer(b.NextBackOff())
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
	}
}

// connectionError reports whether err came from the network rather than from Redis.
func connectionError(err error) bool {
	var re redis.Error
	if errors.As(err, &re) || errors.Is(err, redis.ErrNil) || errors.Is(err, context.Canceled) ||
		errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		strings.HasPrefix(err.Error(), "redigo: ")
}

// Redact drops the password from a Redis URL, for messages; a URL too malformed to parse loses
// everything between the scheme and the last @.
func Redact(v string) string {
	u, err := url.Parse(v)
	if err == nil {
		if u.User != nil {
			u.User = url.User(u.User.Username())
			return u.String()
		}
		return v
	}
	if i, j := strings.Index(v, "://"), strings.LastIndex(v, "@"); i >= 0 && j > i {
		return v[:i+3] + "…@" + v[j+1:]
	}
	return v
}
