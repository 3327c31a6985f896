package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	openapiutil "github.com/alibabacloud-go/darabonba-openapi/v2/utils"
	"github.com/alibabacloud-go/tea/dara"
)

// sdk is the official SDK core's generic client, pointed at a test emulator.
type sdk struct {
	c *openapi.Client
}

func newSDK(t testing.TB, url, keyID, secret string, v1 bool) sdk {
	t.Helper()
	cfg := &openapiutil.Config{AccessKeyId: dara.String(keyID), AccessKeySecret: dara.String(secret),
		Endpoint: dara.String(strings.TrimPrefix(url, "http://")), Protocol: dara.String("http")}
	if v1 {
		cfg.SignatureAlgorithm = dara.String("v2")
	}
	c, err := openapi.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.DisableSDKError = dara.Bool(true)
	return sdk{c}
}

type apiErr struct {
	Status int
	Code   string
}

func (e apiErr) Error() string { return fmt.Sprintf("%d %s", e.Status, e.Code) }

func (s sdk) call(action string, params map[string]any) (map[string]any, error) {
	p := &openapiutil.Params{Action: dara.String(action), Version: dara.String("2016-11-01"), Protocol: dara.String("HTTPS"),
		Pathname: dara.String("/"), Method: dara.String("POST"), AuthType: dara.String("AK"), Style: dara.String("RPC"),
		ReqBodyType: dara.String("formData"), BodyType: dara.String("json")}
	out, err := s.c.CallApi(p, &openapiutil.OpenApiRequest{Query: openapiutil.Query(params)}, &dara.RuntimeOptions{})
	if err != nil {
		var se interface {
			GetStatusCode() *int
			GetCode() *string
		}
		if errors.As(err, &se) {
			return nil, apiErr{dara.IntValue(se.GetStatusCode()), dara.StringValue(se.GetCode())}
		}
		return nil, err
	}
	body, _ := out["body"].(map[string]any)
	return body, nil
}

func start(t testing.TB, opts Options) (*Server, string) {
	t.Helper()
	if opts.Seed.Domains == nil {
		opts.Seed = DefaultSeed()
	}
	s := New(opts)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv.URL
}

func codeOf(err error) string {
	var e apiErr
	if errors.As(err, &e) {
		return e.Code
	}
	if err != nil {
		return "transport: " + err.Error()
	}
	return ""
}

func TestSequenceBothSignatures(t *testing.T) {
	for _, v1 := range []bool{false, true} {
		t.Run(fmt.Sprintf("v1=%v", v1), func(t *testing.T) {
			s, url := start(t, Options{})
			c := newSDK(t, url, AccessKeyID, AccessKeySecret, v1)
			base := map[string]any{"DomainName": "play.example.com", "AppName": "sports", "StreamName": "*"}
			with := func(extra map[string]any) map[string]any {
				m := map[string]any{}
				for k, v := range base {
					m[k] = v
				}
				for k, v := range extra {
					m[k] = v
				}
				return m
			}
			if _, err := c.call("AddLivePackageConfig", with(map[string]any{"Protocol": "LLHLS_CMAF"})); err != nil {
				t.Fatal(err)
			}
			body, err := c.call("DescribeLivePackageConfig", map[string]any{"DomainName": "play.example.com"})
			if err != nil {
				t.Fatal(err)
			}
			list := body["LivePackageConfigList"].(map[string]any)["LivePackageConfig"].([]any)
			got := list[0].(map[string]any)
			if len(list) != 1 || got["Protocol"] != "LLHLS_CMAF" || got["SegmentDuration"] != json.Number("1") && got["SegmentDuration"] != float64(1) || body["RequestId"] == "" {
				t.Fatalf("describe after add: %v", body)
			}
			if _, err := c.call("AddLivePackageConfig", with(map[string]any{"Protocol": "HLS_CMAF"})); codeOf(err) != "ConfigAlreadyExists" {
				t.Fatalf("duplicate add: %v", err)
			}
			if _, err := c.call("UpdateLivePackageConfig", with(map[string]any{"Protocol": "HLS_CMAF", "SegmentNum": 4, "SegmentDuration": 6})); err != nil {
				t.Fatal(err)
			}
			st := s.State().PackageConfigs
			if len(st) != 1 || st[0].Protocol != "HLS_CMAF" || st[0].SegmentNum != 4 || st[0].SegmentDuration != 6 || st[0].PartDuration != 0 {
				t.Fatalf("state after update: %+v", st)
			}
			if _, err := c.call("DeleteLivePackageConfig", base); err != nil {
				t.Fatal(err)
			}
			if _, err := c.call("DeleteLivePackageConfig", base); codeOf(err) != "InvalidConfig.NotFound" {
				t.Fatalf("delete of a missing config: %v", err)
			}
			if _, err := c.call("UpdateLivePackageConfig", with(map[string]any{"Protocol": "HLS_CMAF", "SegmentNum": 3, "SegmentDuration": 5})); codeOf(err) != "InvalidConfig.NotFound" {
				t.Fatalf("update of a missing config: %v", err)
			}
			for _, call := range s.Calls() {
				if call.Signature != map[bool]string{false: "V3", true: "V1"}[v1] {
					t.Fatalf("call signed with %s", call.Signature)
				}
			}
		})
	}
}

