package config

import (
	"strings"
	"testing"
)

// cloud is the environment every cloud test starts from: a shared store and a sink, the two
// things a cloud function must be told.
func cloud(extra map[string]string) map[string]string {
	m := map[string]string{"LIVEPACK_STATE": "dynamodb://livepack-state", "LIVEPACK_NOTIFY": "https://hooks.example.com/x"}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

// TestStateForms: every LIVEPACK_STATE form is parsed into the fields a backend opens its store
// from, with the Tablestore endpoint derived from the function's region.
func TestStateForms(t *testing.T) {
	tests := []struct {
		name string
		host Host
		env  map[string]string
		want StateSpec
	}{
		{"memory", CLI, map[string]string{"LIVEPACK_STATE": "memory"}, StateSpec{StateKind: StateMemory}},
		{"file", CLI, map[string]string{"LIVEPACK_STATE": "file:/var/lib/lp.db", "LIVEPACK_ENDPOINT": "live.aliyuncs.com"}, StateSpec{StateKind: StateFile, StatePath: "/var/lib/lp.db"}},
		{"redis", FC, map[string]string{"LIVEPACK_STATE": "rediss://u:pw@cache:6380/1"}, StateSpec{StateKind: StateRedis}},
		{"dynamodb table of 3", Lambda, map[string]string{"LIVEPACK_STATE": "dynamodb://a.b", "AWS_REGION": "eu-west-1"},
			StateSpec{StateKind: StateDynamoDB, StateTable: "a.b", StateRegion: "eu-west-1"}},
		{"dynamodb table of 255", Lambda, map[string]string{"LIVEPACK_STATE": "dynamodb://" + strings.Repeat("t", 255), "AWS_REGION": "eu-west-1"},
			StateSpec{StateKind: StateDynamoDB, StateTable: strings.Repeat("t", 255), StateRegion: "eu-west-1"}},
		{"dynamodb on lambda", Lambda, map[string]string{"LIVEPACK_STATE": "dynamodb://livepack-StateTable-1AB2", "AWS_REGION": "eu-west-1"},
			StateSpec{StateKind: StateDynamoDB, StateTable: "livepack-StateTable-1AB2", StateRegion: "eu-west-1"}},
		{"dynamodb with the SDK's endpoint variables", CLI, map[string]string{"LIVEPACK_STATE": "dynamodb://t.1", "LIVEPACK_ENDPOINT": "live.aliyuncs.com", "AWS_DEFAULT_REGION": "us-east-1",
			"AWS_ENDPOINT_URL": "http://127.0.0.1:8000", "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:8001"},
			StateSpec{StateKind: StateDynamoDB, StateTable: "t.1", StateRegion: "us-east-1", StateEndpoint: "http://127.0.0.1:8001"}},
		{"tablestore in the function's region", FC, map[string]string{"LIVEPACK_STATE": "tablestore://lp-prod/livepack_state", "FC_REGION": "cn-hangzhou", "LIVEPACK_REGION": "cn-shanghai"},
			StateSpec{StateKind: StateTablestore, StateInstance: "lp-prod", StateTable: "livepack_state", StateRegion: "cn-hangzhou", StateEndpoint: "https://lp-prod.cn-hangzhou.ots.aliyuncs.com"}},
		{"tablestore, LIVEPACK_REGION off FC", CLI, map[string]string{"LIVEPACK_STATE": "tablestore://lpk/_s", "LIVEPACK_REGION": "ap-southeast-1", "LIVEPACK_ENDPOINT": "live.aliyuncs.com"},
			StateSpec{StateKind: StateTablestore, StateInstance: "lpk", StateTable: "_s", StateRegion: "ap-southeast-1", StateEndpoint: "https://lpk.ap-southeast-1.ots.aliyuncs.com"}},
		{"tablestore, default region", Lambda, map[string]string{"LIVEPACK_STATE": "tablestore://lp0/s"},
			StateSpec{StateKind: StateTablestore, StateInstance: "lp0", StateTable: "s", StateRegion: "cn-shanghai", StateEndpoint: "https://lp0.cn-shanghai.ots.aliyuncs.com"}},
		{"tablestore, explicit endpoint", FC, map[string]string{"LIVEPACK_STATE": "tablestore://lpk/s?endpoint=https://lp.cn-beijing.vpc.tablestore.aliyuncs.com/", "FC_REGION": "cn-beijing"},
			StateSpec{StateKind: StateTablestore, StateInstance: "lpk", StateTable: "s", StateRegion: "cn-beijing", StateEndpoint: "https://lp.cn-beijing.vpc.tablestore.aliyuncs.com"}},
		{"tablestore, an emulator in a test", FC, map[string]string{"LIVEPACK_STATE": "tablestore://lpk/s?endpoint=http://127.0.0.1:9000", "LIVEPACK_INSECURE_ENDPOINT": "1"},
			StateSpec{StateKind: StateTablestore, StateInstance: "lpk", StateTable: "s", StateRegion: "", StateEndpoint: "http://127.0.0.1:9000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := tt.env
			if tt.host != CLI {
				e = cloud(tt.env)
			}
			c, err := FromEnv(tt.host, env(e))
			if err != nil {
				t.Fatal(err)
			}
			if c.StateSpec != tt.want {
				t.Fatalf("got %+v, want %+v", c.StateSpec, tt.want)
			}
			if c.State != tt.env["LIVEPACK_STATE"] {
				t.Fatalf("State %q, want the value as given", c.State)
			}
		})
	}
}

// TestStateRefusals: a malformed value, an unset store in the cloud, and a per-instance store
// in the cloud without LIVEPACK_VOLATILE_STATE=1 are each refused at start with one line
// naming LIVEPACK_STATE (or the switch); a refusal never shows a password.
func TestStateRefusals(t *testing.T) {
	tests := []struct {
		name string
		host Host
		env  map[string]string
		says string
	}{
		{"unset on FC", FC, map[string]string{"LIVEPACK_STATE": ""}, "LIVEPACK_STATE: unset: a cloud function keeps its records in a store every instance shares"},
		{"unset on Lambda", Lambda, map[string]string{"LIVEPACK_STATE": ""}, "LIVEPACK_STATE: unset"},
		{"memory on FC", FC, map[string]string{"LIVEPACK_STATE": "memory"}, "LIVEPACK_STATE: memory keeps records in one instance only"},
		{"file on Lambda", Lambda, map[string]string{"LIVEPACK_STATE": "file:/tmp/s.db"}, "or set LIVEPACK_VOLATILE_STATE=1 to accept that"},
		{"volatile switch", Lambda, map[string]string{"LIVEPACK_STATE": "memory", "LIVEPACK_VOLATILE_STATE": "yes"}, "LIVEPACK_VOLATILE_STATE: want 1"},
		{"dynamodb table of 2", Lambda, map[string]string{"LIVEPACK_STATE": "dynamodb://ab"}, "TABLE 3 to 255"},
		{"dynamodb table of 256", Lambda, map[string]string{"LIVEPACK_STATE": "dynamodb://" + strings.Repeat("t", 256)}, "TABLE 3 to 255"},
		{"dynamodb table with a slash", Lambda, map[string]string{"LIVEPACK_STATE": "dynamodb://a/bc"}, "TABLE 3 to 255"},
		{"tablestore table of 256", FC, map[string]string{"LIVEPACK_STATE": "tablestore://lpk/" + strings.Repeat("s", 256)}, "TABLE is 1 to 255"},
		{"tablestore table starting with a digit", FC, map[string]string{"LIVEPACK_STATE": "tablestore://lpk/1s"}, "TABLE is 1 to 255"},
		{"dynamodb without a table", Lambda, map[string]string{"LIVEPACK_STATE": "dynamodb://"}, "LIVEPACK_STATE: want dynamodb://TABLE"},
		{"dynamodb with a path", Lambda, map[string]string{"LIVEPACK_STATE": "dynamodb://t/x"}, "LIVEPACK_STATE: want dynamodb://TABLE"},
		{"tablestore without a table", FC, map[string]string{"LIVEPACK_STATE": "tablestore://lpk"}, "TABLE is 1 to 255 letters, digits or '_'"},
		{"tablestore table with a hyphen", FC, map[string]string{"LIVEPACK_STATE": "tablestore://lpk/live-state"}, "TABLE is 1 to 255 letters"},
		{"tablestore instance too short", FC, map[string]string{"LIVEPACK_STATE": "tablestore://lp/s"}, "INSTANCE is 3 to 16"},
		{"tablestore with another option", FC, map[string]string{"LIVEPACK_STATE": "tablestore://lpk/s?timeout=5"}, "the only option is endpoint"},
		{"tablestore with a password", FC, map[string]string{"LIVEPACK_STATE": "tablestore://ak:s3cret@lpk/s"}, "LIVEPACK_STATE: want tablestore://"},
		{"tablestore endpoint with a path", FC, map[string]string{"LIVEPACK_STATE": "tablestore://lpk/s?endpoint=https://x.ots.aliyuncs.com/v1"}, "an https:// URL without a path"},
		{"tablestore over plain http in the cloud", FC, map[string]string{"LIVEPACK_STATE": "tablestore://lpk/s?endpoint=http://lp.cn-shanghai.ots.aliyuncs.com"}, "plain http://"},
		{"unknown scheme", FC, map[string]string{"LIVEPACK_STATE": "postgres://u:s3cret@db/x"}, "LIVEPACK_STATE: want memory, file:PATH, redis://HOST:PORT/DB, dynamodb://TABLE or tablestore://INSTANCE/TABLE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := FromEnv(tt.host, env(cloud(tt.env)))
			if err == nil {
				t.Fatal("accepted")
			}
			if lines := strings.Split(err.Error(), "\n"); len(lines) != 1 || !strings.Contains(lines[0], tt.says) {
				t.Fatalf("want one line with %q, got:\n%v", tt.says, err)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("the refusal shows a password: %v", err)
			}
		})
	}
}

