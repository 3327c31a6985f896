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
	"github.com/livepack/livepack/shared/eventkey"
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
	usage:   "[-event FILE|-] [-sign] [-o text|json] [-v]",
	summary: "handle one event exactly as a runtime would and print the result",
	about: `Decodes the event as Function Compute or Lambda would (any supported envelope: EventBridge,
HTTP trigger or Function URL, timer, Scheduler input, or a bare policy document), runs the handler
once and prints the result document. On a terminal the result is one line per policy and per
notice; piped, it is one JSON document: the result, each notice the stdout sink
(LIVEPACK_NOTIFY, the CLI default) delivered carried in its "event", and for a webhook the HTTP
"status". Without LIVEPACK_ENDPOINT the run uses an embedded emulator whose state lives and dies
with the run.`,
	exits: `0 every policy ok (created, updated, unchanged, deleted or skipped)
1 a policy invalid or failed, a webhook answer other than 200, an event refused or not applied
  (a key reused with another payload, a key another run holds), or an event that cannot be handled
2 usage or configuration error (a flag, an unreadable file, a variable, no credentials)`,
	example: `$ livepack invoke -event events/policies.json
$ LIVEPACK_WEBHOOK_SECRET=whsec_... livepack invoke -sign -event events/fc-http-webhook.json -o json`,
	logs: true,
	setup: func(fs *flag.FlagSet, sio IO) runner {
		event := fs.String("event", "-", "event `FILE`, or - for stdin")
		sign := fs.Bool("sign", false, "sign a webhook sample with LIVEPACK_WEBHOOK_SECRET's first secret and the current time")
		format := formatFlag(fs)
		return func(ctx context.Context, _ []string) int {
			out, err := newOutput(*format, sio)
			if err != nil {
				failf(sio, "invoke", "%v", err)
				return ExitUsage
			}
			raw, err := readInput(*event, sio.Stdin)
			if err != nil {
				failf(sio, "invoke", "%v", err)
				return ExitUsage
			}
			if *sign {
				if raw, err = signSample(raw, sio.getenv("LIVEPACK_WEBHOOK_SECRET")); err != nil {
					failf(sio, "invoke -sign", "%v", err)
					return ExitUsage
				}
			}
			return invoke(ctx, "invoke", raw, out, sio)
		}
	},
}

// invocation is what one handler run produced, for either output form.
type invocation struct {
	resp  handler.Response
	err   error
	calls int64
	// notices are the stdout sink's notices, by id, captured so that the text form
	// summarizes them and the JSON form carries them inside the one result document; extra
	// are those of the captured ones the result does not list, in the order delivered.
	notices map[string]json.RawMessage
	extra   []json.RawMessage
	// noDefaults: no default policy is set (LIVEPACK_POLICIES).
	noDefaults bool
}

// runHandler invokes the handler once on raw, counting the Live API calls it makes.
func runHandler(ctx context.Context, name string, raw []byte, sio IO) (invocation, int) {
	ctx, cancel := context.WithTimeout(ctx, invokeLimit)
	defer cancel()
	var captured bytes.Buffer
	w, code := setup(ctx, name, sio, host.Options{Stdout: &captured})
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
		w.log.Info("webhook status", "status", resp.HTTP.Status)
	}
	inv := invocation{resp: resp, err: err, calls: st.Calls.Load(), noDefaults: len(w.cfg.Defaults) == 0}
	inv.notices, inv.extra = noticeLines(&captured)
	return inv, ExitOK
}

// invoke runs raw through the handler and prints the result; name is the command the user ran
// (invoke, apply), which its messages name.
func invoke(ctx context.Context, name string, raw []byte, out output, sio IO) int {
	// An event no runtime could decode is explained here, before anything starts: a runtime
	// acknowledges and drops it, which at a terminal would only hide the mistake.
	req, err := intake.Decode(raw)
	if err != nil {
		failf(sio, name, "%s", readable(err, raw))
		return ExitFailed
	}
	inv, code := runHandler(ctx, name, raw, sio)
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
	case resp.Result != nil:
		res = resp.Result
	}
	if res != nil {
		explain(res, req, inv, err)
		withNotices(res, inv)
	}
	switch {
	case out.json && resp.HTTP != nil:
		printWebhookJSON(out, status, res, resp.HTTP.Body)
	case out.json && res != nil:
		out.printJSON(res)
	case !out.json:
		printInvocation(out, res, status, bodyOf(resp), inv)
	}
	switch {
	case err != nil:
		failf(sio, name, "%s", readable(err, raw))
		return ExitFailed
	case resp.Dropped != nil:
		why := readable(resp.Dropped, raw)
		if res != nil && res.Note != "" {
			why = res.Note
		}
		failf(sio, name, "not applied: %s", why)
		return ExitFailed
	case status != 0 && status != http.StatusOK:
		return ExitFailed
	case res == nil || !allOK(*res):
		return ExitFailed
	}
	return ExitOK
}

