package notify

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestSinkNamesHideTokens: a sink's name is its scheme and host plus a digest of the rest, for
// the token-in-path chat webhooks and the token-in-query DingTalk robot alike.
func TestSinkNamesHideTokens(t *testing.T) {
	tests := []struct{ url, name, token string }{
		{"https://hooks.slack.com/services/T00000000/B00000000/XXXXslacktokenXXXX", "https://hooks.slack.com/~", "XXXXslacktokenXXXX"},
		{"https://open.feishu.cn/open-apis/bot/v2/hook/feishu-token-0123", "https://open.feishu.cn/~", "feishu-token-0123"},
		{"https://discord.com/api/webhooks/123/discord-token-abc", "https://discord.com/~", "discord-token-abc"},
		{"https://example.webhook.office.com/webhookb2/teams-token@x/IncomingWebhook/a/b", "https://example.webhook.office.com/~", "teams-token"},
		{"https://oapi.dingtalk.com/robot/send?access_token=ding-token-42#SECding", "https://oapi.dingtalk.com/~", "ding-token-42"},
		{"http://10.0.0.1:8080/n?k=v", "http://10.0.0.1:8080/~", "k=v"},
		{"https://hooks.example.com", "https://hooks.example.com", ""},
	}
	for _, tt := range tests {
		sinks, err := ParseSinks(tt.url, "")
		if err != nil {
			t.Fatal(err)
		}
		name := sinks[0].Name()
		if !strings.HasPrefix(name, tt.name) || (tt.token != "" && (strings.Contains(name, tt.token) || len(name) != len(tt.name)+8)) {
			t.Errorf("%s: name %q, want %s followed by an 8-digit digest", tt.url, name, tt.name)
		}
	}
	two, err := ParseSinks("https://hooks.slack.com/services/T/B/one,https://hooks.slack.com/services/T/B/two", "")
	if err != nil || two[0].Name() == two[1].Name() {
		t.Fatalf("two sinks on one host: %v %v", two, err)
	}
}

// TestSinkErrorsHideTokens: neither a delivery failure nor a transport error shows the path
// or query of a sink's URL.
func TestSinkErrorsHideTokens(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
	}))
	defer srv.Close()
	token := "path-token-31337"
	for _, u := range []string{srv.URL + "/hook/" + token, "http://127.0.0.1:1/hook/" + token} {
		sinks, err := ParseSinks(u, "")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		if strings.Contains(u, ":1/") {
			cancel() // a refused connection is retried; one attempt is enough here
		}
		err = sinks[0].Deliver(ctx, notice(t))
		cancel()
		if err == nil || strings.Contains(err.Error(), token) || strings.Contains(err.Error(), "/hook/") {
			t.Errorf("%s: error %v shows the URL's path", u, err)
		}
		if strings.Contains(u, srv.URL) && !errors.Is(err, ErrPermanent) {
			t.Errorf("403: %v, want permanent", err)
		}
	}
	if _, err := ParseSinks("ftp://h/"+token, ""); err == nil || strings.Contains(err.Error(), token) {
		t.Errorf("parse error %v shows the path", err)
	}
}

func TestPublishURL(t *testing.T) {
	tests := []struct {
		in   string
		keep bool
		want string
	}{
		{"rtmp://push.example.com/sports/final?auth_key=1700000000-0-0-abc", false, "rtmp://push.example.com/sports/final"},
		{"rtmp://push.example.com/sports/final?auth_key=1700000000-0-0-abc", true, "rtmp://push.example.com/sports/final?auth_key=1700000000-0-0-abc"},
		{"rtmp://push.example.com/sports/final", false, "rtmp://push.example.com/sports/final"},
		{"rtmp://user:pw@push.example.com/a/b?x=1#f", false, "rtmp://push.example.com/a/b"},
		{"rtmp://push.example.com/%zz?auth_key=k", false, "rtmp://push.example.com/%zz"},
		{"", false, ""},
	}
	for _, tt := range tests {
		if got := PublishURL(tt.in, tt.keep); got != tt.want {
			t.Errorf("PublishURL(%q, %v) = %q, want %q", tt.in, tt.keep, got, tt.want)
		}
	}
}
