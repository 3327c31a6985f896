package emulator

import (
	"crypto/md5"
	"crypto/subtle"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// AuthKeyValidity is how long a type-A signed playback URL stays valid after its timestamp,
// the default validity period of Live's URL authentication.
const AuthKeyValidity = 30 * time.Minute

// isPlayback reports a player's manifest request: GET /APP/STREAM.m3u8 or /APP/STREAM.mpd.
func isPlayback(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	return strings.HasSuffix(r.URL.Path, ".m3u8") || strings.HasSuffix(r.URL.Path, ".mpd")
}

// playbackError answers a manifest request that cannot be served, in plain text as a CDN does.
func playbackError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = fmt.Fprintln(w, msg)
}

// servePlayback serves the live manifest of an online stream, with the play domain as the
// Host: HLS (.m3u8) or DASH (.mpd), built from the package config in force at the stream's
// last publish. An unknown host, an offline stream or a protocol the stream's packaging does
// not produce is 404; a bad or expired auth_key on a domain with a PlayAuthKey is 403.
func (s *Server) servePlayback(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	app, file, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	ext := file[strings.LastIndexByte(file, '.')+1:]
	name := strings.TrimSuffix(file, "."+ext)
	if !ok || app == "" || name == "" || strings.Contains(file, "/") {
		playbackError(w, http.StatusNotFound, "not found")
		return
	}
	now := s.now()
	s.mu.Lock()
	s.settle()
	d, derr := s.domain(host)
	var dom Domain
	if derr == nil {
		dom = *d
	}
	st, pkg, found := s.playable(dom.DomainName, app, name)
	s.mu.Unlock()
	if derr != nil || dom.LiveDomainType != "liveVideo" {
		playbackError(w, http.StatusNotFound, "unknown play domain "+host)
		return
	}
	if dom.PlayAuthKey != "" {
		if reason := checkAuthKey(r.URL.Path, r.URL.Query().Get("auth_key"), dom.PlayAuthKey, now); reason != "" {
			playbackError(w, http.StatusForbidden, "auth_key: "+reason)
			return
		}
	}
	if !found {
		playbackError(w, http.StatusNotFound, "stream "+app+"/"+name+" is not online")
		return
	}
	published, err := time.Parse(apiTime, st.PublishTime)
	if err != nil {
		published = now
	}
	elapsed := max(0, now.Sub(published))
	var body []byte
	var contentType string
	switch ext {
	case "m3u8":
		if pkg != nil && pkg.Protocol == "DASH_CMAF" {
			pkg = nil // DASH-only packaging leaves HLS playback as it was
		}
		body, contentType = []byte(hlsPlaylist(name, pkg, elapsed)), "application/vnd.apple.mpegurl"
	case "mpd":
		if pkg == nil || (pkg.Protocol != "DASH_CMAF" && pkg.Protocol != "HLSDASH_CMAF") {
			playbackError(w, http.StatusNotFound, "stream "+app+"/"+name+" is not packaged for DASH")
			return
		}
		body, contentType = dashManifest(name, *pkg, published, now), "application/dash+xml"
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(body)
	}
}

// playable finds an online stream by its playback name, the stream itself or a transcoded
// copy STREAM_TEMPLATE, and the packaging its playback follows: a copy is packaged only when
// the config does not ignore transcoded streams. The caller holds s.mu.
func (s *Server) playable(domain, app, name string) (Stream, *PackageConfig, bool) {
	for _, o := range s.state.OnlineStreams {
		if !strings.EqualFold(o.DomainName, domain) || o.AppName != app {
			continue
		}
		if o.StreamName == name {
			return o, o.Packaging, true
		}
		for _, t := range o.TranscodeTemplates {
			if o.StreamName+"_"+t == name {
				if o.Packaging != nil && o.Packaging.IgnoreTranscode {
					return o, nil, true
				}
				return o, o.Packaging, true
			}
		}
	}
	return Stream{}, nil, false
}

// checkAuthKey verifies URL authentication type A: auth_key=timestamp-rand-uid-md5hash, where
// md5hash is the MD5 of "URI-timestamp-rand-uid-PrivateKey" and the URL expires
// AuthKeyValidity after timestamp. It returns why the key is refused, or "".
func checkAuthKey(uri, authKey, privateKey string, now time.Time) string {
	if authKey == "" {
		return "missing"
	}
	parts := strings.Split(authKey, "-")
	if len(parts) != 4 {
		return "want timestamp-rand-uid-md5hash"
	}
	ts, err := strconv.ParseInt(parts[0], 10, 64)
	if err != nil {
		return "timestamp is not a number"
	}
	sum := md5.Sum([]byte(uri + "-" + parts[0] + "-" + parts[1] + "-" + parts[2] + "-" + privateKey))
	if subtle.ConstantTimeCompare([]byte(hex.EncodeToString(sum[:])), []byte(parts[3])) != 1 {
		return "signature mismatch"
	}
	if now.After(time.Unix(ts, 0).Add(AuthKeyValidity)) {
		return "expired"
	}
	return ""
}

