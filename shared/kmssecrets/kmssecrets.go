// Package kmssecrets reads livepack's secrets on Function Compute from Alibaba Cloud KMS
// Secrets Manager (GetSecretValue, through the official SDK) with the function's role, so that
// no secret is an environment value of the function's configuration. It mirrors the Lambda
// path (shared/awssecrets): the secret is a JSON object whose keys override the variables of
// the same names.
package kmssecrets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	kms "github.com/alibabacloud-go/kms-20160120/v3/client"
	util "github.com/alibabacloud-go/tea-utils/v2/service"
	"github.com/alibabacloud-go/tea/tea"
	"github.com/aliyun/credentials-go/credentials"

	"github.com/livepack/livepack/shared/awssecrets"
)

// Options say where KMS is and with which credentials it is called.
type Options struct {
	// Region is the secret's region (on FC, FC_REGION: the function's own); it picks the
	// endpoint kms.<region>.aliyuncs.com.
	Region string
	// Endpoint overrides that endpoint: a host (HTTPS), or an http:// URL for an emulator.
	Endpoint string
	// Credential signs the call; nil means the default chain, which on FC reads the role's
	// credentials that FC puts in the instance's environment.
	Credential credentials.Credential
}

// Fetch reads secret name and returns its JSON object. Errors name the secret and the KMS
// error code, never a value.
func Fetch(ctx context.Context, name string, o Options) (map[string]string, error) {
	cred := o.Credential
	if cred == nil {
		c, err := credentials.NewCredential(nil)
		if err != nil {
			return nil, fmt.Errorf("secret %s: credentials: %w", name, err)
		}
		cred = c
	}
	cfg := &openapi.Config{Credential: cred, RegionId: tea.String(o.Region)}
	if o.Endpoint != "" {
		host, protocol := o.Endpoint, "https"
		if h, ok := strings.CutPrefix(host, "http://"); ok {
			host, protocol = h, "http"
		} else if h, ok := strings.CutPrefix(host, "https://"); ok {
			host = h
		}
		cfg.Endpoint, cfg.Protocol = tea.String(strings.TrimSuffix(host, "/")), tea.String(protocol)
	} else if o.Region == "" {
		return nil, fmt.Errorf("secret %s: no region to find KMS in", name)
	}
	client, err := kms.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("secret %s: KMS client: %w", name, err)
	}
	rt := &util.RuntimeOptions{ConnectTimeout: tea.Int(3000), ReadTimeout: tea.Int(5000)}
	if d, ok := ctx.Deadline(); ok {
		ms := int(time.Until(d).Milliseconds())
		if ms < 1 {
			return nil, fmt.Errorf("secret %s: %w", name, context.DeadlineExceeded)
		}
		rt.ReadTimeout = tea.Int(min(ms, 5000))
	}
	// The SDK takes no context: the call runs aside so ctx still bounds the wait.
	type answer struct {
		resp *kms.GetSecretValueResponse
		err  error
	}
	done := make(chan answer, 1)
	go func() {
		resp, err := client.GetSecretValueWithOptions(&kms.GetSecretValueRequest{SecretName: tea.String(name)}, rt)
		done <- answer{resp, err}
	}()
	var a answer
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("secret %s: %w", name, ctx.Err())
	case a = <-done:
	}
	if a.err != nil {
		var se *tea.SDKError
		if errors.As(a.err, &se) {
			return nil, fmt.Errorf("secret %s: KMS GetSecretValue: %s (HTTP %d)", name, tea.StringValue(se.Code), tea.IntValue(se.StatusCode))
		}
		return nil, fmt.Errorf("secret %s: KMS GetSecretValue: %w", name, a.err)
	}
	if a.resp == nil || a.resp.Body == nil || a.resp.Body.SecretData == nil {
		return nil, fmt.Errorf("secret %s: the answer has no SecretData", name)
	}
	if t := tea.StringValue(a.resp.Body.SecretDataType); t != "" && t != "text" {
		return nil, fmt.Errorf("secret %s: SecretDataType %q; want text (a JSON object)", name, t)
	}
	return parse(name, tea.StringValue(a.resp.Body.SecretData))
}

// parse reads the secret's JSON object, accepting only the keys livepack knows, so a typo in a
// key name fails at start instead of silently leaving a secret unset.
func parse(name, data string) (map[string]string, error) {
	var m map[string]string
	if err := json.Unmarshal([]byte(data), &m); err != nil {
		return nil, fmt.Errorf("secret %s: SecretData is not a JSON object of strings", name)
	}
	var unknown []string
	for k := range m {
		if !slices.Contains(awssecrets.Names, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("secret %s: unknown keys %s; allowed: %s", name, strings.Join(unknown, ", "), strings.Join(awssecrets.Names, ", "))
	}
	return m, nil
}
