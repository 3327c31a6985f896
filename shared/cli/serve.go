package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/livepack/livepack/shared/apply"
	"github.com/livepack/livepack/shared/emulator"
	"github.com/livepack/livepack/shared/host"
	"github.com/livepack/livepack/shared/metrics"
	"github.com/livepack/livepack/shared/metrics/prom"
	"github.com/livepack/livepack/shared/webhook"
)

var emulatorCommand = &command{
	name:    "emulator",
	usage:   "[-addr HOST:PORT] [-seed FILE] [-rate N] [-quota window|bucket] [-fail-rate F] [-fail-seed N] [-fail-kinds K] [-domain-hidden D] [-domain-configuring D]",
	summary: "run the Live OpenAPI emulator in the foreground; the first stdout line is its URL, the second its seed",
	about: `Serves the Live OpenAPI 2016-11-01 actions livepack uses, with V3 and V1 signatures checked
(key pair emulator / emulator-secret), the documented rules and error codes, a per-key quota and
optional injected faults. GET /_emulator/calls lists every call, GET /_emulator/state the domains,
streams and configs; POST /_emulator/domains adds a domain while it runs, unknown to the API for
-domain-hidden, then configuring for -domain-configuring, then online. POST /_emulator/streams
starts, stops or restarts a stream's ingest, and GET /APP/STREAM.m3u8 or .mpd with a play domain
as Host serves its playback, packaged per the config in force at its last publish. Point
LIVEPACK_ENDPOINT at the printed URL.`,
	exits:   "0 on SIGINT or SIGTERM\n2 usage error (bad flag, unreadable seed, address in use)",
	example: "$ livepack emulator -addr 127.0.0.1:9000 &\nhttp://127.0.0.1:9000\n$ LIVEPACK_ENDPOINT=http://127.0.0.1:9000 livepack export",
	logs:    true,
	setup: func(fs *flag.FlagSet, sio IO) runner {
		addr := fs.String("addr", "127.0.0.1:0", "listen `HOST:PORT` (port 0 picks a free one)")
		seed := fs.String("seed", "", "seed `FILE` (default: the embedded seed)")
		rate := fs.Int("rate", 300, "package-config calls per minute per AccessKeyId before Throttling.User")
		shape := fs.String("quota", emulator.QuotaWindow, "how the quota is counted: `window` (any 60 s) or bucket (a token bucket holding one second's worth)")
		failRate := fs.Float64("fail-rate", 0, "fraction of calls failed with InternalErr, ServiceUnavailable or throttling")
		failSeed := fs.Int64("fail-seed", 1, "seed of the fault injection, so a run repeats")
		failKinds := fs.String("fail-kinds", "", "comma-separated `KINDS` of injected faults: internal, unavailable, throttling, commit (a write committed, then 500), latency (default all)")
		domainHidden := fs.Duration("domain-hidden", 0, "how long a domain added with POST /_emulator/domains stays unknown to the API")
		domainConfiguring := fs.Duration("domain-configuring", 0, "how long such a domain is then configuring before online")
		return func(ctx context.Context, _ []string) int {
			if *rate < 1 || *failRate < 0 || *failRate > 1 || *domainHidden < 0 || *domainConfiguring < 0 {
				fmt.Fprintln(sio.Stderr, "livepack emulator: -rate must be ≥ 1, -fail-rate within [0, 1], -domain-hidden and -domain-configuring not negative")
				return ExitUsage
			}
			if *shape != emulator.QuotaWindow && *shape != emulator.QuotaBucket {
				fmt.Fprintf(sio.Stderr, "livepack emulator: -quota: want window or bucket, got %q\n", *shape)
				return ExitUsage
			}
			kinds, err := emulator.ParseFaultKinds(*failKinds)
			if err != nil {
				fmt.Fprintf(sio.Stderr, "livepack emulator: -fail-kinds: %v\n", err)
				return ExitUsage
			}
			s := emulator.DefaultSeed()
			if *seed != "" {
				var err error
				if s, err = emulator.LoadSeed(*seed); err != nil {
					fmt.Fprintf(sio.Stderr, "livepack emulator: %v\n", err)
					return ExitUsage
				}
			}
			ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
			defer stop()
			u, err := emulator.Serve(ctx, *addr, emulator.Options{Seed: s, Rate: *rate, Quota: *shape, FailRate: *failRate, FailSeed: *failSeed,
				FailKinds: kinds, DomainHidden: *domainHidden, DomainConfiguring: *domainConfiguring, Logger: logger(sio)})
			if err != nil {
				fmt.Fprintf(sio.Stderr, "livepack emulator: %v\n", err)
				return ExitUsage
			}
			fmt.Fprintln(sio.Stdout, u)
			// The second line says what the emulator starts with, so a demo or a person
			// describes it truthfully.
			fmt.Fprintln(sio.Stdout, seedSummary(s))
			<-ctx.Done()
			return ExitOK
		}
	},
}

