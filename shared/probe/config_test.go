package probe

import (
	"testing"

	"github.com/livepack/livepack/shared/liveapi"
)

func TestInForce(t *testing.T) {
	all := []liveapi.PackageConfig{
		{AppName: "*", StreamName: "*", Protocol: "HLS_CMAF"},
		{AppName: "*", StreamName: "final", Protocol: "DASH_CMAF"},
		{AppName: "sports", StreamName: "*", Protocol: "LLHLS_CMAF"},
		{AppName: "sports", StreamName: "final", Protocol: "HLSDASH_CMAF"},
	}
	tests := []struct {
		configs     []liveapi.PackageConfig
		app, stream string
		want        string
	}{
		{all, "sports", "final", "HLSDASH_CMAF"},
		{all, "sports", "semi", "LLHLS_CMAF"},
		{all, "news", "final", "DASH_CMAF"},
		{all, "news", "evening", "HLS_CMAF"},
		{all[:1], "news", "evening", "HLS_CMAF"},
		{all[2:3], "news", "evening", ""},
		{nil, "news", "evening", ""},
	}
	for _, tt := range tests {
		cfg, ok := InForce(tt.configs, tt.app, tt.stream)
		if ok != (tt.want != "") || cfg.Protocol != tt.want {
			t.Errorf("%s/%s of %d configs: %q %v, want %q", tt.app, tt.stream, len(tt.configs), cfg.Protocol, ok, tt.want)
		}
	}
}
