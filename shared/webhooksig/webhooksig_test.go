package webhooksig

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	s1 = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	s2 = "whsec_c2Vjb25kLXNlY3JldC0wMTIzNDU2Nzg5YWJjZGVm"
)

func TestVerify(t *testing.T) {
	v, err := NewVerifier(s1 + " " + s2)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"policies":[]}`)
	now := time.Now()
	sign := func(secret string, at time.Time) http.Header {
		h, err := Sign(secret, "msg_1", at, body)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	without := func(h http.Header, k string) http.Header { h.Del(k); return h }
	tests := []struct {
		name string
		h    http.Header
		body []byte
		want error
	}{
		{"first secret", sign(s1, now), body, nil},
		{"rotated secret", sign(s2, now), body, nil},
		{"4m59s old", sign(s1, now.Add(-4*time.Minute-59*time.Second)), body, nil},
		{"4m59s ahead", sign(s1, now.Add(4*time.Minute+59*time.Second)), body, nil},
		{"5m01s old", sign(s1, now.Add(-5*time.Minute-time.Second)), body, ErrTooOld},
		{"5m01s ahead", sign(s1, now.Add(5*time.Minute+time.Second)), body, ErrTooNew},
		{"tampered body", sign(s1, now), []byte(`{"policies":[1]}`), ErrNoMatch},
		{"unknown secret", sign("whsec_b3RoZXI=", now), body, ErrNoMatch},
		{"no id", without(sign(s1, now), "webhook-id"), body, ErrMissingHeaders},
		{"no timestamp", without(sign(s1, now), "webhook-timestamp"), body, ErrMissingHeaders},
		{"no signature", without(sign(s1, now), "webhook-signature"), body, ErrMissingHeaders},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := v.Verify(tt.h, tt.body)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
			if err != nil && (strings.Contains(err.Error(), s1) || strings.Contains(err.Error(), s1[6:])) {
				t.Fatal("the error shows the secret")
			}
		})
	}
}

func TestNewVerifierErrorsHideSecrets(t *testing.T) {
	for _, in := range []string{"", "plain", s1 + " whsec_!!!", "whsec_"} {
		_, err := NewVerifier(in)
		if err == nil {
			t.Fatalf("NewVerifier(%q) accepted", in)
		}
		if strings.Contains(err.Error(), "MfKQ9r8") || (len(in) > 8 && strings.Contains(err.Error(), in)) {
			t.Fatalf("error shows the secret: %v", err)
		}
	}
}

func FuzzVerify(f *testing.F) {
	v, _ := NewVerifier(s1)
	f.Add("msg_1", strconv.FormatInt(time.Now().Unix(), 10), "v1,abc", []byte("{}"))
	f.Add("", "x", "v1,", []byte(nil))
	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte) {
		h := http.Header{}
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", ts)
		h.Set("webhook-signature", sig)
		_ = v.Verify(h, body)
	})
}

func ExampleSign() {
	h, _ := Sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
		time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	fmt.Println(h.Get("webhook-signature"))
	// Output: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=
}
