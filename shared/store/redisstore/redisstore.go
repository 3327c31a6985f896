// Package redisstore is the store contract on Redis: the backend every instance of a deployment
// shares when LIVEPACK_STATE is a redis:// or rediss:// URL.
//
// Layout, for namespace ns (KeyPrefix(ns) is "livepack:{ns}:", the namespace a Redis Cluster
// hash tag so that every key of a deployment lives in one slot and one script may touch several):
//
//	livepack:{ns}:KIND/REST    a hash per item: v (the value), ver (the version, decimal), exp
//	                           (expiry, Unix ms; 0: never) and h (the versions it held lately)
//	livepack:{ns}:index:KIND   a sorted set per kind: every item's key, all at score 0, so
//	                           ZRANGEBYLEX lists them in byte order
//
// An expiring item's hash carries PEXPIREAT, so Redis drops it on time and a plain read never
// sees it; the scripts also compare exp with Redis's TIME. Redis's clock is the one every
// instance shares. An index member whose hash is gone (expired) is dropped lazily: by List when
// it meets one, and by Create, which probes two random members of the index it grows, so an
// index holds about twice the live items at most.
//
// Every conditional write is one Lua script, atomic in Redis, and safe to send twice: redisconn
// sends a command again when the connection failed under it, and the first send may have run
// with only its reply lost. The rules that make a second send answer as the first run did:
//
//   - Create and Update carry the version they propose (store.NewVersion, random, never reused).
//     A send that finds the item holding that version, or holding a later one with that version
//     in its recent history (h, the last 8 versions), answers success: the first send landed,
//     and any later writer built on it.
//   - Delete records nothing: its effect is the absence of the hash. A resent Delete (the client
//     marks the second and later sends of one call) that finds no live item answers success:
//     the version it was told to remove is gone. Its first send, or another writer's delete or
//     the item's expiry in the milliseconds between the sends, removed it; either way the
//     version the caller read no longer exists, which is all a Delete promises. A first send
//     finding no item answers ErrConflict, as the contract says.
//
// What no rule can tell without keeping tombstones, and so is not told: a Create whose first
// send landed and whose item was deleted before the resend creates it again; an Update or a
// Delete whose first send landed and whose key was deleted and created anew before the resend
// answers ErrConflict. Both need another writer to read, and delete, the item within the few
// milliseconds between two sends of one call.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/livepack/livepack/shared/redisconn"
	"github.com/livepack/livepack/shared/store"
)

// KeyPrefix is the prefix of every Redis key of namespace ns. The namespace is a Redis Cluster
// hash tag: all of a deployment's keys share one slot, so a script may touch an item and its
// index together.
func KeyPrefix(ns string) string { return "livepack:{" + ns + "}:" }

// Store is the Redis backend of one namespace.
type Store struct {
	pool   *redisconn.Pool
	prefix string
	owned  bool
}

var _ store.Store = (*Store)(nil)

// New returns the store of namespace on pool (a namespace without braces, which would break the
// hash tag; Open checks). Close leaves pool open: its owner closes it.
func New(pool *redisconn.Pool, namespace string) *Store {
	return &Store{pool: pool, prefix: KeyPrefix(namespace)}
}

// Open dials url (redis:// or rediss://), checks Redis answers, and returns the store of
// namespace; Close closes the connections.
func Open(ctx context.Context, url, namespace string) (*Store, error) {
	if strings.ContainsAny(namespace, "{}") {
		return nil, fmt.Errorf("redisstore: namespace %q: braces would break the Cluster hash tag", namespace)
	}
	pool, err := redisconn.Open(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("redisstore: %w", err)
	}
	s := New(pool, namespace)
	s.owned = true
	return s, nil
}

// Close closes the connections when Open made them.
func (s *Store) Close() error {
	if s.owned {
		return s.pool.Close()
	}
	return nil
}

// keys returns the hash of item key and the index of its kind.
func (s *Store) keys(key string) (item, index string, err error) {
	kind, _, ok := store.Kind(key)
	if !ok {
		return "", "", fmt.Errorf("redisstore: key %q: want kind/rest", key)
	}
	return s.prefix + key, s.prefix + "index:" + kind, nil
}

// lua is the preamble every write script shares: now is Redis's clock in ms, and live reads
// KEYS[1]'s version and history when the item lives.
const lua = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function live()
  local f = redis.call('HMGET', KEYS[1], 'ver', 'exp', 'h')
  if not f[1] then return nil, nil end
  local exp = tonumber(f[2]) or 0
  if exp ~= 0 and exp <= now then return nil, nil end
  return f[1], f[3] or f[1]
end
local function held(h, v)
  return string.find(' ' .. h .. ' ', ' ' .. v .. ' ', 1, true) ~= nil
