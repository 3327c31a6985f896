package probe

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// AuthKey is the auth_key of URL authentication type A for uri (the path, without query):
// "timestamp-rand-uid-md5hash", md5hash being the MD5 of "URI-timestamp-rand-uid-PrivateKey".
// The play domain accepts the URL until timestamp plus its validity period.
func AuthKey(uri, privateKey string, timestamp int64, rnd, uid string) string {
	ts := strconv.FormatInt(timestamp, 10)
	sum := md5.Sum([]byte(uri + "-" + ts + "-" + rnd + "-" + uid + "-" + privateKey))
	return ts + "-" + rnd + "-" + uid + "-" + hex.EncodeToString(sum[:])
}

// Sign returns u with a type-A auth_key added to its query, signed at now with a fresh random
// value (a UUID's hex, as the CDN documentation advises) and uid 0. The result carries a
// credential for the validity period: callers never log it.
func Sign(u *url.URL, privateKey string, now time.Time) (*url.URL, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("probe: sign %s: %w", u.Path, err)
	}
	signed := *u
	q := signed.Query()
	q.Set("auth_key", AuthKey(u.EscapedPath(), privateKey, now.Unix(), hex.EncodeToString(b[:]), "0"))
	signed.RawQuery = q.Encode()
	return &signed, nil
}
