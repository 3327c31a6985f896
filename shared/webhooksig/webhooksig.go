// Package webhooksig signs and verifies Standard Webhooks messages: the CMS webhook livepack
// receives and the notices it sends to generic webhook sinks. It wraps the reference library
// (constant-time comparison, 5-minute timestamp tolerance) and adds secret rotation: several
// secrets, any one of which verifies.
//
// See https://www.standardwebhooks.com/
package webhooksig

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// Errors Verify wraps, for callers that branch on the cause.
var (
	ErrMissingHeaders = standardwebhooks.ErrRequiredHeaders
	ErrNoMatch        = standardwebhooks.ErrNoMatchingSignature
	ErrTooOld         = standardwebhooks.ErrMessageTooOld
	ErrTooNew         = standardwebhooks.ErrMessageTooNew
)

// Verifier checks signatures against one or more secrets.
type Verifier struct {
	hooks []*standardwebhooks.Webhook
}

// NewVerifier parses space-separated `whsec_<base64>` secrets. Errors name the secret's
// position, never its value.
func NewVerifier(secrets string) (*Verifier, error) {
	fields := strings.Fields(secrets)
	if len(fields) == 0 {
		return nil, errors.New("no secret given")
	}
	v := &Verifier{}
	for i, s := range fields {
		wh, err := parse(s)
		if err != nil {
			return nil, fmt.Errorf("secret %d of %d: %w", i+1, len(fields), err)
		}
		v.hooks = append(v.hooks, wh)
	}
	return v, nil
}

func parse(secret string) (*standardwebhooks.Webhook, error) {
	if !strings.HasPrefix(secret, "whsec_") || len(secret) <= len("whsec_") {
		return nil, errors.New(`want the Standard Webhooks form "whsec_<base64>"`)
	}
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return nil, errors.New("the part after whsec_ is not valid base64")
	}
	return wh, nil
}

// Verify checks the webhook-id, webhook-timestamp and webhook-signature headers against body.
// A stale or future timestamp is reported as such, so a sender can fix its clock.
func (v *Verifier) Verify(h http.Header, body []byte) error {
	if h.Get("webhook-id") == "" || h.Get("webhook-timestamp") == "" || h.Get("webhook-signature") == "" {
		return fmt.Errorf("webhook-id, webhook-timestamp and webhook-signature are required: %w", ErrMissingHeaders)
	}
	var first error
	for _, wh := range v.hooks {
		err := wh.Verify(body, h)
		if err == nil {
			return nil
		}
		if first == nil || !errors.Is(err, ErrNoMatch) {
			first = err
		}
	}
	switch {
	case errors.Is(first, ErrTooOld):
		return fmt.Errorf("webhook-timestamp %s is more than 5 minutes old: %w", h.Get("webhook-timestamp"), ErrTooOld)
	case errors.Is(first, ErrTooNew):
		return fmt.Errorf("webhook-timestamp %s is more than 5 minutes ahead: %w", h.Get("webhook-timestamp"), ErrTooNew)
	case errors.Is(first, ErrNoMatch):
		return fmt.Errorf("no signature matches a configured secret: %w", ErrNoMatch)
	}
	return fmt.Errorf("malformed signature headers: %w", first)
}

// Sign returns the three Standard Webhooks headers for body, signed with secret.
func Sign(secret, id string, ts time.Time, body []byte) (http.Header, error) {
	wh, err := parse(secret)
	if err != nil {
		return nil, err
	}
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
