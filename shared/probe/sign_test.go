package probe

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestAuthKey holds the signer to the examples of Alibaba Cloud CDN's type A signing page.
func TestAuthKey(t *testing.T) {
	tests := []struct {
		name, uri, key string
		ts             int64
		rnd, uid, want string
	}{
		{"documented example", "/video/standard/1K.html", "aliyuncdnexp1234", 1444435200, "0", "0", "1444435200-0-0-80cd3862d699b7118eed99103f2a3a4f"},
		{"documented example, another file", "/video/standard/test.mp4", "aliyuncdnexp1234", 1444435200, "0", "0", "1444435200-0-0-23bf85053008f5c0e791667a313e28ce"},
		{"rand and uid are hashed", "/video/standard/1K.html", "aliyuncdnexp1234", 1444435200, "477b3bbc253f467b8def6711128c7bec", "0", ""},
	}
	for _, tt := range tests {
		got := AuthKey(tt.uri, tt.key, tt.ts, tt.rnd, tt.uid)
		if tt.want != "" && got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
		if tt.want == "" && (strings.HasSuffix(got, "80cd3862d699b7118eed99103f2a3a4f") || !strings.HasPrefix(got, "1444435200-477b3bbc253f467b8def6711128c7bec-0-")) {
			t.Errorf("%s: %s", tt.name, got)
		}
	}
}

func TestSign(t *testing.T) {
	u, _ := url.Parse("https://play.example.com/sports/final.m3u8")
	now := time.Unix(1444435200, 0)
	a, err := Sign(u, "aliyuncdnexp1234", now)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Sign(u, "aliyuncdnexp1234", now)
	parts := strings.Split(a.Query().Get("auth_key"), "-")
	if len(parts) != 4 || parts[0] != "1444435200" || len(parts[1]) != 32 || parts[2] != "0" || len(parts[3]) != 32 {
		t.Fatalf("auth_key %q: want timestamp-rand-uid-md5hash", a.Query().Get("auth_key"))
	}
	if a.String() == b.String() {
		t.Fatal("two signatures share their random value")
	}
	if AuthKey("/sports/final.m3u8", "aliyuncdnexp1234", 1444435200, parts[1], "0") != a.Query().Get("auth_key") {
		t.Fatal("the signature is not AuthKey of the URL's path")
	}
	if u.RawQuery != "" {
		t.Fatal("Sign changed its argument")
	}
}
