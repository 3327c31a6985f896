// Package webhooksig signs and verifies Standard Webhooks messages: the CMS webhook livepack
// receives and the notices it sends to generic webhook sinks. It adds what the reference
// library lacks: secret rotation (several secrets, any one of which verifies), an injectable
// clock for the 5-minute tolerance, and errors that say what is wrong without showing a secret.
//
// See https://www.standardwebhooks.com/
package webhooksig

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// Tolerance is how far webhook-timestamp may be from the verifier's clock, either way. It
// matches the reference library, so a sender tested against it is accepted here.
const Tolerance = 5 * time.Minute

// Errors Verify wraps, so callers (the webhook's 401 body, logs) can branch on the cause. They
// are the reference library's sentinels, so code written against it keeps working.
var (
	ErrMissingHeaders = standardwebhooks.ErrRequiredHeaders
	ErrInvalidHeaders = standardwebhooks.ErrInvalidHeaders
	ErrNoMatch        = standardwebhooks.ErrNoMatchingSignature
	ErrTooOld         = standardwebhooks.ErrMessageTooOld
	ErrTooNew         = standardwebhooks.ErrMessageTooNew
)

// Verifier checks signatures against one or more secrets. It is safe for concurrent use.
//
// The timestamp tolerance is checked here against an injectable clock, because the library's
// Verify reads time.Now directly and so cannot be tested at the exact boundary or driven by a
// host's clock; the signature itself is checked by the library (VerifyIgnoringTimestamp).
type Verifier struct {
	hooks []*standardwebhooks.Webhook
	now   func() time.Time
}

// Option adjusts a Verifier.
type Option func(*Verifier)

// WithClock sets the clock the timestamp tolerance is measured against, so tests and hosts
// with their own notion of time get deterministic answers. The default is time.Now.
func WithClock(now func() time.Time) Option { return func(v *Verifier) { v.now = now } }

// NewVerifier parses space-separated `whsec_<base64>` secrets, so a secret can be rotated by
// listing the new one beside the old. Errors name the secret's position, never its value,
// since they end up in logs.
func NewVerifier(secrets string, opts ...Option) (*Verifier, error) {
	fields := strings.Fields(secrets)
	if len(fields) == 0 {
		return nil, errors.New("no secret given")
	}
	v := &Verifier{now: time.Now}
	for i, s := range fields {
		key, err := decode(s)
		if err != nil {
			return nil, fmt.Errorf("secret %d of %d: %w", i+1, len(fields), err)
		}
		wh, _ := standardwebhooks.NewWebhookRaw(key) // never fails: the key is already decoded
		v.hooks = append(v.hooks, wh)
	}
	for _, o := range opts {
		o(v)
	}
	return v, nil
}

// decode returns a secret's key bytes. Its errors never include the secret.
func decode(secret string) ([]byte, error) {
	b64, ok := strings.CutPrefix(secret, "whsec_")
	if !ok || b64 == "" {
		return nil, errors.New(`want the Standard Webhooks form "whsec_<base64>"`)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(key) == 0 {
		return nil, errors.New("the part after whsec_ is not valid base64")
	}
	return key, nil
}

// Verify checks the webhook-id, webhook-timestamp and webhook-signature headers against body.
// A stale or future timestamp is reported as such, so a sender can fix its clock; a timestamp
// exactly Tolerance away is still accepted, as in the reference library.
func (v *Verifier) Verify(h http.Header, body []byte) error {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	var missing []string
	for _, kv := range [][2]string{{"webhook-id", id}, {"webhook-timestamp", ts}, {"webhook-signature", sigs}} {
		if kv[1] == "" {
			missing = append(missing, kv[0])
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing header %s: %w", strings.Join(missing, ", "), ErrMissingHeaders)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("webhook-timestamp is not Unix seconds: %w", ErrInvalidHeaders)
	}
	at, now := time.Unix(sec, 0), v.now()
	switch {
	case now.Sub(at) > Tolerance:
		return fmt.Errorf("webhook-timestamp %d is more than 5 minutes old: %w", sec, ErrTooOld)
	case at.Sub(now) > Tolerance:
		return fmt.Errorf("webhook-timestamp %d is more than 5 minutes ahead: %w", sec, ErrTooNew)
	}
	for _, wh := range v.hooks {
		if wh.VerifyIgnoringTimestamp(body, h) == nil {
			return nil
		}
	}
	return fmt.Errorf("no signature matches a configured secret (wrong secret, or the body was changed): %w", ErrNoMatch)
}

// Sign returns the three Standard Webhooks headers for body, signed with secret, so a
// receiver can check both origin and freshness and deduplicate on id. It uses the reference
// library, so livepack's signatures are the standard's by construction.
func Sign(secret, id string, ts time.Time, body []byte) (http.Header, error) {
	key, err := decode(secret)
	if err != nil {
		return nil, err
	}
	if id == "" {
		return nil, errors.New("webhook id is empty: receivers deduplicate on it")
	}
	wh, _ := standardwebhooks.NewWebhookRaw(key) // never fails: the key is already decoded
	sig, err := wh.Sign(id, ts, body)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	h := http.Header{}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	h.Set("webhook-signature", sig)
	return h, nil
}
