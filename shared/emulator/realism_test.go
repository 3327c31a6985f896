package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func postDomain(t *testing.T, url, body string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(url+"/_emulator/domains", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// TestAddedDomainTimeline: a domain added while the emulator runs is unknown to every action
// for the hidden delay, then configuring (package config writes refused), then online.
func TestAddedDomainTimeline(t *testing.T) {
	clk := &clock{t: time.Now()}
	_, url := start(t, Options{Now: clk.Now, DomainHidden: 3 * time.Minute, DomainConfiguring: time.Minute})
	c := newSDK(t, url, AccessKeyID, AccessKeySecret, false)
	status, out := postDomain(t, url, `{"DomainName":"fresh.example.com"}`)
	if status != http.StatusCreated || out["DomainName"] != "fresh.example.com" {
		t.Fatalf("POST /_emulator/domains: %d %v", status, out)
	}
	detail := func() (string, string) {
		body, err := c.call("DescribeLiveDomainDetail", map[string]any{"DomainName": "fresh.example.com"})
		if err != nil {
			return "", codeOf(err)
		}
		return body["DomainDetail"].(map[string]any)["DomainStatus"].(string), ""
	}
	listed := func() bool {
		body, err := c.call("DescribeLiveUserDomains", map[string]any{"DomainName": "fresh", "PageSize": 50})
		if err != nil {
			t.Fatal(err)
		}
		return len(body["Domains"].(map[string]any)["PageData"].([]any)) == 1
	}
	add := func() string {
		_, err := c.call("AddLivePackageConfig", map[string]any{"DomainName": "fresh.example.com", "AppName": "a", "StreamName": "*", "Protocol": "HLS_CMAF"})
		return codeOf(err)
	}
	steps := []struct {
		after             time.Duration
		status, code, add string
		listed            bool
	}{
		{0, "", "InvalidDomain.NotFound", "InvalidDomain.NotFound", false},
		{3*time.Minute - time.Second, "", "InvalidDomain.NotFound", "InvalidDomain.NotFound", false},
		{time.Second, "configuring", "", "InvalidDomain.Configuring", true},
		{time.Minute, "online", "", "", true},
	}
	for i, st := range steps {
		clk.Add(st.after)
		status, code := detail()
		if status != st.status || code != st.code || listed() != st.listed {
			t.Fatalf("step %d: detail %q %q, listed %v; want %q %q %v", i, status, code, listed(), st.status, st.code, st.listed)
		}
		if got := add(); got != st.add {
			t.Fatalf("step %d: Add answered %q, want %q", i, got, st.add)
		}
	}
	if status, _ := postDomain(t, url, `{"DomainName":"fresh.example.com"}`); status != http.StatusConflict {
		t.Fatalf("a second add of the same domain: %d", status)
	}
}

func TestAddDomainPerRequestDelaysAndErrors(t *testing.T) {
	clk := &clock{t: time.Now()}
	s, url := start(t, Options{Now: clk.Now, DomainHidden: time.Hour})
	if status, _ := postDomain(t, url, `{"DomainName":"now.example.com","LiveDomainType":"liveEdge","HiddenFor":"0s"}`); status != http.StatusCreated {
		t.Fatalf("status %d", status)
	}
	var got *Domain
	for _, d := range s.State().Domains {
		if d.DomainName == "now.example.com" {
			got = &d
		}
	}
	if got == nil || got.DomainStatus != "online" || got.LiveDomainType != "liveEdge" || got.Region != "cn-shanghai" || got.Scope != "domestic" {
		t.Fatalf("domain with no delays: %+v", got)
	}
	for _, body := range []string{`{}`, `{"DomainName":"a b"}`, `{"DomainName":"x.com","LiveDomainType":"cdn"}`,
		`{"DomainName":"x.com","HiddenFor":"soon"}`, `{"DomainName":"x.com","ConfiguringFor":"-1s"}`, `{"DomainName":"x.com","Nope":1}`, `[`} {
		if status, out := postDomain(t, url, body); status != http.StatusBadRequest || out["error"] == "" {
			t.Errorf("%s: %d %v", body, status, out)
		}
	}
	if status, _ := postDomain(t, url, `{"DomainName":"play.example.com"}`); status != http.StatusConflict {
		t.Fatalf("adding a seeded domain: %d", status)
	}
	// A delay may be a number of seconds as well as a Go duration.
	status, out := postDomain(t, url, `{"DomainName":"secs.example.com","HiddenFor":90,"ConfiguringFor":1.5}`)
	visible, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(out["visibleAt"]))
	online, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(out["onlineAt"]))
	if status != http.StatusCreated || !visible.Equal(clk.Now().Add(90*time.Second)) || !online.Equal(clk.Now().Add(91500*time.Millisecond)) {
		t.Fatalf("delays in seconds: %d %v", status, out)
	}
	for _, body := range []string{`{"DomainName":"y.com","HiddenFor":-1}`, `{"DomainName":"y.com","HiddenFor":true}`, `{"DomainName":"y.com","ConfiguringFor":1e300}`} {
		if status, out := postDomain(t, url, body); status != http.StatusBadRequest || out["error"] == "" {
			t.Errorf("%s: %d %v", body, status, out)
		}
	}
	resp, err := http.Get(url + "/_emulator/domains")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET /_emulator/domains: %d", resp.StatusCode)
	}
}

