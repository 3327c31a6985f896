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
if cur[1] == 'COMPLETED' then return {'completed', cur[4], cur[3]} end
if tonumber(cur[3]) > tonumber(ARGV[3]) then return {'inprogress'} end
redis.call('HSET', KEYS[1], 'lease', ARGV[2])
return {'takeover', cur[4], cur[3]}
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
	if len(res) < 3 {
		return nil, fmt.Errorf("idempotency: redis acquire %s: unexpected reply %q", key, res)
	}
	rec, err := decodeRecord(res[1], res[2])
	if err != nil {
		return nil, fmt.Errorf("idempotency: redis record %s: %w", key, err)
	}
	return &rec, nil
}

// decodeRecord reads a record's JSON; the hash's lease field is the authoritative lease (a
// takeover rewrites only that field, not the JSON).
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
		if err != nil {
			return nil, fmt.Errorf("idempotency: redis pending %s: %w", it.Val(), err)
		}
		status, _ := v[0].(string)
		leaseStr, _ := v[1].(string)
		js, _ := v[2].(string)
		if status != string(Applied) {
			continue // another status, or a key that expired since SCAN saw it
		}
		if lease, err := strconv.ParseInt(leaseStr, 10, 64); err == nil && lease > now {
			continue
		}
		if rec, err := decodeRecord(js, leaseStr); err == nil {
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
