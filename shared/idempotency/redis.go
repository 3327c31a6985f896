package idempotency

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a Store shared by every instance that uses the same Redis: the store that makes
// idempotency hold across a scaled-out deployment. Each record is a hash (status, payload
// hash, lease in Unix ms, the record's JSON) whose TTL is the record's ExpiresAt, so expiry
// needs no sweeper. Acquire is one Lua script, atomic in Redis.
type Redis struct {
	rdb    redis.UniversalClient
	prefix string
	now    func() time.Time
	owned  bool
}

// NewRedis returns a store keeping records under prefix in rdb. Close does not close rdb.
func NewRedis(rdb redis.UniversalClient, prefix string) *Redis {
	return &Redis{rdb: rdb, prefix: prefix, now: time.Now}
}

// acquireScript is decide() in Lua; see Store.Acquire for the rule.
var acquireScript = redis.NewScript(`
local cur = redis.call('HMGET', KEYS[1], 'status', 'hash', 'lease', 'rec')
if not cur[1] then
  redis.call('HSET', KEYS[1], 'status', 'INPROGRESS', 'hash', ARGV[1], 'lease', ARGV[2], 'rec', ARGV[4])
  redis.call('PEXPIREAT', KEYS[1], ARGV[5])
  return {'fresh'}
end
if cur[2] ~= ARGV[1] then return {'mismatch'} end
if cur[1] == 'COMPLETED' then return {'completed', cur[4]} end
if tonumber(cur[3]) > tonumber(ARGV[3]) then return {'inprogress'} end
redis.call('HSET', KEYS[1], 'lease', ARGV[2])
return {'takeover', cur[4]}
`)

// Acquire implements Store.
func (r *Redis) Acquire(ctx context.Context, key, hash string, leaseUntil time.Time) (*Record, error) {
	now := r.now()
	fresh := withExpiry(Record{Key: key, Status: InProgress, PayloadHash: hash, LeaseUntil: leaseUntil}, now)
	js, err := json.Marshal(fresh)
	if err != nil {
		return nil, err
	}
	res, err := acquireScript.Run(ctx, r.rdb, []string{r.prefix + key}, hash, leaseUntil.UnixMilli(), now.UnixMilli(), js, fresh.ExpiresAt.UnixMilli()).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("idempotency: redis acquire %s: %w", key, err)
	}
	switch res[0] {
	case "fresh":
		return nil, nil
	case "mismatch":
		return nil, ErrPayloadMismatch
	case "inprogress":
		return nil, ErrInProgress
	}
	var rec Record
	if err := json.Unmarshal([]byte(res[1]), &rec); err != nil {
		return nil, fmt.Errorf("idempotency: redis record %s: %w", key, err)
	}
	return &rec, nil
}

// Put implements Store.
func (r *Redis) Put(ctx context.Context, rec Record) error {
	rec = withExpiry(rec, r.now())
	js, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	k := r.prefix + rec.Key
	_, err = r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, k, "status", string(rec.Status), "hash", rec.PayloadHash, "lease", rec.LeaseUntil.UnixMilli(), "rec", js)
		p.PExpireAt(ctx, k, rec.ExpiresAt)
		return nil
	})
	if err != nil {
		return fmt.Errorf("idempotency: redis put %s: %w", rec.Key, err)
	}
	return nil
}

// Delete implements Store.
func (r *Redis) Delete(ctx context.Context, key string) error {
	if err := r.rdb.Del(ctx, r.prefix+key).Err(); err != nil {
		return fmt.Errorf("idempotency: redis delete %s: %w", key, err)
	}
	return nil
}

// Pending implements Store with SCAN, which never blocks Redis the way KEYS would.
func (r *Redis) Pending(ctx context.Context) ([]Record, error) {
	now := r.now().UnixMilli()
	var out []Record
	it := r.rdb.Scan(ctx, 0, r.prefix+"*", 200).Iterator()
	for it.Next(ctx) {
		v, err := r.rdb.HMGet(ctx, it.Val(), "status", "lease", "rec").Result()
		if err != nil || len(v) != 3 || v[0] != string(Applied) {
			continue
		}
		lease, _ := strconv.ParseInt(fmt.Sprint(v[1]), 10, 64)
		if lease > now {
			continue
		}
		var rec Record
		if s, ok := v[2].(string); ok && json.Unmarshal([]byte(s), &rec) == nil {
			out = append(out, rec)
		}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("idempotency: redis pending: %w", err)
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
