package idempotency

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/livepack/livepack/shared/redisconn"
)

// Redis is a Store shared by every instance that uses the same Redis: the store that makes
// idempotency hold across a scaled-out deployment. Each record is a hash (status, payload
// hash, lease in Unix ms, the record's JSON) whose TTL is the record's ExpiresAt, so expiry
// needs no sweeper. Acquire is one Lua script, atomic in Redis.
type Redis struct {
	rdb    *redisconn.Pool
	prefix string
	now    func() time.Time
	owned  bool
}

// NewRedis returns a store keeping records under prefix in rdb. Close does not close rdb.
func NewRedis(rdb *redisconn.Pool, prefix string) *Redis {
	return &Redis{rdb: rdb, prefix: prefix, now: time.Now}
}

// acquireScript is decide() in Lua; see Store.Acquire for the rule.
// KEYS[2] is the key's planned notices (a hash: id → notice JSON), returned after the record.
var acquireScript = redis.NewScript(2, `
local cur = redis.call('HMGET', KEYS[1], 'status', 'hash', 'lease', 'rec')
if not cur[1] then
  redis.call('HSET', KEYS[1], 'status', 'INPROGRESS', 'hash', ARGV[1], 'lease', ARGV[2], 'rec', ARGV[4], 'token', ARGV[6])
  redis.call('PEXPIREAT', KEYS[1], ARGV[5])
  redis.call('DEL', KEYS[2])
  return {'fresh'}
end
if cur[2] ~= ARGV[1] then return {'mismatch'} end
if cur[1] == 'COMPLETED' then return {'completed', cur[4], cur[3]} end
if tonumber(cur[3]) > tonumber(ARGV[3]) then return {'inprogress'} end
redis.call('HSET', KEYS[1], 'lease', ARGV[2], 'token', ARGV[6])
local out = {'takeover', cur[4], cur[3]}
for _, v in ipairs(redis.call('HVALS', KEYS[2])) do table.insert(out, v) end
return out
`)

// Acquire implements Store.
func (r *Redis) Acquire(ctx context.Context, key, hash string, leaseUntil time.Time) (string, *Record, error) {
	now := r.now()
	token := NewToken()
	fresh := withExpiry(Record{Key: key, Status: InProgress, PayloadHash: hash, LeaseUntil: leaseUntil, Token: token}, now)
	js, err := json.Marshal(fresh)
	if err != nil {
		return "", nil, err
	}
	res, err := redis.Strings(r.rdb.Eval(ctx, acquireScript, r.prefix+key, r.plannedKey(key), hash, leaseUntil.UnixMilli(), now.UnixMilli(), js, fresh.ExpiresAt.UnixMilli(), token))
	if err != nil {
		return "", nil, fmt.Errorf("idempotency: redis acquire %s: %w", key, err)
	}
	switch res[0] {
	case "fresh":
		return token, nil, nil
	case "mismatch":
		return "", nil, ErrPayloadMismatch
	case "inprogress":
		return "", nil, ErrInProgress
	}
	if len(res) < 3 {
		return "", nil, fmt.Errorf("idempotency: redis acquire %s: unexpected reply %q", key, res)
	}
	rec, err := decodeRecord(res[1], res[2])
	if err != nil {
		return "", nil, fmt.Errorf("idempotency: redis record %s: %w", key, err)
	}
	for _, js := range res[3:] {
		var pn PendingNotice
		if err := json.Unmarshal([]byte(js), &pn); err != nil {
			return "", nil, fmt.Errorf("idempotency: redis planned notice of %s: %w", key, err)
		}
		rec.Pending = append(rec.Pending, pn)
	}
	if res[0] == "completed" {
		token = ""
	}
	return token, &rec, nil
}

// decodeRecord reads a record's JSON; the hash's lease field is the authoritative lease (a
// takeover or a renewal rewrites only that field, not the JSON).
func decodeRecord(js, lease string) (Record, error) {
	var rec Record
	if err := json.Unmarshal([]byte(js), &rec); err != nil {
		return rec, err
	}
	if ms, err := strconv.ParseInt(lease, 10, 64); err == nil && ms != rec.LeaseUntil.UnixMilli() {
		rec.LeaseUntil = time.UnixMilli(ms)
	}
	return rec, nil
}

// fence is the token check every holder's write starts with (ARGV[1]: the token, "" for an
// unconditional write).
const fence = `
if ARGV[1] ~= '' and redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 'fenced' end
`

var putScript = redis.NewScript(3, fence+`
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'hash', ARGV[3], 'lease', ARGV[4], 'rec', ARGV[5], 'token', ARGV[1])
redis.call('PEXPIREAT', KEYS[1], ARGV[6])
redis.call('DEL', KEYS[3])
if ARGV[2] == 'APPLIED' then
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[7])
else
  redis.call('ZREM', KEYS[2], ARGV[7])
end
return 'ok'
`)

var renewScript = redis.NewScript(1, fence+`
redis.call('HSET', KEYS[1], 'lease', ARGV[2])
return 'ok'
`)

var planScript = redis.NewScript(2, fence+`
if ARGV[1] == '' then return 'fenced' end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[2], math.max(redis.call('PTTL', KEYS[1]), 1))
return 'ok'
`)

var deleteScript = redis.NewScript(3, fence+`
redis.call('DEL', KEYS[1], KEYS[3])
redis.call('ZREM', KEYS[2], ARGV[2])
return 'ok'
`)

func fencedReply(res string, err error, what, key string) error {
	if err != nil {
		return fmt.Errorf("idempotency: redis %s %s: %w", what, key, err)
	}
	if res == "fenced" {
		return fmt.Errorf("idempotency: redis %s %s: %w", what, key, ErrFenced)
	}
	return nil
}

