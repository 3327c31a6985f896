package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"
)

// apiTime is the API's time format: UTC, second resolution (PublishTime, StopTime, StartTime).
const apiTime = "2006-01-02T15:04:05Z"

// Publish is one ingest of a stream, as DescribeLiveStreamsPublishList reports it: StopTime is
// empty while the stream is still being pushed.
type Publish struct {
	DomainName  string `json:"DomainName"`
	AppName     string `json:"AppName"`
	StreamName  string `json:"StreamName"`
	PublishURL  string `json:"PublishUrl"`
	PublishTime string `json:"PublishTime"`
	StopTime    string `json:"StopTime,omitempty"`
	// TranscodeTemplates are the stream's transcoding templates while it was pushed: the
	// listing shows one transcoded copy per template.
	TranscodeTemplates []string `json:"TranscodeTemplates,omitempty"`
}

// Stream actions of POST /_emulator/streams.
const (
	StreamStart   = "start"
	StreamStop    = "stop"
	StreamRestart = "restart"
)

// StreamChange is the body of POST /_emulator/streams: an encoder starting, stopping or
// restarting its push of one stream.
type StreamChange struct {
	Action     string `json:"action"`
	DomainName string `json:"DomainName"`
	AppName    string `json:"AppName"`
	StreamName string `json:"StreamName"`
	// PublishURL is the ingest URL on start (default rtmp://push.DOMAIN/APP/STREAM with the
	// play domain's first label replaced); restart keeps the stream's.
	PublishURL string `json:"PublishUrl,omitempty"`
	// TranscodeTemplates on start gives the stream transcoded copies; restart keeps them.
	TranscodeTemplates []string `json:"TranscodeTemplates,omitempty"`
}

// Errors of ChangeStream, told apart by POST /_emulator/streams' status.
var (
	ErrStreamOnline  = errors.New("emulator: the stream is already online")
	ErrStreamOffline = errors.New("emulator: the stream is not online")
)

// seedStreams gives each seeded online stream the config that matches it now (as if it had
// started publishing after the seed's configs were made) and its open publish record.
func (s *Server) seedStreams(seed Seed) {
	s.state.PublishHistory = append([]Publish{}, seed.PublishHistory...)
	for i := range s.state.OnlineStreams {
		st := &s.state.OnlineStreams[i]
		if st.Packaging == nil {
			st.Packaging = s.packagingFor(st.DomainName, st.AppName, st.StreamName)
		}
		s.state.PublishHistory = append(s.state.PublishHistory, Publish{DomainName: st.DomainName, AppName: st.AppName,
			StreamName: st.StreamName, PublishURL: st.PublishURL, PublishTime: st.PublishTime, TranscodeTemplates: st.TranscodeTemplates})
	}
}

// packagingFor returns a copy of the config that applies to a stream, the most specific one
// first: app and stream named, then the app's `*`, then `*` apps naming the stream, then
// `*`/`*`. nil when none applies. The caller holds s.mu.
func (s *Server) packagingFor(domain, app, stream string) *PackageConfig {
	best, rank := -1, 0
	for i, c := range s.state.PackageConfigs {
		if !strings.EqualFold(c.DomainName, domain) {
			continue
		}
		r := 0
		switch {
		case c.AppName == app && c.StreamName == stream:
			r = 4
		case c.AppName == app && c.StreamName == "*":
			r = 3
		case c.AppName == "*" && c.StreamName == stream:
			r = 2
		case c.AppName == "*" && c.StreamName == "*":
			r = 1
		}
		if r > rank {
			best, rank = i, r
		}
	}
	if best < 0 {
		return nil
	}
	c := s.state.PackageConfigs[best]
	return &c
}

// onlineIndex finds an online stream; the caller holds s.mu.
func (s *Server) onlineIndex(domain, app, stream string) int {
	for i, o := range s.state.OnlineStreams {
		if strings.EqualFold(o.DomainName, domain) && o.AppName == app && o.StreamName == stream {
			return i
		}
	}
	return -1
}

// closePublish records StopTime on the stream's open publish record; the caller holds s.mu.
func (s *Server) closePublish(domain, app, stream, at string) {
	for i := len(s.state.PublishHistory) - 1; i >= 0; i-- {
		p := &s.state.PublishHistory[i]
		if strings.EqualFold(p.DomainName, domain) && p.AppName == app && p.StreamName == stream && p.StopTime == "" {
			p.StopTime = at
			return
		}
	}
}

