//go:build !fc

package host

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/livepack/livepack/shared/awssecrets"
	"github.com/livepack/livepack/shared/handler"
)

// The AWS Lambda runtime: in the Lambda artifact and the full build, not in the FC artifact.
func init() {
	lambdaRuntime = runtime{secrets: lambdaSecrets, start: func(w *Wiring) { lambda.Start(LambdaHandler(w)) }}
}

// lambdaSecrets reads LIVEPACK_SECRET_ID's secret, when set: secrets come from Secrets Manager,
// never from the function's environment.
func lambdaSecrets(getenv func(string) string) (func(string) string, string, error) {
	id := getenv("LIVEPACK_SECRET_ID")
	if id == "" {
		return getenv, "", nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	m, err := awssecrets.Fetch(ctx, id, getenv)
	cancel()
	if err != nil {
		return nil, "", fmt.Errorf("LIVEPACK_SECRET_ID: %w", err)
	}
	origin := ""
	if m["ALIBABA_CLOUD_ACCESS_KEY_ID"] != "" {
		origin = "Secrets Manager secret " + id
	}
	return awssecrets.Overlay(getenv, m), origin, nil
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
