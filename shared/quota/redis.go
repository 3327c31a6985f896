package quota

import (
	"context"
	"fmt"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/livepack/livepack/shared/redisconn"
)

// NewRedis returns a limiter of perMinute calls per window (at least one) shared through Redis
// by every limiter built with the same key: the account's quota is global, so scaled-out
// instances draw from one budget, not one each. Each budget keeps two keys under key (its
// admission log and its AIMD state); in a Redis Cluster, put a hash tag in key.
func NewRedis(rdb *redisconn.Pool, key string, perMinute int, opts ...Option) *Limiter {
	l := newLimiter(perMinute, nil, opts)
	l.st = &shared{rdb: rdb, key: key, window: l.set.window}
	return l
}

type shared struct {
	rdb    *redisconn.Pool
	key    string
	window time.Duration
	// now, when set, replaces Redis's clock (tests hold the script to the local model).
	now func() time.Time
}

// script is the local window's rules (window.admit, window.throttled) over Redis: a sorted set
// of admission times (µs, unique members) and a hash with the per-second cap, the pause and
// the last decrease. It returns 0 for an admitted call, else the ms to wait. Redis's own clock
// (TIME) is the one clock every instance shares; ARGV[7] replaces it in tests.
var script = redis.NewScript(2, `
local now = tonumber(ARGV[7])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local mode, span = ARGV[1], tonumber(ARGV[2])
local capacity, lanelimit, share = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local log, st = KEYS[1], KEYS[2]
local ttl = math.ceil(span / 1000) + 1000
local s = redis.call('HMGET', st, 'cwnd', 'pause', 'dec')
local cwnd, pause, dec = tonumber(s[1]) or capacity, tonumber(s[2]) or 0, tonumber(s[3]) or -1e18
redis.call('ZREMRANGEBYSCORE', log, '-inf', string.format('%.0f', now - span))
if mode == 'throttled' then
  if now - dec >= 1000000 then
    local recent = redis.call('ZCOUNT', log, string.format('(%.0f', now - 1000000), '+inf')
    cwnd = math.max(1, math.min(cwnd, recent) / 2)
    dec = now
  end
  pause = math.max(pause, now + tonumber(ARGV[6]))
  redis.call('HSET', st, 'cwnd', string.format('%.17g', cwnd), 'pause', string.format('%.0f', pause), 'dec', string.format('%.0f', dec))
  redis.call('PEXPIRE', st, math.max(ttl, math.ceil((pause - now) / 1000) + 1000))
  return 0
end
if now < pause then
  return math.ceil((pause - now) / 1000)
end
local n = redis.call('ZCARD', log)
if n >= lanelimit then
  local e = redis.call('ZRANGE', log, n - lanelimit, n - lanelimit, 'WITHSCORES')
  return math.max(1, math.ceil((tonumber(e[2]) + span - now) / 1000))
end
if cwnd < capacity then
  local persec = math.max(1, math.floor(cwnd * share))
  local recent = redis.call('ZCOUNT', log, string.format('(%.0f', now - 1000000), '+inf')
  if recent >= persec then
    local e = redis.call('ZRANGE', log, n - persec, n - persec, 'WITHSCORES')
    return math.max(1, math.ceil((tonumber(e[2]) + 1000000 - now) / 1000))
  end
  cwnd = math.min(capacity, cwnd + 1 / cwnd)
  redis.call('HSET', st, 'cwnd', string.format('%.17g', cwnd))
end
local seq = redis.call('HINCRBY', st, 'seq', 1)
redis.call('ZADD', log, string.format('%.0f', now), string.format('%.0f', now) .. '-' .. seq)
redis.call('PEXPIRE', log, ttl)
redis.call('PEXPIRE', st, ttl)
return 0
`)

func (s *shared) keys(group string) (log, state string) {
	return s.key + ":" + group, s.key + ":" + group + ":aimd"
}

func (s *shared) clock() int64 {
	if s.now == nil {
		return 0
	}
	return s.now().UnixMicro()
}

func (s *shared) admit(ctx context.Context, group string, l limits) (time.Duration, error) {
	log, st := s.keys(group)
	ms, err := redis.Int64(s.rdb.Eval(ctx, script, log, st, "admit", s.window.Microseconds(), l.capacity, l.laneLimit, l.share, 0, s.clock()))
	if err != nil {
		return 0, fmt.Errorf("quota: redis: %w", err)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

func (s *shared) throttled(ctx context.Context, group string, capacity int, retryAfter time.Duration) error {
	log, st := s.keys(group)
	if _, err := s.rdb.Eval(ctx, script, log, st, "throttled", s.window.Microseconds(), capacity, capacity, 1, retryAfter.Microseconds(), s.clock()); err != nil {
		return fmt.Errorf("quota: redis: %w", err)
	}
	return nil
}
