package probe

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// MPD is the part of a DASH Media Presentation Description the probe checks: no DASH parser is
// on the module proxy, and these few elements are all a packaging check needs.
type MPD struct {
	XMLName xml.Name `xml:"MPD"`
	Type    string   `xml:"type,attr"`
	// The durations as written (xs:duration); the parsed values are the fields below.
	TimeShiftBufferDepthAttr string   `xml:"timeShiftBufferDepth,attr"`
	MaxSegmentDurationAttr   string   `xml:"maxSegmentDuration,attr"`
	MinimumUpdatePeriodAttr  string   `xml:"minimumUpdatePeriod,attr"`
	Profiles                 string   `xml:"profiles,attr"`
	Periods                  []Period `xml:"Period"`

	TimeShiftBufferDepth time.Duration `xml:"-"`
	MaxSegmentDuration   time.Duration `xml:"-"`
	MinimumUpdatePeriod  time.Duration `xml:"-"`
}

// Period is an MPD Period.
type Period struct {
	ID             string          `xml:"id,attr"`
	AdaptationSets []AdaptationSet `xml:"AdaptationSet"`
}

// AdaptationSet is an MPD AdaptationSet; a SegmentTemplate may sit here or on each
// Representation.
type AdaptationSet struct {
	ContentType     string           `xml:"contentType,attr"`
	MimeType        string           `xml:"mimeType,attr"`
	SegmentTemplate *SegmentTemplate `xml:"SegmentTemplate"`
	Representations []Representation `xml:"Representation"`
}

// Representation is an MPD Representation.
type Representation struct {
	ID              string           `xml:"id,attr"`
	MimeType        string           `xml:"mimeType,attr"`
	Codecs          string           `xml:"codecs,attr"`
	SegmentTemplate *SegmentTemplate `xml:"SegmentTemplate"`
}

// SegmentTemplate addresses segments by $Number$ (or $Time$ with a SegmentTimeline).
type SegmentTemplate struct {
	Timescale      uint64           `xml:"timescale,attr"`
	Duration       uint64           `xml:"duration,attr"`
	StartNumber    uint64           `xml:"startNumber,attr"`
	Media          string           `xml:"media,attr"`
	Initialization string           `xml:"initialization,attr"`
	Timeline       *SegmentTimeline `xml:"SegmentTimeline"`
}

// SegmentTimeline lists segments as S elements (t, d, r).
type SegmentTimeline struct {
	S []struct {
		T uint64 `xml:"t,attr"`
		D uint64 `xml:"d,attr"`
		R int64  `xml:"r,attr"`
	} `xml:"S"`
}

// SegmentDuration is the template's segment length: duration/timescale, else the longest
// SegmentTimeline entry; 0 when the template says neither.
func (t SegmentTemplate) SegmentDuration() time.Duration {
	scale := t.Timescale
	if scale == 0 {
		scale = 1
	}
	d := t.Duration
	if d == 0 && t.Timeline != nil {
		for _, s := range t.Timeline.S {
			d = max(d, s.D)
		}
	}
	secs := float64(d) / float64(scale)
	if secs > float64(math.MaxInt64)/float64(time.Second) {
		return 0
	}
	return time.Duration(secs * float64(time.Second))
}

// Templates returns each Representation's effective SegmentTemplate (its own, else its
// AdaptationSet's), and an AdaptationSet's own when it has no Representation.
func (m *MPD) Templates() []SegmentTemplate {
	var out []SegmentTemplate
	for _, p := range m.Periods {
		for _, as := range p.AdaptationSets {
			if len(as.Representations) == 0 && as.SegmentTemplate != nil {
				out = append(out, *as.SegmentTemplate)
			}
			for _, r := range as.Representations {
				switch {
				case r.SegmentTemplate != nil:
					out = append(out, *r.SegmentTemplate)
				case as.SegmentTemplate != nil:
					out = append(out, *as.SegmentTemplate)
				}
			}
		}
	}
	return out
}

// ParseMPD reads an MPD document with encoding/xml; the MPD's durations must be valid
// xs:duration values.
func ParseMPD(data []byte) (*MPD, error) {
	var m MPD
	dec := xml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("probe: MPD: %w", err)
	}
	for _, f := range []struct {
		name, v string
		d       *time.Duration
	}{{"timeShiftBufferDepth", m.TimeShiftBufferDepthAttr, &m.TimeShiftBufferDepth},
		{"maxSegmentDuration", m.MaxSegmentDurationAttr, &m.MaxSegmentDuration},
		{"minimumUpdatePeriod", m.MinimumUpdatePeriodAttr, &m.MinimumUpdatePeriod}} {
		if f.v == "" {
			continue
		}
		d, err := ParseDuration(f.v)
		if err != nil {
			return nil, fmt.Errorf("probe: MPD %s: %w", f.name, err)
		}
		*f.d = d
	}
	return &m, nil
}

// ParseDuration reads an xs:duration as MPDs write them ("PT2S", "PT1M30.5S", "P0DT1H"). Years
// and months have no fixed length and are refused unless zero.
func ParseDuration(s string) (time.Duration, error) {
	bad := fmt.Errorf("%q is not an xs:duration", s)
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), "P")
	if !ok || rest == "" {
		return 0, bad
	}
	date, clock, hasT := strings.Cut(rest, "T")
	if hasT && clock == "" {
		return 0, bad
	}
	var total float64
	read := func(part string, units map[byte]float64, order string) error {
		for part != "" {
			i := strings.IndexAny(part, order)
			if i <= 0 {
				return bad
			}
			unit := part[i]
			n, err := strconv.ParseFloat(part[:i], 64)
			if err != nil || n < 0 || math.IsInf(n, 0) || strings.ContainsAny(part[:i], "eE+-") {
				return bad
			}
			mult, known := units[unit]
			if !known || (mult == 0 && n != 0) {
				return bad
			}
			// Units come in order, each at most once.
			j := strings.IndexByte(order, unit)
			order = order[j+1:]
			total += n * mult
			part = part[i+1:]
		}
		return nil
	}
	if err := read(date, map[byte]float64{'Y': 0, 'M': 0, 'D': 86400}, "YMD"); err != nil {
		return 0, err
	}
	if err := read(clock, map[byte]float64{'H': 3600, 'M': 60, 'S': 1}, "HMS"); err != nil {
		return 0, err
	}
	if total*float64(time.Second) > float64(math.MaxInt64) {
		return 0, errors.New("xs:duration out of range")
	}
	return time.Duration(math.Round(total * float64(time.Second))), nil
}
