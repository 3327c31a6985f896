package host

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/livepack/livepack/shared/artifact"
	"github.com/livepack/livepack/shared/config"
	"github.com/livepack/livepack/shared/handler"
)

// runtime is what one cloud's SDK gives its host: the secrets read at start and the loop that
// serves invocations. fc.go (not in the Lambda artifact) and lambda.go (not in the FC artifact)
// set theirs from init; a runtime left out stays zero.
type runtime struct {
	// secrets returns getenv with the function's secrets over it, and where an access key among
	// them came from (for the start line); its error is one line naming the variable.
	secrets func(getenv func(string) string) (_ func(string) string, origin string, _ error)
	// start serves invocations until the process ends.
	start func(*Wiring)
}

var fcRuntime, lambdaRuntime runtime

// Run starts the FC or Lambda host; it returns only when the configuration is bad (exit code
// 2), after one line per problem on stderr. A runtime this build leaves out is one line naming
// its variable and the build.
func Run(h config.Host, getenv func(string) string, stderr io.Writer) int {
	// rtVar is the variable the runtime sets, by which config.HostFromEnv picked the host.
	var rt runtime
	var rtVar, rtName, dist string
	switch h {
	case config.FC:
		rt, rtVar, rtName, dist = fcRuntime, "FC_RUNTIME_API", "Function Compute", "the FC artifact (dist/fc/bootstrap)"
	case config.Lambda:
		rt, rtVar, rtName, dist = lambdaRuntime, "AWS_LAMBDA_RUNTIME_API", "AWS Lambda", "the Lambda artifact (dist/lambda/bootstrap)"
	default:
		fmt.Fprintf(stderr, "host: %s is not a cloud host\n", h)
		return 2
	}
	if rt.start == nil {
		fmt.Fprintf(stderr, "%s: %s leaves the %s runtime out: deploy %s\n", rtVar, artifact.Name, rtName, dist)
		return 2
	}
	log := slog.New(handler.LogHandler(slog.NewJSONHandler(stderr, nil))).With("host", string(h))
	var opts Options
	getenv, origin, err := rt.secrets(getenv)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	opts.CredentialOrigin = origin
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
	rt.start(w)
	return 0
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
