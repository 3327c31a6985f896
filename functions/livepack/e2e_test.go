package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livepack/livepack/shared/emulator"
	"github.com/livepack/livepack/shared/fcharness"
	"github.com/livepack/livepack/shared/lambdarie"
	"github.com/livepack/livepack/shared/webhooksig"
)

const (
	webhookSecret = "whsec_ZTJlLXdlYmhvb2stc2VjcmV0LWZvci10ZXN0cy0wMTIzNDU="
	notifySecret  = "whsec_ZTJlLW5vdGlmeS1zZWNyZXQtZm9yLXRlc3RzLTAxMjM0NQ=="
	// chatToken is a chat webhook's token, which Slack, Feishu, Teams and Discord keep in the
	// URL's path; authKey is a stream's auth_key, in its publish URL's query.
	chatToken = "chat-token-in-the-path-5f0c2a9e"
	authKey   = "1700000000-0-0-auth-key-in-the-query-77d1"
)

// secrets is every secret and token the end-to-end tests hand the function.
var secrets = []string{webhookSecret, notifySecret, strings.TrimPrefix(webhookSecret, "whsec_"), strings.TrimPrefix(notifySecret, "whsec_"),
	emulator.AccessKeySecret, "fc-role-secret", "sts-token", chatToken, authKey}

// bootstrap is the full build (the command line with both runtimes); lambdaBootstrap and
// fcBootstrap are the cloud artifacts, each built with its tags as `make build` builds it, so
// each runtime's tests run the artifact deployed on it.
var bootstrap, lambdaBootstrap, fcBootstrap string

