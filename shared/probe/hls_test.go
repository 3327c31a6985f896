package probe

import (
	"strings"
	"testing"
)

const llhlsSample = `#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:1
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.05,HOLD-BACK=3
#EXT-X-PART-INF:PART-TARGET=0.35
#EXT-X-MEDIA-SEQUENCE:40
#EXT-X-MAP:URI="final-init.mp4"
#EXTINF:1.000,
final-40.m4s
#EXT-X-PART:DURATION=0.35,URI="final-41.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.35,URI="final-41.1.m4s"
#EXT-X-PART:DURATION=0.3,URI="final-41.2.m4s"
#EXTINF:1.000,
final-41.m4s
#EXTINF:1.000,
final-42.m4s
#EXT-X-PART:DURATION=0.35,URI="final-43.0.m4s",INDEPENDENT=YES
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="final-43.1.m4s"
`

func TestParseHLSLowLatency(t *testing.T) {
	h, err := ParseHLS([]byte(llhlsSample))
	if err != nil {
		t.Fatal(err)
	}
	if h.Master || h.Version != 9 || h.TargetDuration != 1 || h.MediaSequence != 40 || h.Map != "final-init.mp4" || len(h.Segments) != 3 {
		t.Fatalf("classic tags: %+v", h)
	}
	if h.PartTarget != 0.35 || len(h.Parts) != 4 || !h.Parts[0].Independent || h.Parts[2].Duration != 0.3 || h.Parts[3].URI != "final-43.0.m4s" {
		t.Fatalf("parts: %v %+v", h.PartTarget, h.Parts)
	}
	if sc := h.ServerControl; sc == nil || !sc.CanBlockReload || sc.PartHoldBack != 1.05 || sc.HoldBack != 3 {
		t.Fatalf("server control: %+v", h.ServerControl)
	}
	if h.PreloadHint == nil || *h.PreloadHint != (PreloadHint{"PART", "final-43.1.m4s"}) {
		t.Fatalf("preload hint: %+v", h.PreloadHint)
	}
}

func TestParseHLSMapBeforeAnySegment(t *testing.T) {
	h, err := ParseHLS([]byte("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:5\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-MAP:URI=\"a-init.mp4\"\n"))
	if err != nil || h.Map != "a-init.mp4" || len(h.Segments) != 0 {
		t.Fatalf("%+v %v", h, err)
	}
}

func TestParseHLSMaster(t *testing.T) {
	h, err := ParseHLS([]byte("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=2500000\nhd/final.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=800000\nsd/final.m3u8\n"))
	if err != nil || !h.Master || strings.Join(h.Variants, " ") != "hd/final.m3u8 sd/final.m3u8" {
		t.Fatalf("%+v %v", h, err)
	}
}

func TestParseHLSErrors(t *testing.T) {
	for name, body := range map[string]string{
		"not a playlist":          "<html>",
		"part without duration":   "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-PART:URI=\"a.m4s\"\n",
		"part without URI":        "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-PART:DURATION=0.3\n",
		"negative part target":    "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-PART-INF:PART-TARGET=-1\n",
		"zero part target":        "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-PART-INF:PART-TARGET=0\n",
		"bad hold back":           "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-SERVER-CONTROL:PART-HOLD-BACK=soon\n",
		"hint of another type":    "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-PRELOAD-HINT:TYPE=SEGMENT,URI=\"a\"\n",
		"map without URI":         "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MAP:BYTERANGE=\"1@0\"\n",
		"bad target duration":     "#EXTM3U\n#EXT-X-TARGETDURATION:x\n",
		"master without variants": "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n",
	} {
		if h, err := ParseHLS([]byte(body)); err == nil && !(h.Master && len(h.Variants) > 0) {
			t.Errorf("%s: parsed as %+v", name, h)
		}
	}
}

// FuzzParseHLS: any input parses or fails with an error; a parsed playlist is self-consistent.
func FuzzParseHLS(f *testing.F) {
	f.Add([]byte(llhlsSample))
	f.Add([]byte("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:5\n#EXT-X-MEDIA-SEQUENCE:7\n#EXTINF:5.000,\nfinal-7.ts\n"))
	f.Add([]byte("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n"))
	f.Add([]byte("#EXTM3U\n#EXT-X-MAP:URI=\"i.mp4\",BYTERANGE=\"1@2\"\n#EXT-X-KEY:METHOD=NONE\n#EXT-X-BYTERANGE:10@0\n#EXTINF:1,\na\n#EXT-X-ENDLIST\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseHLS(data)
		if err != nil {
			return
		}
		if h.Master {
			if len(h.Variants) == 0 {
				t.Fatal("a master playlist without variants parsed")
			}
			return
		}
		for _, p := range h.Parts {
			if p.URI == "" || p.Duration < 0 {
				t.Fatalf("part %+v", p)
			}
		}
		if h.PartTarget < 0 || (h.PreloadHint != nil && h.PreloadHint.URI == "") {
			t.Fatalf("%+v", h)
		}
		p, _ := New(Options{})
		for _, cfg := range testConfigs() {
			_ = p.hlsChecks(Target{}, cfg, h)
		}
	})
}
