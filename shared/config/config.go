// Package config provides livepack's configuration, read once from the environment at start
// and checked there, so that a bad value fails with one clear line naming the variable instead
// of surfacing mid-invocation.
//
// README.md describes every variable.
package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/livepack/livepack/shared/policy"
	"github.com/livepack/livepack/shared/redisconn"
	"github.com/livepack/livepack/shared/webhooksig"
)

// Host is where the binary runs.
type Host string

// Hosts.
const (
	CLI    Host = "cli"
	FC     Host = "fc"
	Lambda Host = "lambda"
)

// DefaultEndpoint is the Live OpenAPI's public endpoint: it serves the Chinese mainland regions,
// Tokyo, Mumbai and Jakarta.
const DefaultEndpoint = "live.aliyuncs.com"

// DefaultRegion is the RegionId sent when LIVEPACK_REGION is unset.
const DefaultRegion = "cn-shanghai"

// regionEndpoints are the Live OpenAPI endpoints by region, as the endpoints page lists them:
// most regions share the public endpoint; Singapore and Frankfurt have their own.
var regionEndpoints = map[string]string{
	"cn-shanghai":    DefaultEndpoint,
	"cn-beijing":     DefaultEndpoint,
	"cn-shenzhen":    DefaultEndpoint,
	"cn-qingdao":     DefaultEndpoint,
	"ap-northeast-1": DefaultEndpoint, // Tokyo
	"ap-south-1":     DefaultEndpoint, // Mumbai
	"ap-southeast-5": DefaultEndpoint, // Jakarta
	"ap-southeast-1": "live.ap-southeast-1.aliyuncs.com",
	"eu-central-1":   "live.eu-central-1.aliyuncs.com",
}

// RegionEndpoint returns the Live OpenAPI endpoint serving region, and whether one is known.
func RegionEndpoint(region string) (string, bool) {
	ep, ok := regionEndpoints[region]
	return ep, ok
}

