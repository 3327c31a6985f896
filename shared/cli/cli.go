// Package cli provides the local command line of the livepack binary: invoke, validate,
// emulator and serve (DESIGN §2). Logs go to stderr; stdout carries only results.
package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/livepack/livepack/shared/apply"
	"github.com/livepack/livepack/shared/config"
	"github.com/livepack/livepack/shared/emulator"
	"github.com/livepack/livepack/shared/handler"
	"github.com/livepack/livepack/shared/host"
	"github.com/livepack/livepack/shared/policy"
	"github.com/livepack/livepack/shared/webhooksig"
)

// Exit codes.
const (
	ExitOK      = 0
	ExitFailed  = 1
	ExitUsage   = 2
	invokeLimit = 5 * time.Minute
)

const usage = `usage: livepack <command> [flags]

commands:
  invoke   [-event FILE|-] [-sign]   handle one event as a runtime would; print the result document
  validate [-f FILE|-]               validate and normalize a policy document
  emulator [-addr HOST:PORT] [-seed FILE] [-rate N] [-fail-rate F] [-fail-seed N]
                                     run the Live OpenAPI emulator; first stdout line is its URL
  serve    [-addr HOST:PORT]         serve the CMS webhook over plain HTTP

Configuration comes from the environment (LIVEPACK_*); see README.md.
`

// IO is the process's standard streams and environment.
type IO struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
}

// Main runs one command and returns the exit code.
func Main(ctx context.Context, args []string, sio IO) int {
	if len(args) == 0 {
		fmt.Fprint(sio.Stderr, usage)
		return ExitUsage
	}
	switch args[0] {
	case "invoke":
		return invoke(ctx, args[1:], sio)
	case "validate":
		return validate(args[1:], sio)
	case "emulator":
		return runEmulator(ctx, args[1:], sio)
	case "serve":
		return serve(ctx, args[1:], sio)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(sio.Stdout, usage)
		return ExitOK
	}
	fmt.Fprintf(sio.Stderr, "livepack: unknown command %q\n%s", args[0], usage)
	return ExitUsage
}

func logger(w io.Writer) *slog.Logger {
	return slog.New(handler.LogHandler(slog.NewTextHandler(w, nil)))
}

func newFlags(name string, sio IO) *flag.FlagSet {
	fs := flag.NewFlagSet("livepack "+name, flag.ContinueOnError)
	fs.SetOutput(sio.Stderr)
	return fs
}

// readInput reads FILE, or stdin for "-" or "".
func readInput(path string, stdin io.Reader) ([]byte, error) {
	if path == "" || path == "-" {
		return io.ReadAll(stdin)
	}
	return os.ReadFile(path)
}

func setup(ctx context.Context, sio IO) (*host.Wiring, *slog.Logger, config.Config, int) {
	log := logger(sio.Stderr)
	cfg, err := config.FromEnv(config.CLI, sio.Getenv)
	if err != nil {
		fmt.Fprintln(sio.Stderr, err)
		return nil, nil, cfg, ExitUsage
	}
	w, err := host.Build(ctx, cfg, log, host.Options{Stdout: sio.Stdout})
	if err != nil {
		fmt.Fprintln(sio.Stderr, err)
		return nil, nil, cfg, ExitUsage
	}
	return w, log, cfg, ExitOK
}

func invoke(ctx context.Context, args []string, sio IO) int {
	fs := newFlags("invoke", sio)
	event := fs.String("event", "-", "event `FILE`, or - for stdin")
	sign := fs.Bool("sign", false, "sign a webhook sample with LIVEPACK_WEBHOOK_SECRET's first secret and the current time")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		if err == nil {
			fmt.Fprintf(sio.Stderr, "livepack invoke: unexpected argument %q\n", fs.Arg(0))
		}
		return ExitUsage
	}
	raw, err := readInput(*event, sio.Stdin)
	if err != nil {
		fmt.Fprintf(sio.Stderr, "livepack invoke: %v\n", err)
		return ExitUsage
	}
	if *sign {
		raw, err = signSample(raw, sio.Getenv("LIVEPACK_WEBHOOK_SECRET"))
		if err != nil {
			fmt.Fprintf(sio.Stderr, "livepack invoke -sign: %v\n", err)
			return ExitUsage
		}
	}
	ctx, cancel := context.WithTimeout(ctx, invokeLimit)
	defer cancel()
	w, log, _, code := setup(ctx, sio)
	if code != ExitOK {
		return code
	}
	defer w.Close()
	ctx = handler.WithRequestID(ctx, "cli-"+uuid.NewString())
	resp, err := w.Handler.Invoke(ctx, raw)
	switch {
	case resp.HTTP != nil:
		_, _ = sio.Stdout.Write(append(resp.HTTP.Body, '\n'))
		log.Info("webhook status", "status", resp.HTTP.Status)
		if resp.HTTP.Status != http.StatusOK {
			return ExitFailed
		}
		var res apply.Result
		if json.Unmarshal(resp.HTTP.Body, &res) == nil && !allOK(res) {
			return ExitFailed
		}
		return ExitOK
	case resp.Result != nil:
		printJSON(sio.Stdout, resp.Result)
	}
	if err != nil {
		fmt.Fprintf(sio.Stderr, "livepack invoke: %v\n", err)
		return ExitFailed
	}
	if resp.Result == nil || !allOK(*resp.Result) {
		return ExitFailed
	}
	return ExitOK
}

