package config

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/livepack/livepack/shared/redisconn"
)

// StateKind names the backend LIVEPACK_STATE selects.
type StateKind string

// The state backends (DESIGN §10).
const (
	// StateMemory lives and dies with the process.
	StateMemory StateKind = "memory"
	// StateFile is a bbolt file on one machine (StatePath).
	StateFile StateKind = "file"
	// StateRedis is a Redis (or TLS rediss://) server every instance reaches.
	StateRedis StateKind = "redis"
	// StateDynamoDB is a DynamoDB table (StateTable) in the function's AWS region.
	StateDynamoDB StateKind = "dynamodb"
	// StateTablestore is an Alibaba Cloud Tablestore table (StateInstance, StateTable) at
	// StateEndpoint.
	StateTablestore StateKind = "tablestore"
)

// StateSpec is LIVEPACK_STATE parsed into what a backend needs to open its store, so the host
// wires a backend from fields instead of parsing the URL again.
type StateSpec struct {
	StateKind StateKind
	// StatePath is the bbolt file of a file: store.
	StatePath string
	// StateTable is the DynamoDB or Tablestore table.
	StateTable string
	// StateInstance is the Tablestore instance.
	StateInstance string
	// StateEndpoint is the Tablestore endpoint: the ?endpoint= of LIVEPACK_STATE, else the
	// instance's public endpoint in StateRegion (https://INSTANCE.REGION.ots.aliyuncs.com).
	// For DynamoDB it is informational: AWS_ENDPOINT_URL_DYNAMODB, else AWS_ENDPOINT_URL,
	// which the AWS SDK reads itself; empty means the region's endpoint.
	StateEndpoint string
	// StateRegion is the store's region: for Tablestore FC_REGION (the function's region),
	// else LIVEPACK_REGION; for DynamoDB AWS_REGION, else AWS_DEFAULT_REGION (empty: the AWS
	// SDK's own chain decides).
	StateRegion string
}

// Shared reports whether every instance of a deployment reaches the same store, so that event
// keys, notices and (through the store) the quota are shared. Memory and file: stores are not.
func (s StateSpec) Shared() bool {
	switch s.StateKind {
	case StateRedis, StateDynamoDB, StateTablestore:
		return true
	}
	return false
}