// liveClock is where a live stream stands elapsed after its publish: segments completed
// (numbered from 0) and, for low-latency packaging, parts completed of the segment in
// progress.
type liveClock struct {
	segMs, partMs int64
	complete      int64 // segments completed
	partsDone     int64 // parts completed of segment `complete`
	partsPerSeg   int64
}

func newClock(segSeconds, partMs int, elapsed time.Duration) liveClock {
	c := liveClock{segMs: int64(segSeconds) * 1000, partMs: int64(partMs)}
	ms := elapsed.Milliseconds()
	c.complete = ms / c.segMs
	if c.partMs > 0 {
		c.partsPerSeg = (c.segMs + c.partMs - 1) / c.partMs
		c.partsDone = min((ms%c.segMs)/c.partMs, c.partsPerSeg-1)
	}
	return c
}

// partMsOf is the length of part p of a segment in ms: PartDuration, the last one what is left.
func (c liveClock) partMsOf(p int64) int64 {
	return min(c.partMs, c.segMs-p*c.partMs)
}

// hlsPlaylist builds the media playlist of a stream elapsed after its publish: plain HLS with
// TS segments when no config applies, else per the config's protocol. The window slides with
// wall time: the last SegmentNum completed segments, the media sequence counting from 0 at
// the publish.
func hlsPlaylist(name string, pkg *PackageConfig, elapsed time.Duration) string {
	segNum, segDur, partMs, proto := 3, 5, 0, "TS"
	if pkg != nil {
		segNum, segDur, proto = pkg.SegmentNum, pkg.SegmentDuration, pkg.Protocol
		if lowLatency(proto) {
			partMs = pkg.PartDuration
		}
	}
	fmp4 := pkg != nil && proto != "LLHLS_TS"
	ext := ".ts"
	if fmp4 {
		ext = ".m4s"
	}
	c := newClock(segDur, partMs, elapsed)
	first := max(0, c.complete-int64(segNum))
	var b strings.Builder
	version := 3
	switch {
	case partMs > 0:
		version = 9
	case fmp4:
		version = 7
	}
	fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:%d\n#EXT-X-TARGETDURATION:%d\n", version, segDur)
	if partMs > 0 {
		pt := int64(partMs)
		fmt.Fprintf(&b, "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=%s,HOLD-BACK=%d\n", seconds(3*pt), 3*segDur)
		fmt.Fprintf(&b, "#EXT-X-PART-INF:PART-TARGET=%s\n", seconds(pt))
	}
	fmt.Fprintf(&b, "#EXT-X-MEDIA-SEQUENCE:%d\n", first)
	if fmp4 {
		fmt.Fprintf(&b, "#EXT-X-MAP:URI=\"%s-init.mp4\"\n", name)
	}
	for seq := first; seq < c.complete; seq++ {
		// Parts are listed for the last two completed segments, as a packager keeps them
		// only near the live edge.
		if partMs > 0 && seq >= c.complete-2 {
			for p := int64(0); p < c.partsPerSeg; p++ {
				fmt.Fprintf(&b, "#EXT-X-PART:DURATION=%s,URI=\"%s-%d.%d%s\"%s\n", seconds(c.partMsOf(p)), name, seq, p, ext, independent(p))
			}
		}
		fmt.Fprintf(&b, "#EXTINF:%d.000,\n%s-%d%s\n", segDur, name, seq, ext)
	}
	if partMs > 0 {
		for p := int64(0); p < c.partsDone; p++ {
			fmt.Fprintf(&b, "#EXT-X-PART:DURATION=%s,URI=\"%s-%d.%d%s\"%s\n", seconds(c.partMsOf(p)), name, c.complete, p, ext, independent(p))
		}
		fmt.Fprintf(&b, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"%s-%d.%d%s\"\n", name, c.complete, c.partsDone, ext)
	}
	return b.String()
}

// independent marks a segment's first part, which starts with a key frame.
func independent(p int64) string {
	if p == 0 {
		return ",INDEPENDENT=YES"
	}
	return ""
}

