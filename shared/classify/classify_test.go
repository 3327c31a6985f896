package classify

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/gomodule/redigo/redis"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/livepack/livepack/shared/eventkey"
	"github.com/livepack/livepack/shared/intake"
	"github.com/livepack/livepack/shared/liveapi"
	"github.com/livepack/livepack/shared/notify"
	"github.com/livepack/livepack/shared/policy"
	"github.com/livepack/livepack/shared/quota"
	"github.com/livepack/livepack/shared/redisconn"
	"github.com/livepack/livepack/shared/store"
)

func api(status int, code string) error {
	return fmt.Errorf("apply: write: %w", &liveapi.Error{Action: "AddLiveStreamPackageConfig", Status: status, Code: code, RequestID: "r"})
}

// redisReplyErr is a server reply as the Redis client returns it.
func redisReplyErr(s string) error {
	return fmt.Errorf("idempotency: redis acquire k: %w", redis.Error(s))
}

// TestTable: every row of the table is exercised by at least one real error and yields its
// class, and errors wrapped or joined keep their class.
func TestTable(t *testing.T) {
	var syntax error
	{
		var v any
		syntax = json.Unmarshal([]byte("{"), &v)
	}
	var typeErr error
	{
		var v struct{ A int }
		typeErr = json.Unmarshal([]byte(`{"A":"x"}`), &v)
	}
	_, b64 := base64.StdEncoding.DecodeString("!!")
	dialErr := &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "redis"}}

	tests := []struct {
		name string
		err  error
		want Class
	}{
		{"marked", fmt.Errorf("sink: %w", ErrMisconfigured), Misconfig},
		{"forbidden", api(401, "Forbidden"), Misconfig},
		{"forbidden ram", api(403, "Forbidden.RAM"), Misconfig},
		{"bad key id", api(404, "InvalidAccessKeyId.NotFound"), Misconfig},
		{"inactive key", api(400, "InvalidAccessKeyId.Inactive"), Misconfig},
		{"bad signature", api(400, "SignatureDoesNotMatch"), Misconfig},
		{"sts token", api(400, "InvalidSecurityToken.Expired"), Misconfig},
		{"live not enabled", api(400, "InvalidIdentity.ServiceDisabled"), Misconfig},
		{"clock", api(400, "InvalidTimeStamp.Expired"), Misconfig},
		{"redis password", fmt.Errorf("quota: redis: %w", redisReplyErr("NOAUTH Authentication required.")), Misconfig},
		{"redis acl", redisReplyErr("WRONGPASS invalid username-password pair"), Misconfig},

		{"marked poison", fmt.Errorf("handler: %w: intake: AddLiveDomain event e1 has no requestParameters.DomainName", ErrPoison), Poison},
		{"unrecognized event", fmt.Errorf("handler: %w", intake.ErrUnrecognized), Poison},
		{"undecodable event", fmt.Errorf("handler: %w: %w", ErrPoison, fmt.Errorf("intake: %w", syntax)), Poison},
		// Only an event is poison: livepack's own records and the API's answers that fail to
		// decode are a fault to retry (a partial read, a version skew), never a reason to drop.
		{"json syntax of a stored record", fmt.Errorf("outbox: open intent: %w", syntax), Retry},
		{"json types of an API answer", typeErr, Retry},
		{"base64 of a stored record", b64, Retry},
		{"store conflict past retries", fmt.Errorf("store: k: too many concurrent writers: %w", store.ErrConflict), Retry},
		{"payload mismatch", fmt.Errorf("apply: k: %w", eventkey.ErrPayloadMismatch), Poison},

		{"not ready", fmt.Errorf("domain x: %w", ErrDomainNotReady), Retry},
		{"configuring", api(400, "InvalidDomain.Configuring"), Retry},
		{"quota", fmt.Errorf("liveapi: Add: %w", quota.ErrExhausted), Retry},
		{"in progress", eventkey.ErrInProgress, Retry},
		{"fenced", fmt.Errorf("put: %w", eventkey.ErrFenced), Retry},
		{"throttling", api(400, "Throttling"), Retry},
		{"throttling user", api(403, "Throttling.User"), Retry},
		{"503", api(503, "ServiceUnavailable"), Retry},
		{"500", api(500, "InternalError"), Retry},
		{"domain config failed", api(400, "DomainConfigFailed"), Retry},
		{"nonce", api(400, "SignatureNonceUsed"), Retry},
		{"network", &liveapi.Error{Action: "A", Code: liveapi.CodeNetwork, Err: syscall.ECONNRESET}, Retry},
		{"other 5xx", api(502, "BadGateway"), Retry},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), Retry},
		{"cancelled", context.Canceled, Retry},
		{"redis unreachable", fmt.Errorf("liveapi: Add: quota: redis: %w", dialErr), Retry},
		{"connection refused", fmt.Errorf("idempotency: redis put: %w", syscall.ECONNREFUSED), Retry},
		{"eof", fmt.Errorf("idempotency: redis acquire k: %w", io.EOF), Retry},
		{"pool exhausted", redis.ErrPoolExhausted, Retry},
		{"closed", fmt.Errorf("idempotency: redis put: %w", redisconn.ErrClosed), Retry},
		{"redis loading", redisReplyErr("LOADING Redis is loading the dataset in memory"), Retry},
		{"redis readonly", redisReplyErr("READONLY You can't write against a read only replica."), Retry},
		{"bbolt locked", fmt.Errorf("idempotency: file store: %w", bolterrors.ErrTimeout), Retry},

		{"config conflicts", api(400, "ConfigConflicts"), Terminal},
		{"domain not found", api(404, "InvalidDomain.NotFound"), Terminal},
		{"config not found", api(400, "CodeConfigNotFound"), Terminal},
		{"config exists", api(400, "ConfigAlreadyExists"), Terminal},
		{"code config exists", api(400, "CodeConfigAlreadyExists"), Terminal},
		{"missing param", api(400, "MissingParam"), Terminal},
		{"invalid params", api(400, "InvalidParams"), Terminal},
		{"invalid protocol", api(400, "InvalidProtocol"), Terminal},
		{"invalid segment num", api(400, "InvalidSegmentNum"), Terminal},
		{"invalid segment duration", api(400, "InvalidSegmentDuration"), Terminal},
		{"invalid part duration", api(400, "InvalidPartDuration"), Terminal},
		{"illegal operation", api(403, "IllegalOperation"), Terminal},
		{"other 4xx", api(400, "SomethingNew"), Terminal},
		{"invalid policy", &policy.Invalid{Errors: []policy.FieldError{{Field: "Protocol", Code: "InvalidProtocol"}}}, Terminal},
		{"sink refused", fmt.Errorf("notify: 400: %w", notify.ErrPermanent), Terminal},

		{"unknown", errors.New("something nobody anticipated"), Retry},
		// Joined causes: the worst wins, a wrong key is never hidden behind a retry.
		{"joined", errors.Join(api(503, "ServiceUnavailable"), api(401, "Forbidden")), Misconfig},
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Of(tt.err); got != tt.want {
				t.Fatalf("Of(%v) = %s (row %q), want %s", tt.err, got, RowOf(tt.err), tt.want)
			}
		})
		covered[RowOf(tt.err)] = true
	}
	for _, r := range Table {
		if !covered[r.Name] {
			t.Errorf("no test exercises the row %q", r.Name)
		}
	}
	if Of(nil) != 0 || RowOf(nil) != "" {
		t.Error("nil has a class")
	}
}

