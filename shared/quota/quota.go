package quota

import "errors"

// ErrExhausted: the quota has no call to spare before the caller's deadline. Webhooks answer it
// with 429 and Retry-After.
var ErrExhausted = errors.New("quota: exhausted before the deadline")