// KnownRegions lists the regions RegionEndpoint knows, sorted.
func KnownRegions() []string {
	out := make([]string, 0, len(regionEndpoints))
	for r := range regionEndpoints {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// AccountQuota is the Live API's documented per-account limit, in calls per minute. Accounts
// can have it raised, so LIVEPACK_RATE may exceed it.
const AccountQuota = 300

// DefaultReserve is LIVEPACK_RESERVE's default: the share of each budget the scheduled
// reconcile leaves to interactive triggers.
const DefaultReserve = 0.2

// Config is the validated configuration.
type Config struct {
	Host Host
	// Endpoint is the Live OpenAPI endpoint; empty on the CLI means the embedded emulator. On
	// FC and Lambda it defaults to the endpoint of Region and is never plain HTTP unless
	// InsecureEndpoint is set.
	Endpoint string
	Region   string
	// InsecureEndpoint (LIVEPACK_INSECURE_ENDPOINT=1) lets FC and Lambda use an http://
	// endpoint, for tests against an emulator.
	InsecureEndpoint bool
	// KeepPublishQuery (LIVEPACK_NOTIFY_KEEP_QUERY=1) keeps the query of online streams'
	// publish URLs in notices; by default it is dropped, since it holds the stream's auth_key.
	KeepPublishQuery bool
	// MaxInstances (LIVEPACK_MAX_INSTANCES) is the most instances the platform may run at once
	// (the function's concurrency limit); 0 means unknown. With a per-instance budget, it
	// bounds what the deployment may spend: MaxInstances x Rate.
	MaxInstances int
	// KMSEndpoint (LIVEPACK_KMS_ENDPOINT) overrides the KMS endpoint the FC host reads
	// LIVEPACK_SECRET_NAME from (default: kms.<FC_REGION>.aliyuncs.com).
	KMSEndpoint string
	// SecretName (FC, LIVEPACK_SECRET_NAME) and SecretID (Lambda, LIVEPACK_SECRET_ID) name the
	// secret the host read at start; the host overlays its keys before FromEnv runs.
	SecretName, SecretID string
	// Defaults are the normalized default policies (LIVEPACK_POLICIES).
	Defaults []policy.Policy
	// WebhookSecrets verifies the CMS webhook; nil refuses every request.
	WebhookSecrets *webhooksig.Verifier
	// Notify is the comma-separated sink list; NotifySecret signs generic webhook notices.
	// LIVEPACK_NOTIFY=none leaves it empty on purpose (NotifyNone): in the cloud an unset
	// LIVEPACK_NOTIFY is refused, so that notices are never dropped by an oversight.
	Notify       string
	NotifyNone   bool
	NotifySecret string
	// State is the state store spec as given (LIVEPACK_STATE, or the CLI's default);
	// StateSpec is what it names, parsed for the host's wiring. StateWarning is set when the
	// store cannot deduplicate across instances (memory or file: accepted in the cloud with
	// LIVEPACK_VOLATILE_STATE=1), or when the embedded emulator (the CLI without
	// LIVEPACK_ENDPOINT) overrides LIVEPACK_STATE.
	State string
	StateSpec
	StateWarning string
	// VolatileState (LIVEPACK_VOLATILE_STATE=1) lets FC and Lambda keep their state in memory
	// or a file: on purpose, accepting records lost with the instance.
	VolatileState bool
	// WebhookDomains (LIVEPACK_WEBHOOK_DOMAINS) are the domain globs a CMS webhook document
	// may name; nil means any. A document naming another domain is refused before any call.
	WebhookDomains []string
	// Rate is the Live API calls per minute this deployment may spend.
	Rate int
	// Reserve is the share of Rate the scheduled reconcile leaves to interactive triggers.
	Reserve float64
	// Namespace prefixes every shared key (LIVEPACK_NAMESPACE), so deployments sharing one
	// Redis never share records or quota; DefaultNamespace says how it is derived when unset.
	Namespace string
	// AccessKey is an explicit Alibaba Cloud key (ALIBABA_CLOUD_ACCESS_KEY_ID, _SECRET and
	// optional _SECURITY_TOKEN, possibly from a secret store); empty means the default chain.
	AccessKey AccessKey
	// Playback configures probing what players get (LIVEPACK_PLAY_AUTH_KEY,
	// LIVEPACK_PLAYBACK_BASE, LIVEPACK_PROBE).
	Playback Playback
	// RestartGrace (LIVEPACK_RESTART_GRACE) is how long a stream may await the ingest restart
	// a change asked for before the change's restart-overdue reminder.
	RestartGrace time.Duration
}

// AccessKey is an Alibaba Cloud key pair, with the STS token of a temporary one. Its String
// hides the secret, so a logged Config never leaks it.
type AccessKey struct {
	ID, Secret, SecurityToken string
}

// String names the key without its secret.
func (k AccessKey) String() string {
	if k.ID == "" {
		return "(default chain)"
	}
	return k.ID + " (secret hidden)"
}

// HostFromEnv picks the host the way the runtimes decide whether they are hosted: each SDK
// exits fatally when its variable is missing, so the choice must come first.
func HostFromEnv(getenv func(string) string) Host {
	switch {
	case getenv("FC_RUNTIME_API") != "":
		return FC
	case getenv("AWS_LAMBDA_RUNTIME_API") != "":
		return Lambda
	default:
		return CLI
	}
}

// FromEnv reads and checks every variable. It returns every problem found, one error per
// variable, each naming it.
func FromEnv(host Host, getenv func(string) string) (Config, error) {
	c := Config{Host: host}
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}

	c.Region = strings.TrimSpace(getenv("LIVEPACK_REGION"))
	regionBad := false
	if c.Region == "" {
		c.Region = DefaultRegion
	} else if !regionOK(c.Region) {
		bad("LIVEPACK_REGION", "want a region id such as cn-shanghai, got %q", c.Region)
		regionBad = true
	}

	switch v := strings.TrimSpace(getenv("LIVEPACK_INSECURE_ENDPOINT")); v {
	case "":
	case "1":
		c.InsecureEndpoint = true
	default:
		bad("LIVEPACK_INSECURE_ENDPOINT", "want 1 (allow an http:// endpoint, for testing) or unset, got %q", v)
	}

	c.Endpoint = strings.TrimSpace(getenv("LIVEPACK_ENDPOINT"))
	if c.Endpoint != "" {
		if err := CheckEndpoint(host, c.Endpoint, c.InsecureEndpoint); err != nil {
			bad("LIVEPACK_ENDPOINT", "%v", err)
		}
	} else if host != CLI && !regionBad {
		ep, ok := RegionEndpoint(c.Region)
		if !ok {
			bad("LIVEPACK_REGION", "no Live OpenAPI endpoint is known for region %q (known: %s); set LIVEPACK_ENDPOINT", c.Region, strings.Join(KnownRegions(), ", "))
		}
		c.Endpoint = ep
	}

	switch v := strings.TrimSpace(getenv("LIVEPACK_NOTIFY_KEEP_QUERY")); v {
	case "":
	case "1":
		c.KeepPublishQuery = true
	default:
		bad("LIVEPACK_NOTIFY_KEEP_QUERY", "want 1 (notices keep publish URLs' auth_key query) or unset, got %q", v)
	}

	if v := strings.TrimSpace(getenv("LIVEPACK_MAX_INSTANCES")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			bad("LIVEPACK_MAX_INSTANCES", "want the function's concurrency limit, a whole number from 1, got %q", v)
		} else {
			c.MaxInstances = n
		}
	}

	c.KMSEndpoint = strings.TrimSpace(getenv("LIVEPACK_KMS_ENDPOINT"))
	if err := CheckEndpoint(host, c.KMSEndpoint, c.InsecureEndpoint); c.KMSEndpoint != "" && err != nil {
		bad("LIVEPACK_KMS_ENDPOINT", "%v", err)
	}

	c.SecretName = strings.TrimSpace(getenv("LIVEPACK_SECRET_NAME"))
	c.SecretID = strings.TrimSpace(getenv("LIVEPACK_SECRET_ID"))
	if c.SecretName != "" && host != FC {
		bad("LIVEPACK_SECRET_NAME", "read from KMS Secrets Manager on Function Compute only (on Lambda, LIVEPACK_SECRET_ID)")
	}
	if c.SecretID != "" && host != Lambda {
		bad("LIVEPACK_SECRET_ID", "read from Secrets Manager on Lambda only (on Function Compute, LIVEPACK_SECRET_NAME)")
	}

	if v := strings.TrimSpace(getenv("LIVEPACK_POLICIES")); v != "" {
		ps, err := loadPolicies(v)
		if err != nil {
			bad("LIVEPACK_POLICIES", "%v", err)
		}
		c.Defaults = ps
	}

	if v := strings.TrimSpace(getenv("LIVEPACK_WEBHOOK_SECRET")); v != "" {
		ver, err := webhooksig.NewVerifier(v)
		if err != nil {
			bad("LIVEPACK_WEBHOOK_SECRET", "%v", err)
		}
		c.WebhookSecrets = ver
	}

	c.Notify = strings.TrimSpace(getenv("LIVEPACK_NOTIFY"))
	switch {
	case strings.EqualFold(c.Notify, "none"):
		c.Notify, c.NotifyNone = "", true
	case c.Notify == "" && host == CLI:
		c.Notify = "stdout"
	case c.Notify == "":
		bad("LIVEPACK_NOTIFY", "unset: a cloud function sends its restart-ingest notices to sinks (http(s)://… or a DingTalk robot URL, comma-separated); set none to run without one on purpose (each result still carries its notices)")
	case hasItem(c.Notify, "none"):
		bad("LIVEPACK_NOTIFY", "none means no sink and cannot be listed with sinks")
	}
	c.NotifySecret = strings.TrimSpace(getenv("LIVEPACK_NOTIFY_SECRET"))
	if c.NotifySecret != "" {
		if _, err := webhooksig.NewVerifier(c.NotifySecret); err != nil {
			bad("LIVEPACK_NOTIFY_SECRET", "%v", err)
		}
	}

	volatileBad := false
	switch v := strings.TrimSpace(getenv("LIVEPACK_VOLATILE_STATE")); v {
	case "":
	case "1":
		c.VolatileState = true
	default:
		volatileBad = true
		bad("LIVEPACK_VOLATILE_STATE", "want 1 (keep a cloud function's state in memory or a file, lost with the instance) or unset, got %q", v)
	}

	c.State = strings.TrimSpace(getenv("LIVEPACK_STATE"))
	switch {
	case host == CLI && c.Endpoint == "":
		// The embedded emulator lives for one command and starts from its seed: records kept
		// beyond it would replay changes the next emulator never saw.
		if _, err := ParseState(c.State, host, getenv); c.State != "" && c.State != "memory" && err == nil {
			c.StateWarning = "LIVEPACK_STATE is ignored on the embedded emulator: its state lives and dies with the emulator; set LIVEPACK_ENDPOINT to keep records in " + redisconn.Redact(c.State)
		} else if c.State != "" && err != nil {
			bad("LIVEPACK_STATE", "%v", err)
		}
		c.State = "memory"
	case c.State == "" && host == CLI:
		dir, err := os.UserCacheDir()
		if err != nil {
			dir = os.TempDir()
		}
		c.State = "file:" + filepath.Join(dir, "livepack", "state.db")
	case c.State == "":
		bad("LIVEPACK_STATE", "unset: a cloud function keeps its records in a store every instance shares: dynamodb://TABLE, tablestore://INSTANCE/TABLE or redis://HOST:PORT/DB (the templates set it)")
	}
	if c.State == "" {
		// Refused above.
	} else if spec, err := ParseState(c.State, host, getenv); err != nil {
		bad("LIVEPACK_STATE", "%v", err)
	} else {
		c.StateSpec = spec
		if host != CLI && !spec.Shared() {
			if !c.VolatileState && !volatileBad {
				bad("LIVEPACK_STATE", "%s keeps records in one instance only, lost when it stops, so retries and other instances apply and announce changes again: use dynamodb://TABLE, tablestore://INSTANCE/TABLE or redis://HOST:PORT/DB, or set LIVEPACK_VOLATILE_STATE=1 to accept that", spec.StateKind)
			} else if c.VolatileState {
				c.StateWarning = "LIVEPACK_STATE=" + string(spec.StateKind) + " with LIVEPACK_VOLATILE_STATE=1: records live in this instance only and are lost with it; other instances and retries may apply and announce a change again"
			}
		}
	}

	if v := strings.TrimSpace(getenv("LIVEPACK_WEBHOOK_DOMAINS")); v != "" {
		globs, err := parseDomainGlobs(v)
		if err != nil {
			bad("LIVEPACK_WEBHOOK_DOMAINS", "%v", err)
		}
		c.WebhookDomains = globs
	}

	c.Namespace = strings.TrimSpace(getenv("LIVEPACK_NAMESPACE"))
	if c.Namespace == "" {
		c.Namespace = DefaultNamespace(host, c.Region, getenv)
	} else if !namespaceOK(c.Namespace) {
		bad("LIVEPACK_NAMESPACE", "want 1 to 64 letters, digits, '.', '_' or '-', got %q", c.Namespace)
	}

	c.AccessKey = AccessKey{ID: strings.TrimSpace(getenv("ALIBABA_CLOUD_ACCESS_KEY_ID")),
		Secret: strings.TrimSpace(getenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET")), SecurityToken: strings.TrimSpace(getenv("ALIBABA_CLOUD_SECURITY_TOKEN"))}
	if (c.AccessKey.ID == "") != (c.AccessKey.Secret == "") {
		bad("ALIBABA_CLOUD_ACCESS_KEY_ID", "set it together with ALIBABA_CLOUD_ACCESS_KEY_SECRET, or neither")
	}

	c.Rate = 250
	if v := strings.TrimSpace(getenv("LIVEPACK_RATE")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			bad("LIVEPACK_RATE", "want calls per minute, at least 1 (the account quota is %d unless raised), got %q", AccountQuota, v)
		} else {
			c.Rate = n
		}
	}
	c.Playback = playbackFromEnv(getenv, bad)
	c.RestartGrace = restartGraceFromEnv(getenv, bad)
	c.Reserve = DefaultReserve
	if v := strings.TrimSpace(getenv("LIVEPACK_RESERVE")); v != "" {
		if r, err := parseShare(v); err != nil {
			bad("LIVEPACK_RESERVE", "%v", err)
		} else {
			c.Reserve = r
		}
	}
	return c, errors.Join(errs...)
}

// DefaultNamespace is the namespace of a deployment that sets no LIVEPACK_NAMESPACE: the
// function's name (FC_FUNCTION_NAME on Function Compute, AWS_LAMBDA_FUNCTION_NAME on Lambda,
// "cli" on the command line) and the Live region, joined by a dot, with any other character
// replaced by '-'. Two functions of one account and region cannot share a name, so they never
// share keys. The command line has no such name and is pointed at many endpoints and accounts
// in turn, so with LIVEPACK_ENDPOINT set its namespace also carries a digest of the endpoint
// and the account (AccountDigest): a record kept against one emulator or account is never
// replayed against another.
func DefaultNamespace(host Host, region string, getenv func(string) string) string {
	ns := functionNamespace(host, region, getenv)
	if host == CLI {
		if ep := strings.TrimSpace(getenv("LIVEPACK_ENDPOINT")); ep != "" {
			ns = ns[:min(len(ns), 64-9)] + "." + AccountDigest(ep, getenv)
		}
	}
	return ns
}

// AccountDigest identifies an endpoint and the account the CLI signs for there, in 8 hex
// digits of SHA-256, without revealing either: the endpoint (a bare host and its https:// URL
// are one endpoint) and the access key id (ALIBABA_CLOUD_ACCESS_KEY_ID), never its secret; with
// no key id, what picks the credentials instead: the emulator's key pair on a plain-HTTP
// endpoint, else ALIBABA_CLOUD_ROLE_ARN, ALIBABA_CLOUD_PROFILE or the default chain.
func AccountDigest(endpoint string, getenv func(string) string) string {
	ep := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(endpoint)), "/")
	ep = strings.TrimPrefix(ep, "https://")
	account := "key:" + strings.TrimSpace(getenv("ALIBABA_CLOUD_ACCESS_KEY_ID"))
	switch {
	case account != "key:":
	case isPlainHTTP(ep):
		account = "emulator"
	case strings.TrimSpace(getenv("ALIBABA_CLOUD_ROLE_ARN")) != "":
		account = "role:" + strings.TrimSpace(getenv("ALIBABA_CLOUD_ROLE_ARN"))
	case strings.TrimSpace(getenv("ALIBABA_CLOUD_PROFILE")) != "":
		account = "profile:" + strings.TrimSpace(getenv("ALIBABA_CLOUD_PROFILE"))
	default:
		account = "default-chain"
	}
	sum := sha256.Sum256([]byte(ep + "\x00" + account))
	return hex.EncodeToString(sum[:4])
}