// TestCommitThenFailEveryWrite: the commit-then-fail fault hits Add, Update and Delete alike;
// each answers 500 with its change made.
func TestCommitThenFailEveryWrite(t *testing.T) {
	s, url := start(t, Options{FailRate: 1, FailKinds: []string{FaultCommitThenFail}})
	c := newSDK(t, url, AccessKeyID, AccessKeySecret, false)
	target := map[string]any{"DomainName": "play.example.com", "AppName": "a", "StreamName": "*"}
	with := func(extra map[string]any) map[string]any {
		m := map[string]any{}
		for _, src := range []map[string]any{target, extra} {
			for k, v := range src {
				m[k] = v
			}
		}
		return m
	}
	protocol := func() string {
		for _, pc := range s.State().PackageConfigs {
			if pc.AppName == "a" {
				return pc.Protocol
			}
		}
		return ""
	}
	steps := []struct {
		action string
		params map[string]any
		want   string
	}{
		{"AddLivePackageConfig", with(map[string]any{"Protocol": "HLS_CMAF"}), "HLS_CMAF"},
		{"UpdateLivePackageConfig", with(map[string]any{"Protocol": "DASH_CMAF", "SegmentNum": 3, "SegmentDuration": 5}), "DASH_CMAF"},
		{"DeleteLivePackageConfig", target, ""},
	}
	for _, st := range steps {
		if _, err := c.call(st.action, st.params); codeOf(err) != "InternalErr" {
			t.Fatalf("%s: %v, want InternalErr", st.action, err)
		}
		if got := protocol(); got != st.want {
			t.Fatalf("after %s: protocol %q, want %q (the write must be committed)", st.action, got, st.want)
		}
	}
	// Reads are never committed-then-failed: they have nothing to commit.
	if _, err := c.call("DescribeLivePackageConfig", map[string]any{"DomainName": "play.example.com"}); err != nil {
		t.Fatalf("describe under the commit fault: %v", err)
	}
	committed := 0
	for _, call := range s.Calls() {
		if call.Committed {
			committed++
		}
	}
	if committed != 3 {
		t.Fatalf("%d calls marked committed, want 3", committed)
	}
}

func TestParseFaultKinds(t *testing.T) {
	tests := []struct {
		in   string
		want string
		err  bool
	}{
		{"", "", false},
		{"commit", "commit", false},
		{"internal, unavailable,commit", "internal,unavailable,commit", false},
		{"commit,boom", "", true},
	}
	for _, tt := range tests {
		got, err := ParseFaultKinds(tt.in)
		if (err != nil) != tt.err || strings.Join(got, ",") != tt.want {
			t.Errorf("ParseFaultKinds(%q) = %v, %v", tt.in, got, err)
		}
	}
}

func TestCallsEmptyList(t *testing.T) {
	_, url := start(t, Options{})
	resp, err := http.Get(url + "/_emulator/calls")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	if got := strings.TrimSpace(buf.String()); got != "[]" {
		t.Fatalf("calls with none made: %q, want []", got)
	}
}