// allOK reports whether no policy is invalid or failed and the document had no errors.
func allOK(res apply.Result) bool {
	if len(res.Errors) > 0 {
		return false
	}
	for _, r := range res.Results {
		if r.Outcome == apply.Invalid || r.Outcome == apply.Failed {
			return false
		}
	}
	return true
}

func printJSON(w io.Writer, v any) {
	b, _ := json.MarshalIndent(v, "", "  ")
	_, _ = w.Write(append(b, '\n'))
}

// signSample re-signs a webhook envelope (FC HTTP trigger or Function URL event) so a sample
// file, whose stored signature is long stale, can be replayed locally.
func signSample(raw []byte, secrets string) ([]byte, error) {
	secret := strings.Fields(secrets)
	if len(secret) == 0 {
		return nil, errors.New("LIVEPACK_WEBHOOK_SECRET is not set")
	}
	var env map[string]any
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, fmt.Errorf("the event is not a JSON object: %w", err)
	}
	body, _ := env["body"].(string)
	if b64, _ := env["isBase64Encoded"].(bool); b64 {
		dec, err := base64.StdEncoding.DecodeString(body)
		if err != nil {
			return nil, fmt.Errorf("body: %w", err)
		}
		body = string(dec)
	}
	headers, _ := env["headers"].(map[string]any)
	if headers == nil {
		return nil, errors.New("the event has no headers: not a webhook envelope")
	}
	id, _ := headers["webhook-id"].(string)
	if id == "" {
		id = "msg_" + strings.ReplaceAll(uuid.NewString(), "-", "")
	}
	hdr, err := webhooksig.Sign(secret[0], id, time.Now(), []byte(body))
	if err != nil {
		return nil, err
	}
	for k := range hdr {
		headers[strings.ToLower(k)] = hdr.Get(k)
	}
	env["headers"] = headers
	return json.Marshal(env)
}

type validateOutput struct {
	Valid    bool                `json:"valid"`
	ID       string              `json:"id,omitempty"`
	Policies []policy.Policy     `json:"policies,omitempty"`
	Warnings []warning           `json:"warnings,omitempty"`
	Errors   []policy.FieldError `json:"errors,omitempty"`
}

type warning struct {
	Index   int    `json:"index"`
	Message string `json:"message"`
}

func validate(args []string, sio IO) int {
	fs := newFlags("validate", sio)
	file := fs.String("f", "-", "policy document `FILE`, or - for stdin")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		if err == nil {
			fmt.Fprintf(sio.Stderr, "livepack validate: unexpected argument %q\n", fs.Arg(0))
		}
		return ExitUsage
	}
	data, err := readInput(*file, sio.Stdin)
	if err != nil {
		fmt.Fprintf(sio.Stderr, "livepack validate: %v\n", err)
		return ExitUsage
	}
	doc, err := policy.Parse(data)
	if err != nil {
		out := validateOutput{Valid: false}
		var inv *policy.Invalid
		if errors.As(err, &inv) {
			out.Errors = inv.Errors
		} else {
			out.Errors = []policy.FieldError{{Index: -1, Code: policy.CodeInvalidParams, Message: err.Error()}}
		}
		printJSON(sio.Stdout, out)
		return ExitFailed
	}
	out := validateOutput{Valid: true, ID: doc.ID, Policies: doc.Policies}
	for i, p := range doc.Policies {
		for _, w := range p.Warnings {
			out.Warnings = append(out.Warnings, warning{Index: i, Message: w})
		}
	}
	printJSON(sio.Stdout, out)
	return ExitOK
}

func runEmulator(ctx context.Context, args []string, sio IO) int {
	fs := newFlags("emulator", sio)
	addr := fs.String("addr", "127.0.0.1:0", "listen `HOST:PORT` (port 0 picks a free one)")
	seed := fs.String("seed", "", "seed `FILE` (default: the embedded seed)")
	rate := fs.Int("rate", 300, "calls per minute per AccessKeyId before Throttling.User")
	failRate := fs.Float64("fail-rate", 0, "fraction of calls failed with InternalErr, ServiceUnavailable or throttling")
	failSeed := fs.Int64("fail-seed", 1, "seed of the fault injection, so a run repeats")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return ExitUsage
	}
	if *rate < 1 || *failRate < 0 || *failRate > 1 {
		fmt.Fprintln(sio.Stderr, "livepack emulator: -rate must be ≥ 1 and -fail-rate within [0, 1]")
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
	u, err := emulator.Serve(ctx, *addr, emulator.Options{Seed: s, Rate: *rate, FailRate: *failRate, FailSeed: *failSeed,
		Logger: logger(sio.Stderr)})
	if err != nil {
		fmt.Fprintf(sio.Stderr, "livepack emulator: %v\n", err)
		return ExitUsage
	}
	fmt.Fprintln(sio.Stdout, u)
	<-ctx.Done()
	return ExitOK
}

func serve(ctx context.Context, args []string, sio IO) int {
	fs := newFlags("serve", sio)
	addr := fs.String("addr", "127.0.0.1:8080", "listen `HOST:PORT`")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return ExitUsage
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	w, log, _, code := setup(ctx, sio)
	if code != ExitOK {
		return code
	}
	defer w.Close()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(sio.Stderr, "livepack serve: %v\n", err)
		return ExitUsage
	}
	srv := &http.Server{Handler: w.Handler, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	fmt.Fprintf(sio.Stdout, "http://%s/\n", ln.Addr())
	log.Info("serving the CMS webhook", "addr", ln.Addr().String())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(sio.Stderr, "livepack serve: %v\n", err)
		return ExitFailed
	}
	return ExitOK
}
