package liveapi

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// Per-attempt timeouts. They bound one HTTP exchange, not a call: the caller's context carries
// the invocation's deadline, so these stay fixed and every call reuses the same connections.
const (
	// DefaultConnectTimeout bounds dialing and the TLS handshake.
	DefaultConnectTimeout = 5 * time.Second
	// DefaultReadTimeout bounds the wait for the response headers once the request is sent.
	DefaultReadTimeout = 10 * time.Second
	// maxIdlePerHost keeps enough idle connections for concurrent calls: net/http's default
	// of 2 would close and redial under any concurrency above it.
	maxIdlePerHost = 64
)

// httpClient is the dara.HttpClient livepack hands to the SDK. Without it the SDK keeps one
// *http.Client per distinct timeout pair and rewrites that client's Timeout on every call, so
// timeouts derived from a deadline meant a new client, transport and TCP connection per call.
type httpClient struct{ c *http.Client }

// Call sends req on livepack's own transport; the SDK's per-call transport is ignored.
func (h httpClient) Call(req *http.Request, _ *http.Transport) (*http.Response, error) {
	return h.c.Do(req)
}

type timeouts struct{ connect, read time.Duration }

// clients holds one *http.Client per timeout pair: in practice one for the whole process,
// shared by every Client, so a host that builds a Client per invocation still reuses its
// connections.
var clients sync.Map // timeouts -> httpClient

func sharedClient(t timeouts) httpClient {
	if c, ok := clients.Load(t); ok {
		return c.(httpClient)
	}
	dialer := &net.Dialer{Timeout: t.connect, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   t.connect,
		ResponseHeaderTimeout: t.read,
		MaxIdleConns:          maxIdlePerHost,
		MaxIdleConnsPerHost:   maxIdlePerHost,
		IdleConnTimeout:       90 * time.Second,
	}
	c, _ := clients.LoadOrStore(t, httpClient{c: &http.Client{Transport: tr}})
	return c.(httpClient)
}
