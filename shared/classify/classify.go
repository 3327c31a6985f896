// Package classify is livepack's one table of what to do about an error: every error livepack
// can meet (the Live API's codes, HTTP and network failures, the state store's and the quota
// limiter's errors, undecodable events) maps to one of four classes, and the engine, the
// webhook and the hosts all act on that class, so the same failure is never retried on one
// path and dropped on another.
package classify

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/gomodule/redigo/redis"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/livepack/livepack/shared/cursor"
	"github.com/livepack/livepack/shared/eventkey"
	"github.com/livepack/livepack/shared/intake"
	"github.com/livepack/livepack/shared/liveapi"
	"github.com/livepack/livepack/shared/notify"
	"github.com/livepack/livepack/shared/outbox"
	"github.com/livepack/livepack/shared/policy"
	"github.com/livepack/livepack/shared/quota"
	"github.com/livepack/livepack/shared/redisconn"
	"github.com/livepack/livepack/shared/store"
)

// Class is what to do about an error.
type Class int

// The four classes.
const (
	// Retry: a later delivery of the same event can succeed. The key is released and the
	// invocation fails (the webhook answers 503, or 429 for the quota) so the platform delivers
	// it again.
	Retry Class = iota + 1
	// Terminal: this policy cannot succeed as asked; it is reported `failed` and the key
	// completed, so a redelivery replays the result instead of calling the API again.
	Terminal
	// Poison: the event itself can never succeed (it cannot be decoded, or its key was reused
	// for another payload): it is acknowledged, logged at error level and never redelivered.
	Poison
	// Misconfig: livepack's own configuration is wrong (credentials, permissions, the store's
	// password): the invocation fails loudly so alarms fire, and the key is released so the
	// event succeeds once the configuration is fixed.
	Misconfig
)

// String names the class as logs and results show it.
func (c Class) String() string {
	switch c {
	case Retry:
		return "retry"
	case Terminal:
		return "terminal"
	case Poison:
		return "poison"
	case Misconfig:
		return "misconfiguration"
	}
	return "unknown"
}

// ErrDomainNotReady: the domain cannot take configs yet (still configuring, or added so
// recently that Describe does not show it). A later delivery succeeds.
var ErrDomainNotReady = errors.New("the domain is not ready yet (just added or still configuring); retry later")

// ErrPoison marks an event that can never be handled, whatever its cause says: the handler
// wraps every decoding failure of an event in it.
var ErrPoison = errors.New("the event can never be handled")

// ErrMisconfigured marks an error livepack's own configuration causes.
var ErrMisconfigured = errors.New("livepack is misconfigured")

// Row is one line of the table: the errors it matches and their class.
type Row struct {
	// Name describes the errors the row matches.
	Name  string
	Class Class
	Match func(error) bool
}

// apiCode matches Live API errors whose code is one of codes, or starts with a prefix ending
// in ".".
func apiCode(codes ...string) func(error) bool {
	return apiError(func(e *liveapi.Error) bool {
		for _, c := range codes {
			if e.Code == c || (strings.HasSuffix(c, ".") && strings.HasPrefix(e.Code, c)) {
				return true
			}
		}
		return false
	})
}

func apiStatus(lo, hi int) func(error) bool {
	return apiError(func(e *liveapi.Error) bool { return e.Code != liveapi.CodeNetwork && e.Status >= lo && e.Status <= hi })
}

// apiError matches when any Live API error in err's tree satisfies ok: errors.As would stop
// at the first one, and a joined error's later causes count as much as its first.
func apiError(ok func(*liveapi.Error) bool) func(error) bool {
	return func(err error) bool {
		return walk(err, func(e error) bool { ae, is := e.(*liveapi.Error); return is && ok(ae) })
	}
}

// walk reports whether ok holds for err or any error it wraps or joins.
func walk(err error, ok func(error) bool) bool {
	if err == nil {
		return false
	}
	if ok(err) {
		return true
	}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		return walk(u.Unwrap(), ok)
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if walk(e, ok) {
				return true
			}
		}
	}
	return false
}

func is(targets ...error) func(error) bool {
	return func(err error) bool {
		for _, t := range targets {
			if errors.Is(err, t) {
				return true
			}
		}
		return false
	}
}

func redisReply(prefixes ...string) func(error) bool {
	return func(err error) bool {
		return walk(err, func(e error) bool {
			re, ok := e.(redis.Error)
			if !ok {
				return false
			}
			for _, p := range prefixes {
				if strings.HasPrefix(string(re), p) {
					return true
				}
			}
			return false
		})
	}
}

