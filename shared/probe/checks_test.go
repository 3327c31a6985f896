package probe

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/livepack/livepack/shared/policy"
)

func testConfigs() []*policy.Config {
	return []*policy.Config{nil,
		{Protocol: policy.HLSCMAF, SegmentNum: 3, SegmentDuration: 5},
		{Protocol: policy.LLHLSCMAF, SegmentNum: 3, SegmentDuration: 1, PartDuration: 350},
		{Protocol: policy.LLHLSTS, SegmentNum: 4, SegmentDuration: 2, PartDuration: 700},
		{Protocol: policy.DASHCMAF, SegmentNum: 5, SegmentDuration: 4},
	}
}

// playlist writes a media playlist of n segments of d seconds from sequence seq.
func playlist(target float64, seq, n int, cmaf bool, extra string) *HLS {
	h := &HLS{TargetDuration: target, MediaSequence: uint64(seq)}
	ext := ".ts"
	if cmaf {
		h.Map, ext = "init.mp4", ".m4s"
	}
	for i := range n {
		h.Segments = append(h.Segments, Segment{URI: fmt.Sprintf("s-%d%s", seq+i, ext), Duration: target})
	}
	_ = extra
	return h
}

func find(checks []Check, name string) Check {
	for _, c := range checks {
		if c.Name == name {
			return c
		}
	}
	return Check{Name: name, Found: "(no such check)"}
}

func TestHLSCheckBoundaries(t *testing.T) {
	p, _ := New(Options{Now: func() time.Time { return time.Unix(1_000_000, 0) }})
	hls := &policy.Config{Protocol: policy.HLSCMAF, SegmentNum: 5, SegmentDuration: 4}
	old := Target{PublishTime: time.Unix(1_000_000-3600, 0)}
	young := Target{PublishTime: time.Unix(1_000_000-10, 0)} // younger than 5 x 4 s
	tests := []struct {
		name  string
		t     Target
		h     *HLS
		check string
		ok    bool
	}{
		{"target duration equal", old, playlist(4, 100, 5, true, ""), "target duration", true},
		{"target duration one off", old, playlist(5, 100, 5, true, ""), "target duration", false},
		{"target duration rounded down", old, playlist(3, 100, 5, true, ""), "target duration", false},
		{"window SegmentNum-2", old, playlist(4, 100, 3, true, ""), "window", false},
		{"window SegmentNum-1", old, playlist(4, 100, 4, true, ""), "window", true},
		{"window SegmentNum", old, playlist(4, 100, 5, true, ""), "window", true},
		{"window SegmentNum+1", old, playlist(4, 100, 6, true, ""), "window", true},
		{"window SegmentNum+2", old, playlist(4, 100, 7, true, ""), "window", false},
		{"window filling at sequence 0", old, playlist(4, 0, 1, true, ""), "window", true},
		{"window filling, young stream", young, playlist(4, 7, 2, true, ""), "window", true},
		{"window never over while filling", young, playlist(4, 0, 7, true, ""), "window", false},
		{"CMAF", old, playlist(4, 100, 5, true, ""), "container", true},
		{"TS where CMAF is configured", old, playlist(4, 100, 5, false, ""), "container", false},
		{"EXT-X-MAP with TS media", old, &HLS{Map: "i.mp4", TargetDuration: 4, Segments: []Segment{{URI: "a.ts"}}}, "container", false},
		{"CMAF with a query on its URIs", old, &HLS{Map: "i.mp4", TargetDuration: 4, Segments: []Segment{{URI: "a.m4s?auth_key=1-2-3-4"}}}, "container", true},
		{"parts on a non-LL config", old, &HLS{Map: "i.mp4", TargetDuration: 4, PartTarget: 1}, "parts", false},
	}
	for _, tt := range tests {
		c := find(p.hlsChecks(tt.t, hls, tt.h), tt.check)
		if c.OK != tt.ok {
			t.Errorf("%s: %s ok=%v, want %v (%s; found %s)", tt.name, c.Name, c.OK, tt.ok, c.Expected, c.Found)
		}
	}
}

