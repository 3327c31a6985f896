package probe

import (
	"fmt"
	"math"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/livepack/livepack/shared/policy"
)

// Tolerances of the checks.
const (
	// WindowSlack is how many segments the window may hold more or fewer than SegmentNum: at
	// the live edge a packager lists one more while the next segment is cut, or one fewer
	// just after dropping the oldest. While the window is still filling after a publish
	// (media sequence 0, or a stream younger than the window) fewer are fine.
	WindowSlack = 1
	// PartTargetSlack is how far PART-TARGET may be from PartDuration/1000 (a millisecond:
	// the playlist writes seconds with three decimals).
	PartTargetSlack = 0.0005
	// DASHDurationSlack is how far a DASH segment duration may be from SegmentDuration (HLS
	// target durations are whole seconds, compared exactly).
	DASHDurationSlack = 500 * time.Millisecond
)

// uriExt is the extension of a segment URI's path, lower case (".ts", ".m4s").
func uriExt(uri string) string {
	if u, err := url.Parse(uri); err == nil {
		uri = u.Path
	}
	return strings.ToLower(path.Ext(uri))
}

// fmp4Ext reports an fMP4/CMAF media extension.
func fmp4Ext(ext string) bool {
	switch ext {
	case ".m4s", ".mp4", ".m4a", ".m4v", ".cmfv", ".cmfa", ".cmft", ".cmf":
		return true
	}
	return false
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// filling reports a window that may still be filling: the first segment since the publish is
// still listed, or the stream is younger than the window.
func (p *Prober) filling(t Target, mediaSequence uint64, window time.Duration) bool {
	return mediaSequence == 0 || (!t.PublishTime.IsZero() && p.o.Now().Sub(t.PublishTime) < window)
}

// windowCheck compares a window of n segments with want, WindowSlack either side (or fewer while
// filling).
func windowCheck(kind string, n, want int, filling bool) Check {
	c := Check{Manifest: kind, Name: "window", Expected: fmt.Sprintf("%d segments (±%d)", want, WindowSlack), Found: fmt.Sprintf("%d segments", n)}
	c.OK = n >= want-WindowSlack && n <= want+WindowSlack
	if !c.OK && filling && n < want {
		c.OK, c.Found = true, c.Found+" (filling since the publish)"
	}
	return c
}

// checkHLS compares a media playlist with cfg (nil: plain HLS with TS segments).
func (p *Prober) checkHLS(t Target, cfg *policy.Config, body []byte) ([]Check, error) {
	h, err := ParseHLS(body)
	if err != nil {
		return nil, err
	}
	if h.Master {
		return nil, fmt.Errorf("a master playlist whose variant is a master playlist too")
	}
	return p.hlsChecks(t, cfg, h), nil
}

// hlsChecks is checkHLS on a parsed playlist.
func (p *Prober) hlsChecks(t Target, cfg *policy.Config, h *HLS) []Check {
	var checks []Check
	add := func(c Check) { c.Manifest = "hls"; checks = append(checks, c) }

	// Container: fMP4 (CMAF) needs EXT-X-MAP and fMP4 media; TS neither.
	exts := map[string]bool{}
	for _, s := range h.Segments {
		exts[uriExt(s.URI)] = true
	}
	for _, pt := range h.Parts {
		exts[uriExt(pt.URI)] = true
	}
	var list []string
	for e := range exts {
		list = append(list, e)
	}
	slices.Sort(list)
	media := "media " + strings.Join(list, ",")
	if len(list) == 0 {
		media = "no segments yet"
	}
	found := "no EXT-X-MAP, " + media
	if h.Map != "" {
		found = "EXT-X-MAP " + h.Map + ", " + media
	}
	wantCMAF := cfg != nil && cfg.Protocol != policy.LLHLSTS
	c := Check{Name: "container", Found: found}
	if wantCMAF {
		c.Expected = "fMP4 (CMAF): EXT-X-MAP, .m4s media"
		c.OK = h.Map != ""
		for e := range exts {
			c.OK = c.OK && fmp4Ext(e)
		}
	} else {
		c.Expected = "MPEG-TS: no EXT-X-MAP, .ts media"
		c.OK = h.Map == ""
		for e := range exts {
			c.OK = c.OK && e == ".ts"
		}
	}
	add(c)
	if cfg == nil {
		add(Check{Name: "parts", Expected: "none (no LL-HLS)", Found: partsFound(h), OK: h.PartTarget == 0 && len(h.Parts) == 0})
		return checks
	}

	// Target duration: EXT-X-TARGETDURATION is a whole number of seconds.
	add(Check{Name: "target duration", Expected: fmt.Sprintf("%d s", cfg.SegmentDuration), Found: num(h.TargetDuration) + " s",
		OK: h.TargetDuration == float64(cfg.SegmentDuration)})

	window := time.Duration(cfg.SegmentNum*cfg.SegmentDuration) * time.Second
	add(windowCheck("hls", len(h.Segments), cfg.SegmentNum, p.filling(t, h.MediaSequence, window)))

	if !policy.IsLowLatency(cfg.Protocol) {
		add(Check{Name: "parts", Expected: "none (not LL-HLS)", Found: partsFound(h), OK: h.PartTarget == 0 && len(h.Parts) == 0})
		return checks
	}
	want := float64(cfg.PartDuration) / 1000
	add(Check{Name: "part target", Expected: "PART-TARGET=" + num(want), Found: "PART-TARGET=" + num(h.PartTarget),
		OK: h.PartTarget > 0 && math.Abs(h.PartTarget-want) <= PartTargetSlack})
	sc := Check{Name: "server control", Expected: fmt.Sprintf("CAN-BLOCK-RELOAD=YES, PART-HOLD-BACK ≥ %s (2 × PART-TARGET)", num(2*want)), Found: "none"}
	if s := h.ServerControl; s != nil {
		sc.Found = fmt.Sprintf("CAN-BLOCK-RELOAD=%s, PART-HOLD-BACK=%s", map[bool]string{true: "YES", false: "NO"}[s.CanBlockReload], num(s.PartHoldBack))
		sc.OK = s.CanBlockReload && s.PartHoldBack >= 2*want-PartTargetSlack
	}
	add(sc)
	// Parts: the ones near the live edge, and the hint of the next. A stream that has not
	// finished its first part has only the hint.
	pc := Check{Name: "parts", Expected: "EXT-X-PART lines and an EXT-X-PRELOAD-HINT", Found: partsFound(h)}
	pc.OK = h.PreloadHint != nil && (len(h.Parts) > 0 || (len(h.Segments) == 0 && h.MediaSequence == 0))
	add(pc)
	return checks
}

func partsFound(h *HLS) string {
	s := fmt.Sprintf("%d parts", len(h.Parts))
	if h.PartTarget > 0 {
		s = "PART-TARGET=" + num(h.PartTarget) + ", " + s
	}
	if h.PreloadHint != nil {
		s += ", preload hint " + h.PreloadHint.Type
	}
	return s
}

// checkDASH compares an MPD with cfg; a DASH manifest is fetched only for DASH_CMAF and
// HLSDASH_CMAF.
func (p *Prober) checkDASH(cfg *policy.Config, body []byte) ([]Check, error) {
	m, err := ParseMPD(body)
	if err != nil {
		return nil, err
	}
	return dashChecks(cfg, m), nil
}

// dashChecks is checkDASH on a parsed MPD.
func dashChecks(cfg *policy.Config, m *MPD) []Check {
	var checks []Check
	add := func(c Check) { c.Manifest = "dash"; checks = append(checks, c) }
	add(Check{Name: "type", Expected: "dynamic (live)", Found: orNone(m.Type), OK: m.Type == "dynamic"})

	ts := m.Templates()
	c := Check{Name: "container", Expected: "fMP4 (CMAF): SegmentTemplate with initialization and $Number$ .m4s media",
		Found: fmt.Sprintf("%d segment templates", len(ts)), OK: len(ts) > 0}
	var longest time.Duration
	for _, t := range ts {
		ok := t.Initialization != "" && (strings.Contains(t.Media, "$Number") || strings.Contains(t.Media, "$Time")) && fmp4Ext(uriExt(strings.NewReplacer("$", "").Replace(t.Media)))
		if !ok {
			c.OK, c.Found = false, fmt.Sprintf("media %q, initialization %q", t.Media, t.Initialization)
		}
		longest = max(longest, t.SegmentDuration())
	}
	if c.OK {
		c.Found = fmt.Sprintf("%d segment templates, media %s", len(ts), ts[0].Media)
	}
	add(c)

	want := time.Duration(cfg.SegmentDuration) * time.Second
	seg := longest
	if seg == 0 {
		seg = m.MaxSegmentDuration
	}
	add(Check{Name: "target duration", Expected: fmt.Sprintf("%d s", cfg.SegmentDuration), Found: num(seg.Seconds()) + " s",
		OK: seg > 0 && absDur(seg-want) <= DASHDurationSlack})
	wantDepth := time.Duration(cfg.SegmentNum) * want
	add(Check{Name: "window", Expected: fmt.Sprintf("timeShiftBufferDepth %s (%d × %d s, ±%d segment)", num(wantDepth.Seconds())+" s", cfg.SegmentNum, cfg.SegmentDuration, WindowSlack),
		Found: "timeShiftBufferDepth " + num(m.TimeShiftBufferDepth.Seconds()) + " s",
		OK:    m.TimeShiftBufferDepth > 0 && absDur(m.TimeShiftBufferDepth-wantDepth) <= time.Duration(WindowSlack)*want})
	return checks
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
