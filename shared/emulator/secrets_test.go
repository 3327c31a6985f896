package emulator

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aliyun/credentials-go/credentials"

	"github.com/livepack/livepack/shared/kmssecrets"
)

// TestSeedSecrets: a seed file's "secrets" are served by GetSecretValue to the official KMS
// SDK, as the Function Compute host reads LIVEPACK_SECRET_NAME, and never shown by
// /_emulator/state; Options.Secrets adds to them and wins on a shared name.
func TestSeedSecrets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seed.json")
	seed := `{"domains": [{"DomainName": "play.example.com", "LiveDomainType": "liveVideo", "DomainStatus": "online", "Region": "cn-shanghai", "Scope": "domestic"}],
 "onlineStreams": [], "packageConfigs": [],
 "secrets": {"livepack": "{\"LIVEPACK_WEBHOOK_SECRET\": \"whsec_c2VlZC1zZWNyZXQ=\"}", "shadowed": "{\"LIVEPACK_NOTIFY\": \"none\"}"}}`
	if err := os.WriteFile(path, []byte(seed), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := LoadSeed(path)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(Options{Seed: s, Secrets: map[string]string{"shadowed": `{"LIVEPACK_NOTIFY": "stdout"}`, "extra": `{}`}}))
	defer srv.Close()
	typ, id, secret := "access_key", AccessKeyID, AccessKeySecret
	cred, err := credentials.NewCredential(&credentials.Config{Type: &typ, AccessKeyId: &id, AccessKeySecret: &secret})
	if err != nil {
		t.Fatal(err)
	}
	o := kmssecrets.Options{Region: "cn-shanghai", Endpoint: srv.URL, Credential: cred}
	for name, want := range map[string][2]string{"livepack": {"LIVEPACK_WEBHOOK_SECRET", "whsec_c2VlZC1zZWNyZXQ="}, "shadowed": {"LIVEPACK_NOTIFY", "stdout"}} {
		m, err := kmssecrets.Fetch(context.Background(), name, o)
		if err != nil || m[want[0]] != want[1] {
			t.Errorf("%s: %v %v, want %s=%s", name, m, err, want[0], want[1])
		}
	}
	if _, err := kmssecrets.Fetch(context.Background(), "extra", o); err != nil {
		t.Errorf("Options.Secrets: %v", err)
	}
	resp, err := http.Get(srv.URL + "/_emulator/state")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(body), "c2VlZC1zZWNyZXQ") || strings.Contains(string(body), "secrets") || !strings.Contains(string(body), "play.example.com") {
		t.Fatalf("/_emulator/state: %s", body)
	}
}