// artifacts are the builds the tests run: output name and build tags.
var artifacts = []struct{ name, tags string }{
	{"bootstrap", "lambda.norpc"},
	{"lambda-bootstrap", "lambda,lambda.norpc"},
	{"fc-bootstrap", "fc"},
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "livepack-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bootstrap, lambdaBootstrap, fcBootstrap = filepath.Join(dir, "bootstrap"), filepath.Join(dir, "lambda-bootstrap"), filepath.Join(dir, "fc-bootstrap")
	errs := make([]error, len(artifacts))
	var wg sync.WaitGroup
	for i, a := range artifacts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// -buildvcs=auto stamps the VCS revision `livepack version` prints, whatever GOFLAGS says.
			build := exec.Command("go", "build", "-buildvcs=auto", "-tags", a.tags, "-o", filepath.Join(dir, a.name), ".")
			build.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := build.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("building %s (-tags %s): %v\n%s", a.name, a.tags, err, out)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// sample is one events/ file and what handling it must show. The order matters: later
// samples see the configs earlier ones made.
type sample struct {
	file    string
	trigger string
	status  int    // webhook envelopes: the HTTP status
	outcome string // the first policy's outcome; "" when there is none to check
}

var samples = []sample{
	{"domain-created.json", "domain-created", 0, "created"},
	{"fc-http-webhook.json", "cms-webhook", 200, "created"},
	{"lambda-url-webhook.json", "cms-webhook", 200, "created"},
	{"domain-created-ingest.json", "domain-created", 0, "skipped"},
	{"cloudevent-domain-created.json", "domain-created", 0, "created"},
	{"aws-policies.json", "policy-bus", 0, "created"},
	{"cloudevent-policies.json", "policy-bus", 0, "created"},
	{"policies.json", "direct", 0, "updated"},
	{"policies-invalid.json", "direct", 0, "invalid"},
	{"default-policies.json", "direct", 0, "invalid"},
	{"fc-timer-report.json", "schedule", 0, ""},
	{"scheduler-enforce.json", "schedule", 0, ""},
	{"aws-scheduled-event.json", "schedule", 0, ""},
}

// load reads a sample; webhook samples are signed now, as a CMS would sign them.
func load(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("../../events", name))
	if err != nil {
		t.Fatal(err)
	}
	var env map[string]any
	if err := json.Unmarshal(raw, &env); err != nil {
		return raw
	}
	headers, ok := env["headers"].(map[string]any)
	body, _ := env["body"].(string)
	if !ok {
		return raw
	}
	id, _ := headers["webhook-id"].(string)
	h, err := webhooksig.Sign(webhookSecret, id, time.Now(), []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	for k := range h {
		headers[strings.ToLower(k)] = h.Get(k)
	}
	out, _ := json.Marshal(env)
	return out
}

func functionEnv(t *testing.T) []string { return envFor(t, emulator.Options{}) }

func benchEnv(b *testing.B) []string { return envFor(b, emulator.Options{}) }

// envFor starts an emulator for one test's function and returns the function's environment.
func envFor(t testing.TB, opts emulator.Options) []string {
	opts.Seed = emulator.DefaultSeed()
	for i := range opts.Seed.OnlineStreams {
		// Publish URLs carry the stream's auth key, as a signed ingest URL does.
		opts.Seed.OnlineStreams[i].PublishURL += "?auth_key=" + authKey
	}
	srv := httptest.NewServer(emulator.New(opts))
	t.Cleanup(srv.Close)
	policies, _ := filepath.Abs("../../events/default-policies.json")
	return []string{
		"LIVEPACK_ENDPOINT=" + srv.URL,
		"LIVEPACK_INSECURE_ENDPOINT=1", // the emulator speaks plain HTTP
		"LIVEPACK_POLICIES=" + policies,
		"LIVEPACK_WEBHOOK_SECRET=" + webhookSecret,
		"LIVEPACK_NOTIFY_SECRET=" + notifySecret,
		"LIVEPACK_STATE=memory",
		"LIVEPACK_VOLATILE_STATE=1", // one function process per test: nothing to share
		"LIVEPACK_NOTIFY=none",
		"ALIBABA_CLOUD_ACCESS_KEY_ID=" + emulator.AccessKeyID,
		"ALIBABA_CLOUD_ACCESS_KEY_SECRET=" + emulator.AccessKeySecret,
		"ALIBABA_CLOUD_ECS_METADATA_DISABLED=true",
		"HOME=" + t.TempDir(),
	}
}

// without drops the variables whose names start with any of prefixes.
func without(env []string, prefixes ...string) []string {
	var out []string
	for _, kv := range env {
		keep := true
		for _, p := range prefixes {
			keep = keep && !strings.HasPrefix(kv, p)
		}
		if keep {
			out = append(out, kv)
		}
	}
	return out
}

// check asserts one answer: a result document (or, for webhooks, the HTTP response carrying
// one) with the expected trigger and first outcome.
// check asserts one answer and returns its outcomes by kind.
func check(t *testing.T, s sample, answer []byte) map[string]int {
	t.Helper()
	var env struct {
		ErrorMessage string `json:"errorMessage"`
		StatusCode   int    `json:"statusCode"`
		Body         string `json:"body"`
	}
	if err := json.Unmarshal(answer, &env); err != nil {
		t.Fatalf("%s: answer is not JSON: %s", s.file, answer)
	}
	if env.ErrorMessage != "" {
		t.Fatalf("%s: handler error: %s", s.file, env.ErrorMessage)
	}
	doc := answer
	if s.status != 0 {
		if env.StatusCode != s.status {
			t.Fatalf("%s: status %d, want %d: %s", s.file, env.StatusCode, s.status, env.Body)
		}
		doc = []byte(env.Body)
	}
	var res struct {
		Trigger string `json:"trigger"`
		Results []struct {
			Outcome string `json:"outcome"`
			Reason  string `json:"reason"`
		} `json:"results"`
	}
	if err := json.Unmarshal(doc, &res); err != nil {
		t.Fatalf("%s: result is not JSON: %s", s.file, doc)
	}
	if res.Trigger != s.trigger {
		t.Fatalf("%s: trigger %q, want %q: %s", s.file, res.Trigger, s.trigger, doc)
	}
	if s.outcome != "" && (len(res.Results) == 0 || res.Results[0].Outcome != s.outcome) {
		t.Fatalf("%s: want first outcome %q: %s", s.file, s.outcome, doc)
	}
	out := map[string]int{}
	for _, r := range res.Results {
		out[r.Outcome]++
	}
	return out
}

// noSecrets fails when any secret or token shows up in what, which names where it was found.
func noSecrets(t *testing.T, what, text string) {
	t.Helper()
	if text == "" {
		t.Fatalf("%s is empty: the scan proves nothing", what)
	}
	for _, secret := range secrets {
		if strings.Contains(text, secret) {
			i := strings.Index(text, secret)
			t.Errorf("a secret appears in %s: …%s…", what, text[max(0, i-80):i])
		}
	}
}

// sinkAndStore adds to a function's environment a chat-style notice sink, whose token is in
// its path, and a file state store; it returns what the sink received and the store's bytes.
func sinkAndStore(t *testing.T, env []string) (_ []string, received func() string, stored func() string) {
	var mu sync.Mutex
	var got strings.Builder
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path != "/services/T0/B0/"+chatToken {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		got.Write(body)
		got.WriteByte('\n')
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	state := filepath.Join(t.TempDir(), "state.db")
	env = append(without(env, "LIVEPACK_STATE", "LIVEPACK_NOTIFY="), "LIVEPACK_STATE=file:"+state, "LIVEPACK_NOTIFY="+srv.URL+"/services/T0/B0/"+chatToken)
	return env, func() string {
			mu.Lock()
			defer mu.Unlock()
			return got.String()
		}, func() string {
			b, err := os.ReadFile(state)
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
}

// scanEverything checks every log, result, stored record and notice of a run for secrets, and
// that the notices reached the sink with their publish URLs stripped of the auth key.
func scanEverything(t *testing.T, logs, results string, received, stored func() string) {
	t.Helper()
	noSecrets(t, "the function's logs", logs)
	noSecrets(t, "the results", results)
	noSecrets(t, "the state store", stored())
	got := received()
	noSecrets(t, "the notices sent", got)
	if !strings.Contains(got, `"PublishUrl":"rtmp://push.example.com/sports/final"`) {
		t.Errorf("no notice with the bare publish URL reached the sink:\n%s", got)
	}
}

// secretsExtension serves the documented protocol of the AWS Parameters and Secrets Lambda
// Extension (which runs only inside Lambda): the function's secrets come from it, as the
// template deploys it, not from its environment.
func secretsExtension(t *testing.T) (port string) {
	secret, _ := json.Marshal(map[string]string{"ALIBABA_CLOUD_ACCESS_KEY_ID": emulator.AccessKeyID,
		"ALIBABA_CLOUD_ACCESS_KEY_SECRET": emulator.AccessKeySecret, "LIVEPACK_WEBHOOK_SECRET": webhookSecret, "LIVEPACK_NOTIFY_SECRET": notifySecret})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/secretsmanager/get" || r.URL.Query().Get("secretId") != "livepack" || r.Header.Get("X-Aws-Parameters-Secrets-Token") != "session-token" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"Name": "livepack", "SecretString": string(secret)})
	}))
	t.Cleanup(srv.Close)
	_, port, _ = net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	return port
}

