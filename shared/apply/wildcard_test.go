package apply_test

import (
	"strings"
	"testing"
	"time"

	"github.com/livepack/livepack/shared/apply"
	"github.com/livepack/livepack/shared/emulator"
	"github.com/livepack/livepack/shared/liveapi"
)

// TestWildcardDelete: a Delete whose AppName or StreamName is `*` removes, on the API, every
// config it matches; livepack refuses it (invalid, naming them, nothing written) when the
// document does not also delete each of them, and otherwise deletes the named configs first and
// announces each deletion.
func TestWildcardDelete(t *testing.T) {
	cfg := func(app, stream string) emulator.PackageConfig {
		return emulator.PackageConfig{DomainName: "play.example.com", AppName: app, StreamName: stream, Protocol: "HLS_CMAF",
			SegmentNum: 3, SegmentDuration: 5, IgnoreTranscode: true}
	}
	seeded := func(o *emulator.Options, _ *liveapi.Options) {
		o.Seed.PackageConfigs = []emulator.PackageConfig{cfg("*", "*"), cfg("sports", "*"), cfg("news", "final")}
	}
	del := func(app, stream string) string {
		return `{"DomainName":"play.example.com","AppName":"` + app + `","StreamName":"` + stream + `","Delete":true}`
	}
	tests := []struct {
		name     string
		doc      string
		outcomes string
		left     int
		writes   int
		notices  int
	}{
		{"alone", `{"policies":[` + del("*", "*") + `]}`, "invalid", 3, 0, 0},
		{"with one other", `{"policies":[` + del("*", "*") + `,` + del("sports", "*") + `]}`, "invalid,skipped", 3, 0, 0},
		{"stream wildcard", `{"policies":[` + del("sports", "*") + `]}`, "deleted", 2, 1, 1},
		{"with all", `{"policies":[` + del("*", "*") + `,` + del("sports", "*") + `,` + del("news", "final") + `]}`, "deleted,deleted,deleted", 0, 3, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil, seeded)
			ps, hash := parse(t, tt.doc)
			res, err := e.engine().Apply(ctxT(t, 20*time.Second), "cms-webhook", "msg_w", hash, ps)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range res.Results {
				got = append(got, r.Outcome)
			}
			if strings.Join(got, ",") != tt.outcomes {
				t.Fatalf("outcomes %v, want %s: %+v", got, tt.outcomes, res.Results)
			}
			if res.Results[0].Outcome == apply.Invalid {
				msg := res.Results[0].Errors[0].Message
				if res.Results[0].Errors[0].Field != "AppName" || !strings.Contains(msg, "news/final") || (tt.name == "alone" && !strings.Contains(msg, "sports/*")) {
					t.Fatalf("the refusal does not name the configs: %+v", res.Results[0].Errors)
				}
			}
			if n := len(e.emu.State().PackageConfigs); n != tt.left || e.writes() != tt.writes {
				t.Fatalf("%d configs left, %d writes; want %d, %d", n, e.writes(), tt.left, tt.writes)
			}
			if _, total, _ := e.recv.counts(); total != tt.notices {
				t.Fatalf("%d notices, want %d", total, tt.notices)
			}
		})
	}
}
