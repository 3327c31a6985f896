package idempotency

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/livepack/livepack/shared/redisconn"
)

// In Redis a cursor is three hashes under the store's prefix (so a namespace that changes the
// prefix moves them along, and Pending's scan of the prefix reads them as records of no
// status): the cursor itself (holder, lease in Unix ms, state), its pages (page number → JSON
// list) and its marks (item → mark). Each expires cursorTTL after its last write.
func (r *Redis) cursorKey(name, part string) string { return r.prefix + "cursor:" + part + ":" + name }

var claimCursorScript = redis.NewScript(1, `
local cur = redis.call('HMGET', KEYS[1], 'holder', 'lease', 'state')
if cur[1] and cur[1] ~= '' and cur[1] ~= ARGV[1] and tonumber(cur[2]) > tonumber(ARGV[3]) then
  return {'held', cur[2]}
end
redis.call('HSET', KEYS[1], 'holder', ARGV[1], 'lease', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {'ok', cur[3] or ''}
`)

var saveCursorScript = redis.NewScript(1, `
if redis.call('HGET', KEYS[1], 'holder') ~= ARGV[1] then return 0 end
if ARGV[3] == '0' then
  redis.call('HSET', KEYS[1], 'holder', '', 'lease', '0', 'state', ARGV[2])
else
  redis.call('HSET', KEYS[1], 'lease', ARGV[3], 'state', ARGV[2])
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
`)

func leaseMillis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// ClaimCursor implements Cursors with one Lua script, atomic in Redis.
func (r *Redis) ClaimCursor(ctx context.Context, name, holder string, leaseUntil time.Time) ([]byte, error) {
	res, err := redis.Strings(r.rdb.Eval(ctx, claimCursorScript, r.cursorKey(name, "state"), holder, leaseMillis(leaseUntil),
		r.now().UnixMilli(), cursorTTL.Milliseconds()))
	if err != nil {
		return nil, fmt.Errorf("idempotency: redis cursor %s: %w", name, err)
	}
	if len(res) < 2 {
		return nil, fmt.Errorf("idempotency: redis cursor %s: unexpected reply %q", name, res)
	}
	if res[0] == "held" {
		ms, _ := strconv.ParseInt(res[1], 10, 64)
		return nil, cursorHeld(time.UnixMilli(ms))
	}
	if res[1] == "" {
		return nil, nil
	}
	return []byte(res[1]), nil
}

// SaveCursor implements Cursors; the holder check and the write are one Lua script.
func (r *Redis) SaveCursor(ctx context.Context, name, holder string, state []byte, leaseUntil time.Time) error {
	ok, err := redis.Int(r.rdb.Eval(ctx, saveCursorScript, r.cursorKey(name, "state"), holder, state, leaseMillis(leaseUntil),
		cursorTTL.Milliseconds()))
	if err != nil {
		return fmt.Errorf("idempotency: redis cursor %s: %w", name, err)
	}
	if ok == 0 {
		return ErrCursorLost
	}
	return nil
}

// PutCursorPage implements Cursors.
func (r *Redis) PutCursorPage(ctx context.Context, name string, n int, items []string) error {
	if items == nil {
		items = []string{}
	}
	v, err := jsonList(items)
	if err != nil {
		return err
	}
	k := r.cursorKey(name, "pages")
	_, err = r.rdb.Tx(ctx, redisconn.Cmd{Name: "HSET", Args: []any{k, n, v}},
		redisconn.Cmd{Name: "PEXPIRE", Args: []any{k, cursorTTL.Milliseconds()}})
	if err != nil {
		return fmt.Errorf("idempotency: redis cursor %s page %d: %w", name, n, err)
	}
	return nil
}

// CursorPage implements Cursors.
func (r *Redis) CursorPage(ctx context.Context, name string, n int) ([]string, error) {
	v, err := redis.String(r.rdb.Do(ctx, "HGET", r.cursorKey(name, "pages"), n))
	if errors.Is(err, redis.ErrNil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("idempotency: redis cursor %s page %d: %w", name, n, err)
	}
	items, err := parseList(v)
	if err != nil {
		return nil, fmt.Errorf("idempotency: redis cursor %s page %d: %w", name, n, err)
	}
	return items, nil
}

// DropCursorPages implements Cursors.
func (r *Redis) DropCursorPages(ctx context.Context, name string) error {
	if _, err := r.rdb.Do(ctx, "DEL", r.cursorKey(name, "pages")); err != nil {
		return fmt.Errorf("idempotency: redis cursor %s pages: %w", name, err)
	}
	return nil
}

// CursorMarks implements Cursors with one HMGET.
func (r *Redis) CursorMarks(ctx context.Context, name string, items []string) (map[string]string, error) {
	out := map[string]string{}
	if len(items) == 0 {
		return out, nil
	}
	args := make([]any, 0, len(items)+1)
	args = append(args, r.cursorKey(name, "marks"))
	for _, it := range items {
		args = append(args, it)
	}
	vs, err := redis.Values(r.rdb.Do(ctx, "HMGET", args...))
	if err != nil {
		return nil, fmt.Errorf("idempotency: redis cursor %s marks: %w", name, err)
	}
	for i, v := range vs {
		if b, ok := v.([]byte); ok {
			out[items[i]] = string(b)
		}
	}
	return out, nil
}

// SetCursorMarks implements Cursors in one transaction.
func (r *Redis) SetCursorMarks(ctx context.Context, name string, marks map[string]string) error {
	if len(marks) == 0 {
		return nil
	}
	k := r.cursorKey(name, "marks")
	cmds := make([]redisconn.Cmd, 0, len(marks)+1)
	for it, v := range marks {
		if v == "" {
			cmds = append(cmds, redisconn.Cmd{Name: "HDEL", Args: []any{k, it}})
		} else {
			cmds = append(cmds, redisconn.Cmd{Name: "HSET", Args: []any{k, it, v}})
		}
	}
	cmds = append(cmds, redisconn.Cmd{Name: "PEXPIRE", Args: []any{k, cursorTTL.Milliseconds()}})
	_, err := r.rdb.Tx(ctx, cmds...)
	if err != nil {
		return fmt.Errorf("idempotency: redis cursor %s marks: %w", name, err)
	}
	return nil
}