func functionNamespace(host Host, region string, getenv func(string) string) string {
	name := "cli"
	switch host {
	case FC:
		name = getenv("FC_FUNCTION_NAME")
	case Lambda:
		name = getenv("AWS_LAMBDA_FUNCTION_NAME")
	}
	if strings.TrimSpace(name) == "" {
		name = "livepack"
	}
	ns := []rune(strings.TrimSpace(name) + "." + region)
	for i, ch := range ns {
		if !nsChar(ch) {
			ns[i] = '-'
		}
	}
	if len(ns) > 64 {
		ns = ns[:64]
	}
	return string(ns)
}

func nsChar(ch rune) bool {
	return ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '.' || ch == '_' || ch == '-'
}

// namespaceOK keeps a namespace free of Redis's separators and hash-tag braces.
func namespaceOK(ns string) bool {
	if len(ns) == 0 || len(ns) > 64 {
		return false
	}
	for _, ch := range ns {
		if !nsChar(ch) {
			return false
		}
	}
	return true
}

// parseShare reads a share of the budget as a fraction ("0.2") or a percentage ("20%"), from 0
// to 0.9: the scheduled reconcile keeps at least a tenth.
func parseShare(v string) (float64, error) {
	num, pct := strings.CutSuffix(v, "%")
	f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if pct {
		f /= 100
	}
	if err != nil || f < 0 || f > 0.9 || f != f {
		return 0, fmt.Errorf("want a share from 0 to 0.9 (or 0%% to 90%%), got %q", v)
	}
	return f, nil
}

