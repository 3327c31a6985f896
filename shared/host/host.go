// Package host provides the three hosts of the one livepack binary (Function Compute 3.0, AWS
// Lambda and the local CLI) and the wiring they share: from a checked config.Config to a
// handler.Handler with its client, store, limiter and sinks.
package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"time"

	"github.com/aliyun/credentials-go/credentials"

	"github.com/livepack/livepack/shared/apply"
	"github.com/livepack/livepack/shared/artifact"
	"github.com/livepack/livepack/shared/config"
	"github.com/livepack/livepack/shared/handler"
	"github.com/livepack/livepack/shared/liveapi"
	"github.com/livepack/livepack/shared/metrics"
	"github.com/livepack/livepack/shared/notify"
	"github.com/livepack/livepack/shared/quota"
	"github.com/livepack/livepack/shared/store"
	"github.com/livepack/livepack/shared/store/stores"
)

// Emulator key pair: the embedded emulator's and the default for a plain-HTTP endpoint.
const (
	EmulatorKeyID  = "emulator"
	emulatorSecret = "emulator-secret"
)

// ErrNoCredentials: on the command line, with a real endpoint, the Alibaba Cloud default
// credential chain found no credentials.
var ErrNoCredentials = errors.New("no Alibaba Cloud credentials")

// noCredentialsHelp names the variables of the default credential chain, in its order.
const noCredentialsHelp = "set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET (with ALIBABA_CLOUD_SECURITY_TOKEN for an STS key); " +
	"or for OIDC ALIBABA_CLOUD_ROLE_ARN, ALIBABA_CLOUD_OIDC_PROVIDER_ARN and ALIBABA_CLOUD_OIDC_TOKEN_FILE; " +
	"or a profile (ALIBABA_CLOUD_PROFILE, ALIBABA_CLOUD_CREDENTIALS_FILE, ~/.aliyun/config.json, ~/.alibabacloud/credentials); " +
	"or ALIBABA_CLOUD_CREDENTIALS_URI; on an ECS instance its RAM role serves (ALIBABA_CLOUD_ECS_METADATA names it), " +
	"and off ECS ALIBABA_CLOUD_ECS_METADATA_DISABLED=true skips asking the metadata service"

// chainVariables are the variables that point the default chain at a source other than the
// access key variables: when one is set, the chain's own error says what went wrong with it.
var chainVariables = []string{"ALIBABA_CLOUD_ROLE_ARN", "ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
	"ALIBABA_CLOUD_PROFILE", "ALIBABA_CLOUD_CREDENTIALS_FILE", "ALIBABA_CLOUD_CREDENTIALS_URI", "ALIBABA_CLOUD_ECS_METADATA"}

// noCredentials is the one-line error of a default chain that found nothing: the variables to
// set, and the chain's own account when the user pointed it somewhere.
func noCredentials(endpoint string, chainErr error) error {
	for _, v := range chainVariables {
		if os.Getenv(v) != "" {
			return fmt.Errorf("%w for %s: %s; the chain, with %s set, said: %w", ErrNoCredentials, endpoint, noCredentialsHelp, v, chainErr)
		}
	}
	return fmt.Errorf("%w for %s: %s", ErrNoCredentials, endpoint, noCredentialsHelp)
}

// serveEmulator starts the embedded emulator on a free local port and returns its URL; set by
// emulator.go in the full build, nil in the cloud artifacts, which carry no command line.
var serveEmulator func(ctx context.Context, log *slog.Logger) (string, error)

// Wiring is what Build assembled.
type Wiring struct {
	Handler *handler.Handler
	// Credential is the credential the client signs with; on FC each invocation's role
	// credentials are swapped into it.
	Credential *SwapCredential
	// EmulatorURL is set when the embedded emulator serves this process.
	EmulatorURL string
	// API is the Live API client the handler uses, for the CLI's read-only commands (plan,
	// export).
	API liveapi.API
	// Endpoint is the Live OpenAPI endpoint the client calls; CredentialSource says where its
	// credentials come from, never what they are: both go into the start line.
	Endpoint, CredentialSource string
	// Metrics receives each invocation's record (nil: none kept).
	Metrics func(metrics.Record)
	closers []func()
}

// Close releases the store and stops the embedded emulator.
func (w *Wiring) Close() {
	for i := len(w.closers) - 1; i >= 0; i-- {
		w.closers[i]()
	}
}

