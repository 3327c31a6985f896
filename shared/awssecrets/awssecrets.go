// Package awssecrets reads livepack's secrets on AWS Lambda from Secrets Manager through the
// AWS Parameters and Secrets Lambda Extension (a layer serving a local HTTP cache), so that no
// secret is ever an environment value of the function's configuration and no AWS SDK is needed.
//
// See https://docs.aws.amazon.com/secretsmanager/latest/userguide/retrieving-secrets_lambda.html
package awssecrets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"
)

// Names are the keys a livepack secret may hold (on either cloud); each overrides the variable
// of the same name. LIVEPACK_NOTIFY is among them because a chat webhook's URL holds its token,
// LIVEPACK_PLAY_AUTH_KEY because it signs playback URLs.
var Names = []string{"ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_SECURITY_TOKEN",
	"LIVEPACK_WEBHOOK_SECRET", "LIVEPACK_NOTIFY_SECRET", "LIVEPACK_NOTIFY", "LIVEPACK_PLAY_AUTH_KEY"}

// defaultPort is the extension's documented default (PARAMETERS_SECRETS_EXTENSION_HTTP_PORT).
const defaultPort = "2773"

// Fetch reads secret id through the extension and returns its JSON object. getenv supplies
// AWS_SESSION_TOKEN (the extension's auth token) and the port. Errors never contain values.
func Fetch(ctx context.Context, id string, getenv func(string) string) (map[string]string, error) {
	port := getenv("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT")
	if port == "" {
		port = defaultPort
	}
	token := getenv("AWS_SESSION_TOKEN")
	if token == "" {
		return nil, errors.New("AWS_SESSION_TOKEN is not set: the secrets extension runs only on Lambda")
	}
	u := "http://localhost:" + port + "/secretsmanager/get?secretId=" + url.QueryEscape(id)
	var last error
	// The extension may still be starting during the function's init: try a few times.
	for attempt := 0; attempt < 5; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("secret %s: %w", id, ctx.Err())
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			}
		}
		m, err := fetchOnce(ctx, u, token)
		if err == nil {
			return m, nil
		}
		last = fmt.Errorf("secret %s: %w", id, err)
		var perm permanent
		if errors.As(err, &perm) {
			break
		}
	}
	return nil, last
}

type permanent struct{ error }

func fetchOnce(ctx context.Context, u, token string) (map[string]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, permanent{err}
	}
	req.Header.Set("X-Aws-Parameters-Secrets-Token", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("the secrets extension did not answer (is its layer attached?): %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("the secrets extension answered HTTP %d", resp.StatusCode)
		if resp.StatusCode >= 500 {
			return nil, err
		}
		return nil, permanent{err}
	}
	var out struct{ SecretString string }
	if err := json.Unmarshal(body, &out); err != nil || out.SecretString == "" {
		return nil, permanent{errors.New("the answer has no SecretString")}
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(out.SecretString), &m); err != nil {
		return nil, permanent{errors.New("SecretString is not a JSON object of strings")}
	}
	var unknown []string
	for k := range m {
		if !slices.Contains(Names, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, permanent{fmt.Errorf("unknown keys %s; allowed: %s", strings.Join(unknown, ", "), strings.Join(Names, ", "))}
	}
	return m, nil
}

// Overlay returns a getenv that answers the secret's keys from m and everything else from
// getenv.
func Overlay(getenv func(string) string, m map[string]string) func(string) string {
	return func(k string) string {
		if v, ok := m[k]; ok {
			return v
		}
		return getenv(k)
	}
}