func TestLambdaRuntime(t *testing.T) {
	env := append(without(functionEnv(t), "ALIBABA_CLOUD_ACCESS_KEY", "LIVEPACK_WEBHOOK_SECRET", "LIVEPACK_NOTIFY_SECRET"), "LIVEPACK_SECRET_ID=livepack", "AWS_SESSION_TOKEN=session-token", "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT="+secretsExtension(t))
	env, received, stored := sinkAndStore(t, env)
	rie := lambdarie.Start(t, lambdaBootstrap, env)
	var results strings.Builder
	outcomes := map[string]int{}
	for _, s := range samples {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		out, err := rie.Invoke(ctx, load(t, s.file), lambdarie.WithRequestID("req-"+s.file))
		cancel()
		if err != nil {
			t.Fatalf("%s: %v\n%s", s.file, err, rie.Logs())
		}
		for k, n := range check(t, s, out) {
			outcomes[k] += n
		}
		results.Write(out)
	}
	logs := settledLogs(rie.Logs, `"_aws":`, len(samples))
	if !strings.Contains(logs, `"requestId":"req-domain-created.json"`) {
		t.Errorf("log lines do not carry the Lambda request id:\n%s", logs)
	}
	startLine(t, logs, "access key from Secrets Manager secret livepack")
	metricsRecords(t, logs, `"_aws":`, outcomes)
	// Instances unknown and a per-instance state: the start says the quota may be exceeded.
	if !strings.Contains(logs, `"level":"WARN","msg":"quota: each instance spends up to LIVEPACK_RATE=250 calls/min on its own`) ||
		!strings.Contains(logs, "2 instances x 250 = 500 calls/min already exceed the account quota of 300/min") {
		t.Errorf("no quota warning with its arithmetic:\n%s", logs)
	}
	scanEverything(t, logs, results.String(), received, stored)
}