// ChangeStream starts, stops or restarts a stream's push, as an encoder would: start and
// restart set PublishTime to now and record the package config that matches the stream now
// (its playback follows that config until the next restart); stop takes the stream offline
// and records StopTime. It returns the stream as the change left it.
func (s *Server) ChangeStream(ch StreamChange) (Publish, error) {
	domain, app, stream := strings.TrimSpace(ch.DomainName), strings.TrimSpace(ch.AppName), strings.TrimSpace(ch.StreamName)
	if domain == "" || app == "" || stream == "" {
		return Publish{}, errors.New("emulator: DomainName, AppName and StreamName are required")
	}
	if !nameRule().MatchString(app) || !nameRule().MatchString(stream) || app == "*" || stream == "*" {
		return Publish{}, fmt.Errorf("emulator: %q/%q is not an app and stream name", app, stream)
	}
	now := s.now().UTC().Format(apiTime)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settle()
	d, aerr := s.domain(domain)
	if aerr != nil {
		return Publish{}, fmt.Errorf("emulator: domain %s: %w", domain, aerr)
	}
	if d.LiveDomainType != "liveVideo" {
		return Publish{}, fmt.Errorf("emulator: %s is an ingest domain: streams are listed under their play domain", d.DomainName)
	}
	i := s.onlineIndex(d.DomainName, app, stream)
	switch ch.Action {
	case StreamStart:
		if i >= 0 {
			return Publish{}, fmt.Errorf("%w: %s/%s/%s", ErrStreamOnline, d.DomainName, app, stream)
		}
		pub := ch.PublishURL
		if pub == "" {
			pub = "rtmp://" + ingestHost(d.DomainName) + "/" + app + "/" + stream
		}
		st := Stream{DomainName: d.DomainName, AppName: app, StreamName: stream, PublishURL: pub, PublishTime: now,
			TranscodeTemplates: ch.TranscodeTemplates, Packaging: s.packagingFor(d.DomainName, app, stream)}
		s.state.OnlineStreams = append(s.state.OnlineStreams, st)
		p := Publish{DomainName: st.DomainName, AppName: app, StreamName: stream, PublishURL: pub, PublishTime: now, TranscodeTemplates: st.TranscodeTemplates}
		s.state.PublishHistory = append(s.state.PublishHistory, p)
		return p, nil
	case StreamStop, StreamRestart:
		if i < 0 {
			return Publish{}, fmt.Errorf("%w: %s/%s/%s", ErrStreamOffline, d.DomainName, app, stream)
		}
		st := s.state.OnlineStreams[i]
		s.closePublish(st.DomainName, app, stream, now)
		if ch.Action == StreamStop {
			s.state.OnlineStreams = append(s.state.OnlineStreams[:i], s.state.OnlineStreams[i+1:]...)
			return Publish{DomainName: st.DomainName, AppName: app, StreamName: stream, PublishURL: st.PublishURL,
				PublishTime: st.PublishTime, StopTime: now, TranscodeTemplates: st.TranscodeTemplates}, nil
		}
		st.PublishTime = now
		st.Packaging = s.packagingFor(st.DomainName, app, stream)
		s.state.OnlineStreams[i] = st
		p := Publish{DomainName: st.DomainName, AppName: app, StreamName: stream, PublishURL: st.PublishURL, PublishTime: now, TranscodeTemplates: st.TranscodeTemplates}
		s.state.PublishHistory = append(s.state.PublishHistory, p)
		return p, nil
	}
	return Publish{}, fmt.Errorf("emulator: action %q is not start, stop or restart", ch.Action)
}

// ingestHost names a default ingest domain for a play domain: push.example.com for
// play.example.com.
func ingestHost(play string) string {
	if _, rest, ok := strings.Cut(play, "."); ok && strings.Contains(rest, ".") {
		return "push." + rest
	}
	return "push." + play
}

// serveStreams is POST /_emulator/streams.
func (s *Server) serveStreams(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "POST a stream change"})
		return
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
	dec.DisallowUnknownFields()
	var ch StreamChange
	if err := dec.Decode(&ch); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body: " + err.Error()})
		return
	}
	p, err := s.ChangeStream(ch)
	var aerr *apiError
	switch {
	case err == nil:
		s.log.Info("stream changed", "action", ch.Action, "stream", p.DomainName+"/"+p.AppName+"/"+p.StreamName, "publishTime", p.PublishTime)
		writeJSON(w, http.StatusOK, p)
	case errors.Is(err, ErrStreamOnline):
		writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
	case errors.Is(err, ErrStreamOffline), errors.As(err, &aerr):
		writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
	default:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
	}
}

