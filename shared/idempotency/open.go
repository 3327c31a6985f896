package idempotency

import (
	"context"
	"fmt"
	"strings"

	"github.com/livepack/livepack/shared/redisconn"
)

// KeyPrefix is the prefix of every Redis key of the namespace ns: the namespace is a Redis
// Cluster hash tag, so all of a deployment's keys (records, their notices, the pending index,
// the quota) live in one slot and a script may touch several of them atomically.
func KeyPrefix(ns string) string { return "livepack:{" + ns + "}:" }

// Open returns the store LIVEPACK_STATE names: "memory", "file:PATH" or "redis://HOST:PORT/DB";
// Redis keys are prefixed with KeyPrefix(namespace).
func Open(ctx context.Context, spec, namespace string) (Store, error) {
	switch {
	case spec == "memory":
		return NewMemory(), nil
	case strings.HasPrefix(spec, "file:") && len(spec) > len("file:"):
		return NewFile(strings.TrimPrefix(spec, "file:"))
	case strings.HasPrefix(spec, "redis://") || strings.HasPrefix(spec, "rediss://"):
		rdb, err := redisconn.Open(ctx, spec)
		if err != nil {
			return nil, fmt.Errorf("idempotency: %w", err)
		}
		s := NewRedis(rdb, KeyPrefix(namespace)+"idem:")
		s.owned = true
		return s, nil
	}
	return nil, fmt.Errorf("idempotency: state %q: want memory, file:PATH or redis://HOST:PORT/DB", redisconn.Redact(spec))
}
