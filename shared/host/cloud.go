package host

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"

	"github.com/aliyun/fc-runtime-go-sdk/fc"
	"github.com/aliyun/fc-runtime-go-sdk/fccontext"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/livepack/livepack/shared/awssecrets"
	"github.com/livepack/livepack/shared/config"
	"github.com/livepack/livepack/shared/handler"
	"github.com/livepack/livepack/shared/kmssecrets"
)

// Run starts the FC or Lambda host; it returns only when the configuration is bad (exit code
// 2), after one line per problem on stderr.
func Run(h config.Host, getenv func(string) string, stderr io.Writer) int {
	log := slog.New(handler.LogHandler(slog.NewJSONHandler(stderr, nil))).With("host", string(h))
	var opts Options
	if id := getenv("LIVEPACK_SECRET_ID"); id != "" && h == config.Lambda {
		// Secrets come from Secrets Manager, never from the function's environment.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		m, err := awssecrets.Fetch(ctx, id, getenv)
		cancel()
		if err != nil {
			fmt.Fprintf(stderr, "LIVEPACK_SECRET_ID: %v\n", err)
			return 2
		}
		getenv = awssecrets.Overlay(getenv, m)
		if m["ALIBABA_CLOUD_ACCESS_KEY_ID"] != "" {
			opts.CredentialOrigin = "Secrets Manager secret " + id
		}
	}
	if name := strings.TrimSpace(getenv("LIVEPACK_SECRET_NAME")); name != "" && h == config.FC {
		// Secrets come from KMS Secrets Manager with the function's role, never from the
		// function's environment.
		m, err := fcSecrets(name, getenv)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		getenv = awssecrets.Overlay(getenv, m)
		if m["ALIBABA_CLOUD_ACCESS_KEY_ID"] != "" {
			opts.CredentialOrigin = "KMS secret " + name
		}
	}
	cfg, err := config.FromEnv(h, getenv)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if cfg.SecretName != "" {
		log.Info("secrets read from KMS Secrets Manager", "secret", cfg.SecretName)
	}
	w, err := Build(context.Background(), cfg, log, opts)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	defer w.Close()
	// One metrics record per invocation: EMF for CloudWatch on Lambda, a JSON line for SLS on FC.
	w.Metrics = metricsWriter(stderr, h == config.Lambda)
	StartLine(log, cfg, w)
	switch h {
	case config.FC:
		fc.Start(FCHandler(w))
	case config.Lambda:
		lambda.Start(LambdaHandler(w))
	default:
		fmt.Fprintf(stderr, "host: %s is not a cloud host\n", h)
		return 2
	}
	return 0
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

// StartLine logs where this instance will send its calls and with which credentials: the
// endpoint, the region and the credential source, never a credential itself.
func StartLine(log *slog.Logger, cfg config.Config, w *Wiring) {
	attrs := []any{"endpoint", w.Endpoint, "region", cfg.Region, "credentials", w.CredentialSource, "rate", cfg.Rate}
	log.Info("livepack started", attrs...)
	if warn, msg := QuotaSafety(cfg); warn {
		log.Warn(msg)
	} else {
		log.Info(msg)
	}
	if cfg.InsecureEndpoint && plainHTTP(w.Endpoint) {
		log.Warn("LIVEPACK_INSECURE_ENDPOINT=1: the Live API is called over plain HTTP, for testing only")
	}
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

// LambdaHandler is the AWS Lambda handler.
func LambdaHandler(w *Wiring) func(context.Context, json.RawMessage) (any, error) {
	return func(ctx context.Context, raw json.RawMessage) (any, error) {
		if lc, ok := lambdacontext.FromContext(ctx); ok {
			ctx = handler.WithRequestID(ctx, lc.AwsRequestID)
		}
		resp, err := w.invoke(ctx, raw)
		if resp.HTTP != nil {
			return resp.HTTP.Lambda(), nil
		}
		if resp.Result == nil {
			return nil, err
		}
		return resp.Result, err
	}
}