func checkEndpoint(v string) error {
	const want = "want a host such as live.aliyuncs.com, an https:// URL, or http://HOST:PORT (an emulator)"
	if strings.Contains(v, "://") {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") ||
			u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("%s, got %q", want, redisconn.Redact(v))
		}
		return nil
	}
	if strings.ContainsAny(v, "/ ?#@") {
		return fmt.Errorf("%s, got %q", want, redisconn.Redact(v))
	}
	return nil
}

// CheckEndpoint checks an endpoint variable's value for host: a host name or an http(s) URL
// without path, and on FC and Lambda never plain http:// unless insecure (the testing switch),
// since the cloud hosts sign with the function's real credentials and over plain HTTP the
// request, its STS token included, would travel in clear.
func CheckEndpoint(host Host, v string, insecure bool) error {
	if err := checkEndpoint(v); err != nil {
		return err
	}
	if host != CLI && isPlainHTTP(v) && !insecure {
		return fmt.Errorf("%q is plain http:// and would send the function's credentials in clear; use https:// or a bare host (LIVEPACK_INSECURE_ENDPOINT=1 allows it for testing)", v)
	}
	return nil
}

// isPlainHTTP reports an http:// endpoint (a bare host means HTTPS).
func isPlainHTTP(v string) bool {
	return len(v) >= len("http://") && strings.EqualFold(v[:len("http://")], "http://")
}

