package idempotency

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/redis/go-redis/v9"
)

// KeyPrefix namespaces livepack's records in a shared Redis.
const KeyPrefix = "livepack:idem:"

// Open returns the store LIVEPACK_STATE names: "memory", "file:PATH" or "redis://HOST:PORT/DB".
func Open(ctx context.Context, spec string) (Store, error) {
	switch {
	case spec == "memory":
		return NewMemory(), nil
	case strings.HasPrefix(spec, "file:") && len(spec) > len("file:"):
		return NewFile(strings.TrimPrefix(spec, "file:"))
	case strings.HasPrefix(spec, "redis://") || strings.HasPrefix(spec, "rediss://"):
		opt, err := redis.ParseURL(spec)
		if err != nil {
			return nil, fmt.Errorf("idempotency: %s: %w", redact(spec), err)
		}
		rdb := redis.NewClient(opt)
		if err := rdb.Ping(ctx).Err(); err != nil {
			_ = rdb.Close()
			return nil, fmt.Errorf("idempotency: redis at %s: %w", opt.Addr, err)
		}
		s := NewRedis(rdb, KeyPrefix)
		s.owned = true
		return s, nil
	}
	return nil, fmt.Errorf("idempotency: state %q: want memory, file:PATH or redis://HOST:PORT/DB", redact(spec))
}

// redact hides a password in a URL.
func redact(v string) string {
	if u, err := url.Parse(v); err == nil && u.User != nil {
		u.User = url.User(u.User.Username())
		return u.String()
	}
	return v
}