func TestAuthErrors(t *testing.T) {
	_, url := start(t, Options{})
	stale := New(Options{Seed: DefaultSeed(), Now: func() time.Time { return time.Now().Add(20 * time.Minute) }})
	staleSrv := httptest.NewServer(stale)
	defer staleSrv.Close()
	tests := []struct {
		name, url, key, secret string
		v1                     bool
		status                 int
		code                   string
	}{
		{"V3 bad secret", url, AccessKeyID, "wrong", false, 400, "SignatureDoesNotMatch"},
		{"V1 bad secret", url, AccessKeyID, "wrong", true, 400, "SignatureDoesNotMatch"},
		{"V3 unknown key", url, "nobody", "x", false, 404, "InvalidAccessKeyId.NotFound"},
		{"V1 unknown key", url, "nobody", "x", true, 404, "InvalidAccessKeyId.NotFound"},
		{"V3 stale", staleSrv.URL, AccessKeyID, AccessKeySecret, false, 400, "InvalidTimeStamp.Expired"},
		{"V1 stale", staleSrv.URL, AccessKeyID, AccessKeySecret, true, 400, "InvalidTimeStamp.Expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newSDK(t, tt.url, tt.key, tt.secret, tt.v1).call("DescribeLiveDomainDetail", map[string]any{"DomainName": "play.example.com"})
			var e apiErr
			if !errors.As(err, &e) || e.Status != tt.status || e.Code != tt.code {
				t.Fatalf("got %v, want %d %s", err, tt.status, tt.code)
			}
		})
	}
	// The raw body has the API's error shape.
	resp, err := http.Post(url+"/?Action=DescribeLiveDomainDetail&Version=2016-11-01", "application/x-www-form-urlencoded", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != 400 || body["Code"] != "IncompleteSignature" || body["RequestId"] == "" || body["HostId"] == "" || body["Message"] == "" {
		t.Fatalf("unsigned call: %d %v", resp.StatusCode, body)
	}
}

