package emulator

import (
	"net/url"
	"testing"
)

// The worked examples of the reference (Alibaba Cloud's V3 "fixed parameter values" example
// and the ECS V1 "request signatures" example).
func TestV3WorkedExample(t *testing.T) {
	q := url.Values{"ImageId": {"win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd"}, "RegionId": {"cn-shanghai"}}
	headers := map[string]string{
		"host":                  "ecs.cn-shanghai.aliyuncs.com",
		"x-acs-action":          "RunInstances",
		"x-acs-content-sha256":  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"x-acs-date":            "2023-10-26T10:22:32Z",
		"x-acs-signature-nonce": "3156853299f313e23d1673dc12e1703d",
		"x-acs-version":         "2014-05-26",
	}
	signed := []string{"host", "x-acs-action", "x-acs-content-sha256", "x-acs-date", "x-acs-signature-nonce", "x-acs-version"}
	got := v3Signature("YourAccessKeySecret", "POST", "/", q, headers, signed, headers["x-acs-content-sha256"])
	if want := "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"; got != want {
		t.Fatalf("V3 signature %s, want %s", got, want)
	}
}

func TestV1WorkedExample(t *testing.T) {
	p := url.Values{"AccessKeyId": {"testid"}, "Action": {"DescribeRegions"}, "Format": {"XML"},
		"SignatureMethod": {"HMAC-SHA1"}, "SignatureNonce": {"3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"},
		"SignatureVersion": {"1.0"}, "Timestamp": {"2016-02-23T12:46:24Z"}, "Version": {"2014-05-26"}}
	for method, want := range map[string]string{"GET": "OLeaidS1JvxuMvnyHOwuJ+uX5qY=", "POST": "MxbnVAM4w6sft9xjVpe/GCKueuk="} {
		if got := v1Signature("testsecret", method, p); got != want {
			t.Errorf("V1 %s signature %s, want %s", method, got, want)
		}
	}
}

func TestPercentEncode(t *testing.T) {
	for in, want := range map[string]string{"a b": "a%20b", "*": "%2A", "~": "~", "2016-02-23T12:46:24Z": "2016-02-23T12%3A46%3A24Z", "é": "%C3%A9"} {
		if got := percentEncode(in); got != want {
			t.Errorf("percentEncode(%q) = %q, want %q", in, got, want)
		}
	}
}