var (
	// Tablestore: an instance name is 3 to 16 letters, digits and hyphens, starting with a
	// letter and not ending with a hyphen; a table name is letters, digits and underscores,
	// not starting with a digit, at most 255.
	tablestoreInstance = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]{1,14}[A-Za-z0-9]$`)
	tablestoreTable    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// DynamoDB: a table name is 3 to 255 letters, digits, '_', '-' and '.'.
	dynamoTable = regexp.MustCompile(`^[A-Za-z0-9_.-]*$`)
)

// The lengths are checked apart from the patterns: a counted repetition such as {3,255}
// compiles to one instruction per count, which cost every cold start a millisecond.
const maxTableName = 255

const stateForms = "memory, file:PATH, redis://HOST:PORT/DB, dynamodb://TABLE or tablestore://INSTANCE/TABLE[?endpoint=https://…]"

// ParseState checks a LIVEPACK_STATE value as the backend will read it and returns its parts.
// host decides whether a plain-http:// Tablestore endpoint is allowed (the CLI, or
// LIVEPACK_INSECURE_ENDPOINT=1 for tests); getenv supplies the regions and the AWS SDK's
// endpoint variables. It says nothing about whether the store suits the host: FromEnv does.
// A refusal never shows a password.
func ParseState(v string, host Host, getenv func(string) string) (StateSpec, error) {
	switch {
	case v == "memory":
		return StateSpec{StateKind: StateMemory}, nil
	case strings.HasPrefix(v, "file:") && len(v) > len("file:"):
		return StateSpec{StateKind: StateFile, StatePath: strings.TrimPrefix(v, "file:")}, nil
	case strings.HasPrefix(v, "redis://") || strings.HasPrefix(v, "rediss://"):
		// The URL is checked as the pool will read it; the pool dials nothing yet.
		p, err := redisconn.New(v, redisconn.Options{})
		if err != nil {
			return StateSpec{}, err
		}
		return StateSpec{StateKind: StateRedis}, p.Close()
	case strings.HasPrefix(v, "dynamodb://"):
		return parseDynamoDB(v, getenv)
	case strings.HasPrefix(v, "tablestore://"):
		return parseTablestore(v, host, getenv)
	}
	return StateSpec{}, fmt.Errorf("want %s, got %q", stateForms, redisconn.Redact(v))
}

func parseDynamoDB(v string, getenv func(string) string) (StateSpec, error) {
	table := strings.TrimPrefix(v, "dynamodb://")
	if len(table) < 3 || len(table) > maxTableName || !dynamoTable.MatchString(table) {
		return StateSpec{}, fmt.Errorf("want dynamodb://TABLE, TABLE 3 to 255 letters, digits, '_', '-' or '.', got %q", v)
	}
	s := StateSpec{StateKind: StateDynamoDB, StateTable: table}
	s.StateRegion = firstSet(getenv, "AWS_REGION", "AWS_DEFAULT_REGION")
	s.StateEndpoint = firstSet(getenv, "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL")
	return s, nil
}

func parseTablestore(v string, host Host, getenv func(string) string) (StateSpec, error) {
	const want = "want tablestore://INSTANCE/TABLE or tablestore://INSTANCE/TABLE?endpoint=https://INSTANCE.REGION.ots.aliyuncs.com"
	u, err := url.Parse(v)
	if err != nil || u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return StateSpec{}, fmt.Errorf("%s (no credentials in it: the function's role or key signs), got %q", want, redisconn.Redact(v))
	}
	instance, table := u.Host, strings.TrimPrefix(u.Path, "/")
	if !tablestoreInstance.MatchString(instance) {
		return StateSpec{}, fmt.Errorf("%s: INSTANCE is 3 to 16 letters, digits or '-', starting with a letter, got %q", want, instance)
	}
	if table == "" || len(table) > maxTableName || !tablestoreTable.MatchString(table) {
		return StateSpec{}, fmt.Errorf("%s: TABLE is 1 to 255 letters, digits or '_', not starting with a digit, got %q", want, table)
	}
	s := StateSpec{StateKind: StateTablestore, StateInstance: instance, StateTable: table}
	q := u.Query()
	for k := range q {
		if k != "endpoint" {
			return StateSpec{}, fmt.Errorf("%s: the only option is endpoint, got %q", want, k)
		}
	}
	if ep := q.Get("endpoint"); ep != "" {
		eu, err := url.Parse(ep)
		if err != nil || (eu.Scheme != "https" && eu.Scheme != "http") || eu.Host == "" || (eu.Path != "" && eu.Path != "/") || eu.RawQuery != "" || eu.User != nil {
			return StateSpec{}, fmt.Errorf("%s: endpoint is an https:// URL without a path, got %q", want, ep)
		}
		if err := CheckEndpoint(host, ep, strings.TrimSpace(getenv("LIVEPACK_INSECURE_ENDPOINT")) == "1"); err != nil {
			return StateSpec{}, fmt.Errorf("endpoint: %w", err)
		}
		s.StateEndpoint = strings.TrimSuffix(ep, "/")
		s.StateRegion = firstSet(getenv, "FC_REGION", "LIVEPACK_REGION")
		return s, nil
	}
	region := firstSet(getenv, "FC_REGION", "LIVEPACK_REGION")
	if region == "" {
		region = DefaultRegion
	}
	if !regionOK(region) {
		return StateSpec{}, fmt.Errorf("the Tablestore endpoint follows the region, and %q is not one; add ?endpoint=https://…", region)
	}
	s.StateRegion = region
	s.StateEndpoint = "https://" + instance + "." + region + ".ots.aliyuncs.com"
	return s, nil
}

// firstSet returns the first of the variables that is set, trimmed.
func firstSet(getenv func(string) string, names ...string) string {
	for _, n := range names {
		if v := strings.TrimSpace(getenv(n)); v != "" {
			return v
		}
	}
	return ""
}