// TestVolatileStateOnPurpose: memory or file: in the cloud is accepted with
// LIVEPACK_VOLATILE_STATE=1, with a warning for the start line.
func TestVolatileStateOnPurpose(t *testing.T) {
	for _, v := range []string{"memory", "file:/tmp/s.db"} {
		c, err := FromEnv(FC, env(cloud(map[string]string{"LIVEPACK_STATE": v, "LIVEPACK_VOLATILE_STATE": "1"})))
		if err != nil || !c.VolatileState || c.StateSpec.Shared() || !strings.Contains(c.StateWarning, "lost with it") {
			t.Errorf("LIVEPACK_STATE=%s with LIVEPACK_VOLATILE_STATE=1: %+v %v", v, c, err)
		}
	}
	// On the command line a file store is the default and needs no switch.
	if c, err := FromEnv(CLI, env(map[string]string{"LIVEPACK_ENDPOINT": "live.aliyuncs.com", "LIVEPACK_STATE": "file:/tmp/s.db"})); err != nil || c.StateWarning != "" {
		t.Errorf("CLI file store: %+v %v", c, err)
	}
}

// TestSharedStates: the stores every instance reaches.
func TestSharedStates(t *testing.T) {
	for k, shared := range map[StateKind]bool{StateMemory: false, StateFile: false, StateRedis: true, StateDynamoDB: true, StateTablestore: true} {
		if (StateSpec{StateKind: k}).Shared() != shared {
			t.Errorf("%s: shared %v", k, !shared)
		}
	}
}