// Options adjust Build for the CLI.
type Options struct {
	// Stdout receives the stdout sink's notices (os.Stdout if nil).
	Stdout io.Writer
	// CredentialOrigin names where an explicit access key came from when it is not the
	// environment (a secret store), for the start line.
	CredentialOrigin string
	// Now is the engine's clock (nil: time.Now): a fault campaign moves it past the outbox's
	// backoff instead of waiting for it.
	Now func() time.Time
	// Store, when set, is the state store in place of the one LIVEPACK_STATE names, and the
	// caller closes it: a fault campaign shares one store between instances and wraps it to
	// fail chosen operations.
	Store store.Store
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// Build wires a handler from cfg. ctx bounds the embedded emulator's life.
func Build(ctx context.Context, cfg config.Config, log *slog.Logger, o Options) (*Wiring, error) {
	w := &Wiring{}
	endpoint := cfg.Endpoint
	var base credentials.Credential
	if endpoint == "" {
		if cfg.Host != config.CLI {
			return nil, errors.New("host: the embedded emulator serves the CLI only; set LIVEPACK_ENDPOINT")
		}
		if serveEmulator == nil {
			return nil, fmt.Errorf("host: %s leaves the embedded emulator out; set LIVEPACK_ENDPOINT", artifact.Name)
		}
		ectx, cancel := context.WithCancel(ctx)
		u, err := serveEmulator(ectx, log.With("component", "emulator"))
		if err != nil {
			cancel()
			return nil, fmt.Errorf("host: start the embedded emulator: %w", err)
		}
		w.closers = append(w.closers, cancel)
		w.EmulatorURL, endpoint = u, u
		log.Info("using the embedded Live OpenAPI emulator (set LIVEPACK_ENDPOINT for a real account)", "url", u)
		base = staticCredential(EmulatorKeyID, emulatorSecret, "")
		w.CredentialSource = "embedded emulator key pair"
	} else if cfg.AccessKey.ID != "" {
		base = staticCredential(cfg.AccessKey.ID, cfg.AccessKey.Secret, cfg.AccessKey.SecurityToken)
		w.CredentialSource = "access key from " + orDefault(o.CredentialOrigin, "ALIBABA_CLOUD_ACCESS_KEY_ID")
		if cfg.AccessKey.SecurityToken != "" {
			w.CredentialSource += " (STS)"
		}
	} else if plainHTTP(endpoint) && cfg.Host == config.CLI {
		// The real API is HTTPS only: a plain-HTTP endpoint on the command line is an emulator,
		// whose default key pair saves a local user from inventing one. Never in the cloud,
		// where such an endpoint is a test switch and the function's own credentials apply.
		base = staticCredential(EmulatorKeyID, emulatorSecret, "")
		w.CredentialSource = "emulator key pair (plain-HTTP endpoint)"
	} else {
		c, err := credentials.NewCredential(nil)
		if err != nil {
			return nil, fmt.Errorf("host: credentials (the Alibaba Cloud default chain): %w", err)
		}
		if cfg.Host == config.CLI {
			// The command line has no role of its own: a chain that yields no key is a
			// configuration mistake, said once here, before any call, rather than as a network
			// error of every Live API call and its retries. The cloud hosts skip this: FC hands
			// each invocation its role's credentials, and the chain finds Lambda's.
			if _, err := c.GetCredential(); err != nil {
				return nil, noCredentials(endpoint, err)
			}
		}
		base = c
		w.CredentialSource = "Alibaba Cloud default credential chain"
	}
	if cfg.Host == config.FC {
		w.CredentialSource = "FC invocation role credentials, else " + w.CredentialSource
	}
	w.Credential = NewSwapCredential(base)
	w.Endpoint = endpoint

	var limiter liveapi.Limiter = quota.NewLocal(cfg.Rate, quota.WithReserve(cfg.Reserve))
	st := o.Store
	if st == nil {
		opened, err := stores.Open(ctx, cfg.State, cfg.Namespace, w.Credential)
		if err != nil {
			return nil, fmt.Errorf("host: LIVEPACK_STATE: %w", err)
		}
		w.closers = append(w.closers, func() { _ = opened.Close() })
		st = opened
	}
	if o.Store == nil && stores.Shared(cfg.State) {
		// A store other processes reach carries the quota too: LIVEPACK_RATE is one budget for
		// every instance of the namespace.
		limiter = quota.NewShared(st, "quota", cfg.Rate, quota.WithReserve(cfg.Reserve))
	}
	if cfg.StateWarning != "" {
		log.Warn(cfg.StateWarning)
	}

	client, err := liveapi.New(liveapi.Options{Endpoint: endpoint, RegionID: cfg.Region, Credential: w.Credential,
		Limiter: limiter, Logger: log.With("component", "liveapi")})
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("host: Live API client: %w", err)
	}
	var sinkOpts []notify.Option
	if o.Stdout != nil {
		sinkOpts = append(sinkOpts, notify.WithStdout(o.Stdout))
	}
	sinks, err := notify.ParseSinks(cfg.Notify, cfg.NotifySecret, sinkOpts...)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("host: LIVEPACK_NOTIFY: %w", err)
	}
	w.API = client
	var api liveapi.API = client
	if !cfg.KeepPublishQuery {
		api = bareURLs{client}
	}
	w.Handler = handler.New(apply.Options{Now: o.Now, API: api, Store: st, Sinks: sinks, Defaults: cfg.Defaults}, cfg.WebhookSecrets, log)
	w.Handler.CallsPerMinute = cfg.Rate
	w.Handler.WebhookDomains = cfg.WebhookDomains
	w.Handler.Restart = restartSettings(cfg, log)
	return w, nil
}

func plainHTTP(endpoint string) bool {
	u, err := url.Parse(endpoint)
	return err == nil && u.Scheme == "http"
}