// seconds formats milliseconds as seconds, with no more decimals than needed.
func seconds(ms int64) string {
	return strconv.FormatFloat(float64(ms)/1000, 'f', -1, 64)
}

// mpd is the part of a DASH MPD the emulator writes.
type mpd struct {
	XMLName               xml.Name `xml:"urn:mpeg:dash:schema:mpd:2011 MPD"`
	Profiles              string   `xml:"profiles,attr"`
	Type                  string   `xml:"type,attr"`
	AvailabilityStartTime string   `xml:"availabilityStartTime,attr"`
	PublishTime           string   `xml:"publishTime,attr"`
	MinimumUpdatePeriod   string   `xml:"minimumUpdatePeriod,attr"`
	MinBufferTime         string   `xml:"minBufferTime,attr"`
	TimeShiftBufferDepth  string   `xml:"timeShiftBufferDepth,attr"`
	MaxSegmentDuration    string   `xml:"maxSegmentDuration,attr"`
	Period                mpdPeriod
}

type mpdPeriod struct {
	XMLName        xml.Name `xml:"Period"`
	ID             string   `xml:"id,attr"`
	Start          string   `xml:"start,attr"`
	AdaptationSets []mpdAdaptationSet
}

type mpdAdaptationSet struct {
	XMLName          xml.Name `xml:"AdaptationSet"`
	ID               int      `xml:"id,attr"`
	ContentType      string   `xml:"contentType,attr"`
	MimeType         string   `xml:"mimeType,attr"`
	SegmentAlignment bool     `xml:"segmentAlignment,attr"`
	StartWithSAP     int      `xml:"startWithSAP,attr"`
	Template         mpdSegmentTemplate
	Representation   mpdRepresentation
}

type mpdSegmentTemplate struct {
	XMLName        xml.Name `xml:"SegmentTemplate"`
	Timescale      int      `xml:"timescale,attr"`
	Duration       int      `xml:"duration,attr"`
	StartNumber    int      `xml:"startNumber,attr"`
	Media          string   `xml:"media,attr"`
	Initialization string   `xml:"initialization,attr"`
}

type mpdRepresentation struct {
	XMLName           xml.Name `xml:"Representation"`
	ID                string   `xml:"id,attr"`
	Bandwidth         int      `xml:"bandwidth,attr"`
	Codecs            string   `xml:"codecs,attr"`
	Width             int      `xml:"width,attr,omitempty"`
	Height            int      `xml:"height,attr,omitempty"`
	AudioSamplingRate int      `xml:"audioSamplingRate,attr,omitempty"`
}

// dashManifest builds a live (dynamic) MPD: fMP4 segments of SegmentDuration numbered from 0 at
// the publish, addressed by a $Number$ template, and a time-shift buffer of SegmentNum segments.
func dashManifest(name string, pkg PackageConfig, published, now time.Time) []byte {
	d := pkg.SegmentDuration
	set := func(id int, kind, mime string, rep mpdRepresentation) mpdAdaptationSet {
		return mpdAdaptationSet{ID: id, ContentType: kind, MimeType: mime, SegmentAlignment: true, StartWithSAP: 1,
			Template: mpdSegmentTemplate{Timescale: 1000, Duration: d * 1000, StartNumber: 0,
				Media: name + "-" + kind + "-$Number$.m4s", Initialization: name + "-" + kind + "-init.mp4"},
			Representation: rep}
	}
	m := mpd{Profiles: "urn:mpeg:dash:profile:isoff-live:2011,urn:mpeg:dash:profile:cmaf:2019", Type: "dynamic",
		AvailabilityStartTime: published.UTC().Format(time.RFC3339), PublishTime: now.UTC().Format(time.RFC3339),
		MinimumUpdatePeriod: fmt.Sprintf("PT%dS", d), MinBufferTime: fmt.Sprintf("PT%dS", d),
		TimeShiftBufferDepth: fmt.Sprintf("PT%dS", pkg.SegmentNum*d), MaxSegmentDuration: fmt.Sprintf("PT%dS", d),
		Period: mpdPeriod{ID: "0", Start: "PT0S", AdaptationSets: []mpdAdaptationSet{
			set(0, "video", "video/mp4", mpdRepresentation{ID: "video", Bandwidth: 2500000, Codecs: "avc1.64001f", Width: 1280, Height: 720}),
			set(1, "audio", "audio/mp4", mpdRepresentation{ID: "audio", Bandwidth: 128000, Codecs: "mp4a.40.2", AudioSamplingRate: 48000}),
		}}}
	b, _ := xml.MarshalIndent(m, "", "  ")
	return append([]byte(xml.Header), append(b, '\n')...)
}
