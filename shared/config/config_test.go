package config

import (
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	cli, err := FromEnv(CLI, env(nil))
	if err != nil || cli.Endpoint != "" || cli.Notify != "stdout" || cli.State != "memory" || cli.StateWarning != "" || cli.Rate != 250 || cli.Region != "cn-shanghai" || cli.WebhookSecrets != nil {
		t.Fatalf("CLI defaults (embedded emulator: state in memory): %+v %v", cli, err)
	}
	remote, err := FromEnv(CLI, env(map[string]string{"LIVEPACK_ENDPOINT": "http://127.0.0.1:9"}))
	if err != nil || !strings.HasPrefix(remote.State, "file:") {
		t.Fatalf("CLI against an endpoint keeps a file store: %+v %v", remote, err)
	}
	// The embedded emulator's records live and die with it, whatever LIVEPACK_STATE says.
	kept, err := FromEnv(CLI, env(map[string]string{"LIVEPACK_STATE": "file:/tmp/x.db"}))
	if err != nil || kept.State != "memory" || !strings.Contains(kept.StateWarning, "LIVEPACK_STATE is ignored") {
		t.Fatalf("CLI on the embedded emulator with LIVEPACK_STATE set: %+v %v", kept, err)
	}
	for _, h := range []Host{FC, Lambda} {
		c, err := FromEnv(h, env(map[string]string{"LIVEPACK_STATE": "redis://cache:6379/0", "LIVEPACK_NOTIFY": "none"}))
		if err != nil || c.Endpoint != DefaultEndpoint || c.Notify != "" || !c.NotifyNone || c.StateKind != StateRedis || c.StateWarning != "" {
			t.Fatalf("%s defaults: %+v %v", h, c, err)
		}
	}
}

func TestEachBadVariableIsNamed(t *testing.T) {
	tests := map[string]string{
		"LIVEPACK_ENDPOINT":       "ftp://x",
		"LIVEPACK_REGION":         "CN Shanghai",
		"LIVEPACK_POLICIES":       `{"DomainName":"x.com","AppName":"a","StreamName":"s","Protocol":"NOPE"}`,
		"LIVEPACK_WEBHOOK_SECRET": "not-a-secret",
		"LIVEPACK_NOTIFY_SECRET":  "whsec_!!",
		"LIVEPACK_STATE":          "postgres://db",
		"LIVEPACK_RATE":           "0",
		"LIVEPACK_NAMESPACE":      "a{b}",
	}
	for name, value := range tests {
		_, err := FromEnv(CLI, env(map[string]string{name: value}))
		if err == nil || !strings.HasPrefix(err.Error(), name+":") {
			t.Errorf("%s=%q: %v", name, value, err)
		}
	}
	// Every problem at once, one line each.
	all := map[string]string{}
	for k, v := range tests {
		all[k] = v
	}
	_, err := FromEnv(CLI, env(all))
	if lines := strings.Split(err.Error(), "\n"); len(lines) != len(tests) {
		t.Fatalf("%d lines for %d problems:\n%v", len(lines), len(tests), err)
	}
	if strings.Contains(err.Error(), "not-a-secret") {
		t.Fatal("the error shows a secret")
	}
}

func TestRateBounds(t *testing.T) {
	for v, ok := range map[string]bool{"0": false, "1": true, "300": true, "301": true, "100000": true, "-5": false, "x": false} {
		_, err := FromEnv(CLI, env(map[string]string{"LIVEPACK_RATE": v}))
		if (err == nil) != ok {
			t.Errorf("LIVEPACK_RATE=%s: %v", v, err)
		}
	}
}