func TestAddRules(t *testing.T) {
	_, url := start(t, Options{})
	c := newSDK(t, url, AccessKeyID, AccessKeySecret, false)
	long := strings.Repeat("a", 255)
	tests := []struct {
		params map[string]any
		code   string
	}{
		{map[string]any{"AppName": "a", "StreamName": "s", "Protocol": "HLS_CMAF"}, "MissingParam"},
		{map[string]any{"DomainName": "play.example.com", "StreamName": "s", "Protocol": "HLS_CMAF"}, "MissingParam"},
		{map[string]any{"DomainName": "play.example.com", "AppName": "a", "StreamName": "s"}, "MissingParam"},
		{map[string]any{"DomainName": "play.example.com", "AppName": "a", "StreamName": "s", "Protocol": "RTMP"}, "InvalidProtocol"},
		{map[string]any{"DomainName": "play.example.com", "AppName": "-a", "StreamName": "s", "Protocol": "HLS_CMAF"}, "InvalidParams"},
		{map[string]any{"DomainName": "play.example.com", "AppName": long + "a", "StreamName": "s", "Protocol": "HLS_CMAF"}, "InvalidParams"},
		{map[string]any{"DomainName": "play.example.com", "AppName": long, "StreamName": "s1", "Protocol": "HLS_CMAF"}, ""},
		{map[string]any{"DomainName": "play.example.com", "AppName": "a", "StreamName": "s2", "Protocol": "HLS_CMAF", "SegmentNum": 2}, "InvalidSegmentNum"},
		{map[string]any{"DomainName": "play.example.com", "AppName": "a", "StreamName": "s3", "Protocol": "HLS_CMAF", "SegmentNum": 10, "SegmentDuration": 10}, ""},
		{map[string]any{"DomainName": "play.example.com", "AppName": "a", "StreamName": "s4", "Protocol": "DASH_CMAF", "SegmentDuration": 11}, "InvalidSegmentDuration"},
		{map[string]any{"DomainName": "play.example.com", "AppName": "a", "StreamName": "s5", "Protocol": "LLHLS_TS", "SegmentDuration": 3}, "InvalidSegmentDuration"},
		{map[string]any{"DomainName": "play.example.com", "AppName": "a", "StreamName": "s6", "Protocol": "LLHLS_TS", "SegmentDuration": 1, "PartDuration": 501}, "InvalidPartDuration"},
		{map[string]any{"DomainName": "play.example.com", "AppName": "a", "StreamName": "s7", "Protocol": "LLHLS_TS", "SegmentDuration": 2, "PartDuration": 1000}, ""},
		{map[string]any{"DomainName": "play.example.com", "AppName": "a", "StreamName": "s8", "Protocol": "LLHLS_CMAF", "SegmentDuration": 2, "PartDuration": 99}, "InvalidPartDuration"},
		{map[string]any{"DomainName": "nowhere.example.com", "AppName": "a", "StreamName": "s", "Protocol": "HLS_CMAF"}, "InvalidDomain.NotFound"},
		{map[string]any{"DomainName": "push.example.com", "AppName": "a", "StreamName": "s", "Protocol": "HLS_CMAF"}, "InvalidParams"},
	}
	for i, tt := range tests {
		if _, err := c.call("AddLivePackageConfig", tt.params); codeOf(err) != tt.code {
			t.Errorf("%d %v: got %q, want %q", i, tt.params, codeOf(err), tt.code)
		}
	}
}