// TestNotifyInTheCloud: an unset LIVEPACK_NOTIFY is refused in the cloud with one line naming
// it; none says no sink on purpose, everywhere, and cannot be listed with sinks.
func TestNotifyInTheCloud(t *testing.T) {
	for _, h := range []Host{FC, Lambda} {
		_, err := FromEnv(h, env(cloud(map[string]string{"LIVEPACK_NOTIFY": ""})))
		if err == nil || strings.Count(err.Error(), "\n") != 0 || !strings.HasPrefix(err.Error(), "LIVEPACK_NOTIFY: unset") || !strings.Contains(err.Error(), "set none to run without one on purpose") {
			t.Errorf("%s without LIVEPACK_NOTIFY: %v", h, err)
		}
		c, err := FromEnv(h, env(cloud(map[string]string{"LIVEPACK_NOTIFY": "none"})))
		if err != nil || c.Notify != "" || !c.NotifyNone {
			t.Errorf("%s with LIVEPACK_NOTIFY=none: %+v %v", h, c, err)
		}
		if _, err := FromEnv(h, env(cloud(map[string]string{"LIVEPACK_NOTIFY": "none,https://hooks.example.com/x"}))); err == nil || !strings.HasPrefix(err.Error(), "LIVEPACK_NOTIFY: none means no sink") {
			t.Errorf("%s with none and a sink: %v", h, err)
		}
	}
	if c, err := FromEnv(CLI, env(map[string]string{"LIVEPACK_NOTIFY": "NONE"})); err != nil || c.Notify != "" {
		t.Errorf("CLI with LIVEPACK_NOTIFY=none keeps stdout: %+v %v", c, err)
	}
}

// TestWebhookDomains: space- or comma-separated names or globs, lower-cased; a pattern
// path.Match cannot read is refused naming the variable.
func TestWebhookDomains(t *testing.T) {
	c, err := FromEnv(CLI, env(map[string]string{"LIVEPACK_WEBHOOK_DOMAINS": " *.Example.com, play.example.org  live-?.example.net,"}))
	if err != nil || strings.Join(c.WebhookDomains, "|") != "*.example.com|play.example.org|live-?.example.net" {
		t.Fatalf("%q %v", c.WebhookDomains, err)
	}
	if c, err := FromEnv(CLI, env(nil)); err != nil || c.WebhookDomains != nil {
		t.Fatalf("unset: %q %v", c.WebhookDomains, err)
	}
	for _, bad := range []string{"[a-", "https://play.example.com", "a/b"} {
		if _, err := FromEnv(CLI, env(map[string]string{"LIVEPACK_WEBHOOK_DOMAINS": bad})); err == nil || !strings.HasPrefix(err.Error(), "LIVEPACK_WEBHOOK_DOMAINS:") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