var serveCommand = &command{
	name:    "serve",
	usage:   "[-addr HOST:PORT] [-v]",
	summary: "serve the CMS webhook over plain HTTP; the first stdout line is its URL",
	about: `Serves the CMS webhook for local development: POST a policy document signed per Standard
Webhooks with a secret of LIVEPACK_WEBHOOK_SECRET. The answers are those of the FC HTTP trigger
and the Lambda Function URL. Each request is answered within 30 s, as a function's would be
within its timeout: a document whose calls the quota (LIVEPACK_RATE) cannot serve by then is
answered 429 with Retry-After at once, not late. GET /metrics serves Prometheus metrics. Every
minute it refreshes restart tracking as the schedule does (no call while no change awaits a
stream; the restart-overdue reminders it owes are sent), so /metrics shows the streams awaiting
their ingest restart.`,
	exits:   "0 on SIGINT or SIGTERM\n1 the server failed\n2 usage or configuration error (a flag, an address in use, a variable, no credentials)",
	example: "$ LIVEPACK_WEBHOOK_SECRET=whsec_... livepack serve -addr 127.0.0.1:8080",
	logs:    true,
	setup: func(fs *flag.FlagSet, sio IO) runner {
		addr := fs.String("addr", "127.0.0.1:8080", "listen `HOST:PORT`")
		return func(ctx context.Context, _ []string) int {
			ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
			defer stop()
			w, code := setup(ctx, "serve", sio, host.Options{})
			if code != ExitOK {
				return code
			}
			defer w.Close()
			log := w.log
			ln, err := net.Listen("tcp", *addr)
			if err != nil {
				failf(sio, "serve", "%v", err)
				return ExitUsage
			}
			mux := http.NewServeMux()
			exp := prom.New()
			mux.Handle("/", exp.Webhook(withDeadline(w.Handler, webhook.AnswerWithin)))
			mux.Handle("GET /metrics", exp.Handler())
			srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
			go trackRestarts(ctx, w, exp, time.Minute)
			go func() {
				<-ctx.Done()
				sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_ = srv.Shutdown(sctx)
			}()
			fmt.Fprintf(sio.Stdout, "http://%s/\n", ln.Addr())
			log.Info("serving the CMS webhook", "addr", ln.Addr().String())
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				failf(sio, "serve", "%v", err)
				return ExitFailed
			}
			return ExitOK
		}
	},
}

// trackRestarts refreshes restart tracking every period until ctx ends, each refresh within
// half a period, and sets the restart gauges from it.
func trackRestarts(ctx context.Context, w wired, exp *prom.Prometheus, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		rctx, cancel := context.WithTimeout(ctx, period/2)
		sum := w.Handler.Engine(w.log).TrackRestarts(rctx, w.Handler.Restart)
		cancel()
		if sum != nil {
			exp.ObserveRestart(metrics.New(&apply.Result{Restart: sum}, nil, 0, nil))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// withDeadline gives each request the deadline a function's timeout gives an invocation: the
// quota then refuses at once (429 with Retry-After) the calls it could not serve in time,
// instead of holding the answer past the point a CMS gave up on it.
func withDeadline(next http.Handler, within time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), within)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}