// Put implements Store.
func (r *Redis) Put(ctx context.Context, rec Record) error {
	rec = withExpiry(rec, r.now())
	js, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	res, err := redis.String(r.rdb.Eval(ctx, putScript, r.prefix+rec.Key, r.index(), r.plannedKey(rec.Key), rec.Token, string(rec.Status),
		rec.PayloadHash, rec.LeaseUntil.UnixMilli(), js, rec.ExpiresAt.UnixMilli(), rec.Key))
	return fencedReply(res, err, "put", rec.Key)
}

func (r *Redis) plannedKey(key string) string { return r.prefix + "planned:" + key }

// Plan implements Store: one HSET of one notice.
func (r *Redis) Plan(ctx context.Context, key, token string, pn PendingNotice) error {
	js, err := json.Marshal(pn)
	if err != nil {
		return err
	}
	res, err := redis.String(r.rdb.Eval(ctx, planScript, r.prefix+key, r.plannedKey(key), token, pn.ID, js))
	return fencedReply(res, err, "plan", key)
}

// Renew implements Store.
func (r *Redis) Renew(ctx context.Context, key, token string, leaseUntil time.Time) error {
	if token == "" {
		return ErrFenced
	}
	res, err := redis.String(r.rdb.Eval(ctx, renewScript, r.prefix+key, token, leaseUntil.UnixMilli()))
	return fencedReply(res, err, "renew", key)
}

// Delete implements Store.
func (r *Redis) Delete(ctx context.Context, key, token string) error {
	res, err := redis.String(r.rdb.Eval(ctx, deleteScript, r.prefix+key, r.index(), r.plannedKey(key), token, key))
	return fencedReply(res, err, "delete", key)
}

// claimScript is claim() in Lua: the value is "delivered" or the claimer's token, the key's
// TTL the mark's end.
var claimScript = redis.NewScript(1, `
local v = redis.call('GET', KEYS[1])
if v == 'delivered' then return 'delivered' end
if v and v ~= ARGV[1] then return 'inflight' end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 'claimed'
`)

var settleScript = redis.NewScript(2, `
if ARGV[2] == '1' then
  local last = redis.call('GET', KEYS[2])
  if last and last ~= ARGV[4] then redis.call('DEL', ARGV[5] .. last) end
  redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[3])
  redis.call('SET', KEYS[1], 'delivered', 'PX', ARGV[3])
  return 'ok'
end
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 'ok'
`)

func (r *Redis) markKey(id, sink string) string { return r.prefix + "delivered:" + sink + ":" + id }

// ClaimNotice implements Store.
func (r *Redis) ClaimNotice(ctx context.Context, id, sink, token string, until time.Time) (Claim, error) {
	ms := max(until.Sub(r.now()).Milliseconds(), 1)
	res, err := redis.String(r.rdb.Eval(ctx, claimScript, r.markKey(id, sink), token, ms))
	if err != nil {
		return 0, fmt.Errorf("idempotency: redis claim notice %s: %w", id, err)
	}
	switch res {
	case "delivered":
		return AlreadyDelivered, nil
	case "inflight":
		return InFlight, nil
	}
	return Claimed, nil
}

// SettleNotice implements Store.
// The previous change's mark is named from the last-change key's value inside the script:
// both carry the namespace's hash tag, so they live in the script's slot.
func (r *Redis) SettleNotice(ctx context.Context, id, target, sink, token string, delivered bool) error {
	d := "0"
	if delivered {
		d = "1"
	}
	if _, err := r.rdb.Eval(ctx, settleScript, r.markKey(id, sink), r.prefix+"last:"+sink+":"+target, token, d,
		DeliveredTTL.Milliseconds(), id, r.markKey("", sink)); err != nil {
		return fmt.Errorf("idempotency: redis settle notice %s: %w", id, err)
	}
	return nil
}

// index is the namespace's sorted set of Applied keys (score: lease end in Unix ms): Pending
// reads it instead of scanning the keyspace, which a Redis Cluster cannot do in one call.
func (r *Redis) index() string { return r.prefix + "pending" }

// Pending implements Store from the index; members whose record expired are dropped from it.
func (r *Redis) Pending(ctx context.Context) ([]Record, error) {
	now := r.now().UnixMilli()
	keys, err := redis.Strings(r.rdb.Do(ctx, "ZRANGEBYSCORE", r.index(), "-inf", now, "LIMIT", 0, maxPending))
	if err != nil {
		return nil, fmt.Errorf("idempotency: redis pending: %w", err)
	}
	var out []Record
	for _, key := range keys {
		v, err := redis.Strings(r.rdb.Do(ctx, "HMGET", r.prefix+key, "status", "lease", "rec"))
		if err != nil {
			return nil, fmt.Errorf("idempotency: redis pending %s: %w", key, err)
		}
		status, leaseStr, js := v[0], v[1], v[2]
		if status != string(Applied) {
			if status == "" { // expired since it was indexed
				_, _ = r.rdb.Do(ctx, "ZREM", r.index(), key)
			}
			continue
		}
		if lease, err := strconv.ParseInt(leaseStr, 10, 64); err == nil && lease > now {
			continue
		}
		if rec, err := decodeRecord(js, leaseStr); err == nil {
			out = append(out, rec)
		}
	}
	return out, nil
}

// Close implements Store; it closes the client only when Open created it.
func (r *Redis) Close() error {
	if r.owned {
		return r.rdb.Close()
	}
	return nil
}