// settledLogs returns the function's output once it holds n lines containing marker, or after
// five seconds: the last invocation's metrics record is written before its answer, but reaches
// the harness's buffer through a pipe that may not have been drained yet.
func settledLogs(logs func() string, marker string, n int) string {
	deadline := time.Now().Add(5 * time.Second)
	for {
		out := logs()
		if strings.Count(out, marker) >= n || time.Now().After(deadline) {
			return out
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// metricsRecords checks the metrics records a run logged (the lines containing marker): one
// per invocation, adding up to the outcomes the results reported, and the Live API calls the
// run made.
func metricsRecords(t *testing.T, logs, marker string, outcomes map[string]int) {
	t.Helper()
	n, calls := 0, 0.0
	got := map[string]float64{}
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, marker) {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line[strings.Index(line, "{"):]), &rec); err != nil || rec["Trigger"] == nil || rec["NoticesPending"] == nil {
			t.Fatalf("metrics record %q: %v", line, err)
		}
		if aws, ok := rec["_aws"].(map[string]any); ok {
			if dirs, _ := aws["CloudWatchMetrics"].([]any); len(dirs) != 1 || dirs[0].(map[string]any)["Namespace"] != "livepack" {
				t.Fatalf("EMF record outside the livepack namespace: %s", line)
			}
		}
		n++
		calls += rec["ApiCalls"].(float64)
		for _, o := range []string{"created", "updated", "unchanged", "deleted", "skipped", "invalid", "failed"} {
			got[o] += rec[strings.ToUpper(o[:1])+o[1:]].(float64)
		}
	}
	if n != len(samples) || calls < 1 {
		t.Fatalf("%d metrics records for %d invocations, %v calls:\n%s", n, len(samples), calls, logs)
	}
	for o, want := range outcomes {
		if got[o] != float64(want) {
			t.Errorf("metrics count %v %s outcomes, the results %d", got[o], o, want)
		}
	}
	if len(outcomes) == 0 {
		t.Fatal("no outcomes to compare")
	}
}

// startLine checks the line a cloud instance logs at start: where its calls go and where its
// credentials come from.
func startLine(t *testing.T, logs, credentials string) {
	t.Helper()
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, `"msg":"livepack started"`) {
			continue
		}
		var l struct{ Endpoint, Region, Credentials string }
		if err := json.Unmarshal([]byte(line[strings.Index(line, "{"):]), &l); err != nil {
			t.Fatalf("start line %q: %v", line, err)
		}
		if !strings.HasPrefix(l.Endpoint, "http://127.0.0.1:") || l.Region != "cn-shanghai" || l.Credentials != credentials {
			t.Fatalf("start line %s: want the emulator's endpoint, cn-shanghai and credentials %q", line, credentials)
		}
		return
	}
	t.Fatalf("no start line in the logs:\n%s", logs)
}

