package awssecrets

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// extension mimics the documented protocol of the AWS Parameters and Secrets Lambda Extension:
// GET /secretsmanager/get?secretId=ID with X-Aws-Parameters-Secrets-Token, answering the
// GetSecretValue JSON; 400 without the token, 404 for an unknown id. (The extension itself
// runs only inside Lambda.)
func extension(t *testing.T, secrets map[string]string) (port string) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/secretsmanager/get" || r.Header.Get("X-Aws-Parameters-Secrets-Token") != "session-token" {
			http.Error(w, "missing token", http.StatusBadRequest)
			return
		}
		s, ok := secrets[r.URL.Query().Get("secretId")]
		if !ok {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ARN":"arn:aws:secretsmanager:us-east-1:1:secret:x","Name":"x","SecretString":` + quote(s) + `,"VersionStages":["AWSCURRENT"]}`))
	}))
	t.Cleanup(srv.Close)
	_, port, _ = net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	return port
}

func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}

func TestFetch(t *testing.T) {
	port := extension(t, map[string]string{
		"livepack": `{"ALIBABA_CLOUD_ACCESS_KEY_ID":"LTAIx","ALIBABA_CLOUD_ACCESS_KEY_SECRET":"s3cr3t","LIVEPACK_WEBHOOK_SECRET":"whsec_abc","LIVEPACK_PLAY_AUTH_KEY":"play"}`,
		"typo":     `{"ALIBABA_CLOUD_ACCESS_KEY":"s3cr3t"}`,
		"text":     `s3cr3t`,
	})
	env := map[string]string{"AWS_SESSION_TOKEN": "session-token", "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": port, "LIVEPACK_RATE": "100"}
	getenv := func(k string) string { return env[k] }
	m, err := Fetch(context.Background(), "livepack", getenv)
	if err != nil {
		t.Fatal(err)
	}
	over := Overlay(getenv, m)
	if over("ALIBABA_CLOUD_ACCESS_KEY_ID") != "LTAIx" || over("LIVEPACK_WEBHOOK_SECRET") != "whsec_abc" || over("LIVEPACK_PLAY_AUTH_KEY") != "play" || over("LIVEPACK_RATE") != "100" {
		t.Fatal("overlay does not combine the secret and the environment")
	}
	for _, id := range []string{"typo", "text", "missing"} {
		_, err := Fetch(context.Background(), id, getenv)
		if err == nil || strings.Contains(err.Error(), "s3cr3t") {
			t.Fatalf("%s: %v", id, err)
		}
	}
	delete(env, "AWS_SESSION_TOKEN")
	if _, err := Fetch(context.Background(), "livepack", getenv); err == nil {
		t.Fatal("fetched without a session token")
	}
}

// FuzzSecretString: whatever the secret holds, Fetch answers a map or an error, never a panic,
// and never echoes a value in its error.
func FuzzSecretString(f *testing.F) {
	f.Add(`{"LIVEPACK_WEBHOOK_SECRET":"whsec_x"}`)
	f.Add(`{"X":"hunter2"}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, secret string) {
		port := extension(t, map[string]string{"s": secret})
		env := map[string]string{"AWS_SESSION_TOKEN": "session-token", "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": port}
		_, err := Fetch(context.Background(), "s", func(k string) string { return env[k] })
		if err != nil && len(secret) > 12 && strings.Contains(err.Error(), secret) {
			t.Fatalf("error echoes the secret: %v", err)
		}
	})
}