func TestReserve(t *testing.T) {
	for _, tt := range []struct {
		v    string
		want float64
		ok   bool
	}{
		{"", DefaultReserve, true}, {"0", 0, true}, {"0.25", 0.25, true}, {"30%", 0.3, true}, {"0.9", 0.9, true},
		{"95%", 0, false}, {"1", 0, false}, {"-0.1", 0, false}, {"NaN", 0, false}, {"half", 0, false},
	} {
		c, err := FromEnv(CLI, env(map[string]string{"LIVEPACK_RESERVE": tt.v}))
		if (err == nil) != tt.ok || (tt.ok && c.Reserve != tt.want) {
			t.Errorf("LIVEPACK_RESERVE=%q: %v, %v; want %v (ok %v)", tt.v, c.Reserve, err, tt.want, tt.ok)
		}
		if !tt.ok && (err == nil || !strings.Contains(err.Error(), "LIVEPACK_RESERVE")) {
			t.Errorf("LIVEPACK_RESERVE=%q: the error does not name the variable: %v", tt.v, err)
		}
	}
}

func TestPoliciesFromFileOrInline(t *testing.T) {
	c, err := FromEnv(CLI, env(map[string]string{"LIVEPACK_POLICIES": "../../events/default-policies.json"}))
	if err != nil || len(c.Defaults) != 2 || c.Defaults[0].DomainName != "*.example.com" {
		t.Fatalf("%+v %v", c.Defaults, err)
	}
	c, err = FromEnv(CLI, env(map[string]string{"LIVEPACK_POLICIES": `[{"DomainName":"*","AppName":"*","StreamName":"*","Protocol":"HLS_CMAF"}]`}))
	if err != nil || len(c.Defaults) != 1 {
		t.Fatalf("%+v %v", c.Defaults, err)
	}
}

func TestAccessKeyHidden(t *testing.T) {
	c, err := FromEnv(FC, env(cloud(map[string]string{"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI1", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "topsecret"})))
	if err != nil || c.AccessKey.Secret != "topsecret" {
		t.Fatal(err)
	}
	if s := c.AccessKey.String(); strings.Contains(s, "topsecret") {
		t.Fatalf("String shows the secret: %s", s)
	}
	if _, err := FromEnv(FC, env(cloud(map[string]string{"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI1"}))); err == nil {
		t.Fatal("an id without a secret was accepted")
	}
}

// TestNamespace: LIVEPACK_NAMESPACE is taken as given; unset, it is the function's name and the
// region, so two deployments sharing a Redis get different namespaces.
func TestNamespace(t *testing.T) {
	tests := []struct {
		host Host
		env  map[string]string
		want string
	}{
		{CLI, nil, "cli.cn-shanghai"},
		{CLI, map[string]string{"LIVEPACK_REGION": "ap-southeast-1"}, "cli.ap-southeast-1"},
		{FC, map[string]string{"FC_FUNCTION_NAME": "packager"}, "packager.cn-shanghai"},
		{FC, nil, "livepack.cn-shanghai"},
		{Lambda, map[string]string{"AWS_LAMBDA_FUNCTION_NAME": "lp:prod"}, "lp-prod.cn-shanghai"},
		{Lambda, map[string]string{"AWS_LAMBDA_FUNCTION_NAME": "lp", "LIVEPACK_NAMESPACE": "team-a"}, "team-a"},
		{CLI, map[string]string{"LIVEPACK_NAMESPACE": strings.Repeat("n", 64)}, strings.Repeat("n", 64)},
	}
	for _, tt := range tests {
		e := tt.env
		if tt.host != CLI {
			e = cloud(e)
		}
		c, err := FromEnv(tt.host, env(e))
		if err != nil || c.Namespace != tt.want {
			t.Errorf("%s %v: namespace %q, %v; want %q", tt.host, tt.env, c.Namespace, err, tt.want)
		}
	}
	for _, bad := range []string{strings.Repeat("n", 65), "a:b", "{x}", "a b"} {
		if _, err := FromEnv(CLI, env(map[string]string{"LIVEPACK_NAMESPACE": bad})); err == nil || !strings.HasPrefix(err.Error(), "LIVEPACK_NAMESPACE:") {
			t.Errorf("LIVEPACK_NAMESPACE=%q: %v", bad, err)
		}
	}
}

