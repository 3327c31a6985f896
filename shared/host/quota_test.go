package host

import (
	"strings"
	"testing"

	"github.com/livepack/livepack/shared/config"
)

func TestQuotaSafety(t *testing.T) {
	tests := []struct {
		state     string
		instances int
		rate      int
		warn      bool
		want      string
	}{
		{"memory", 0, 250, true, "2 instances x 250 = 500 calls/min already exceed the account quota of 300/min"},
		{"memory", 0, 100, true, "4 instances x 100 = 400 calls/min"},
		{"memory", 5, 250, true, "LIVEPACK_MAX_INSTANCES=5 instances x LIVEPACK_RATE=250 calls/min = 1250 calls/min exceeds the account quota of 300/min"},
		{"memory", 5, 250, true, "lower LIVEPACK_RATE to 60"},
		{"memory", 5, 60, false, "5 instances x 60 calls/min = 300 calls/min, within the account quota of 300/min"},
		{"memory", 1, 250, false, "1 instances x 250 calls/min = 250 calls/min"},
		{"memory", 1, 301, true, "= 301 calls/min exceeds"},
		{"file:/tmp/s.db", 2, 200, true, "= 400 calls/min exceeds"},
		{"redis://r:6379/0", 0, 250, false, "one budget of 250 calls/min shared through Redis"},
		{"rediss://r:6379/0", 50, 250, false, "shared through Redis"},
		{"dynamodb://livepack-state", 10, 250, false, "one budget of 250 calls/min shared through the dynamodb state store by every instance"},
		{"tablestore://livepack/livepack_state", 10, 250, false, "shared through the tablestore state store"},
	}
	for _, tt := range tests {
		spec, err := config.ParseState(tt.state, config.Lambda, func(string) string { return "" })
		if err != nil {
			t.Fatal(err)
		}
		warn, msg := QuotaSafety(config.Config{State: tt.state, StateSpec: spec, MaxInstances: tt.instances, Rate: tt.rate})
		if warn != tt.warn || !strings.Contains(msg, tt.want) {
			t.Errorf("%s, %d instances, rate %d: warn %v %q; want warn %v and %q", tt.state, tt.instances, tt.rate, warn, msg, tt.warn, tt.want)
		}
	}
}
