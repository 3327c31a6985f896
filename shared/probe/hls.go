package probe

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/grafov/m3u8"
)

// HLS is what the probe reads from an HLS playlist. grafov/m3u8 parses the classic tags; the
// LL-HLS tags it does not know (it drops them as comments) are read by custom decoders
// registered with it, and so is EXT-X-MAP, which it keeps only once a segment follows.
type HLS struct {
	// Master is set for a master playlist; Variants are its media playlists' URIs.
	Master   bool
	Variants []string
	// Version is EXT-X-VERSION; TargetDuration EXT-X-TARGETDURATION in seconds.
	Version        int
	TargetDuration float64
	MediaSequence  uint64
	// Map is the EXT-X-MAP URI: the fMP4 initialization section, "" for TS.
	Map      string
	Segments []Segment
	// PartTarget is EXT-X-PART-INF's PART-TARGET in seconds, 0 without the tag.
	PartTarget    float64
	Parts         []Part
	ServerControl *ServerControl
	PreloadHint   *PreloadHint
	Closed        bool
}

// Segment is one EXTINF segment.
type Segment struct {
	URI      string
	Duration float64
}

// Part is one EXT-X-PART.
type Part struct {
	URI         string
	Duration    float64
	Independent bool
}

// ServerControl is EXT-X-SERVER-CONTROL (durations in seconds, 0 when absent).
type ServerControl struct {
	CanBlockReload bool
	PartHoldBack   float64
	HoldBack       float64
	CanSkipUntil   float64
}

// PreloadHint is EXT-X-PRELOAD-HINT.
type PreloadHint struct {
	Type, URI string
}

// llTags collects the tags the custom decoders read, in playlist order: grafov keeps one
// custom tag per name, and a playlist has many EXT-X-PART lines.
type llTags struct {
	mapURI        string
	partTarget    float64
	parts         []Part
	serverControl *ServerControl
	hint          *PreloadHint
}

// rawTag is the CustomTag the decoders hand back to grafov: the line as read.
type rawTag struct{ name, line string }

func (t rawTag) TagName() string          { return t.name }
func (t rawTag) Encode() *bytes.Buffer    { return bytes.NewBufferString(t.line) }
func (t rawTag) String() string           { return t.line }
func (t rawTag) attrs() map[string]string { return m3u8.DecodeAttributeList(t.line[len(t.name):]) }

// tagDecoder is a grafov CustomDecoder for one tag, filling llTags.
type tagDecoder struct {
	name   string
	decode func(attrs map[string]string) error
}

func (d tagDecoder) TagName() string  { return d.name }
func (d tagDecoder) SegmentTag() bool { return false }
func (d tagDecoder) Decode(line string) (m3u8.CustomTag, error) {
	t := rawTag{name: d.name, line: line}
	if err := d.decode(t.attrs()); err != nil {
		return t, fmt.Errorf("%s %w", strings.TrimSuffix(d.name, ":"), err)
	}
	return t, nil
}

// seconds reads a decimal-floating-point attribute: finite, not negative.
func seconds(attrs map[string]string, name string, required bool) (float64, error) {
	v, ok := attrs[name]
	if !ok {
		if required {
			return 0, fmt.Errorf("lacks %s", name)
		}
		return 0, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fmt.Errorf("%s=%q is not a duration in seconds", name, v)
	}
	return f, nil
}

