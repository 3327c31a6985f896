package liveapi

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// CodeNetwork is the Code of an Error that never reached the API (connection refused, reset,
// timeout): no HTTP status, no RequestId.
const CodeNetwork = "NetworkError"

// Sentinels callers branch on with errors.Is.
var (
	// ErrConfigExists: Add met a config already at the target (a concurrent writer won the
	// race); the caller re-plans from a fresh Describe.
	ErrConfigExists = errors.New("liveapi: package config already exists")
	// ErrNotFound: the domain or the config does not exist.
	ErrNotFound = errors.New("liveapi: not found")
)

// Error is a failed Live API call, as the API reported it.
type Error struct {
	Action    string
	Code      string
	Status    int
	RequestID string
	Message   string
	// RetryAfter is the throttling hint the API sent (x-ratelimit-user* TimeLeft), if any.
	RetryAfter time.Duration
	// Err is the transport error of a call that got no answer.
	Err error
}

// Error reports the action, status, code and RequestId: what support asks for.
func (e *Error) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("liveapi: %s: %s: %s", e.Action, e.Code, e.Message)
	}
	return fmt.Sprintf("liveapi: %s: %d %s (RequestId %s): %s", e.Action, e.Status, e.Code, e.RequestID, e.Message)
}

// Unwrap exposes the transport error, so context deadlines stay visible to errors.Is.
func (e *Error) Unwrap() error { return e.Err }

// Is maps the API's codes onto the sentinels: the codes differ by action, the meaning does not.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrConfigExists:
		return e.Code == "ConfigAlreadyExists"
	case ErrNotFound:
		return e.Status == 404 || strings.HasSuffix(e.Code, ".NotFound") || strings.HasSuffix(e.Code, "NotFound") || e.Code == "CodeConfigNotFound"
	}
	return false
}

// retryableCodes are the API codes worth another attempt: throttling, and the server-side
// failures the API page tells callers to retry.
var retryableCodes = map[string]bool{
	"Throttling": true, "Throttling.User": true, "Throttling.Api": true,
	"ServiceUnavailable": true, "InternalError": true, "InternalErr": true,
	"DomainConfigFailed": true, CodeNetwork: true,
}

// IsRetryable reports whether err is transient: throttling, a 5xx, the API's own "try again"
// codes, or a network failure. Validation errors, not-found and permission errors are
// terminal: retrying cannot change their answer. A cancelled or expired context is terminal
// too: the caller has no time left.
func IsRetryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	return retryableCodes[e.Code] || e.Status >= 500
}

// IsThrottled reports whether the API refused err's call for quota.
func IsThrottled(err error) bool {
	var e *Error
	return errors.As(err, &e) && strings.HasPrefix(e.Code, "Throttling")
}
