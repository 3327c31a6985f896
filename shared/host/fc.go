//go:build !lambda

package host

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"

	"github.com/aliyun/fc-runtime-go-sdk/fc"
	"github.com/aliyun/fc-runtime-go-sdk/fccontext"

	"github.com/livepack/livepack/shared/awssecrets"
	"github.com/livepack/livepack/shared/config"
	"github.com/livepack/livepack/shared/handler"
	"github.com/livepack/livepack/shared/kmssecrets"
)

// The Function Compute runtime: in the FC artifact and the full build, not in the Lambda
// artifact.
func init() {
	fcRuntime = runtime{secrets: fcSecretsOverlay, start: func(w *Wiring) { fc.Start(FCHandler(w)) }}
}

// fcSecretsOverlay reads LIVEPACK_SECRET_NAME's secret, when set: secrets come from KMS Secrets
// Manager with the function's role, never from the function's environment.
func fcSecretsOverlay(getenv func(string) string) (func(string) string, string, error) {
	name := strings.TrimSpace(getenv("LIVEPACK_SECRET_NAME"))
	if name == "" {
		return getenv, "", nil
	}
	m, err := fcSecrets(name, getenv)
	if err != nil {
		return nil, "", err
	}
	origin := ""
	if m["ALIBABA_CLOUD_ACCESS_KEY_ID"] != "" {
		origin = "KMS secret " + name
	}
	return awssecrets.Overlay(getenv, m), origin, nil
}

// fcSecrets reads secret name from KMS in the function's region (FC_REGION), or at
// LIVEPACK_KMS_ENDPOINT, which follows LIVEPACK_ENDPOINT's rules. The credentials are the
// default chain's: on FC, the role's, which FC puts in the instance's environment.
func fcSecrets(name string, getenv func(string) string) (map[string]string, error) {
	ep := strings.TrimSpace(getenv("LIVEPACK_KMS_ENDPOINT"))
	if ep != "" {
		if err := config.CheckEndpoint(config.FC, ep, strings.TrimSpace(getenv("LIVEPACK_INSECURE_ENDPOINT")) == "1"); err != nil {
			return nil, fmt.Errorf("LIVEPACK_KMS_ENDPOINT: %w", err)
		}
	}
	region := strings.TrimSpace(getenv("FC_REGION"))
	if region == "" {
		region = strings.TrimSpace(getenv("LIVEPACK_REGION"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := kmssecrets.Fetch(ctx, name, kmssecrets.Options{Region: region, Endpoint: ep})
	if err != nil {
		return nil, fmt.Errorf("LIVEPACK_SECRET_NAME: %w", err)
	}
	return m, nil
}

// FCHandler is the Function Compute handler. fc-runtime-go-sdk v0.3.1 reports a panic but
// keeps the process, so each invocation recovers its own panic and reports it as an error.
func FCHandler(w *Wiring) func(context.Context, json.RawMessage) (any, error) {
	return func(ctx context.Context, raw json.RawMessage) (out any, err error) {
		defer func() {
			if r := recover(); r != nil {
				slog.Error("invocation panicked", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				out, err = nil, fmt.Errorf("host: invocation panicked: %v", r)
			}
		}()
		if fctx, ok := fccontext.FromContext(ctx); ok {
			ctx = handler.WithRequestID(ctx, fctx.RequestID)
			// The invocation's role credentials come first (DESIGN §3).
			c := fctx.Credentials
			if c.AccessKeyId != "" {
				w.Credential.Set(c.AccessKeyId, c.AccessKeySecret, c.SecurityToken)
			}
		}
		resp, err := w.invoke(ctx, raw)
		if resp.HTTP != nil {
			return resp.HTTP.FC(), nil
		}
		if resp.Result == nil {
			return nil, err
		}
		return resp.Result, err
	}
}
