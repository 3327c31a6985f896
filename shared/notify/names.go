package notify

import (
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"strings"
)

// sinkName names an HTTP sink by what is safe to show: its scheme and host, plus a short
// digest of the rest. Chat webhooks (Slack, Feishu, Teams, Discord) keep their token in the
// path and DingTalk in the query, and a sink's name lands in results, logs, errors and the
// store; the digest still tells two sinks on one host apart.
func sinkName(u *url.URL) string {
	base := strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host)
	rest := u.EscapedPath()
	if u.RawQuery != "" {
		rest += "?" + u.RawQuery
	}
	if rest == "" || rest == "/" {
		return base
	}
	sum := sha256.Sum256([]byte(rest))
	return base + "/~" + hex.EncodeToString(sum[:4])
}

// redact shows a sink URL as its scheme and host only: the path, query, fragment and user info
// may all carry tokens.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		if i := strings.Index(s, "://"); i >= 0 {
			host := s[i+3:]
			if j := strings.IndexAny(host, "/?#@"); j >= 0 {
				host = host[:j]
			}
			return s[:i+3] + host + "/…"
		}
		if len(s) > 8 {
			return s[:8] + "…"
		}
		return s
	}
	out := u.Scheme + "://" + u.Host
	if u.Path != "" || u.RawQuery != "" || u.Fragment != "" {
		out += "/…"
	}
	return out
}

// PublishURL returns a stream's publish URL as a notice carries it: without its query, where
// the stream's auth_key lives (and without user info), unless keepQuery is set (LIVEPACK_NOTIFY_KEEP_QUERY=1). A URL
// that does not parse keeps only what precedes its first '?'.
func PublishURL(raw string, keepQuery bool) string {
	if keepQuery {
		return raw
	}
	if u, err := url.Parse(raw); err == nil {
		u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
		return u.String()
	}
	if i := strings.IndexAny(raw, "?#"); i >= 0 {
		return raw[:i]
	}
	return raw
}
