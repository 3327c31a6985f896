package emulator

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// wallClock is the wall wallClock shifted by an offset a test moves forward: the SDK's signatures stay
// within the API's 15 minutes while a stream's manifest slides.
type wallClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *wallClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}
func (c *wallClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

func postStream(t *testing.T, url string, body string) (int, Publish) {
	t.Helper()
	resp, err := http.Post(url+"/_emulator/streams", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p Publish
	_ = json.NewDecoder(resp.Body).Decode(&p)
	return resp.StatusCode, p
}

func rows(t *testing.T, body map[string]any, outer, inner string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, r := range body[outer].(map[string]any)[inner].([]any) {
		out = append(out, r.(map[string]any))
	}
	return out
}

func TestStreamsEndpoint(t *testing.T) {
	clk := &wallClock{}
	s, url := start(t, Options{Now: clk.now})
	code, p := postStream(t, url, `{"action":"start","DomainName":"play.example.com","AppName":"live","StreamName":"cam1"}`)
	now := clk.now().UTC().Format(apiTime)
	if code != http.StatusOK || p.PublishTime != now && p.PublishTime > now || p.PublishURL != "rtmp://push.example.com/live/cam1" {
		t.Fatalf("start: %d %+v", code, p)
	}
	tests := []struct {
		body string
		code int
	}{
		{`{"action":"start","DomainName":"play.example.com","AppName":"live","StreamName":"cam1"}`, http.StatusConflict},
		{`{"action":"stop","DomainName":"play.example.com","AppName":"live","StreamName":"nope"}`, http.StatusNotFound},
		{`{"action":"restart","DomainName":"nowhere.example.com","AppName":"live","StreamName":"cam1"}`, http.StatusNotFound},
		{`{"action":"start","DomainName":"push.example.com","AppName":"live","StreamName":"cam1"}`, http.StatusBadRequest},
		{`{"action":"pause","DomainName":"play.example.com","AppName":"live","StreamName":"cam1"}`, http.StatusBadRequest},
		{`{"action":"start","DomainName":"play.example.com","AppName":"*","StreamName":"cam1"}`, http.StatusBadRequest},
		{`{"action":"start","DomainName":"play.example.com","AppName":"live","StreamName":"cam9","Colour":1}`, http.StatusBadRequest},
	}
	for _, tt := range tests {
		if code, _ := postStream(t, url, tt.body); code != tt.code {
			t.Errorf("%s: %d, want %d", tt.body, code, tt.code)
		}
	}
	if resp, err := http.Get(url + "/_emulator/streams"); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET /_emulator/streams: %v %v", resp.StatusCode, err)
	}

	clk.advance(2 * time.Second)
	code, p = postStream(t, url, `{"action":"restart","DomainName":"play.example.com","AppName":"sports","StreamName":"final"}`)
	if code != http.StatusOK || p.PublishTime < now || p.PublishURL != "rtmp://push.example.com/sports/final" {
		t.Fatalf("restart: %d %+v", code, p)
	}
	code, p = postStream(t, url, `{"action":"stop","DomainName":"play.example.com","AppName":"live","StreamName":"cam1"}`)
	if code != http.StatusOK || p.StopTime == "" || p.StopTime < p.PublishTime {
		t.Fatalf("stop: %d %+v", code, p)
	}
	st := s.State()
	var online []string
	for _, o := range st.OnlineStreams {
		online = append(online, o.AppName+"/"+o.StreamName+"@"+o.PublishTime)
	}
	if len(online) != 3 || strings.Contains(strings.Join(online, " "), "cam1") || !strings.Contains(strings.Join(online, " "), "sports/final@") {
		t.Fatalf("online after stop: %v", online)
	}
	// The history: the seed's final (closed by the restart), its new publish, cam1 closed.
	var hist []string
	for _, h := range st.PublishHistory {
		hist = append(hist, fmt.Sprintf("%s/%s stop=%v", h.AppName, h.StreamName, h.StopTime != ""))
	}
	want := "sports/final stop=true news/evening stop=false sports/match stop=false live/cam1 stop=true sports/final stop=false"
	if strings.Join(hist, " ") != want {
		t.Fatalf("history:\n got %s\nwant %s", strings.Join(hist, " "), want)
	}
}

func TestOnlineListParameters(t *testing.T) {
	seed := DefaultSeed()
	seed.OnlineStreams[0].TranscodeTemplates = []string{"lhd", "lsd"}
	for i := range 5 {
		seed.OnlineStreams = append(seed.OnlineStreams, Stream{DomainName: "play.example.com", AppName: "bulk", StreamName: fmt.Sprintf("s%d", i),
			PublishURL: "rtmp://push.example.com/bulk/s", PublishTime: "2026-11-24T09:00:00Z"})
	}
	_, url := start(t, Options{Seed: seed})
	c := newSDK(t, url, AccessKeyID, AccessKeySecret, false)
	list := func(params map[string]any) (map[string]any, []map[string]any) {
		t.Helper()
		params["DomainName"] = "play.example.com"
		body, err := c.call("DescribeLiveStreamsOnlineList", params)
		if err != nil {
			t.Fatalf("%v: %v", params, err)
		}
		return body, rows(t, body, "OnlineInfo", "LiveStreamOnlineInfo")
	}
	body, all := list(map[string]any{})
	if fmt.Sprint(body["TotalNum"]) != "9" || len(all) != 9 {
		t.Fatalf("all: %v", body)
	}
	var copies []string
	for _, r := range all {
		if r["Transcoded"] == "yes" {
			copies = append(copies, r["StreamName"].(string))
		}
		if r["PublishType"] != "edge" || r["PublishUrl"] == "" {
			t.Errorf("row lacks the full fields: %v", r)
		}
	}
	if strings.Join(copies, ",") != "final_lhd,final_lsd" {
		t.Fatalf("transcoded copies: %v", copies)
	}
	if _, raw := list(map[string]any{"StreamType": "raw"}); len(raw) != 7 {
		t.Fatalf("raw: %d rows", len(raw))
	}
	if _, trans := list(map[string]any{"StreamType": "trans"}); len(trans) != 2 {
		t.Fatalf("trans: %d rows", len(trans))
	}
	_, light := list(map[string]any{"OnlyStream": "yes", "StreamType": "raw"})
	for _, r := range light {
		if len(r) != 4 || r["PublishTime"] == nil || r["StreamName"] == nil {
			t.Fatalf("OnlyStream=yes row: %v", r)
		}
	}
	body, page := list(map[string]any{"AppName": "bulk", "PageSize": 2, "PageNum": 3})
	if fmt.Sprintf("%v %v %v", body["TotalNum"], body["TotalPage"], body["PageNum"]) != "5 3 3" || len(page) != 1 || page[0]["StreamName"] != "s4" {
		t.Fatalf("page 3 of 2: %v", body)
	}
	if _, r := list(map[string]any{"PageSize": 3000}); len(r) != 9 {
		t.Fatalf("PageSize 3000: %d", len(r))
	}
	if _, r := list(map[string]any{"StreamName": "final"}); len(r) != 3 {
		t.Fatalf("fuzzy StreamName final: %d rows", len(r))
	}
	if _, r := list(map[string]any{"StreamName": "final", "QueryType": "strict"}); len(r) != 1 {
		t.Fatalf("strict StreamName final: %d rows", len(r))
	}
	for _, bad := range []map[string]any{{"PageSize": 3001}, {"PageSize": 0}, {"StreamType": "x"}, {"OnlyStream": "maybe"}, {"QueryType": "x"}} {
		bad["DomainName"] = "play.example.com"
		if _, err := c.call("DescribeLiveStreamsOnlineList", bad); codeOf(err) != "InvalidParams" {
			t.Errorf("%v: %v, want InvalidParams", bad, err)
		}
	}
}

func TestPublishList(t *testing.T) {
	clk := &wallClock{}
	seed := DefaultSeed()
	seed.OnlineStreams[0].TranscodeTemplates = []string{"lhd"}
	seed.PublishHistory = []Publish{{DomainName: "play.example.com", AppName: "sports", StreamName: "final", PublishURL: "rtmp://push.example.com/sports/final",
		PublishTime: "2026-11-20T08:00:00Z", StopTime: "2026-11-20T09:00:00Z"}}
	_, url := start(t, Options{Seed: seed, Now: clk.now})
	c := newSDK(t, url, AccessKeyID, AccessKeySecret, false)
	postStream(t, url, `{"action":"restart","DomainName":"play.example.com","AppName":"sports","StreamName":"final"}`)
	end := clk.now().UTC().Add(time.Hour).Format(apiTime)
	call := func(params map[string]any) []map[string]any {
		t.Helper()
		params["DomainName"] = "play.example.com"
		body, err := c.call("DescribeLiveStreamsPublishList", params)
		if err != nil {
			t.Fatalf("%v: %v", params, err)
		}
		if body["TotalPage"] == nil || body["PageNum"] == nil {
			t.Fatalf("paging fields missing: %v", body)
		}
		return rows(t, body, "PublishInfo", "LiveStreamPublishInfo")
	}
	got := call(map[string]any{"StartTime": "2026-11-19T00:00:00Z", "EndTime": "2026-11-30T00:00:00Z", "AppName": "sports", "StreamName": "final", "QueryType": "strict"})
	// Raw only by default: the seeded past ingest, the one the restart closed.
	if len(got) != 2 || got[0]["StopTime"] != "2026-11-20T09:00:00Z" || got[1]["StopTime"] == nil || got[1]["Transcoded"] != "no" {
		t.Fatalf("history of sports/final: %v", got)
	}
	got = call(map[string]any{"StartTime": "2026-11-24T00:00:00Z", "EndTime": end, "AppName": "sports", "StreamType": "all", "OrderBy": "publish_time_desc"})
	var names []string
	for _, r := range got {
		names = append(names, fmt.Sprintf("%s:%v", r["StreamName"], r["StopTime"] != nil))
	}
	// Newest first: final's open publish (with its copy), then the seeded one the restart closed.
	if strings.Join(names, " ") != "final:false final_lhd:false final:true final_lhd:true" {
		t.Fatalf("desc, all: %v", names)
	}
	if got[1]["TranscodeId"] != "lhd" || got[1]["Transcoded"] != "yes" || got[0]["TranscodeId"] != nil {
		t.Fatalf("transcode fields: %v / %v", got[0], got[1])
	}
	if got := call(map[string]any{"StartTime": "2026-11-21T00:00:00Z", "EndTime": "2026-11-22T00:00:00Z"}); len(got) != 0 {
		t.Fatalf("a window with no ingest: %v", got)
	}
	for _, tt := range []struct {
		params map[string]any
		code   string
	}{
		{map[string]any{"EndTime": end}, "MissingParam"},
		{map[string]any{"StartTime": "2026-11-24"}, "MissingParam"},
		{map[string]any{"StartTime": "2026-11-24", "EndTime": end}, "InvalidStartTime.Malformed"},
		{map[string]any{"StartTime": "2026-11-25T00:00:00Z", "EndTime": "2026-11-24T00:00:00Z"}, "InvalidEndTime.Mismatch"},
		{map[string]any{"StartTime": "2026-10-01T00:00:00Z", "EndTime": "2026-11-24T00:00:00Z"}, "InvalidTime.Range"},
		{map[string]any{"StartTime": "2026-11-24T00:00:00Z", "EndTime": end, "PageSize": 3001}, "InvalidParams"},
		{map[string]any{"StartTime": "2026-11-24T00:00:00Z", "EndTime": end, "OrderBy": "size"}, "InvalidParams"},
	} {
		tt.params["DomainName"] = "play.example.com"
		if _, err := c.call("DescribeLiveStreamsPublishList", tt.params); codeOf(err) != tt.code {
			t.Errorf("%v: %v, want %s", tt.params, err, tt.code)
		}
	}
}

// play fetches a manifest as a player does: the emulator's address, the play domain as Host.
func play(t *testing.T, url, host, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url+path, nil)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestPlaybackFollowsTheConfigOfTheLastPublish(t *testing.T) {
	clk := &wallClock{}
	_, url := start(t, Options{Now: clk.now})
	c := newSDK(t, url, AccessKeyID, AccessKeySecret, false)
	code, body := play(t, url, "play.example.com", "/sports/final.m3u8")
	if code != http.StatusOK || strings.Contains(body, "EXT-X-MAP") || !strings.Contains(body, "final-") || !strings.Contains(body, ".ts\n") {
		t.Fatalf("no config: plain HLS with TS segments expected, got %d\n%s", code, body)
	}
	if _, err := c.call("AddLivePackageConfig", map[string]any{"DomainName": "play.example.com", "AppName": "sports", "StreamName": "*",
		"Protocol": "HLS_CMAF", "SegmentNum": 4, "SegmentDuration": 2}); err != nil {
		t.Fatal(err)
	}
	if _, body2 := play(t, url, "play.example.com", "/sports/final.m3u8"); strings.Contains(body2, "EXT-X-MAP") {
		t.Fatalf("the config took effect before the ingest restarted:\n%s", body2)
	}
	postStream(t, url, `{"action":"restart","DomainName":"play.example.com","AppName":"sports","StreamName":"final"}`)
	_, body = play(t, url, "play.example.com", "/sports/final.m3u8")
	if !strings.Contains(body, "#EXT-X-MAP:URI=\"final-init.mp4\"") || !strings.Contains(body, "#EXT-X-TARGETDURATION:2\n") ||
		!strings.Contains(body, "#EXT-X-MEDIA-SEQUENCE:0\n") || strings.Contains(body, "#EXTINF") {
		t.Fatalf("just restarted with HLS_CMAF 4x2s:\n%s", body)
	}
	clk.advance(13 * time.Second) // 6 segments done: the window holds the last 4, from 2
	_, body = play(t, url, "play.example.com", "/sports/final.m3u8")
	if strings.Count(body, "#EXTINF:2.000,") != 4 || !strings.Contains(body, "#EXT-X-MEDIA-SEQUENCE:2\n") || !strings.Contains(body, "final-5.m4s") {
		t.Fatalf("13 s after the restart:\n%s", body)
	}
	if code, _ := play(t, url, "play.example.com", "/sports/final.mpd"); code != http.StatusNotFound {
		t.Fatalf("DASH of an HLS-only stream: %d", code)
	}
	for _, tt := range []struct{ host, path string }{
		{"nowhere.example.com", "/sports/final.m3u8"},
		{"push.example.com", "/sports/final.m3u8"},
		{"play.example.com", "/sports/offline.m3u8"},
		{"play.example.com", "/final.m3u8"},
	} {
		if code, _ := play(t, url, tt.host, tt.path); code != http.StatusNotFound {
			t.Errorf("%s%s: %d, want 404", tt.host, tt.path, code)
		}
	}
	// A stopped stream has no playback.
	postStream(t, url, `{"action":"stop","DomainName":"play.example.com","AppName":"sports","StreamName":"final"}`)
	if code, _ := play(t, url, "play.example.com:80", "/sports/final.m3u8"); code != http.StatusNotFound {
		t.Fatalf("stopped stream: %d", code)
	}
}

func TestPlaybackProtocols(t *testing.T) {
	clk := &wallClock{}
	seed := DefaultSeed()
	seed.OnlineStreams[0].TranscodeTemplates = []string{"lhd"}
	seed.PackageConfigs = []PackageConfig{
		{DomainName: "play.example.com", AppName: "sports", StreamName: "*", Protocol: "LLHLS_CMAF", SegmentNum: 3, SegmentDuration: 1, PartDuration: 350, IgnoreTranscode: true},
		{DomainName: "play.example.com", AppName: "news", StreamName: "*", Protocol: "HLSDASH_CMAF", SegmentNum: 5, SegmentDuration: 4, IgnoreTranscode: false},
		{DomainName: "play.example.com", AppName: "*", StreamName: "*", Protocol: "LLHLS_TS", SegmentNum: 3, SegmentDuration: 2, PartDuration: 700, IgnoreTranscode: true},
		{DomainName: "global.example.com", AppName: "sports", StreamName: "match", Protocol: "DASH_CMAF", SegmentNum: 3, SegmentDuration: 6, IgnoreTranscode: true},
	}
	seed.OnlineStreams = append(seed.OnlineStreams, Stream{DomainName: "play.example.com", AppName: "other", StreamName: "cam",
		PublishURL: "rtmp://push.example.com/other/cam", PublishTime: "2026-11-24T09:00:00Z"})
	_, url := start(t, Options{Seed: seed, Now: clk.now})
	for _, path := range []string{"final", "evening"} {
		app := map[string]string{"final": "sports", "evening": "news"}[path]
		postStream(t, url, `{"action":"restart","DomainName":"play.example.com","AppName":"`+app+`","StreamName":"`+path+`"}`)
	}
	// PublishTime has second resolution, so the stream is 3.5 to 4.5 s old: 3 or 4 segments done.
	clk.advance(3500 * time.Millisecond)

	_, ll := play(t, url, "play.example.com", "/sports/final.m3u8")
	for _, want := range []string{"#EXT-X-PART-INF:PART-TARGET=0.35\n", "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.05",
		"#EXT-X-MAP:URI=", "#EXT-X-PART:DURATION=0.35,URI=\"final-2.0.m4s\",INDEPENDENT=YES", "#EXT-X-PART:DURATION=0.3,URI=\"final-2.2.m4s\"",
		"#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"final-", "#EXT-X-TARGETDURATION:1\n"} {
		if !strings.Contains(ll, want) {
			t.Errorf("LLHLS_CMAF lacks %q:\n%s", want, ll)
		}
	}
	// A transcoded copy of a config that ignores transcoded streams is not packaged.
	if _, copyBody := play(t, url, "play.example.com", "/sports/final_lhd.m3u8"); strings.Contains(copyBody, "EXT-X-MAP") || strings.Contains(copyBody, "PART") {
		t.Errorf("final_lhd is packaged though IgnoreTranscode is true:\n%s", copyBody)
	}
	_, ts := play(t, url, "play.example.com", "/other/cam.m3u8")
	if strings.Contains(ts, "EXT-X-MAP") || !strings.Contains(ts, "#EXT-X-PART-INF:PART-TARGET=0.7\n") || !strings.Contains(ts, ".ts\"") {
		t.Errorf("LLHLS_TS (the */* config):\n%s", ts)
	}
	_, hls := play(t, url, "play.example.com", "/news/evening.m3u8")
	code, mpd := play(t, url, "play.example.com", "/news/evening.mpd")
	if !strings.Contains(hls, "#EXT-X-MAP") || code != http.StatusOK || !strings.Contains(mpd, `type="dynamic"`) ||
		!strings.Contains(mpd, `timeShiftBufferDepth="PT20S"`) || !strings.Contains(mpd, `media="evening-video-$Number$.m4s"`) ||
		!strings.Contains(mpd, `initialization="evening-video-init.mp4"`) || !strings.Contains(mpd, `maxSegmentDuration="PT4S"`) {
		t.Errorf("HLSDASH_CMAF: %d\n%s\n%s", code, hls, mpd)
	}
	// DASH only: the MPD, and HLS playback left plain.
	code, mpd = play(t, url, "global.example.com", "/sports/match.mpd")
	_, plain := play(t, url, "global.example.com", "/sports/match.m3u8")
	if code != http.StatusOK || !strings.Contains(mpd, `timeShiftBufferDepth="PT18S"`) || strings.Contains(plain, "EXT-X-MAP") {
		t.Errorf("DASH_CMAF: %d\n%s\n%s", code, mpd, plain)
	}
}

// typeA signs path as URL authentication type A does.
func typeA(path, key string, ts int64, rand string) string {
	sum := md5.Sum([]byte(fmt.Sprintf("%s-%d-%s-0-%s", path, ts, rand, key)))
	return fmt.Sprintf("%s?auth_key=%d-%s-0-%s", path, ts, rand, hex.EncodeToString(sum[:]))
}

func TestPlaybackAuthKey(t *testing.T) {
	seed := DefaultSeed()
	seed.Domains[0].PlayAuthKey = "aliyuncdnexp1234"
	_, url := start(t, Options{Seed: seed})
	now := time.Now().Unix()
	tests := []struct {
		name, path string
		code       int
	}{
		{"unsigned", "/sports/final.m3u8", http.StatusForbidden},
		{"signed", typeA("/sports/final.m3u8", "aliyuncdnexp1234", now, "0"), http.StatusOK},
		{"signed, random rand", typeA("/sports/final.m3u8", "aliyuncdnexp1234", now, "477b3bbc253f467b8def6711128c7bec"), http.StatusOK},
		{"another key", typeA("/sports/final.m3u8", "other", now, "0"), http.StatusForbidden},
		{"another path", strings.Replace(typeA("/sports/final.m3u8", "aliyuncdnexp1234", now, "0"), "final.m3u8", "final.mpd", 1), http.StatusForbidden},
		{"just valid", typeA("/sports/final.m3u8", "aliyuncdnexp1234", now-int64(AuthKeyValidity/time.Second)+60, "0"), http.StatusOK},
		{"expired", typeA("/sports/final.m3u8", "aliyuncdnexp1234", now-int64(AuthKeyValidity/time.Second)-60, "0"), http.StatusForbidden},
		{"malformed", "/sports/final.m3u8?auth_key=abc", http.StatusForbidden},
	}
	for _, tt := range tests {
		if code, body := play(t, url, "play.example.com", tt.path); code != tt.code {
			t.Errorf("%s: %d, want %d (%s)", tt.name, code, tt.code, body)
		}
	}
	// Other domains keep open playback.
	if code, _ := play(t, url, "global.example.com", "/sports/match.m3u8"); code != http.StatusOK {
		t.Fatalf("a domain without PlayAuthKey: %d", code)
	}
}