// fcEnv is a Function Compute function's environment: the role's temporary key, which FC puts
// in the instance's environment and hands over again with each invocation, and the webhook and
// notice secrets in a KMS secret (served by the emulator), not in the environment.
func fcEnv(t *testing.T) []string {
	secret, _ := json.Marshal(map[string]string{"LIVEPACK_WEBHOOK_SECRET": webhookSecret, "LIVEPACK_NOTIFY_SECRET": notifySecret})
	env := envFor(t, emulator.Options{Credentials: map[string]string{"STS.fc-role": "fc-role-secret"},
		Secrets: map[string]string{"livepack": string(secret)}})
	var kms string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "LIVEPACK_ENDPOINT="); ok {
			kms = v
		}
	}
	return append(without(env, "ALIBABA_CLOUD_ACCESS_KEY", "LIVEPACK_WEBHOOK_SECRET", "LIVEPACK_NOTIFY_SECRET"),
		"ALIBABA_CLOUD_ACCESS_KEY_ID=STS.fc-role", "ALIBABA_CLOUD_ACCESS_KEY_SECRET=fc-role-secret", "ALIBABA_CLOUD_SECURITY_TOKEN=sts-token",
		"FC_REGION=cn-shanghai", "LIVEPACK_SECRET_NAME=livepack", "LIVEPACK_MAX_INSTANCES=1", "LIVEPACK_KMS_ENDPOINT="+kms)
}

// TestFunctionComputeSecretRefused: a KMS secret that cannot be read stops the function at
// start with one line naming the variable and KMS's error code.
func TestFunctionComputeSecretRefused(t *testing.T) {
	cmd := exec.Command(fcBootstrap)
	cmd.Env = append(without(fcEnv(t), "LIVEPACK_SECRET_NAME"), "FC_RUNTIME_API=127.0.0.1:1", "LIVEPACK_SECRET_NAME=missing")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Fatalf("exit %v, want 2: %s", err, out)
	}
	if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); len(lines) != 1 ||
		!strings.HasPrefix(lines[0], "LIVEPACK_SECRET_NAME: secret missing: KMS GetSecretValue: Forbidden.ResourceNotFound") {
		t.Fatalf("want one line naming LIVEPACK_SECRET_NAME and the KMS error, got:\n%s", out)
	}
}

// TestFunctionComputeSecretsFromSeededEmulator: `livepack emulator -seed FILE` serves the
// seed's "secrets" to a function started apart from it, under the FC runtime API: the
// function reads its webhook secret from KMS (GetSecretValue, its environment holds none) and
// a signed webhook is applied.
func TestFunctionComputeSecretsFromSeededEmulator(t *testing.T) {
	secret, _ := json.Marshal(map[string]string{"LIVEPACK_WEBHOOK_SECRET": webhookSecret, "LIVEPACK_NOTIFY_SECRET": notifySecret})
	seed := emulator.DefaultSeed()
	seed.Secrets = map[string]string{"livepack": string(secret)}
	b, _ := json.Marshal(seed)
	path := filepath.Join(t.TempDir(), "seed.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	emu := exec.Command(bootstrap, "emulator", "-addr", "127.0.0.1:0", "-seed", path)
	emu.Env = []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}
	stdout, err := emu.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := emu.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = emu.Process.Signal(os.Interrupt); _ = emu.Wait() })
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), "http://127.0.0.1:") {
		t.Fatalf("livepack emulator did not print its URL: %q %v", sc.Text(), sc.Err())
	}
	url := sc.Text()
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	env := []string{"LIVEPACK_ENDPOINT=" + url, "LIVEPACK_INSECURE_ENDPOINT=1", "LIVEPACK_KMS_ENDPOINT=" + url,
		"LIVEPACK_SECRET_NAME=livepack", "FC_REGION=cn-shanghai", "LIVEPACK_MAX_INSTANCES=1",
		"ALIBABA_CLOUD_ACCESS_KEY_ID=" + emulator.AccessKeyID, "ALIBABA_CLOUD_ACCESS_KEY_SECRET=" + emulator.AccessKeySecret,
		"ALIBABA_CLOUD_ECS_METADATA_DISABLED=true", "LIVEPACK_STATE=memory", "LIVEPACK_VOLATILE_STATE=1", "LIVEPACK_NOTIFY=none",
		"HOME=" + t.TempDir()}
	h := fcharness.Start(t, fcBootstrap, env)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, isErr, err := h.Invoke(ctx, load(t, "fc-http-webhook.json"), fcharness.WithRequestID("fc-seeded-secrets"))
	if err != nil || isErr {
		t.Fatalf("err %v, error answer %v: %s\n%s", err, isErr, out, h.Logs())
	}
	check(t, sample{"fc-http-webhook.json", "cms-webhook", 200, "created"}, out)
	if logs := h.Logs(); !strings.Contains(logs, `"msg":"secrets read from KMS Secrets Manager","host":"fc","secret":"livepack"`) {
		t.Errorf("the function did not read its secrets from KMS:\n%s", logs)
	}
}

