package webhooksig

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

const (
	s1 = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	s2 = "whsec_c2Vjb25kLXNlY3JldC0wMTIzNDU2Nzg5YWJjZGVm"
)

var now = time.Date(2026, 11, 24, 8, 1, 0, 0, time.UTC)

func TestVerify(t *testing.T) {
	v, err := NewVerifier(s1+" "+s2, WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"policies":[]}`)
	sign := func(secret string, at time.Time) http.Header {
		h, err := Sign(secret, "msg_1", at, body)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	with := func(h http.Header, k, val string) http.Header {
		if val == "" {
			h.Del(k)
		} else {
			h.Set(k, val)
		}
		return h
	}
	both := sign(s1, now)
	both.Set("webhook-signature", "v1,AAAA "+sign(s2, now).Get("webhook-signature"))
	tests := []struct {
		name string
		h    http.Header
		body []byte
		want error
	}{
		{"good", sign(s1, now), body, nil},
		{"rotated secret", sign(s2, now), body, nil},
		{"signature list, second matches", both, body, nil},
		{"exactly 5m old", sign(s1, now.Add(-Tolerance)), body, nil},
		{"exactly 5m ahead", sign(s1, now.Add(Tolerance)), body, nil},
		{"5m01s old", sign(s1, now.Add(-Tolerance-time.Second)), body, ErrTooOld},
		{"5m01s ahead", sign(s1, now.Add(Tolerance+time.Second)), body, ErrTooNew},
		{"tampered body", sign(s1, now), []byte(`{"policies":[1]}`), ErrNoMatch},
		{"tampered id", with(sign(s1, now), "webhook-id", "msg_2"), body, ErrNoMatch},
		{"unknown secret", sign("whsec_b3RoZXItc2VjcmV0LTAxMjM0NTY3ODlhYmNkZWY=", now), body, ErrNoMatch},
		{"v1a only", with(sign(s1, now), "webhook-signature", "v1a,AAAA"), body, ErrNoMatch},
		{"bad base64 signature", with(sign(s1, now), "webhook-signature", "v1,!!!"), body, ErrNoMatch},
		{"timestamp not a number", with(sign(s1, now), "webhook-timestamp", "soon"), body, ErrInvalidHeaders},
		{"no id", with(sign(s1, now), "webhook-id", ""), body, ErrMissingHeaders},
		{"no timestamp", with(sign(s1, now), "webhook-timestamp", ""), body, ErrMissingHeaders},
		{"no signature", with(sign(s1, now), "webhook-signature", ""), body, ErrMissingHeaders},
		{"no headers", http.Header{}, body, ErrMissingHeaders},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := v.Verify(tt.h, tt.body)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
			if err != nil && (strings.Contains(err.Error(), s1[6:]) || strings.Contains(err.Error(), s2[6:])) {
				t.Fatal("the error shows a secret")
			}
		})
	}
}

func TestVerifyNamesMissingHeader(t *testing.T) {
	v, _ := NewVerifier(s1)
	h, _ := Sign(s1, "msg_1", time.Now(), nil)
	h.Del("webhook-timestamp")
	if err := v.Verify(h, nil); err == nil || !strings.Contains(err.Error(), "webhook-timestamp") {
		t.Fatalf("Verify = %v, want it to name webhook-timestamp", err)
	}
}

// TestLibraryAgrees checks both directions against the reference library, so livepack's
// signatures and its verifier are the standard's, not a private dialect.
func TestLibraryAgrees(t *testing.T) {
	body := []byte(`{"specversion":"1.0","id":"x"}`)
	for _, secret := range []string{s1, s2} {
		wh, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			t.Fatal(err)
		}
		h, err := Sign(secret, "msg_lib", time.Now(), body)
		if err != nil {
			t.Fatal(err)
		}
		if err := wh.Verify(body, h); err != nil {
			t.Fatalf("the library rejects Sign's headers: %v", err)
		}
		sig, _ := wh.Sign("msg_lib", time.Now(), body)
		h.Set("webhook-signature", sig)
		v, _ := NewVerifier(secret)
		if err := v.Verify(h, body); err != nil {
			t.Fatalf("Verify rejects the library's signature: %v", err)
		}
	}
}

func TestNewVerifierErrorsHideSecrets(t *testing.T) {
	tests := []struct {
		in, position string
	}{
		{"", ""},
		{"   ", ""},
		{"plain-secret-value", "secret 1 of 1"},
		{s1 + " whsec_!!!notbase64", "secret 2 of 2"},
		{"whsec_", "secret 1 of 1"},
		{s1 + " " + s2[6:], "secret 2 of 2"},
	}
	for _, tt := range tests {
		_, err := NewVerifier(tt.in)
		if err == nil {
			t.Fatalf("NewVerifier(%q) accepted", tt.in)
		}
		if !strings.Contains(err.Error(), tt.position) {
			t.Errorf("NewVerifier(%q) = %v, want it to name %q", tt.in, err, tt.position)
		}
		for _, f := range strings.Fields(tt.in) {
			if len(f) > 6 && strings.Contains(err.Error(), f) {
				t.Errorf("error shows a secret: %v", err)
			}
		}
		if strings.Contains(err.Error(), s1[6:]) || strings.Contains(err.Error(), s2[6:]) {
			t.Errorf("error shows a secret: %v", err)
		}
	}
}

func TestSignRejectsBadSecret(t *testing.T) {
	for _, s := range []string{"", "secret", "whsec_", "whsec_%%%"} {
		if _, err := Sign(s, "msg_1", now, nil); err == nil {
			t.Errorf("Sign accepted secret %q", s)
		} else if len(s) > 6 && strings.Contains(err.Error(), s) {
			t.Errorf("error shows the secret: %v", err)
		}
	}
	if _, err := Sign(s1, "", now, nil); err == nil {
		t.Error("Sign accepted an empty id")
	}
}

func FuzzVerify(f *testing.F) {
	v, _ := NewVerifier(s1+" "+s2, WithClock(func() time.Time { return now }))
	good, _ := Sign(s1, "msg_1", now, []byte("{}"))
	f.Add("msg_1", strconv.FormatInt(now.Unix(), 10), good.Get("webhook-signature"), []byte("{}"))
	f.Add("msg_1", strconv.FormatInt(now.Unix(), 10), "v1,abc v1a,x v1, ,", []byte("{}"))
	f.Add("", "x", "v1,", []byte(nil))
	f.Add("a.b", "-99999999999999999999", "v1,====", []byte{0xff})
	f.Add("id", "9223372036854775807", "v1,AAAA", []byte("x"))
	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte) {
		h := http.Header{}
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", ts)
		h.Set("webhook-signature", sig)
		if err := v.Verify(h, body); err == nil && sig != good.Get("webhook-signature") {
			// Only a genuine signature may pass; anything else would be a forgery.
			for _, s := range []string{s1, s2} {
				if sec, perr := strconv.ParseInt(ts, 10, 64); perr == nil {
					if want, _ := Sign(s, id, time.Unix(sec, 0), body); want != nil && strings.Contains(sig, want.Get("webhook-signature")[3:]) {
						return
					}
				}
			}
			t.Fatalf("accepted a signature nobody made: id=%q ts=%q sig=%q", id, ts, sig)
		}
	})
}

func ExampleSign() {
	h, _ := Sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
		time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	fmt.Println(h.Get("webhook-signature"))
	// Output: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=
}

func ExampleVerifier_Verify() {
	const old, current = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_c2Vjb25kLXNlY3JldC0wMTIzNDU2Nzg5YWJjZGVm"
	at := time.Unix(1614265330, 0)
	v, _ := NewVerifier(old+" "+current, WithClock(func() time.Time { return at.Add(time.Minute) }))
	body := []byte(`{"policies":[]}`)
	h, _ := Sign(current, "msg_1", at, body)
	fmt.Println(v.Verify(h, body))
	fmt.Println(v.Verify(h, []byte(`{"policies":[{}]}`)))
	// Output:
	// <nil>
	// no signature matches a configured secret (wrong secret, or the body was changed): no matching signature found
}