func TestPagination(t *testing.T) {
	seed := DefaultSeed()
	for i := range 23 {
		seed.PackageConfigs = append(seed.PackageConfigs, PackageConfig{DomainName: "play.example.com", AppName: fmt.Sprintf("app%02d", i), StreamName: "*", Protocol: "HLS_CMAF", SegmentNum: 3, SegmentDuration: 5, IgnoreTranscode: true})
	}
	for i := range 60 {
		seed.Domains = append(seed.Domains, Domain{DomainName: fmt.Sprintf("d%02d.example.com", i), LiveDomainType: "liveVideo", DomainStatus: "online", Region: "cn-shanghai", Scope: "domestic"})
	}
	_, url := start(t, Options{Seed: seed})
	c := newSDK(t, url, AccessKeyID, AccessKeySecret, false)
	body, err := c.call("DescribeLivePackageConfig", map[string]any{"DomainName": "play.example.com", "PageNum": 3, "PageSize": 10})
	if err != nil {
		t.Fatal(err)
	}
	list := body["LivePackageConfigList"].(map[string]any)["LivePackageConfig"].([]any)
	if fmt.Sprintf("%v %v %v %v", body["TotalNum"], body["TotalPage"], body["PageNum"], len(list)) != "23 3 3 3" {
		t.Fatalf("page 3: %v", body)
	}
	if _, err := c.call("DescribeLivePackageConfig", map[string]any{"DomainName": "play.example.com", "PageSize": 31}); codeOf(err) != "InvalidParams" {
		t.Fatalf("PageSize 31: %v", err)
	}
	body, err = c.call("DescribeLiveUserDomains", map[string]any{"PageNumber": 2, "PageSize": 50, "LiveDomainType": "liveVideo", "DomainStatus": "online"})
	if err != nil {
		t.Fatal(err)
	}
	data := body["Domains"].(map[string]any)["PageData"].([]any)
	// 63 online play domains: 3 seeded + 60 added; page 2 of 50 holds 13.
	if fmt.Sprintf("%v %v %v", body["TotalCount"], body["PageNumber"], len(data)) != "63 2 13" {
		t.Fatalf("user domains page 2: %v", body)
	}
	body, err = c.call("DescribeLiveStreamsOnlineList", map[string]any{"DomainName": "play.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	streams := body["OnlineInfo"].(map[string]any)["LiveStreamOnlineInfo"].([]any)
	if len(streams) != 2 || streams[0].(map[string]any)["PublishUrl"] == "" {
		t.Fatalf("online list: %v", body)
	}
}

func TestQuotaThrottlesPerKey(t *testing.T) {
	// A frozen clock: the bucket refills nothing between calls, however slow the machine.
	t0 := time.Now()
	for shape, rate := range map[string]int{QuotaWindow: 5, QuotaBucket: 300} { // both: 5 calls now
		t.Run(shape, func(t *testing.T) {
			s, url := start(t, Options{Rate: rate, Quota: shape, Now: func() time.Time { return t0 },
				Credentials: map[string]string{AccessKeyID: AccessKeySecret, "other": "other-secret"}})
			c := newSDK(t, url, AccessKeyID, AccessKeySecret, false)
			for i := range 6 {
				_, err := c.call("DescribeLivePackageConfig", map[string]any{"DomainName": "play.example.com"})
				if want := map[bool]string{true: "", false: "Throttling.User"}[i < 5]; codeOf(err) != want {
					t.Fatalf("call %d: %v, want %q", i, err, want)
				}
			}
			// Another key, and an action with its own documented quota, are other budgets.
			if _, err := newSDK(t, url, "other", "other-secret", false).call("DescribeLivePackageConfig", map[string]any{"DomainName": "play.example.com"}); err != nil {
				t.Fatalf("another key is throttled too: %v", err)
			}
			if _, err := c.call("DescribeLiveDomainDetail", map[string]any{"DomainName": "play.example.com"}); err != nil {
				t.Fatalf("DescribeLiveDomainDetail spends the package-config quota: %v", err)
			}
			if calls := s.Calls(); calls[5].Code != "Throttling.User" || calls[5].Status != 400 {
				t.Fatalf("recorded call: %+v", calls[5])
			}
		})
	}
}

func TestFaultsRepeat(t *testing.T) {
	run := func() []string {
		s, url := start(t, Options{FailRate: 0.5, FailSeed: 42})
		s.latency = time.Millisecond
		c := newSDK(t, url, AccessKeyID, AccessKeySecret, false)
		var codes []string
		for range 100 {
			_, err := c.call("DescribeLiveDomainDetail", map[string]any{"DomainName": "play.example.com"})
			codes = append(codes, codeOf(err))
		}
		return codes
	}
	a, b := run(), run()
	if strings.Join(a, ",") != strings.Join(b, ",") {
		t.Fatalf("the same seed gave different faults:\n%v\n%v", a, b)
	}
	kinds := map[string]int{}
	for _, c := range a {
		kinds[c]++
	}
	if kinds[""] == 0 || kinds["InternalErr"] == 0 || kinds["ServiceUnavailable"] == 0 || kinds["Throttling"] == 0 {
		t.Fatalf("fault mix %v lacks a kind", kinds)
	}
}

// TestFaultAfterCommit: some injected write faults come after the change is committed, as a
// timeout after the commit looks to a caller; the others leave the state alone.
func TestFaultAfterCommit(t *testing.T) {
	s, url := start(t, Options{FailRate: 1, FailSeed: 9})
	s.latency = time.Millisecond
	c := newSDK(t, url, AccessKeyID, AccessKeySecret, false)
	committed, refused := 0, 0
	for i := range 40 {
		app := fmt.Sprintf("app%d", i)
		_, err := c.call("AddLivePackageConfig", map[string]any{"DomainName": "play.example.com", "AppName": app, "StreamName": "*", "Protocol": "HLS_CMAF"})
		if err == nil {
			continue // added latency only
		}
		found := false
		for _, pc := range s.State().PackageConfigs {
			found = found || pc.AppName == app
		}
		if found {
			committed++
			if codeOf(err) != "InternalErr" {
				t.Fatalf("a committed write answered %v", err)
			}
		} else {
			refused++
		}
	}
	if committed == 0 || refused == 0 {
		t.Fatalf("committed-then-failed %d, refused %d: want both kinds", committed, refused)
	}
}

func TestIntrospection(t *testing.T) {
	_, url := start(t, Options{})
	c := newSDK(t, url, AccessKeyID, AccessKeySecret, false)
	_, _ = c.call("AddLivePackageConfig", map[string]any{"DomainName": "play.example.com", "AppName": "a", "StreamName": "*", "Protocol": "HLS_CMAF"})
	var calls []Call
	getJSON(t, url+"/_emulator/calls", &calls)
	if len(calls) != 1 || calls[0].Action != "AddLivePackageConfig" || calls[0].Params["AppName"] != "a" || calls[0].Status != 200 {
		t.Fatalf("calls: %+v", calls)
	}
	if _, leaked := calls[0].Params["Signature"]; leaked {
		t.Fatal("calls expose the signature")
	}
	var st Seed
	getJSON(t, url+"/_emulator/state", &st)
	if len(st.PackageConfigs) != 1 || st.PackageConfigs[0].SegmentDuration != 5 || len(st.Domains) != 5 {
		t.Fatalf("state: %+v", st)
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func TestLoadSeed(t *testing.T) {
	dir := t.TempDir()
	good := dir + "/seed.json"
	writeFile(t, good, `{"domains":[{"DomainName":"a.com","LiveDomainType":"liveVideo","DomainStatus":"online","Region":"cn-shanghai","Scope":"domestic"}],"onlineStreams":[],"packageConfigs":[]}`)
	if s, err := LoadSeed(good); err != nil || len(s.Domains) != 1 {
		t.Fatalf("%+v %v", s, err)
	}
	bad := dir + "/bad.json"
	writeFile(t, bad, `{"domain":[]}`)
	if _, err := LoadSeed(bad); err == nil {
		t.Fatal("a misspelt field was accepted")
	}
}

func BenchmarkEmulator(b *testing.B) {
	_, url := start(b, Options{Rate: 1 << 30})
	c := newSDK(b, url, AccessKeyID, AccessKeySecret, false)
	b.Run("DescribeLivePackageConfig", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.call("DescribeLivePackageConfig", map[string]any{"DomainName": "play.example.com"}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AddDelete", func(b *testing.B) {
		p := map[string]any{"DomainName": "play.example.com", "AppName": "bench", "StreamName": "*", "Protocol": "HLS_CMAF"}
		for b.Loop() {
			if _, err := c.call("AddLivePackageConfig", p); err != nil {
				b.Fatal(err)
			}
			if _, err := c.call("DeleteLivePackageConfig", p); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkServeHTTP is the emulator alone, without a network or a signing client: a V1
// request signed once per iteration and served in process.
func BenchmarkServeHTTP(b *testing.B) {
	s := New(Options{Seed: DefaultSeed(), Rate: 1 << 30})
	i := 0
	for b.Loop() {
		i++
		p := urlValues(map[string]string{"Action": "DescribeLiveDomainDetail", "Version": "2016-11-01", "DomainName": "play.example.com",
			"AccessKeyId": AccessKeyID, "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0", "SignatureNonce": fmt.Sprint(i),
			"Timestamp": time.Now().UTC().Format("2006-01-02T15:04:05Z"), "Format": "JSON"})
		p.Set("Signature", v1Signature(AccessKeySecret, "GET", p))
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest("GET", "/?"+p.Encode(), nil))
		if rec.Code != 200 {
			b.Fatal(rec.Body.String())
		}
	}
}