func TestPlainHLSChecks(t *testing.T) {
	p, _ := New(Options{})
	if c := find(p.hlsChecks(Target{}, nil, playlist(5, 9, 3, false, "")), "container"); !c.OK || !strings.Contains(c.Expected, "MPEG-TS") {
		t.Fatalf("plain TS: %+v", c)
	}
	if c := find(p.hlsChecks(Target{}, nil, playlist(5, 9, 3, true, "")), "container"); c.OK {
		t.Fatalf("CMAF where plain HLS is expected: %+v", c)
	}
	if c := find(p.hlsChecks(Target{}, nil, &HLS{PartTarget: 0.5}), "parts"); c.OK {
		t.Fatalf("LL-HLS where plain HLS is expected: %+v", c)
	}
}

func TestLowLatencyCheckBoundaries(t *testing.T) {
	p, _ := New(Options{})
	cfg := &policy.Config{Protocol: policy.LLHLSCMAF, SegmentNum: 3, SegmentDuration: 1, PartDuration: 350}
	ll := func(partTarget, holdBack float64, block bool, parts int, hint bool) *HLS {
		h := playlist(1, 50, 3, true, "")
		h.PartTarget = partTarget
		h.ServerControl = &ServerControl{CanBlockReload: block, PartHoldBack: holdBack}
		for i := range parts {
			h.Parts = append(h.Parts, Part{URI: fmt.Sprintf("p%d.m4s", i), Duration: 0.35})
		}
		if hint {
			h.PreloadHint = &PreloadHint{"PART", "next.m4s"}
		}
		return h
	}
	tests := []struct {
		name  string
		h     *HLS
		check string
		ok    bool
	}{
		{"part target exact", ll(0.35, 1.05, true, 3, true), "part target", true},
		{"part target within half a millisecond", ll(0.3504, 1.05, true, 3, true), "part target", true},
		{"part target a millisecond off", ll(0.351, 1.05, true, 3, true), "part target", false},
		{"no PART-INF", ll(0, 1.05, true, 3, true), "part target", false},
		{"hold-back 2 x part target", ll(0.35, 0.7, true, 3, true), "server control", true},
		{"hold-back under 2 x part target", ll(0.35, 0.69, true, 3, true), "server control", false},
		{"blocking reload off", ll(0.35, 1.05, false, 3, true), "server control", false},
		{"no server control", func() *HLS { h := ll(0.35, 1.05, true, 3, true); h.ServerControl = nil; return h }(), "server control", false},
		{"parts and hint", ll(0.35, 1.05, true, 3, true), "parts", true},
		{"no hint", ll(0.35, 1.05, true, 3, false), "parts", false},
		{"no parts", ll(0.35, 1.05, true, 0, true), "parts", false},
		{"only the hint, just published", &HLS{Map: "i.mp4", TargetDuration: 1, PartTarget: 0.35, PreloadHint: &PreloadHint{"PART", "p"}}, "parts", true},
	}
	for _, tt := range tests {
		c := find(p.hlsChecks(Target{}, cfg, tt.h), tt.check)
		if c.OK != tt.ok {
			t.Errorf("%s: %s ok=%v, want %v (%s; found %s)", tt.name, c.Name, c.OK, tt.ok, c.Expected, c.Found)
		}
	}
	// LLHLS_TS wants TS parts.
	ts := &policy.Config{Protocol: policy.LLHLSTS, SegmentNum: 3, SegmentDuration: 2, PartDuration: 700}
	h := playlist(2, 50, 3, false, "")
	h.Parts = []Part{{URI: "p.ts", Duration: 0.7}}
	if c := find(p.hlsChecks(Target{}, ts, h), "container"); !c.OK {
		t.Fatalf("LLHLS_TS with TS parts: %+v", c)
	}
	h.Parts = []Part{{URI: "p.m4s", Duration: 0.7}}
	if c := find(p.hlsChecks(Target{}, ts, h), "container"); c.OK {
		t.Fatalf("LLHLS_TS with fMP4 parts: %+v", c)
	}
}