func TestClassNames(t *testing.T) {
	for c, want := range map[Class]string{Retry: "retry", Terminal: "terminal", Poison: "poison", Misconfig: "misconfiguration", 0: "unknown"} {
		if c.String() != want {
			t.Errorf("%d: %q", c, c.String())
		}
	}
}

// TestClientRetriesAgreeWithTable: every API error the client retries in place is one the
// table classifies as retry, and every terminal code of the table (ConfigConflicts among them)
// is never retried in place.
func TestClientRetriesAgreeWithTable(t *testing.T) {
	for _, code := range []string{"Throttling", "Throttling.User", "Throttling.Api", "ServiceUnavailable", "InternalError", "InternalErr",
		"DomainConfigFailed", liveapi.CodeNetwork, "ConfigConflicts", "InvalidDomain.NotFound", "CodeConfigNotFound", "ConfigAlreadyExists",
		"MissingParam", "InvalidParams", "IllegalOperation", "Forbidden", "SignatureDoesNotMatch"} {
		err := &liveapi.Error{Code: code, Status: 400}
		if liveapi.IsRetryable(err) && Of(err) != Retry {
			t.Errorf("%s: the client retries it in place, the table says %s", code, Of(err))
		}
		if Of(err) == Terminal && liveapi.IsRetryable(err) {
			t.Errorf("%s: terminal in the table, retried by the client", code)
		}
	}
}
