package emulator

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// skew is how far a request's timestamp may be from the emulator's clock (both schemes).
const skew = 15 * time.Minute

// request is one RPC call, authenticated.
type request struct {
	action, version, accessKeyID, scheme string
	params                               url.Values
	// failAfter: an injected fault answers 500 after a write commits.
	failAfter bool
}

// loggable returns the parameters without the signature fields.
func (r *request) loggable() map[string]string {
	out := map[string]string{}
	for k, v := range r.params {
		switch k {
		case "Signature", "SignatureNonce", "SignatureMethod", "SignatureVersion", "AccessKeyId", "Timestamp", "Format", "Action", "Version", "SecurityToken":
			continue
		}
		out[k] = strings.Join(v, ",")
	}
	return out
}

// percentEncode is the RFC 3986 encoding both signature schemes use.
func percentEncode(s string) string {
	e := url.QueryEscape(s)
	e = strings.ReplaceAll(e, "+", "%20")
	e = strings.ReplaceAll(e, "*", "%2A")
	return strings.ReplaceAll(e, "%7E", "~")
}

// canonicalQuery sorts the parameters by name and encodes each pair.
func canonicalQuery(v url.Values, skip string) string {
	keys := make([]string, 0, len(v))
	for k := range v {
		if k != skip {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		for _, val := range v[k] {
			parts = append(parts, percentEncode(k)+"="+percentEncode(val))
		}
	}
	return strings.Join(parts, "&")
}

// v3Signature computes an ACS3-HMAC-SHA256 signature from its parts.
func v3Signature(secret, method, path string, query url.Values, headers map[string]string, signed []string, payloadHash string) string {
	sig, _ := v3Sign(secret, method, path, query, headers, signed, payloadHash)
	return sig
}

// v3Sign returns the ACS3-HMAC-SHA256 signature and the string it signed.
func v3Sign(secret, method, path string, query url.Values, headers map[string]string, signed []string, payloadHash string) (sig, stringToSign string) {
	var ch strings.Builder
	for _, h := range signed {
		ch.WriteString(h + ":" + strings.TrimSpace(headers[h]) + "\n")
	}
	canonical := strings.Join([]string{method, path, canonicalQuery(query, ""), ch.String(), strings.Join(signed, ";"), payloadHash}, "\n")
	sum := sha256.Sum256([]byte(canonical))
	stringToSign = "ACS3-HMAC-SHA256\n" + hex.EncodeToString(sum[:])
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(stringToSign))
	return hex.EncodeToString(mac.Sum(nil)), stringToSign
}

// v1Signature computes an HMAC-SHA1 (SignatureVersion 1.0) signature.
func v1Signature(secret, method string, params url.Values) string {
	sig, _ := v1Sign(secret, method, params)
	return sig
}

// v1Sign returns the HMAC-SHA1 signature and the string it signed.
func v1Sign(secret, method string, params url.Values) (sig, stringToSign string) {
	stringToSign = method + "&" + percentEncode("/") + "&" + percentEncode(canonicalQuery(params, "Signature"))
	mac := hmac.New(sha1.New, []byte(secret+"&"))
	mac.Write([]byte(stringToSign))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil)), stringToSign
}

// signatureMismatch is the gateway's answer to a wrong signature: its message ends with the
// string the server signed, which the legacy SDKs compare with their own to tell a wrong
// secret (the strings agree) from a signing bug (they differ).
func signatureMismatch(serverStringToSign string) *apiError {
	return fail(http.StatusBadRequest, "SignatureDoesNotMatch", "%s%s", signatureMismatchPrefix, serverStringToSign)
}

// signatureMismatchPrefix is the gateway's message before the echoed string to sign.
const signatureMismatchPrefix = "Specified signature is not matched with our calculation. server string to sign is:"

// authenticate reads the call's parameters and verifies its signature, V3 when an
// Authorization header is present, else V1.
func (s *Server) authenticate(r *http.Request) (*request, *apiError) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	req := &request{params: url.Values{}}
	if err != nil {
		return req, fail(http.StatusBadRequest, "InvalidParameter", "The request body could not be read.")
	}
	for k, v := range r.URL.Query() {
		req.params[k] = v
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") && len(body) > 0 {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return req, fail(http.StatusBadRequest, "InvalidParameter", "The form body is not valid.")
		}
		for k, v := range form {
			req.params[k] = append(req.params[k], v...)
		}
	}
	if auth := r.Header.Get("Authorization"); auth != "" {
		req.scheme = "V3"
		req.action, req.version = r.Header.Get("x-acs-action"), r.Header.Get("x-acs-version")
		return req, s.verifyV3(r, req, auth, body)
	}
	req.scheme = "V1"
	req.action, req.version = req.params.Get("Action"), req.params.Get("Version")
	return req, s.verifyV1(r, req)
}