// Table is the classification, first match wins. Misconfiguration comes first: an error that
// joins several causes is as bad as its worst one, and a wrong key must never hide behind a
// retry.
var Table = []Row{
	{"marked misconfigured", Misconfig, is(ErrMisconfigured)},
	{"API: credentials or permission refused (Forbidden*, InvalidAccessKeyId.*, SignatureDoesNotMatch, InvalidSecurityToken.*, IncompleteSignature, NoPermission)",
		Misconfig, apiCode("Forbidden", "Forbidden.", "InvalidAccessKeyId.", "InvalidAccessKeyId", "SignatureDoesNotMatch",
			"InvalidSecurityToken.", "IncompleteSignature", "NoPermission", "InvalidIdentity.ServiceDisabled")},
	{"API: request time refused (InvalidTimeStamp.*: this host's clock is wrong)", Misconfig, apiCode("InvalidTimeStamp.")},
	{"store: Redis refused the credentials (NOAUTH, WRONGPASS, NOPERM)", Misconfig, redisReply("NOAUTH", "WRONGPASS", "NOPERM")},

	{"marked poison (an event that cannot be decoded)", Poison, is(ErrPoison)},
	{"undecodable event (no envelope livepack knows)", Poison, is(intake.ErrUnrecognized)},
	{"key reused with a different payload", Poison, is(eventkey.ErrPayloadMismatch)},

	{"domain not ready (configuring, or too new to be visible)", Retry, is(ErrDomainNotReady)},
	{"API: domain still configuring (InvalidDomain.Configuring)", Retry, apiCode("InvalidDomain.Configuring")},
	{"quota exhausted before the deadline", Retry, is(quota.ErrExhausted)},
	{"store: key in progress elsewhere", Retry, is(eventkey.ErrInProgress)},
	{"store: lease taken over by another run (fenced)", Retry, is(eventkey.ErrFenced, outbox.ErrLost, cursor.ErrLost)},
	{"store: a write raced by too many others", Retry, is(store.ErrConflict)},
	{"API: throttled (Throttling, Throttling.User, Throttling.Api)", Retry, apiCode("Throttling", "Throttling.")},
	{"API: temporary server failure (ServiceUnavailable, InternalError, InternalErr, DomainConfigFailed, SignatureNonceUsed)",
		Retry, apiCode("ServiceUnavailable", "InternalError", "InternalErr", "DomainConfigFailed", "SignatureNonceUsed")},
	{"API: network failure (no answer)", Retry, apiCode(liveapi.CodeNetwork)},
	{"API: any 5xx", Retry, apiStatus(500, 599)},
	{"deadline or cancellation", Retry, is(context.DeadlineExceeded, context.Canceled)},
	{"store or limiter unreachable (network)", Retry, func(err error) bool {
		var ne net.Error
		return errors.As(err, &ne) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
	}},
	{"store or limiter connection lost", Retry, is(io.EOF, io.ErrUnexpectedEOF, net.ErrClosed, redisconn.ErrClosed, redis.ErrPoolExhausted)},
	{"store: Redis busy (LOADING, READONLY, BUSY, TRYAGAIN, CLUSTERDOWN, MASTERDOWN)", Retry,
		redisReply("LOADING", "READONLY", "BUSY", "TRYAGAIN", "CLUSTERDOWN", "MASTERDOWN")},
	{"store: file locked by another process", Retry, is(bolterrors.ErrTimeout)},

	{"API: config conflicts with another (ConfigConflicts)", Terminal, apiCode("ConfigConflicts")},
	{"API: domain or config not found (InvalidDomain.NotFound, CodeConfigNotFound)", Terminal, apiCode("InvalidDomain.NotFound", "CodeConfigNotFound")},
	{"API: config already exists (ConfigAlreadyExists, CodeConfigAlreadyExists)", Terminal, apiCode("ConfigAlreadyExists", "CodeConfigAlreadyExists")},
	{"API: parameter refused (MissingParam, InvalidParams, Invalid*)", Terminal, apiCode("MissingParam", "InvalidParams", "InvalidProtocol",
		"InvalidSegmentNum", "InvalidSegmentDuration", "InvalidPartDuration")},
	{"API: operation not allowed on the domain (IllegalOperation)", Terminal, apiCode("IllegalOperation")},
	{"API: any other 4xx", Terminal, apiStatus(400, 499)},
	{"invalid policy document", Terminal, func(err error) bool { var e *policy.Invalid; return errors.As(err, &e) }},
	{"notice refused by its sink", Terminal, is(notify.ErrPermanent)},
}

// Of classifies err by the first row that matches; nil is not an error and has no class (0).
// An error no row matches is Retry: livepack never drops work it does not understand, and the
// store's expiry bounds how long such an event can be retried.
func Of(err error) Class {
	if err == nil {
		return 0
	}
	for _, r := range Table {
		if r.Match(err) {
			return r.Class
		}
	}
	return Retry
}

// RowOf returns the name of the row that classified err, for logs ("" when none matched).
func RowOf(err error) string {
	if err == nil {
		return ""
	}
	for _, r := range Table {
		if r.Match(err) {
			return r.Name
		}
	}
	return ""
}
