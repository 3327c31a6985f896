package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/livepack/livepack/shared/apply"
	"github.com/livepack/livepack/shared/handler"
	"github.com/livepack/livepack/shared/host"
	"github.com/livepack/livepack/shared/intake"
	"github.com/livepack/livepack/shared/liveapi"
	"github.com/livepack/livepack/shared/policy"
	"github.com/livepack/livepack/shared/webhooksig"
)

// invokeLimit bounds one local invocation, as a function's timeout would.
const invokeLimit = 5 * time.Minute

var invokeCommand = &command{
	name:    "invoke",
	usage:   "[-event FILE|-] [-sign] [-o text|json]",
	summary: "handle one event exactly as a runtime would and print the result",
	about: `Decodes the event as Function Compute or Lambda would (any supported envelope: EventBridge,
HTTP trigger or Function URL, timer, Scheduler input, or a bare policy document), runs the handler
once and prints the result document (DESIGN §5). On a terminal the result is one line per policy and
per notice; piped, it is the JSON document, preceded by each notice as a JSON line when the stdout
sink is configured (LIVEPACK_NOTIFY, the CLI default). Without LIVEPACK_ENDPOINT the run uses an
embedded emulator whose state lives and dies with the run.`,
	exits: `0 every policy ok (created, updated, unchanged, deleted or skipped)
1 a policy invalid or failed, a webhook answer other than 200, or an event that cannot be handled
2 usage or configuration error`,
	example: `$ livepack invoke -event events/policies.json
$ LIVEPACK_WEBHOOK_SECRET=whsec_... livepack invoke -sign -event events/fc-http-webhook.json -o json`,
	setup: func(fs *flag.FlagSet, sio IO) runner {
		event := fs.String("event", "-", "event `FILE`, or - for stdin")
		sign := fs.Bool("sign", false, "sign a webhook sample with LIVEPACK_WEBHOOK_SECRET's first secret and the current time")
		format := formatFlag(fs)
		return func(ctx context.Context, _ []string) int {
			out, err := newOutput(*format, sio)
			if err != nil {
				fmt.Fprintf(sio.Stderr, "livepack invoke: %v\n", err)
				return ExitUsage
			}
			raw, err := readInput(*event, sio.Stdin)
			if err != nil {
				fmt.Fprintf(sio.Stderr, "livepack invoke: %v\n", err)
				return ExitUsage
			}
			if *sign {
				if raw, err = signSample(raw, sio.getenv("LIVEPACK_WEBHOOK_SECRET")); err != nil {
					fmt.Fprintf(sio.Stderr, "livepack invoke -sign: %v\n", err)
					return ExitUsage
				}
			}
			return invoke(ctx, raw, out, sio)
		}
	},
}

// invocation is what one handler run produced, for either output form.
type invocation struct {
	resp  handler.Response
	err   error
	calls int64
	// notices are the stdout sink's notices, by id, captured in text mode so they can be
	// summarized rather than printed as JSON lines.
	notices map[string]json.RawMessage
}

// runHandler invokes the handler once on raw, counting the Live API calls it makes.
func runHandler(ctx context.Context, raw []byte, out output, sio IO) (invocation, int) {
	ctx, cancel := context.WithTimeout(ctx, invokeLimit)
	defer cancel()
	var captured bytes.Buffer
	o := host.Options{Stdout: sio.Stdout}
	if !out.json {
		o.Stdout = &captured
	}
	w, log, code := setup(ctx, sio, o)
	if code != ExitOK {
		return invocation{}, code
	}
	defer w.Close()
	var st liveapi.Stats
	ctx = liveapi.WithStats(handler.WithRequestID(ctx, "cli-"+uuid.NewString()), &st)
	ctx, barDone := withProgressBar(ctx, sio)
	defer barDone()
	resp, err := w.Handler.Invoke(ctx, raw)
	if resp.HTTP != nil {
		log.Info("webhook status", "status", resp.HTTP.Status)
	}
	return invocation{resp: resp, err: err, calls: st.Calls.Load(), notices: noticeLines(&captured)}, ExitOK
}

func invoke(ctx context.Context, raw []byte, out output, sio IO) int {
	// An event no runtime could decode is explained here, before anything starts: a runtime
	// acknowledges and drops it, which at a terminal would only hide the mistake.
	if _, err := intake.Decode(raw); err != nil {
		fmt.Fprintf(sio.Stderr, "livepack invoke: %s\n", readable(err, raw))
		return ExitFailed
	}
	inv, code := runHandler(ctx, raw, out, sio)
	if code != ExitOK {
		return code
	}
	resp, err := inv.resp, inv.err
	var res *apply.Result
	status := 0
	switch {
	case resp.HTTP != nil:
		status = resp.HTTP.Status
		var r apply.Result
		if json.Unmarshal(resp.HTTP.Body, &r) == nil && r.Results != nil {
			res = &r
		}
		if out.json {
			_, _ = sio.Stdout.Write(append(bytes.TrimRight(resp.HTTP.Body, "\n"), '\n'))
		} else {
			printInvocation(out, res, status, resp.HTTP.Body, inv)
		}
	case resp.Result != nil:
		res = resp.Result
		if out.json {
			out.printJSON(res)
		} else {
			printInvocation(out, res, 0, nil, inv)
		}
	}
	if err != nil {
		fmt.Fprintf(sio.Stderr, "livepack invoke: %s\n", readable(err, raw))
		return ExitFailed
	}
	if status != 0 && status != http.StatusOK {
		return ExitFailed
	}
	if res == nil || !allOK(*res) {
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

// noticeLines reads the stdout sink's JSON lines, keyed by notice id.
func noticeLines(r io.Reader) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		var ev struct {
			ID string `json:"id"`
		}
		line := bytes.Clone(sc.Bytes())
		if json.Unmarshal(line, &ev) == nil && ev.ID != "" {
			out[ev.ID] = line
		}
	}
	return out
}

// acceptedEnvelopes is what invoke and the handler understand (DESIGN §2a).
const acceptedEnvelopes = `livepack accepts these events (events/ holds a sample of each):
  - a policy document: {"policies": [...]}, one policy object, or an array of policies
  - an Alibaba EventBridge CloudEvent: type live:ActionTrail:ApiCall with data.eventName AddLiveDomain,
    livepack.domain.created, or livepack.policies
  - an AWS EventBridge event (version "0") with detail-type livepack.domain.created or livepack.policies
  - a signed CMS webhook in an FC HTTP trigger request or a Lambda Function URL request
  - an FC timer event whose payload is {"mode": "report"|"enforce"}
  - an EventBridge Scheduler input {"mode": "report"|"enforce"}`

// readable turns a handler error into what a person can act on: malformed JSON by line and
// column, an unrecognized event with the envelopes accepted, and no package prefixes.
func readable(err error, raw []byte) string {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		lead := int64(len(raw) - len(bytes.TrimLeft(raw, " \t\r\n")))
		line, col := policy.Position(raw, lead+syn.Offset)
		return fmt.Sprintf("the event is not valid JSON: line %d, column %d: %s", line, col, syn.Error())
	}
	msg := strings.NewReplacer("handler: ", "", "intake: ", "", "apply: ", "").Replace(err.Error())
	if errors.Is(err, intake.ErrUnrecognized) {
		return msg + "\n" + acceptedEnvelopes
	}
	if errors.Is(err, apply.ErrRetryLater) {
		return msg + "\n(a runtime would deliver this event again; running the same command again does the same)"
	}
	return msg
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