end
local function expire(exp)
  if exp ~= '0' then redis.call('PEXPIREAT', KEYS[1], exp) else redis.call('PERSIST', KEYS[1]) end
end
`

// history is how many recent versions an item's h field keeps: enough for every write that can
// land between two sends of one call.
const history = 8

// createScript: KEYS item, index; ARGV key, value, version, exp. Returns 1 (written, or found
// already written by an earlier send of this call) or 0 (a live item is there).
var createScript = newScript(2, lua+`
local cur, h = live()
if cur then
  if held(h, ARGV[3]) then return 1 end
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'ver', ARGV[3], 'exp', ARGV[4], 'h', ARGV[3])
expire(ARGV[4])
redis.call('ZADD', KEYS[2], 0, ARGV[1])
for _, m in ipairs(redis.call('ZRANDMEMBER', KEYS[2], 2)) do
  if m ~= ARGV[1] and redis.call('EXISTS', ARGV[5] .. m) == 0 then redis.call('ZREM', KEYS[2], m) end
end
return 1
`)

// updateScript: KEYS item, index; ARGV key, value, version read, new version, exp.
var updateScript = newScript(2, lua+`
local cur, h = live()
if not cur then return 0 end
if held(h, ARGV[4]) then return 1 end
if cur ~= ARGV[3] then return 0 end
local vs = {}
for v in string.gmatch(h, '%S+') do table.insert(vs, v) end
table.insert(vs, ARGV[4])
while #vs > `+strconv.Itoa(history)+` do table.remove(vs, 1) end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'ver', ARGV[4], 'exp', ARGV[5], 'h', table.concat(vs, ' '))
expire(ARGV[5])
redis.call('ZADD', KEYS[2], 0, ARGV[1])
return 1
`)

// deleteScript: KEYS item, index; ARGV key, version, resend (1 on the second and later sends).
var deleteScript = newScript(2, lua+`
local cur = live()
if not cur then
  if ARGV[3] == '1' then return 1 end
  return 0