func regionOK(r string) bool {
	for _, ch := range r {
		if !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '-') {
			return false
		}
	}
	return true
}

// hasItem reports whether the comma-separated list holds item (case-insensitively).
func hasItem(list, item string) bool {
	for _, it := range strings.Split(list, ",") {
		if strings.EqualFold(strings.TrimSpace(it), item) {
			return true
		}
	}
	return false
}

// parseDomainGlobs reads LIVEPACK_WEBHOOK_DOMAINS: domain names or globs (path.Match syntax,
// as default policies name domains), separated by spaces or commas.
func parseDomainGlobs(v string) ([]string, error) {
	var out []string
	for _, g := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
		g = strings.ToLower(g)
		if _, err := path.Match(g, ""); err != nil || strings.ContainsAny(g, "/:") {
			return nil, fmt.Errorf("want domain names or globs such as *.example.com, separated by spaces or commas; %q is not one", g)
		}
		out = append(out, g)
	}
	return out, nil
}

// loadPolicies reads LIVEPACK_POLICIES: inline JSON when it starts like JSON, else a path.
func loadPolicies(v string) ([]policy.Policy, error) {
	data := []byte(v)
	if !strings.HasPrefix(v, "{") && !strings.HasPrefix(v, "[") {
		b, err := os.ReadFile(v)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", v, err)
		}
		data = b
	}
	doc, err := policy.Parse(data)
	if err != nil {
		return nil, err
	}
	return doc.Policies, nil
}
