package probe

import (
	"testing"
	"time"
)

const mpdSample = `<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011" type="dynamic"
     minimumUpdatePeriod="PT4S" timeShiftBufferDepth="PT20S" maxSegmentDuration="PT4S">
  <Period id="0" start="PT0S">
    <AdaptationSet contentType="video" mimeType="video/mp4">
      <SegmentTemplate timescale="90000" duration="360000" startNumber="1" media="v-$Number$.m4s" initialization="v-init.mp4"/>
      <Representation id="hd" bandwidth="2500000" codecs="avc1.64001f"/>
      <Representation id="sd" bandwidth="800000" codecs="avc1.4d401e">
        <SegmentTemplate timescale="1000" media="sd-$Time$.m4s" initialization="sd-init.mp4">
          <SegmentTimeline><S t="0" d="3990" r="2"/><S d="4010"/></SegmentTimeline>
        </SegmentTemplate>
      </Representation>
    </AdaptationSet>
  </Period>
</MPD>`

func TestParseMPD(t *testing.T) {
	m, err := ParseMPD([]byte(mpdSample))
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != "dynamic" || m.TimeShiftBufferDepth != 20*time.Second || m.MaxSegmentDuration != 4*time.Second || m.MinimumUpdatePeriod != 4*time.Second {
		t.Fatalf("%+v", m)
	}
	ts := m.Templates()
	if len(ts) != 2 || ts[0].Media != "v-$Number$.m4s" || ts[0].SegmentDuration() != 4*time.Second || ts[1].SegmentDuration() != 4010*time.Millisecond {
		t.Fatalf("templates: %+v", ts)
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"PT2S", 2 * time.Second, true},
		{"PT0.35S", 350 * time.Millisecond, true},
		{"PT1M30.5S", 90500 * time.Millisecond, true},
		{"P1DT1H", 25 * time.Hour, true},
		{"P0Y0M0DT0H0M15.000S", 15 * time.Second, true},
		{"PT", 0, false},
		{"P", 0, false},
		{"2S", 0, false},
		{"P1M", 0, false}, // a month has no fixed length
		{"PT1S2M", 0, false},
		{"PT-1S", 0, false},
		{"PT1e3S", 0, false},
		{"PT1H1H", 0, false},
		{"PT99999999999999999S", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("%q: %v %v, want %v ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestParseMPDErrors(t *testing.T) {
	for name, body := range map[string]string{
		"not XML":       "#EXTM3U",
		"another root":  `<Period/>`,
		"bad duration":  `<MPD type="dynamic" timeShiftBufferDepth="20 seconds"/>`,
		"bad timescale": `<MPD><Period><AdaptationSet><SegmentTemplate timescale="x"/></AdaptationSet></Period></MPD>`,
	} {
		if m, err := ParseMPD([]byte(body)); err == nil {
			t.Errorf("%s: parsed as %+v", name, m)
		}
	}
}

// FuzzParseMPD: any input parses or fails with an error, and a parsed MPD's durations are
// never negative.
func FuzzParseMPD(f *testing.F) {
	f.Add([]byte(mpdSample))
	f.Add([]byte(`<MPD type="static" timeShiftBufferDepth="P0DT0H0M6S"><Period/></MPD>`))
	f.Add([]byte(`<MPD><Period><AdaptationSet><SegmentTemplate timescale="0" duration="18446744073709551615"/></AdaptationSet></Period></MPD>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseMPD(data)
		if err != nil {
			return
		}
		if m.TimeShiftBufferDepth < 0 || m.MaxSegmentDuration < 0 || m.MinimumUpdatePeriod < 0 {
			t.Fatalf("negative duration: %+v", m)
		}
		for _, ts := range m.Templates() {
			if ts.SegmentDuration() < 0 {
				t.Fatalf("negative segment duration: %+v", ts)
			}
		}
		for _, cfg := range testConfigs() {
			if cfg != nil {
				_ = dashChecks(cfg, m)
			}
		}
	})
}