// TestSignatureMismatchEchoesStringToSign: the gateway's SignatureDoesNotMatch message ends
// with the string it signed. Checked against the reference's worked examples, whose strings to
// sign are published: a request signed with another secret gets exactly that string back.
func TestSignatureMismatchEchoesStringToSign(t *testing.T) {
	t.Run("V1", func(t *testing.T) {
		now, _ := time.Parse(time.RFC3339, "2016-02-23T12:46:24Z")
		s := New(Options{Seed: DefaultSeed(), Now: func() time.Time { return now }, Credentials: map[string]string{"testid": "not-testsecret"}})
		p := url.Values{"AccessKeyId": {"testid"}, "Action": {"DescribeRegions"}, "Format": {"XML"},
			"SignatureMethod": {"HMAC-SHA1"}, "SignatureNonce": {"3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"},
			"SignatureVersion": {"1.0"}, "Timestamp": {"2016-02-23T12:46:24Z"}, "Version": {"2014-05-26"},
			"Signature": {"OLeaidS1JvxuMvnyHOwuJ+uX5qY="}}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest("GET", "/?"+p.Encode(), nil))
		want := "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26"
		checkEcho(t, rec, want)
	})
	t.Run("V3", func(t *testing.T) {
		now, _ := time.Parse(time.RFC3339, "2023-10-26T10:22:32Z")
		s := New(Options{Seed: DefaultSeed(), Now: func() time.Time { return now }, Credentials: map[string]string{"YourAccessKeyId": "not-YourAccessKeySecret"}})
		req := httptest.NewRequest("POST", "/?ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai", nil)
		req.Host = "ecs.cn-shanghai.aliyuncs.com"
		for k, v := range map[string]string{"x-acs-action": "RunInstances", "x-acs-version": "2014-05-26",
			"x-acs-content-sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
			"x-acs-date":           "2023-10-26T10:22:32Z", "x-acs-signature-nonce": "3156853299f313e23d1673dc12e1703d",
			"Authorization": "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"} {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		checkEcho(t, rec, "ACS3-HMAC-SHA256\n7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259")
	})
	t.Run("SDK", func(t *testing.T) {
		// The official SDK core surfaces the message with the echo in it.
		_, url := start(t, Options{})
		_, err := newSDK(t, url, AccessKeyID, "wrong", true).call("DescribeLiveDomainDetail", map[string]any{"DomainName": "play.example.com"})
		if codeOf(err) != "SignatureDoesNotMatch" {
			t.Fatalf("%v", err)
		}
	})
}

func checkEcho(t *testing.T, rec *httptest.ResponseRecorder, stringToSign string) {
	t.Helper()
	var body map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if rec.Code != 400 || body["Code"] != "SignatureDoesNotMatch" {
		t.Fatalf("%d %v", rec.Code, body)
	}
	want := "Specified signature is not matched with our calculation. server string to sign is:" + stringToSign
	if body["Message"] != want {
		t.Fatalf("message\n%q\nwant\n%q", body["Message"], want)
	}
}