// TestFunctionComputeRuntime runs every sample through the FC runtime API. The emulator knows
// only the role's temporary key, which FC hands over per invocation: every call proves the
// function signs with the invocation's credentials.
func TestFunctionComputeRuntime(t *testing.T) {
	env := fcEnv(t)
	env, received, stored := sinkAndStore(t, env)
	h := fcharness.Start(t, fcBootstrap, env)
	var results strings.Builder
	outcomes := map[string]int{}
	for _, s := range samples {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		out, isErr, err := h.Invoke(ctx, load(t, s.file), fcharness.WithRequestID("fc-"+s.file),
			fcharness.WithCredentials("STS.fc-role", "fc-role-secret", "sts-token"))
		cancel()
		if err != nil || isErr {
			t.Fatalf("%s: err %v, error answer %v: %s\n%s", s.file, err, isErr, out, h.Logs())
		}
		for k, n := range check(t, s, out) {
			outcomes[k] += n
		}
		results.Write(out)
	}
	logs := settledLogs(h.Logs, `"metrics":"livepack"`, len(samples))
	if !strings.Contains(logs, `"requestId":"fc-domain-created.json"`) {
		t.Errorf("log lines do not carry the FC request id:\n%s", logs)
	}
	startLine(t, logs, "FC invocation role credentials, else access key from ALIBABA_CLOUD_ACCESS_KEY_ID (STS)")
	if !strings.Contains(logs, `"msg":"secrets read from KMS Secrets Manager","host":"fc","secret":"livepack"`) {
		t.Errorf("the function did not read its secrets from KMS:\n%s", logs)
	}
	metricsRecords(t, logs, `"metrics":"livepack"`, outcomes)
	if !strings.Contains(logs, `"level":"INFO","msg":"quota: 1 instances x 250 calls/min = 250 calls/min, within the account quota of 300/min"`) {
		t.Errorf("no quota line for one instance:\n%s", logs)
	}
	scanEverything(t, logs, results.String(), received, stored)
}

// TestStartRejectsBadConfig: a bad variable stops the function at start with one line naming it.
func TestStartRejectsBadConfig(t *testing.T) {
	cmd := exec.Command(lambdaBootstrap)
	cmd.Env = []string{"AWS_LAMBDA_RUNTIME_API=127.0.0.1:1", "LIVEPACK_RATE=0", "LIVEPACK_STATE=ftp://x", "HOME=" + t.TempDir()}
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Fatalf("exit %v, want 2: %s", err, out)
	}
	for _, v := range []string{"LIVEPACK_RATE", "LIVEPACK_STATE"} {
		if !strings.Contains(string(out), v) {
			t.Errorf("output does not name %s: %s", v, out)
		}
	}
}

// TestCloudRefusesPlainHTTPEndpoint: a cloud host never signs with its credentials over plain
// HTTP, unless the testing switch says so; the refusal is one line naming the variable.
func TestCloudRefusesPlainHTTPEndpoint(t *testing.T) {
	for runtime, bin := range clouds() {
		cmd := exec.Command(bin)
		cmd.Env = []string{runtime + "=127.0.0.1:1", "LIVEPACK_ENDPOINT=http://127.0.0.1:9", "LIVEPACK_STATE=dynamodb://livepack-state",
			"LIVEPACK_NOTIFY=none", "HOME=" + t.TempDir()}
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
			t.Fatalf("%s: exit %v, want 2: %s", runtime, err, out)
		}
		if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "LIVEPACK_ENDPOINT: ") {
			t.Fatalf("%s: want one line naming LIVEPACK_ENDPOINT, got:\n%s", runtime, out)
		}
	}
}