func bodyOf(resp handler.Response) []byte {
	if resp.HTTP == nil {
		return nil
	}
	return resp.HTTP.Body
}

// explain adds to a result's note what a person needs and the result does not say: why an
// event was not applied, when a key another run holds is free again, and that a reconcile
// without policies has nothing to find.
func explain(res *apply.Result, req intake.Request, inv invocation, err error) {
	switch {
	case errors.Is(err, eventkey.ErrInProgress):
		res.Note = joinNote(res.Note, inProgressHint)
	case inv.resp.Dropped != nil && res.Note == "":
		res.Note = "not applied: " + readable(inv.resp.Dropped, nil)
	}
	if req.Kind == intake.Schedule && len(req.Document) == 0 && inv.noDefaults {
		res.Note = joinNote(res.Note, "no default policies are set (LIVEPACK_POLICIES): the reconcile has nothing to compare the configs with, so it finds no drift")
	}
}

// inProgressHint says when a key held by another run, or by a run that crashed, is free.
var inProgressHint = fmt.Sprintf("another run holds this key: its lease lasts %s past that run's last heartbeat, so a crashed run's key is free within %s; run the command again then",
	eventkey.LeaseTTL, eventkey.LeaseTTL)

func joinNote(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// withNotices puts each notice the stdout sink printed into the result, so that piped output
// is one JSON document: a listed notice carries its event, and one the result does not list
// (an earlier run's notice delivered now) is added with it.
func withNotices(res *apply.Result, inv invocation) {
	listed := map[string]bool{}
	for i, n := range res.Notices {
		listed[n.ID] = true
		if line, ok := inv.notices[n.ID]; ok && len(n.Event) == 0 {
			res.Notices[i].Event = line
		}
	}
	for _, line := range inv.extra {
		var ev struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(line, &ev) != nil || listed[ev.ID] {
			continue
		}
		res.Notices = append(res.Notices, apply.NoticeResult{ID: ev.ID, Sinks: map[string]string{"stdout": "delivered"}, Event: line})
	}
}

// printWebhookJSON prints a webhook's answer as one JSON document with its HTTP status: the
// result document, or the error body of an answer that carries none.
func printWebhookJSON(out output, status int, res *apply.Result, body []byte) {
	if res != nil {
		out.printJSON(struct {
			Status int `json:"status"`
			*apply.Result
		}{status, res})
		return
	}
	var m map[string]any
	if json.Unmarshal(body, &m) != nil || m == nil {
		m = map[string]any{"body": strings.TrimSpace(string(body))}
	}
	m["status"] = status
	out.printJSON(m)
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

// noticeLines reads the stdout sink's JSON lines: by notice id, and in order.
func noticeLines(r io.Reader) (map[string]json.RawMessage, []json.RawMessage) {
	byID := map[string]json.RawMessage{}
	var order []json.RawMessage
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		var ev struct {
			ID string `json:"id"`
		}
		line := bytes.Clone(sc.Bytes())
		if json.Unmarshal(line, &ev) == nil && ev.ID != "" {
			if _, dup := byID[ev.ID]; !dup {
				order = append(order, line)
			}
			byID[ev.ID] = line
		}
	}
	return byID, order
}

// acceptedEnvelopes is what invoke and the handler understand.
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
	msg := message(err)
	if errors.Is(err, intake.ErrUnrecognized) {
		return msg + "\n" + acceptedEnvelopes
	}
	if errors.Is(err, eventkey.ErrInProgress) {
		return msg + "\n" + inProgressHint
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