func TestUserDomainsSearch(t *testing.T) {
	seed := DefaultSeed()
	for _, n := range []string{"play.example.org", "replay.example.com", "Play2.example.com"} {
		seed.Domains = append(seed.Domains, Domain{DomainName: n, LiveDomainType: "liveVideo", DomainStatus: "online", Region: "cn-shanghai", Scope: "domestic"})
	}
	_, url := start(t, Options{Seed: seed})
	c := newSDK(t, url, AccessKeyID, AccessKeySecret, false)
	tests := []struct {
		keyword, searchType string
		want                string
		code                string
	}{
		{"play", "", "Play2.example.com play.example.com play.example.org replay.example.com", ""},
		{"play", "fuzzy_match", "Play2.example.com play.example.com play.example.org replay.example.com", ""},
		{"play", "pre_match", "Play2.example.com play.example.com play.example.org", ""},
		{".example.org", "suf_match", "play.example.org", ""},
		{"PLAY.example.com", "full_match", "play.example.com", ""},
		{"play.example", "full_match", "", ""},
		{"", "pre_match", "", "all"},
		{"play", "regex", "", "InvalidParams"},
	}
	for _, tt := range tests {
		params := map[string]any{"PageSize": 50}
		if tt.keyword != "" {
			params["DomainName"] = tt.keyword
		}
		if tt.searchType != "" {
			params["DomainSearchType"] = tt.searchType
		}
		body, err := c.call("DescribeLiveUserDomains", params)
		if tt.code != "" && tt.code != "all" {
			if codeOf(err) != tt.code {
				t.Errorf("%q %q: %v, want %s", tt.keyword, tt.searchType, err, tt.code)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, d := range body["Domains"].(map[string]any)["PageData"].([]any) {
			names = append(names, d.(map[string]any)["DomainName"].(string))
		}
		sort.Strings(names)
		if tt.code == "all" {
			if len(names) != len(seed.Domains) {
				t.Errorf("no keyword: %d domains, want %d", len(names), len(seed.Domains))
			}
			continue
		}
		if got := strings.Join(names, " "); got != tt.want || fmt.Sprint(body["TotalCount"]) != fmt.Sprint(len(names)) {
			t.Errorf("%q %q: %q (total %v), want %q", tt.keyword, tt.searchType, got, body["TotalCount"], tt.want)
		}
	}
}

// TestDeleteWildcardMatchesAll: AppName "*" matches all apps and StreamName "*" all streams
// under the AppName, as the DeleteLivePackageConfig page says.
func TestDeleteWildcardMatchesAll(t *testing.T) {
	configs := []string{"sports/*", "sports/final", "news/*", "news/final", "*/*", "*/final"}
	tests := []struct {
		app, stream string
		left        string
		code        string
	}{
		{"sports", "final", "*/* */final news/* news/final sports/*", ""},
		{"sports", "*", "*/* */final news/* news/final", ""},
		{"*", "final", "*/* news/* sports/*", ""},
		{"*", "*", "", ""},
		{"weather", "*", "*/* */final news/* news/final sports/* sports/final", "InvalidConfig.NotFound"},
		{"sports", "evening", "*/* */final news/* news/final sports/* sports/final", "InvalidConfig.NotFound"},
	}
	for _, tt := range tests {
		seed := DefaultSeed()
		for _, c := range configs {
			app, stream, _ := strings.Cut(c, "/")
			seed.PackageConfigs = append(seed.PackageConfigs, PackageConfig{DomainName: "play.example.com", AppName: app, StreamName: stream,
				Protocol: "HLS_CMAF", SegmentNum: 3, SegmentDuration: 5, IgnoreTranscode: true})
		}
		// A config on another domain is never touched.
		seed.PackageConfigs = append(seed.PackageConfigs, PackageConfig{DomainName: "global.example.com", AppName: "sports", StreamName: "*",
			Protocol: "HLS_CMAF", SegmentNum: 3, SegmentDuration: 5, IgnoreTranscode: true})
		s, url := start(t, Options{Seed: seed})
		_, err := newSDK(t, url, AccessKeyID, AccessKeySecret, false).call("DeleteLivePackageConfig",
			map[string]any{"DomainName": "play.example.com", "AppName": tt.app, "StreamName": tt.stream})
		if codeOf(err) != tt.code {
			t.Errorf("delete %s/%s: %v, want %q", tt.app, tt.stream, err, tt.code)
		}
		var left []string
		others := 0
		for _, pc := range s.State().PackageConfigs {
			if pc.DomainName != "play.example.com" {
				others++
				continue
			}
			left = append(left, pc.AppName+"/"+pc.StreamName)
		}
		sort.Strings(left)
		if got := strings.Join(left, " "); got != tt.left || others != 1 {
			t.Errorf("delete %s/%s left %q (other domains %d), want %q", tt.app, tt.stream, got, others, tt.left)
		}
	}
}

// TestSeedArrivingDomains: a seed's arriving domains follow the POST /_emulator/domains
// timeline from the emulator's start; /_emulator/state lists those still hidden with the delays
// left, and that state, read back as a seed, keeps the timeline.
func TestSeedArrivingDomains(t *testing.T) {
	clk := &clock{t: time.Now()}
	path := filepath.Join(t.TempDir(), "seed.json")
	writeFile(t, path, `{"domains": [], "onlineStreams": [], "packageConfigs": [],
		"arriving": [{"DomainName": "late.example.com", "HiddenFor": "3m", "ConfiguringFor": "1m"},
		             {"DomainName": "slow.example.com", "HiddenFor": "0s", "ConfiguringFor": "10m"}]}`)
	seed, err := LoadSeed(path)
	if err != nil {
		t.Fatal(err)
	}
	s, url := start(t, Options{Now: clk.Now, Seed: seed})
	c := newSDK(t, url, AccessKeyID, AccessKeySecret, false)
	status := func(name string) string {
		body, err := c.call("DescribeLiveDomainDetail", map[string]any{"DomainName": name})
		if err != nil {
			return codeOf(err)
		}
		return body["DomainDetail"].(map[string]any)["DomainStatus"].(string)
	}
	if got := status("slow.example.com"); got != "configuring" {
		t.Fatalf("slow.example.com: %s, want configuring", got)
	}
	clk.Add(time.Minute)
	if got := status("late.example.com"); got != "InvalidDomain.NotFound" {
		t.Fatalf("late.example.com after 1m: %s, want hidden", got)
	}
	resp, err := http.Get(url + "/_emulator/state")
	if err != nil {
		t.Fatal(err)
	}
	var state Seed
	err = json.NewDecoder(resp.Body).Decode(&state)
	resp.Body.Close()
	want := []NewDomain{{DomainName: "late.example.com", LiveDomainType: "liveVideo", Region: "cn-shanghai", Scope: "domestic", HiddenFor: "2m0s", ConfiguringFor: "1m0s"}}
	if err != nil || !reflect.DeepEqual(state.Arriving, want) {
		t.Fatalf("state arriving %+v (%v), want %+v", state.Arriving, err, want)
	}
	// The state as a seed: the same domain, hidden for what was left.
	again := New(Options{Now: clk.Now, Seed: state})
	if got := again.State().Arriving; !reflect.DeepEqual(got, want) {
		t.Fatalf("re-seeded arriving %+v", got)
	}
	clk.Add(2 * time.Minute)
	if got := status("late.example.com"); got != "configuring" {
		t.Fatalf("late.example.com after 3m: %s, want configuring", got)
	}
	clk.Add(time.Minute)
	if got := status("late.example.com"); got != "online" || len(s.State().Arriving) != 0 {
		t.Fatalf("late.example.com after 4m: %s, arriving %+v", got, s.State().Arriving)
	}
}
