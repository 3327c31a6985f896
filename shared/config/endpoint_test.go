package config

import (
	"strings"
	"testing"
)

// TestEndpointByHostAndRegion: the endpoint a host ends up with, from LIVEPACK_REGION,
// LIVEPACK_ENDPOINT and LIVEPACK_INSECURE_ENDPOINT; refusals name the variable at fault.
func TestEndpointByHostAndRegion(t *testing.T) {
	tests := []struct {
		name                       string
		host                       Host
		region, endpoint, insecure string
		want                       string // the endpoint, or the variable an error names
		wantErr                    bool
	}{
		{"cloud default", FC, "", "", "", "live.aliyuncs.com", false},
		{"Shanghai", Lambda, "cn-shanghai", "", "", "live.aliyuncs.com", false},
		{"Beijing", FC, "cn-beijing", "", "", "live.aliyuncs.com", false},
		{"Tokyo", FC, "ap-northeast-1", "", "", "live.aliyuncs.com", false},
		{"Mumbai", FC, "ap-south-1", "", "", "live.aliyuncs.com", false},
		{"Jakarta", FC, "ap-southeast-5", "", "", "live.aliyuncs.com", false},
		{"Singapore", FC, "ap-southeast-1", "", "", "live.ap-southeast-1.aliyuncs.com", false},
		{"Frankfurt", Lambda, "eu-central-1", "", "", "live.eu-central-1.aliyuncs.com", false},
		{"endpoint overrides region", FC, "ap-southeast-1", "live.aliyuncs.com", "", "live.aliyuncs.com", false},
		{"https URL", Lambda, "", "https://live.eu-central-1.aliyuncs.com", "", "https://live.eu-central-1.aliyuncs.com", false},
		{"unknown region, no endpoint", FC, "us-west-1", "", "", "LIVEPACK_REGION", true},
		{"unknown region, endpoint given", FC, "us-west-1", "live.us-west-1.aliyuncs.com", "", "live.us-west-1.aliyuncs.com", false},
		{"plain http on FC", FC, "", "http://127.0.0.1:8080", "", "LIVEPACK_ENDPOINT", true},
		{"plain http on Lambda", Lambda, "", "HTTP://127.0.0.1:8080", "", "LIVEPACK_ENDPOINT", true},
		{"plain http allowed for testing", FC, "", "http://127.0.0.1:8080", "1", "http://127.0.0.1:8080", false},
		{"testing switch with another value", Lambda, "", "http://127.0.0.1:8080", "true", "LIVEPACK_INSECURE_ENDPOINT", true},
		{"plain http on the CLI", CLI, "", "http://127.0.0.1:8080", "", "http://127.0.0.1:8080", false},
		{"CLI without endpoint: embedded emulator", CLI, "ap-southeast-1", "", "", "", false},
		{"credentials in the URL", FC, "", "https://user:pw@live.aliyuncs.com", "", "LIVEPACK_ENDPOINT", true},
		{"a path", FC, "", "https://live.aliyuncs.com/x", "", "LIVEPACK_ENDPOINT", true},
		{"another scheme", FC, "", "ftp://live.aliyuncs.com", "", "LIVEPACK_ENDPOINT", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := FromEnv(tc.host, env(cloud(map[string]string{"LIVEPACK_REGION": tc.region, "LIVEPACK_ENDPOINT": tc.endpoint,
				"LIVEPACK_INSECURE_ENDPOINT": tc.insecure})))
			if tc.wantErr {
				if err == nil || !strings.HasPrefix(err.Error(), tc.want+":") {
					t.Fatalf("want a line naming %s, got %v", tc.want, err)
				}
				if strings.Contains(err.Error(), "pw@") {
					t.Fatalf("the error shows the URL's password: %v", err)
				}
				return
			}
			if err != nil || c.Endpoint != tc.want {
				t.Fatalf("endpoint %q, err %v; want %q", c.Endpoint, err, tc.want)
			}
		})
	}
}

// TestSecretVariablesPerCloud: each cloud reads its own secret store; the other's variable is
// a configuration mistake, not something to ignore.
func TestSecretVariablesPerCloud(t *testing.T) {
	for _, tc := range []struct {
		host Host
		name string
		ok   bool
	}{
		{FC, "LIVEPACK_SECRET_NAME", true}, {Lambda, "LIVEPACK_SECRET_NAME", false}, {CLI, "LIVEPACK_SECRET_NAME", false},
		{Lambda, "LIVEPACK_SECRET_ID", true}, {FC, "LIVEPACK_SECRET_ID", false}, {CLI, "LIVEPACK_SECRET_ID", false},
	} {
		_, err := FromEnv(tc.host, env(cloud(map[string]string{tc.name: "livepack"})))
		if tc.ok != (err == nil) || (err != nil && !strings.HasPrefix(err.Error(), tc.name+":")) {
			t.Errorf("%s=livepack on %s: %v", tc.name, tc.host, err)
		}
	}
}