// listed is one row of the stream listings: a raw stream or one of its transcoded copies.
type listed struct {
	Publish
	transcodeID string
}

// expand lists a stream and its transcoded copies (named STREAM_TEMPLATE, as the API names a
// transcoded stream) under streamType: all, raw or trans.
func expand(p Publish, streamType string) []listed {
	var out []listed
	if streamType != "trans" {
		out = append(out, listed{Publish: p})
	}
	if streamType != "raw" {
		for _, t := range p.TranscodeTemplates {
			c := p
			c.StreamName = p.StreamName + "_" + t
			c.TranscodeTemplates = nil
			out = append(out, listed{Publish: c, transcodeID: t})
		}
	}
	return out
}

// nameMatch is QueryType: fuzzy (the default) matches a part of the name, strict all of it.
func nameMatch(name, want, queryType string) bool {
	if want == "" {
		return true
	}
	if queryType == "strict" {
		return name == want
	}
	return strings.Contains(name, want)
}

// listFilters reads the parameters both stream listings share.
func listFilters(req *request, defaultType string) (streamType, queryType string, err *apiError) {
	streamType, queryType = req.params.Get("StreamType"), req.params.Get("QueryType")
	if streamType == "" {
		streamType = defaultType
	}
	if streamType != "all" && streamType != "raw" && streamType != "trans" {
		return "", "", badParam("InvalidParams", "StreamType %q is not all, raw or trans", streamType)
	}
	if queryType != "" && queryType != "fuzzy" && queryType != "strict" {
		return "", "", badParam("InvalidParams", "QueryType %q is not fuzzy or strict", queryType)
	}
	return streamType, queryType, nil
}

// onlineList is DescribeLiveStreamsOnlineList: the online streams of a domain, with their
// transcoded copies unless StreamType is raw; OnlyStream=yes answers only the names and
// PublishTime.
func (s *Server) onlineList(req *request) (map[string]any, *apiError) {
	domain := trimmed(req.params.Get("DomainName"))
	if domain == "" {
		return nil, badParam("MissingParam", "DomainName is mandatory for this action")
	}
	num, size, err := page(req, "PageNum", "PageSize", 2000, 1, 3000)
	if err != nil {
		return nil, err
	}
	streamType, queryType, err := listFilters(req, "all")
	if err != nil {
		return nil, err
	}
	only := req.params.Get("OnlyStream")
	if only != "" && only != "yes" && only != "no" {
		return nil, badParam("InvalidParams", "OnlyStream %q is not yes or no", only)
	}
	app, stream := req.params.Get("AppName"), req.params.Get("StreamName")
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.domain(domain); err != nil {
		return nil, err
	}
	all := []map[string]any{}
	for _, o := range s.state.OnlineStreams {
		if !strings.EqualFold(o.DomainName, domain) || (app != "" && o.AppName != app) {
			continue
		}
		for _, l := range expand(Publish{DomainName: o.DomainName, AppName: o.AppName, StreamName: o.StreamName, PublishURL: o.PublishURL,
			PublishTime: o.PublishTime, TranscodeTemplates: o.TranscodeTemplates}, streamType) {
			if !nameMatch(l.StreamName, stream, queryType) {
				continue
			}
			row := map[string]any{"DomainName": l.DomainName, "AppName": l.AppName, "StreamName": l.StreamName, "PublishTime": l.PublishTime}
			if only != "yes" {
				row["PublishUrl"], row["PublishType"], row["PublishDomain"] = l.PublishURL, "edge", ingestHost(l.DomainName)
				row["Transcoded"] = map[bool]string{true: "yes", false: "no"}[l.transcodeID != ""]
				row["ClientIp"], row["ServerIp"] = "192.0.2.10", "198.51.100.20"
				row["VideoCodecId"], row["AudioCodecId"], row["FrameRate"], row["Width"], row["Height"] = 7, 10, 30, 1280, 720
				row["VideoDataRate"], row["AudioDataRate"] = 2500, 128
			}
			all = append(all, row)
		}
	}
	return map[string]any{"PageNum": num, "PageSize": size, "TotalNum": len(all), "TotalPage": totalPages(len(all), size),
		"OnlineInfo": map[string]any{"LiveStreamOnlineInfo": slice(all, num, size)}}, nil
}

// publishMaxSpan is the longest StartTime..EndTime DescribeLiveStreamsPublishList accepts.
const publishMaxSpan = 30 * 24 * time.Hour