func (l *llTags) decoders() []m3u8.CustomDecoder {
	return []m3u8.CustomDecoder{
		tagDecoder{"#EXT-X-MAP:", func(a map[string]string) error {
			if a["URI"] == "" {
				return errors.New("lacks URI")
			}
			if l.mapURI == "" {
				l.mapURI = a["URI"]
			}
			return nil
		}},
		tagDecoder{"#EXT-X-PART-INF:", func(a map[string]string) error {
			f, err := seconds(a, "PART-TARGET", true)
			if err == nil && f == 0 {
				err = errors.New("PART-TARGET is 0")
			}
			l.partTarget = f
			return err
		}},
		tagDecoder{"#EXT-X-PART:", func(a map[string]string) error {
			d, err := seconds(a, "DURATION", true)
			if err != nil {
				return err
			}
			if a["URI"] == "" {
				return errors.New("lacks URI")
			}
			l.parts = append(l.parts, Part{URI: a["URI"], Duration: d, Independent: a["INDEPENDENT"] == "YES"})
			return nil
		}},
		tagDecoder{"#EXT-X-SERVER-CONTROL:", func(a map[string]string) error {
			sc := &ServerControl{CanBlockReload: a["CAN-BLOCK-RELOAD"] == "YES"}
			var err error
			for _, f := range []struct {
				name string
				v    *float64
			}{{"PART-HOLD-BACK", &sc.PartHoldBack}, {"HOLD-BACK", &sc.HoldBack}, {"CAN-SKIP-UNTIL", &sc.CanSkipUntil}} {
				if *f.v, err = seconds(a, f.name, false); err != nil {
					return err
				}
			}
			l.serverControl = sc
			return nil
		}},
		tagDecoder{"#EXT-X-PRELOAD-HINT:", func(a map[string]string) error {
			if a["TYPE"] != "PART" && a["TYPE"] != "MAP" {
				return fmt.Errorf("TYPE=%q is not PART or MAP", a["TYPE"])
			}
			if a["URI"] == "" {
				return errors.New("lacks URI")
			}
			l.hint = &PreloadHint{Type: a["TYPE"], URI: a["URI"]}
			return nil
		}},
	}
}

// ParseHLS reads a master or media playlist. A media playlist's LL-HLS tags are read through
// grafov/m3u8's custom decoders; a malformed one is an error, as is any syntax error grafov
// reports in strict mode.
func ParseHLS(data []byte) (h *HLS, err error) {
	defer func() {
		// A parser fed by the network must not take the process down with it.
		if r := recover(); r != nil {
			h, err = nil, fmt.Errorf("probe: playlist: the parser failed: %v", r)
		}
	}()
	data = dropBlankLines(data)
	pl, typ, err := m3u8.DecodeFrom(bytes.NewReader(data), true)
	if err != nil {
		return nil, fmt.Errorf("probe: playlist: %w", err)
	}
	if typ == m3u8.MASTER {
		master, _ := pl.(*m3u8.MasterPlaylist)
		h := &HLS{Master: true}
		if master != nil {
			for _, v := range master.Variants {
				if v != nil {
					h.Variants = append(h.Variants, v.URI)
				}
			}
		}
		if len(h.Variants) == 0 {
			return nil, errors.New("probe: playlist: a master playlist without variants")
		}
		return h, nil
	}
	media, err := m3u8.NewMediaPlaylist(0, 64)
	if err != nil {
		return nil, fmt.Errorf("probe: playlist: %w", err)
	}
	var ll llTags
	media.WithCustomDecoders(ll.decoders())
	if err := media.DecodeFrom(bytes.NewReader(data), true); err != nil {
		return nil, fmt.Errorf("probe: playlist: %w", err)
	}
	h = &HLS{Version: int(media.Version()), TargetDuration: media.TargetDuration, MediaSequence: media.SeqNo, Map: ll.mapURI,
		PartTarget: ll.partTarget, Parts: ll.parts, ServerControl: ll.serverControl, PreloadHint: ll.hint, Closed: media.Closed}
	for _, s := range media.GetAllSegments() {
		if s != nil {
			h.Segments = append(h.Segments, Segment{URI: s.URI, Duration: s.Duration})
		}
	}
	return h, nil
}

// dropBlankLines removes empty lines: grafov's media playlist decoder reads one (the end of a
// playlist ending in a newline, too) as a URI line, and one after EXT-X-MAP or EXT-X-KEY with
// no segment yet makes it index a segment that does not exist.
func dropBlankLines(data []byte) []byte {
	out := make([]byte, 0, len(data))
	for line := range bytes.Lines(data) {
		if len(bytes.TrimSpace(line)) > 0 {
			out = append(out, line...)
		}
	}
	return bytes.TrimRight(out, "\r\n")
}
