package emulator

import (
	"encoding/json"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/livepack/livepack/shared/policy"
)

// protocols the differential test draws from: the five valid ones and some that are not.
var fuzzProtocols = []string{"HLS_CMAF", "LLHLS_TS", "LLHLS_CMAF", "DASH_CMAF", "HLSDASH_CMAF", "", "RTMP", "HLS_TS", "LLHLS_FLV"}

// emulatorCode sends one signed AddLivePackageConfig to a fresh emulator and returns the error
// code ("" when accepted).
func emulatorCode(t *testing.T, params map[string]string) string {
	s := New(Options{Seed: DefaultSeed(), Rate: 1 << 30})
	p := urlValues(params)
	for k, v := range map[string]string{"Action": "AddLivePackageConfig", "Version": "2016-11-01", "AccessKeyId": AccessKeyID,
		"SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0", "SignatureNonce": "n",
		"Timestamp": time.Now().UTC().Format("2006-01-02T15:04:05Z"), "Format": "JSON"} {
		p.Set(k, v)
	}
	p.Set("Signature", v1Signature(AccessKeySecret, "POST", p))
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/", strings.NewReader(p.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	s.ServeHTTP(rec, req)
	if rec.Code == 200 {
		return ""
	}
	var body struct{ Code string }
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("error body: %s", rec.Body)
	}
	return body.Code
}

// FuzzDifferential holds the emulator and the policy model, two independent readings of the
// AddLivePackageConfig page, against each other on parameter sets in canonical form (exact
// protocol spelling, every setting explicit), where normalization changes nothing. They must
// agree on accept or reject; the API answers with one code, the model lists every broken rule,
// so the emulator's code must be among the model's.
func FuzzDifferential(f *testing.F) {
	f.Add("sports", "*", uint8(2), 3, 1, 350)
	f.Add("a", "b", uint8(1), 10, 2, 1000)
	f.Add("-a", "b", uint8(0), 3, 5, 0)
	f.Add("a", "_b", uint8(6), 11, 0, 0)
	f.Add("a", "b", uint8(2), 3, 1, 501)
	f.Add("a", "b", uint8(4), 2, 11, 0)
	f.Add("", "b", uint8(3), 3, 5, 0)
	f.Add(strings.Repeat("x", 256), "b", uint8(3), 3, 5, 0)
	f.Fuzz(func(t *testing.T, app, stream string, proto uint8, segNum, segDur, part int) {
		if strings.TrimSpace(app) != app || strings.TrimSpace(stream) != stream {
			t.Skip("not canonical: normalization would trim the names")
		}
		protocol := fuzzProtocols[int(proto)%len(fuzzProtocols)]
		ll := strings.HasPrefix(protocol, "LLHLS_")
		ignore := segNum%2 == 0
		params := map[string]string{"DomainName": "play.example.com", "AppName": app, "StreamName": stream, "Protocol": protocol,
			"SegmentNum": strconv.Itoa(segNum), "SegmentDuration": strconv.Itoa(segDur), "IgnoreTranscode": strconv.FormatBool(ignore)}
		p := policy.Policy{DomainName: "play.example.com", AppName: app, StreamName: stream, Protocol: protocol,
			SegmentNum: &segNum, SegmentDuration: &segDur, IgnoreTranscode: &ignore}
		if ll {
			params["PartDuration"] = strconv.Itoa(part)
			p.PartDuration = &part
		}
		n := policy.Normalize(p)
		errs := policy.Validate(0, n)
		got := emulatorCode(t, params)
		if (got == "") != (len(errs) == 0) {
			t.Fatalf("disagree on %v: emulator %q, model %+v", params, got, errs)
		}
		if got == "" {
			return
		}
		for _, fe := range errs {
			if fe.Code == got {
				return
			}
		}
		t.Fatalf("emulator code %q is not among the model's %+v for %v", got, errs, params)
	})
}

// FuzzServeHTTP feeds arbitrary requests to the emulator's decoder: it must never panic and
// always answer JSON in the API's error shape.
func FuzzServeHTTP(f *testing.F) {
	f.Add("POST", "Action=AddLivePackageConfig&Version=2016-11-01&Signature=x&AccessKeyId=emulator", "", "")
	f.Add("GET", "", "a=%zz", "ACS3-HMAC-SHA256 Credential=emulator,SignedHeaders=host,Signature=00")
	f.Add("POST", "SignatureMethod=HMAC-SHA1&SignatureVersion=1.0&Signature=a&AccessKeyId=emulator&Timestamp=x", "DomainName=p", "ACS3-HMAC-SHA256")
	s := New(Options{Seed: DefaultSeed()})
	f.Fuzz(func(t *testing.T, method, query, body, auth string) {
		if method != "GET" && method != "POST" {
			method = "POST"
		}
		req := httptest.NewRequest(method, "/", strings.NewReader(body))
		req.URL.RawQuery = query
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		var e struct{ Code, RequestId string }
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || (rec.Code != 200 && (e.Code == "" || e.RequestId == "")) {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
	})
}
