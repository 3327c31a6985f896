package host

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/livepack/livepack/shared/config"
)

// TestEmulatorKeyPairOnlyOnCLI: a plain-HTTP endpoint gets the emulator's key pair on the
// command line only; a cloud host signs with its own credentials whatever the endpoint.
func TestEmulatorKeyPairOnlyOnCLI(t *testing.T) {
	t.Setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "")
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "")
	t.Setenv("HOME", t.TempDir())
	tests := []struct {
		host      config.Host
		env       map[string]string
		origin    string
		want      string
		emulatorK bool
	}{
		{config.CLI, map[string]string{"LIVEPACK_ENDPOINT": "http://127.0.0.1:9"}, "", "emulator key pair (plain-HTTP endpoint)", true},
		{config.FC, map[string]string{"LIVEPACK_ENDPOINT": "http://127.0.0.1:9", "LIVEPACK_INSECURE_ENDPOINT": "1"}, "",
			"FC invocation role credentials, else Alibaba Cloud default credential chain", false},
		{config.Lambda, map[string]string{"LIVEPACK_ENDPOINT": "http://127.0.0.1:9", "LIVEPACK_INSECURE_ENDPOINT": "1"}, "",
			"Alibaba Cloud default credential chain", false},
		{config.Lambda, map[string]string{"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAIkey", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "key-secret"},
			"Secrets Manager secret livepack", "access key from Secrets Manager secret livepack", false},
		{config.FC, map[string]string{"ALIBABA_CLOUD_ACCESS_KEY_ID": "STS.key", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "key-secret", "ALIBABA_CLOUD_SECURITY_TOKEN": "tok"},
			"", "FC invocation role credentials, else access key from ALIBABA_CLOUD_ACCESS_KEY_ID (STS)", false},
	}
	for _, tc := range tests {
		env := map[string]string{"LIVEPACK_STATE": "memory", "LIVEPACK_VOLATILE_STATE": "1", "LIVEPACK_NOTIFY": "none"}
		for k, v := range tc.env {
			env[k] = v
		}
		cfg, err := config.FromEnv(tc.host, func(k string) string { return env[k] })
		if err != nil {
			t.Fatal(err)
		}
		var logs bytes.Buffer
		log := slog.New(slog.NewJSONHandler(&logs, nil))
		w, err := Build(context.Background(), cfg, log, Options{CredentialOrigin: tc.origin})
		if err != nil {
			t.Fatal(err)
		}
		StartLine(log, cfg, w)
		w.Close()
		if w.CredentialSource != tc.want {
			t.Errorf("%s %v: credentials %q, want %q", tc.host, tc.env, w.CredentialSource, tc.want)
		}
		if cr, err := w.Credential.GetCredential(); (err == nil && *cr.AccessKeyId == EmulatorKeyID) != tc.emulatorK {
			t.Errorf("%s %v: emulator key pair used: %v", tc.host, tc.env, !tc.emulatorK)
		}
		for _, secret := range []string{"key-secret", "tok", emulatorSecret} {
			if strings.Contains(logs.String(), secret) {
				t.Errorf("%s: the start line shows a secret: %s", tc.host, logs.String())
			}
		}
		if !strings.Contains(logs.String(), `"msg":"livepack started"`) || !strings.Contains(logs.String(), `"region":"cn-shanghai"`) {
			t.Errorf("%s: no start line: %s", tc.host, logs.String())
		}
	}
}