// publishList is DescribeLiveStreamsPublishList: the ingests of a domain that overlap
// StartTime..EndTime (required, at most 30 days apart), raw streams unless StreamType says
// otherwise, ordered by OrderBy (publish_time_asc by default).
func (s *Server) publishList(req *request) (map[string]any, *apiError) {
	domain := trimmed(req.params.Get("DomainName"))
	if domain == "" {
		return nil, badParam("MissingParam", "DomainName is mandatory for this action")
	}
	var start, end time.Time
	for _, name := range []string{"StartTime", "EndTime"} {
		if trimmed(req.params.Get(name)) == "" {
			return nil, badParam("MissingParam", "%s is mandatory for this action", name)
		}
	}
	for _, f := range []struct {
		name string
		t    *time.Time
	}{{"StartTime", &start}, {"EndTime", &end}} {
		v := trimmed(req.params.Get(f.name))
		t, perr := time.Parse(apiTime, v)
		if perr != nil {
			return nil, badParam("Invalid"+f.name+".Malformed", "Specified %s %q is malformed: want yyyy-MM-ddTHH:mm:ssZ", f.name, v)
		}
		*f.t = t
	}
	if end.Before(start) {
		return nil, badParam("InvalidEndTime.Mismatch", "Specified EndTime %s is earlier than StartTime %s", end.Format(apiTime), start.Format(apiTime))
	}
	if end.Sub(start) > publishMaxSpan {
		return nil, badParam("InvalidTime.Range", "StartTime and EndTime are more than 30 days apart")
	}
	num, size, err := page(req, "PageNumber", "PageSize", 2000, 1, 3000)
	if err != nil {
		return nil, err
	}
	streamType, queryType, err := listFilters(req, "raw")
	if err != nil {
		return nil, err
	}
	order := req.params.Get("OrderBy")
	switch order {
	case "":
		order = "publish_time_asc"
	case "publish_time_asc", "publish_time_desc", "stream_name_asc", "stream_name_desc":
	default:
		return nil, badParam("InvalidParams", "OrderBy %q is not publish_time_asc, publish_time_desc, stream_name_asc or stream_name_desc", order)
	}
	app, stream := req.params.Get("AppName"), req.params.Get("StreamName")
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.domain(domain); err != nil {
		return nil, err
	}
	var rows []listed
	for _, p := range s.state.PublishHistory {
		if !strings.EqualFold(p.DomainName, domain) || (app != "" && p.AppName != app) {
			continue
		}
		at, perr := time.Parse(apiTime, p.PublishTime)
		if perr != nil || at.After(end) {
			continue
		}
		if p.StopTime != "" {
			if stop, perr := time.Parse(apiTime, p.StopTime); perr == nil && stop.Before(start) {
				continue
			}
		}
		for _, l := range expand(p, streamType) {
			if nameMatch(l.StreamName, stream, queryType) {
				rows = append(rows, l)
			}
		}
	}
	sort.SliceStable(rows, func(i, j int) bool {
		switch order {
		case "publish_time_desc":
			return rows[i].PublishTime > rows[j].PublishTime
		case "stream_name_asc":
			return rows[i].StreamName < rows[j].StreamName
		case "stream_name_desc":
			return rows[i].StreamName > rows[j].StreamName
		}
		return rows[i].PublishTime < rows[j].PublishTime
	})
	all := make([]map[string]any, 0, len(rows))
	for _, l := range rows {
		row := map[string]any{"DomainName": l.DomainName, "AppName": l.AppName, "StreamName": l.StreamName, "PublishUrl": l.PublishURL,
			"PublishTime": l.PublishTime, "PublishType": "edge", "PublishDomain": ingestHost(l.DomainName), "ClientAddr": "192.0.2.10",
			"EdgeNodeAddr": "198.51.100.20", "StreamUrl": "rtmp://" + l.DomainName + "/" + l.AppName + "/" + l.StreamName,
			"Transcoded": map[bool]string{true: "yes", false: "no"}[l.transcodeID != ""]}
		if l.StopTime != "" {
			row["StopTime"] = l.StopTime
		}
		if l.transcodeID != "" {
			row["TranscodeId"] = l.transcodeID
		}
		all = append(all, row)
	}
	return map[string]any{"PageNum": num, "PageSize": size, "TotalNum": len(all), "TotalPage": totalPages(len(all), size),
		"PublishInfo": map[string]any{"LiveStreamPublishInfo": slice(all, num, size)}}, nil
}