func (s *Server) verifyV3(r *http.Request, req *request, auth string, body []byte) *apiError {
	incomplete := fail(http.StatusBadRequest, "IncompleteSignature", "The request signature does not conform to Aliyun standards.")
	alg, rest, ok := strings.Cut(auth, " ")
	if !ok || alg != "ACS3-HMAC-SHA256" {
		return incomplete
	}
	fields := map[string]string{}
	for _, part := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		fields[k] = v
	}
	req.accessKeyID = fields["Credential"]
	if req.accessKeyID == "" || fields["SignedHeaders"] == "" || fields["Signature"] == "" {
		return incomplete
	}
	secret, known := s.creds[req.accessKeyID]
	if !known {
		return fail(http.StatusNotFound, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
	}
	if err := s.fresh(r.Header.Get("x-acs-date")); err != nil {
		return err
	}
	signed := strings.Split(fields["SignedHeaders"], ";")
	headers := map[string]string{}
	for _, h := range signed {
		if h == "host" {
			headers[h] = r.Host
		} else {
			headers[h] = r.Header.Get(h)
		}
	}
	for _, must := range []string{"host", "x-acs-action", "x-acs-version", "x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256"} {
		if _, ok := headers[must]; !ok {
			return incomplete
		}
	}
	sum := sha256.Sum256(body)
	if hex.EncodeToString(sum[:]) != headers["x-acs-content-sha256"] {
		return fail(http.StatusBadRequest, "SignatureDoesNotMatch", "The x-acs-content-sha256 header does not match the request body.")
	}
	want, sts := v3Sign(secret, r.Method, "/", r.URL.Query(), headers, signed, headers["x-acs-content-sha256"])
	if !hmac.Equal([]byte(want), []byte(fields["Signature"])) {
		return signatureMismatch(sts)
	}
	return s.nonce(req.accessKeyID + "/" + headers["x-acs-signature-nonce"])
}

func (s *Server) verifyV1(r *http.Request, req *request) *apiError {
	p := req.params
	req.accessKeyID = p.Get("AccessKeyId")
	if p.Get("Signature") == "" || req.accessKeyID == "" {
		return fail(http.StatusBadRequest, "IncompleteSignature", "The request signature does not conform to Aliyun standards.")
	}
	if p.Get("SignatureMethod") != "HMAC-SHA1" || p.Get("SignatureVersion") != "1.0" {
		return fail(http.StatusBadRequest, "InvalidSignatureMethod", "Specified signature method is not valid.")
	}
	secret, known := s.creds[req.accessKeyID]
	if !known {
		return fail(http.StatusNotFound, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
	}
	if err := s.fresh(p.Get("Timestamp")); err != nil {
		return err
	}
	want, sts := v1Sign(secret, r.Method, p)
	if !hmac.Equal([]byte(want), []byte(p.Get("Signature"))) {
		return signatureMismatch(sts)
	}
	return s.nonce(req.accessKeyID + "/" + p.Get("SignatureNonce"))
}

// fresh checks a request timestamp against the clock.
func (s *Server) fresh(ts string) *apiError {
	t, err := time.Parse("2006-01-02T15:04:05Z", ts)
	if err != nil {
		return fail(http.StatusBadRequest, "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted.")
	}
	if d := s.now().Sub(t); d > skew || d < -skew {
		return fail(http.StatusBadRequest, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
	}
	return nil
}

// nonce refuses a signature nonce seen within the timestamp window: a replayed request.
func (s *Server) nonce(key string) *apiError {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, seen := s.nonces[key]; seen && now.Sub(t) < 2*skew {
		return fail(http.StatusBadRequest, "SignatureNonceUsed", "Specified signature nonce was used already.")
	}
	if len(s.nonces) > 100000 {
		for k, t := range s.nonces {
			if now.Sub(t) >= 2*skew {
				delete(s.nonces, k)
			}
		}
	}
	s.nonces[key] = now
	return nil
}
