package kmssecrets

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aliyun/credentials-go/credentials"

	"github.com/livepack/livepack/shared/emulator"
)

func staticCred(t *testing.T, id, secret string) credentials.Credential {
	t.Helper()
	typ := "access_key"
	c, err := credentials.NewCredential(&credentials.Config{Type: &typ, AccessKeyId: &id, AccessKeySecret: &secret})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestFetch reads secrets through the official KMS SDK from the emulator, which checks the
// request's signature as KMS does.
func TestFetch(t *testing.T) {
	srv := httptest.NewServer(emulator.New(emulator.Options{Secrets: map[string]string{
		"livepack": `{"LIVEPACK_WEBHOOK_SECRET":"whsec_abc","LIVEPACK_NOTIFY_SECRET":"whsec_def","LIVEPACK_PLAY_AUTH_KEY":"play"}`,
		"typo":     `{"LIVEPACK_WEBHOOK_SECRT":"s3cr3t"}`,
		"text":     `s3cr3t`,
	}}))
	defer srv.Close()
	o := Options{Region: "cn-shanghai", Endpoint: srv.URL, Credential: staticCred(t, emulator.AccessKeyID, emulator.AccessKeySecret)}
	m, err := Fetch(context.Background(), "livepack", o)
	if err != nil || m["LIVEPACK_WEBHOOK_SECRET"] != "whsec_abc" || m["LIVEPACK_NOTIFY_SECRET"] != "whsec_def" || m["LIVEPACK_PLAY_AUTH_KEY"] != "play" {
		t.Fatalf("%v %v", m, err)
	}
	for name, want := range map[string]string{"typo": "unknown keys LIVEPACK_WEBHOOK_SECRT", "text": "not a JSON object",
		"missing": "Forbidden.ResourceNotFound"} {
		_, err := Fetch(context.Background(), name, o)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "secret "+name) || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("%s: %v, want an error with %q and no value", name, err, want)
		}
	}
	o.Credential = staticCred(t, emulator.AccessKeyID, "wrong")
	if _, err := Fetch(context.Background(), "livepack", o); err == nil || !strings.Contains(err.Error(), "SignatureDoesNotMatch") {
		t.Fatalf("a wrong key: %v", err)
	}
}

// FuzzParse: whatever a secret holds, parse answers a map or an error, never a panic, and
// never echoes a value in its error.
func FuzzParse(f *testing.F) {
	f.Add(`{"LIVEPACK_WEBHOOK_SECRET":"whsec_x"}`)
	f.Add(`{"X":"hunter2"}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, data string) {
		_, err := parse("s", data)
		if err != nil && len(data) > 12 && strings.Contains(err.Error(), data) {
			t.Fatalf("error echoes the secret: %v", err)
		}
	})
}