end
if cur ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
`)

// listScript: KEYS index; ARGV min, max (ZRANGEBYLEX bounds), limit (0: all), key prefix.
// Returns key, value, version, exp for each live item, and drops the members whose hash is gone.
var listScript = newScript(1, lua+`
local lo, hi, limit, pfx = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local out, n = {}, 0
while true do
  local batch = 256
  if limit > 0 then batch = limit - n end
  local ms = redis.call('ZRANGEBYLEX', KEYS[1], lo, hi, 'LIMIT', 0, batch)
  for _, m in ipairs(ms) do
    local f = redis.call('HMGET', pfx .. m, 'v', 'ver', 'exp')
    local exp = tonumber(f[3]) or 0
    if not f[2] then
      redis.call('ZREM', KEYS[1], m)
    elseif exp == 0 or exp > now then
      table.insert(out, m)
      table.insert(out, f[1])
      table.insert(out, f[2])
      table.insert(out, f[3])
      n = n + 1
    end
  end
  if #ms < batch or (limit > 0 and n >= limit) then return out end
  lo = '(' .. ms[#ms]
end
`)

// script is a Lua script with its source, sent by hash and by source when Redis lacks it.
type script struct {
	s   *redis.Script
	src string
}

func newScript(keys int, src string) script { return script{s: redis.NewScript(keys, src), src: src} }

// sends is an argument that reads 0 on the first send of a command and 1 on every later one:
// redisconn sends a command again after a connection error, and the script tells a resend by it.
type sends struct{ n atomic.Int32 }

// RedisArg implements redis.Argument; redigo calls it as it writes the command.
func (c *sends) RedisArg() any {
	if c.n.Add(1) > 1 {
		return 1
	}
	return 0
}

// eval runs sc: EVALSHA, then EVAL when Redis has not cached it (a NOSCRIPT reply proves the
// first did not run, so EVAL counts its sends afresh). resend, when set, is the last argument.
func (s *Store) eval(ctx context.Context, sc script, resend bool, keys []string, args ...any) (any, error) {
	run := func(cmd, spec string) (any, error) {
		a := make([]any, 0, 3+len(keys)+len(args))
		a = append(a, spec, len(keys))
		for _, k := range keys {
			a = append(a, k)
		}
		a = append(a, args...)
		if resend {
			a = append(a, &sends{})
		}
		return s.pool.Do(ctx, cmd, a...)
	}
	v, err := run("EVALSHA", sc.s.Hash())
	if e, ok := errors.AsType[redis.Error](err); ok && strings.HasPrefix(string(e), "NOSCRIPT ") {
		v, err = run("EVAL", sc.src)
	}
	return v, err
}

// ms is t as Redis's expiry: Unix ms, truncated so an item never outlives its expiry; "0" for
// never.
func ms(t time.Time) string {
	if t.IsZero() {
		return "0"
	}
	return strconv.FormatInt(max(t.UnixMilli(), 1), 10)
}

func expiry(v []byte) (time.Time, error) {
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil || n == 0 {
		return time.Time{}, err
	}
	return time.UnixMilli(n), nil
}

// Get implements store.Store. A plain HMGET: Redis never returns a key past its PEXPIREAT.
func (s *Store) Get(ctx context.Context, key string) (store.Item, error) {
	hk, _, err := s.keys(key)
	if err != nil {
		return store.Item{}, err
	}
	f, err := redis.Values(s.pool.Do(ctx, "HMGET", hk, "v", "ver", "exp"))
	if err != nil {
		return store.Item{}, fmt.Errorf("redisstore: get %s: %w", key, err)
	}
	if len(f) != 3 || f[1] == nil {
		return store.Item{}, store.ErrNotFound
	}
	it, err := item(key, f[0], f[1], f[2])
	if err != nil {
		return store.Item{}, fmt.Errorf("redisstore: get %s: %w", key, err)
	}
	return it, nil
}

// item decodes a hash's fields.
func item(key string, value, version, exp any) (store.Item, error) {
	v, _ := value.([]byte)
	ver, err := redis.Int64(version, nil)
	if err != nil {
		return store.Item{}, fmt.Errorf("version: %w", err)
	}
	e, _ := exp.([]byte)
	expires, err := expiry(e)
	if err != nil {
		return store.Item{}, fmt.Errorf("expiry %q: %w", e, err)
	}
	if v == nil {
		v = []byte{}
	}
	return store.Item{Key: key, Value: v, Version: ver, Expires: expires}, nil
}

// Create implements store.Store.
func (s *Store) Create(ctx context.Context, key string, value []byte, expires time.Time) (int64, error) {
	hk, ik, err := s.keys(key)
	if err != nil {
		return 0, err
	}
	v := store.NewVersion()
	ok, err := redis.Int(s.eval(ctx, createScript, false, []string{hk, ik}, key, value, v, ms(expires), s.prefix))
	if err != nil {
		return 0, fmt.Errorf("redisstore: create %s: %w", key, err)
	}
	if ok == 0 {
		return 0, store.ErrConflict
	}
	return v, nil
}

// Update implements store.Store.
func (s *Store) Update(ctx context.Context, key string, version int64, value []byte, expires time.Time) (int64, error) {
	hk, ik, err := s.keys(key)
	if err != nil {
		return 0, err
	}
	v := store.NewVersion()
	ok, err := redis.Int(s.eval(ctx, updateScript, false, []string{hk, ik}, key, value, version, v, ms(expires)))
	if err != nil {
		return 0, fmt.Errorf("redisstore: update %s: %w", key, err)
	}
	if ok == 0 {
		return 0, store.ErrConflict
	}
	return v, nil
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, key string, version int64) error {
	hk, ik, err := s.keys(key)
	if err != nil {
		return err
	}
	ok, err := redis.Int(s.eval(ctx, deleteScript, true, []string{hk, ik}, key, version))
	if err != nil {
		return fmt.Errorf("redisstore: delete %s: %w", key, err)
	}
	if ok == 0 {
		return store.ErrConflict
	}
	return nil
}

// List implements store.Store.
func (s *Store) List(ctx context.Context, prefix, after string, limit int) ([]store.Item, error) {
	kind, _, ok := store.Kind(prefix)
	if !ok {
		return nil, fmt.Errorf("redisstore: list prefix %q: want kind/…", prefix)
	}
	lo := "[" + prefix
	if after >= prefix {
		lo = "(" + after
	}
	hi := "+"
	if end, ok := successor(prefix); ok {
		hi = "(" + end
	}
	f, err := redis.Values(s.eval(ctx, listScript, false, []string{s.prefix + "index:" + kind}, lo, hi, max(limit, 0), s.prefix))
	if err != nil {
		return nil, fmt.Errorf("redisstore: list %s: %w", prefix, err)
	}
	out := make([]store.Item, 0, len(f)/4)
	for i := 0; i+3 < len(f); i += 4 {
		k, _ := f[i].([]byte)
		it, err := item(string(k), f[i+1], f[i+2], f[i+3])
		if err != nil {
			return nil, fmt.Errorf("redisstore: list %s: %s: %w", prefix, k, err)
		}
		out = append(out, it)
	}
	return out, nil
}

// successor returns the least string greater than every string starting with prefix, and false
// when there is none (prefix is all 0xff bytes).
func successor(prefix string) (string, bool) {
	b := []byte(prefix)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1]), true
		}
	}
	return "", false
}