// TestStateURLs: a Redis URL is checked as the pool reads it, at start, and a refusal never
// shows the password.
func TestStateURLs(t *testing.T) {
	for v, ok := range map[string]bool{
		"redis://cache:6379/0": true, "rediss://user:pw@cache:6380/2": true, "redis://cache": true,
		"redis://:s3cret@cache:6379/x": false, "redis://:s3cret@cache:6379/0?pool_size=5": false, "redis://": false,
	} {
		_, err := FromEnv(FC, env(cloud(map[string]string{"LIVEPACK_STATE": v})))
		if (err == nil) != ok || (err != nil && (!strings.HasPrefix(err.Error(), "LIVEPACK_STATE:") || strings.Contains(err.Error(), "s3cret"))) {
			t.Errorf("LIVEPACK_STATE=%s: %v", v, err)
		}
	}
}

// TestCLINamespaceFollowsEndpointAndAccount: on the command line the default namespace carries a
// digest of the endpoint and the access key id, so a record kept against one emulator or
// account is never replayed against another; the digest reveals neither the key id nor its
// secret, and a bare host and its https:// URL are one endpoint.
func TestCLINamespaceFollowsEndpointAndAccount(t *testing.T) {
	ns := func(e map[string]string) string {
		t.Helper()
		c, err := FromEnv(CLI, env(e))
		if err != nil {
			t.Fatal(err)
		}
		return c.Namespace
	}
	emuA := ns(map[string]string{"LIVEPACK_ENDPOINT": "http://127.0.0.1:9000"})
	emuB := ns(map[string]string{"LIVEPACK_ENDPOINT": "http://127.0.0.1:9001"})
	keyA := ns(map[string]string{"LIVEPACK_ENDPOINT": "live.aliyuncs.com", "ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAIaaaa", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "s1"})
	keyA2 := ns(map[string]string{"LIVEPACK_ENDPOINT": "https://live.aliyuncs.com/", "ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAIaaaa", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "s2"})
	keyB := ns(map[string]string{"LIVEPACK_ENDPOINT": "live.aliyuncs.com", "ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAIbbbb", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "s1"})
	keyAsg := ns(map[string]string{"LIVEPACK_ENDPOINT": "live.ap-southeast-1.aliyuncs.com", "ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAIaaaa", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "s1"})
	roleA := ns(map[string]string{"LIVEPACK_ENDPOINT": "live.aliyuncs.com", "ALIBABA_CLOUD_ROLE_ARN": "acs:ram::1:role/a"})
	roleB := ns(map[string]string{"LIVEPACK_ENDPOINT": "live.aliyuncs.com", "ALIBABA_CLOUD_ROLE_ARN": "acs:ram::1:role/b"})
	profile := ns(map[string]string{"LIVEPACK_ENDPOINT": "live.aliyuncs.com", "ALIBABA_CLOUD_PROFILE": "prod"})
	chain := ns(map[string]string{"LIVEPACK_ENDPOINT": "live.aliyuncs.com"})
	seen := map[string]bool{}
	for _, n := range []string{emuA, emuB, keyA, keyB, keyAsg, roleA, roleB, profile, chain} {
		if !strings.HasPrefix(n, "cli.cn-shanghai.") || len(n) != len("cli.cn-shanghai.")+8 || !namespaceOK(n) {
			t.Errorf("namespace %q: want cli.cn-shanghai.<8 hex digits>", n)
		}
		if strings.Contains(n, "LTAI") || strings.Contains(n, "s1") {
			t.Errorf("namespace %q shows the key", n)
		}
		if seen[n] {
			t.Errorf("namespace %q shared by two endpoints or accounts", n)
		}
		seen[n] = true
	}
	if keyA != keyA2 {
		t.Errorf("one key on one endpoint (its secret rotated, written as a URL) got two namespaces: %s, %s", keyA, keyA2)
	}
	if got := ns(nil); got != "cli.cn-shanghai" {
		t.Errorf("embedded emulator: %q", got)
	}
	long := ns(map[string]string{"LIVEPACK_ENDPOINT": "http://127.0.0.1:9000", "LIVEPACK_REGION": strings.Repeat("r", 70)})
	if len(long) != 64 || !namespaceOK(long) {
		t.Errorf("a long region: %q", long)
	}
}