func TestDASHCheckBoundaries(t *testing.T) {
	cfg := &policy.Config{Protocol: policy.DASHCMAF, SegmentNum: 5, SegmentDuration: 4}
	mpd := func(typ string, segMs uint64, depth time.Duration, media, init string) *MPD {
		return &MPD{Type: typ, TimeShiftBufferDepth: depth, Periods: []Period{{AdaptationSets: []AdaptationSet{{
			SegmentTemplate: &SegmentTemplate{Timescale: 1000, Duration: segMs, Media: media, Initialization: init},
			Representations: []Representation{{ID: "v"}}}}}}}
	}
	tests := []struct {
		name  string
		m     *MPD
		check string
		ok    bool
	}{
		{"dynamic", mpd("dynamic", 4000, 20*time.Second, "v-$Number$.m4s", "i.mp4"), "type", true},
		{"static", mpd("static", 4000, 20*time.Second, "v-$Number$.m4s", "i.mp4"), "type", false},
		{"fMP4 template", mpd("dynamic", 4000, 20*time.Second, "v-$Number$.m4s", "i.mp4"), "container", true},
		{"$Time$ template", mpd("dynamic", 4000, 20*time.Second, "v-$Time$.cmfv", "i.mp4"), "container", true},
		{"no initialization", mpd("dynamic", 4000, 20*time.Second, "v-$Number$.m4s", ""), "container", false},
		{"TS media", mpd("dynamic", 4000, 20*time.Second, "v-$Number$.ts", "i.mp4"), "container", false},
		{"no template", &MPD{Type: "dynamic"}, "container", false},
		{"segment 4 s", mpd("dynamic", 4000, 20*time.Second, "v-$Number$.m4s", "i.mp4"), "target duration", true},
		{"segment 4.5 s", mpd("dynamic", 4500, 20*time.Second, "v-$Number$.m4s", "i.mp4"), "target duration", true},
		{"segment 4.501 s", mpd("dynamic", 4501, 20*time.Second, "v-$Number$.m4s", "i.mp4"), "target duration", false},
		{"segment 3.5 s", mpd("dynamic", 3500, 20*time.Second, "v-$Number$.m4s", "i.mp4"), "target duration", true},
		{"segment 3.499 s", mpd("dynamic", 3499, 20*time.Second, "v-$Number$.m4s", "i.mp4"), "target duration", false},
		{"depth 5 x 4 s", mpd("dynamic", 4000, 20*time.Second, "v-$Number$.m4s", "i.mp4"), "window", true},
		{"depth one segment over", mpd("dynamic", 4000, 24*time.Second, "v-$Number$.m4s", "i.mp4"), "window", true},
		{"depth one segment under", mpd("dynamic", 4000, 16*time.Second, "v-$Number$.m4s", "i.mp4"), "window", true},
		{"depth more than a segment under", mpd("dynamic", 4000, 15*time.Second, "v-$Number$.m4s", "i.mp4"), "window", false},
		{"depth more than a segment over", mpd("dynamic", 4000, 25*time.Second, "v-$Number$.m4s", "i.mp4"), "window", false},
		{"no depth", mpd("dynamic", 4000, 0, "v-$Number$.m4s", "i.mp4"), "window", false},
	}
	for _, tt := range tests {
		c := find(dashChecks(cfg, tt.m), tt.check)
		if c.OK != tt.ok {
			t.Errorf("%s: %s ok=%v, want %v (%s; found %s)", tt.name, c.Name, c.OK, tt.ok, c.Expected, c.Found)
		}
	}
}