// TestCloudRefusesUnsetStateAndNotify: a cloud function without a shared state store, with a
// per-instance one not allowed on purpose, or without a notice sink stops at start with one
// line naming the variable.
func TestCloudRefusesUnsetStateAndNotify(t *testing.T) {
	for runtime, bin := range clouds() {
		for _, tc := range []struct {
			env  []string
			line string
		}{
			{[]string{"LIVEPACK_NOTIFY=none"}, "LIVEPACK_STATE: unset: "},
			{[]string{"LIVEPACK_NOTIFY=none", "LIVEPACK_STATE=memory"}, "LIVEPACK_STATE: memory keeps records in one instance only"},
			{[]string{"LIVEPACK_STATE=dynamodb://livepack-state"}, "LIVEPACK_NOTIFY: unset: "},
		} {
			cmd := exec.Command(bin)
			cmd.Env = append([]string{runtime + "=127.0.0.1:1", "HOME=" + t.TempDir()}, tc.env...)
			out, err := cmd.CombinedOutput()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
				t.Fatalf("%s %v: exit %v, want 2: %s", runtime, tc.env, err, out)
			}
			if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], tc.line) {
				t.Fatalf("%s %v: want one line starting %q, got:\n%s", runtime, tc.env, tc.line, out)
			}
		}
	}
}

// clouds maps each runtime's variable to the artifact deployed on it.
func clouds() map[string]string {
	return map[string]string{"AWS_LAMBDA_RUNTIME_API": lambdaBootstrap, "FC_RUNTIME_API": fcBootstrap}
}

// TestArtifactsCarryTheirCloudOnly: each cloud artifact refuses, with one line naming the
// variable and the artifact, the other cloud's runtime, the other cloud's state backend and
// the command line; the full build carries all of them.
func TestArtifactsCarryTheirCloudOnly(t *testing.T) {
	for _, tc := range []struct {
		bin, artifact string
		env           []string
		line          string
	}{
		{lambdaBootstrap, "Lambda", []string{"FC_RUNTIME_API=127.0.0.1:1"}, "FC_RUNTIME_API: the Lambda artifact (built with -tags lambda) leaves the Function Compute runtime out"},
		{fcBootstrap, "FC", []string{"AWS_LAMBDA_RUNTIME_API=127.0.0.1:1"}, "AWS_LAMBDA_RUNTIME_API: the FC artifact (built with -tags fc) leaves the AWS Lambda runtime out"},
		{lambdaBootstrap, "Lambda", append(without(functionEnv(t), "LIVEPACK_STATE", "LIVEPACK_VOLATILE_STATE"), "AWS_LAMBDA_RUNTIME_API=127.0.0.1:1",
			"LIVEPACK_STATE=tablestore://livepack/livepack_state"),
			`host: LIVEPACK_STATE: stores: state "tablestore://livepack/livepack_state": the Lambda artifact (built with -tags lambda) leaves the Tablestore backend out`},
		{fcBootstrap, "FC", append(without(functionEnv(t), "LIVEPACK_STATE", "LIVEPACK_VOLATILE_STATE"), "FC_RUNTIME_API=127.0.0.1:1", "FC_REGION=cn-shanghai",
			"LIVEPACK_STATE=dynamodb://livepack-state"),
			`host: LIVEPACK_STATE: stores: state "dynamodb://livepack-state": the FC artifact (built with -tags fc) leaves the DynamoDB backend out`},
		{lambdaBootstrap, "Lambda", nil, "livepack: the Lambda artifact (built with -tags lambda) runs under its cloud's runtime only"},
		{fcBootstrap, "FC", nil, "livepack: the FC artifact (built with -tags fc) runs under its cloud's runtime only"},
	} {
		cmd := exec.Command(tc.bin, "version")
		cmd.Env = append([]string{"HOME=" + t.TempDir()}, tc.env...)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
			t.Fatalf("%s artifact %v: exit %v, want 2: %s", tc.artifact, tc.line, err, out)
		}
		if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], tc.line) {
			t.Fatalf("%s artifact: want one line starting %q, got:\n%s", tc.artifact, tc.line, out)
		}
	}
}
