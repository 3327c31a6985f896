package liveapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	openapiutil "github.com/alibabacloud-go/darabonba-openapi/v2/utils"
	"github.com/alibabacloud-go/tea/dara"
	"github.com/aliyun/credentials-go/credentials"
	"github.com/cenkalti/backoff/v5"
)

// Version is the Live OpenAPI version every action belongs to.
const Version = "2016-11-01"

// DefaultEndpoint serves the Chinese mainland regions, Tokyo, Mumbai and Jakarta.
const DefaultEndpoint = "live.aliyuncs.com"

// Options configures a Client.
type Options struct {
	// Endpoint is a host ("live.aliyuncs.com", HTTPS) or a URL with a scheme
	// ("http://127.0.0.1:8080", an emulator).
	Endpoint string
	// RegionID is sent as RegionId; empty means cn-shanghai.
	RegionID string
	// Credential signs every call; nil means credentials-go's default chain, which darabonba
	// would not consult on its own.
	Credential credentials.Credential
	// SignatureV1 signs with HMAC-SHA1 (RPC signature version 1.0) instead of ACS3-HMAC-SHA256,
	// for gateways or proxies that only know the older scheme.
	SignatureV1 bool
	// Limiter spends the account quota before every attempt; nil means no client-side limit.
	Limiter Limiter
	// MaxAttempts bounds the attempts of one call, retries included; 0 means 5.
	MaxAttempts int
	// Logger receives one line per retry; nil discards.
	Logger *slog.Logger
	// ConnectTimeout bounds dialing and the TLS handshake of one attempt; 0 means
	// DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// ReadTimeout bounds one attempt's wait for the response headers; 0 means
	// DefaultReadTimeout.
	ReadTimeout time.Duration
	// Reserve is the time every call leaves before the caller's deadline (or a quarter of the
	// time left, when that is shorter), so whatever trigger made the call still has time to
	// record its result and answer; 0 means DefaultReserve, negative means none.
	Reserve time.Duration
}

// DefaultReserve is the time a call leaves before the caller's deadline by default.
const DefaultReserve = time.Second

// Client calls the Live OpenAPI through the official SDK core (darabonba-openapi's generic
// CallApi: the per-service Live module is not on the Go module proxy). It retries throttling,
// 5xx and network errors itself, because the SDK retries nothing by default and its own retry
// sleeps in the wrong unit in some versions.
type Client struct {
	// sdks holds idle SDK clients: darabonba's client keeps per-call state in its own fields
	// (GetRpcHeaders clears Headers on every call), so one must never serve two calls at once.
	// They share cfg's HTTP client, so the pool costs no connections.
	sdks        sync.Pool
	cfg         *openapiutil.Config
	region      string
	limiter     Limiter
	maxAttempts int
	log         *slog.Logger
	reserve     time.Duration
	// sleep waits between attempts; tests replace it.
	sleep func(context.Context, time.Duration) error
}

var _ API = (*Client)(nil)

// New builds a Client. It resolves the credential chain lazily: the first call fails, not
// New, when no credential is found.
func New(o Options) (*Client, error) {
	endpoint, protocol := o.Endpoint, "https"
	if endpoint == "" {
		endpoint = DefaultEndpoint
	}
	if strings.Contains(endpoint, "://") {
		u, err := url.Parse(endpoint)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, fmt.Errorf("liveapi: endpoint %q: want a host or an http(s)://host:port URL", endpoint)
		}
		endpoint, protocol = u.Host, u.Scheme
	}
	cred := o.Credential
	if cred == nil {
		c, err := credentials.NewCredential(nil)
		if err != nil {
			return nil, fmt.Errorf("liveapi: default credential chain: %w", err)
		}
		cred = c
	}
	t := timeouts{connect: o.ConnectTimeout, read: o.ReadTimeout}
	if t.connect <= 0 {
		t.connect = DefaultConnectTimeout
	}
	if t.read <= 0 {
		t.read = DefaultReadTimeout
	}
	// The context alone carries the invocation's deadline; the timeouts stay fixed, so one
	// transport (and its idle connections) serves every call of the process.
	cfg := &openapiutil.Config{Credential: cred, Endpoint: dara.String(endpoint), Protocol: dara.String(protocol),
		HttpClient: sharedClient(t), ConnectTimeout: dara.Int(int(t.connect.Milliseconds())), ReadTimeout: dara.Int(int(t.read.Milliseconds()))}
	if o.SignatureV1 {
		cfg.SignatureAlgorithm = dara.String("v2")
	}
	sdk, err := newSDK(cfg)
	if err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, region: o.RegionID, limiter: o.Limiter, maxAttempts: o.MaxAttempts, log: o.Logger, sleep: sleepCtx, reserve: o.Reserve}
	c.sdks.Put(sdk)
	if c.reserve == 0 {
		c.reserve = DefaultReserve
	}
	if c.region == "" {
		c.region = "cn-shanghai"
	}
	if c.maxAttempts <= 0 {
		c.maxAttempts = 5
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// newSDK builds one SDK client on cfg.
func newSDK(cfg *openapiutil.Config) (*openapi.Client, error) {
	sdk, err := openapi.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("liveapi: SDK client: %w", err)
	}
	// Typed errors keep the status, the code and the throttling hint; the SDK's generic
	// SDKError would drop the hint.
	sdk.DisableSDKError = dara.Bool(true)
	return sdk, nil
}

// sdk takes an idle SDK client, or builds one when every client is busy.
func (c *Client) sdk() (*openapi.Client, error) {
	if s, ok := c.sdks.Get().(*openapi.Client); ok {
		return s, nil
	}
	return newSDK(c.cfg)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// withReserve returns ctx ending the reserve before its deadline: the quota wait, the
// attempts and the backoff all stop there, and the caller keeps the rest.
func (c *Client) withReserve(ctx context.Context) (context.Context, context.CancelFunc) {
	dl, ok := ctx.Deadline()
	if !ok || c.reserve < 0 {
		return ctx, func() {}
	}
	r := min(c.reserve, time.Until(dl)/4)
	if r <= 0 {
		return ctx, func() {}
	}
	return context.WithDeadline(ctx, dl.Add(-r))
}

// call runs one action with retries and returns the decoded body.
func (c *Client) call(ctx context.Context, action string, params map[string]any, out any) error {
	ctx, cancel := c.withReserve(ctx)
	defer cancel()
	params["RegionId"] = c.region
	query := openapiutil.Query(params)
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 200 * time.Millisecond
	b.MaxInterval = 5 * time.Second
	var last error
	stats := StatsFrom(ctx)
	for attempt := 1; ; attempt++ {
		if c.limiter != nil {
			if err := c.limiter.Wait(ctx, action); err != nil {
				if last != nil {
					return fmt.Errorf("liveapi: %s: %w (after %w)", action, err, last)
				}
				return fmt.Errorf("liveapi: %s: %w", action, err)
			}
		}
		body, err := c.once(ctx, action, query)
		if stats != nil {
			stats.Calls.Add(1)
			if IsThrottled(err) {
				stats.Throttles.Add(1)
			}
		}
		if err == nil {
			if out == nil {
				return nil
			}
			raw, err := json.Marshal(body)
			if err == nil {
				err = json.Unmarshal(raw, out)
			}
			if err != nil {
				return fmt.Errorf("liveapi: %s: decoding the response: %w", action, err)
			}
			return nil
		}
		last = err
		var ae *Error
		if c.limiter != nil && IsThrottled(err) && errors.As(err, &ae) {
			c.limiter.Throttled(action, ae.RetryAfter)
		}
		if !IsRetryable(err) || attempt >= c.maxAttempts || ctx.Err() != nil || (isWrite(action) && ambiguous(err)) {
			return err
		}
		wait := b.NextBackOff()
		if errors.As(err, &ae) && ae.RetryAfter > wait {
			wait = ae.RetryAfter
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			// Sleeping would outlive the invocation: report the error now, while the
			// caller still has time to record it.
			return err
		}
		c.log.WarnContext(ctx, "retrying Live API call", "action", action, "attempt", attempt, "wait", wait.String(), "err", err)
		if err := c.sleep(ctx, wait); err != nil {
			return last
		}
		if stats != nil {
			stats.Retries.Add(1)
		}
	}
}

var rpcParams = openapiutil.Params{Version: dara.String(Version), Protocol: dara.String("HTTPS"), Pathname: dara.String("/"),
	Method: dara.String("POST"), AuthType: dara.String("AK"), Style: dara.String("RPC"),
	ReqBodyType: dara.String("formData"), BodyType: dara.String("json")}

func (c *Client) once(ctx context.Context, action string, query map[string]*string) (map[string]any, error) {
	p := rpcParams
	p.Action = dara.String(action)
	sdk, err := c.sdk()
	if err != nil {
		return nil, err
	}
	defer c.sdks.Put(sdk)
	res, err := sdk.CallApiWithCtx(ctx, &p, &openapiutil.OpenApiRequest{Query: query}, &dara.RuntimeOptions{})
	if err != nil {
		return nil, classify(action, err)
	}
	body, _ := res["body"].(map[string]any)
	return body, nil
}

// AddPackageConfig creates a config; a config already at the target is ErrConfigExists.
func (c *Client) AddPackageConfig(ctx context.Context, pc PackageConfig) error {
	return c.call(ctx, "AddLivePackageConfig", configParams(pc), nil)
}

// UpdatePackageConfig replaces the config at the target with pc.
func (c *Client) UpdatePackageConfig(ctx context.Context, pc PackageConfig) error {
	return c.call(ctx, "UpdateLivePackageConfig", configParams(pc), nil)
}

// DeletePackageConfig removes the config at domain/app/stream.
func (c *Client) DeletePackageConfig(ctx context.Context, domain, app, stream string) error {
	return c.call(ctx, "DeleteLivePackageConfig", map[string]any{"DomainName": domain, "AppName": app, "StreamName": stream}, nil)
}

// configParams sends every setting explicitly, so the API's defaults never decide what is
// stored; PartDuration goes only with LLHLS_*, the only protocols that accept it.
func configParams(pc PackageConfig) map[string]any {
	m := map[string]any{"DomainName": pc.DomainName, "AppName": pc.AppName, "StreamName": pc.StreamName,
		"Protocol": pc.Protocol, "SegmentNum": pc.SegmentNum, "SegmentDuration": pc.SegmentDuration,
		"IgnoreTranscode": pc.IgnoreTranscode}
	if strings.HasPrefix(pc.Protocol, "LLHLS_") {
		m["PartDuration"] = pc.PartDuration
	}
	return m
}

// describePageSize is DescribeLivePackageConfig's largest page (5 to 30): fewest calls.
const describePageSize = 30

// DescribePackageConfigs returns every config of domain, reading every page.
func (c *Client) DescribePackageConfigs(ctx context.Context, domain string) ([]PackageConfig, error) {
	var all []PackageConfig
	for page := 1; ; page++ {
		var out struct {
			TotalPage int
			TotalNum  int
			List      struct {
				LivePackageConfig []PackageConfig
			} `json:"LivePackageConfigList"`
		}
		if err := c.call(ctx, "DescribeLivePackageConfig", map[string]any{"DomainName": domain, "PageNum": page, "PageSize": describePageSize}, &out); err != nil {
			return nil, err
		}
		all = append(all, out.List.LivePackageConfig...)
		if page >= out.TotalPage || len(out.List.LivePackageConfig) == 0 || len(all) >= out.TotalNum {
			return all, nil
		}
	}
}

// DescribeDomain returns one domain's detail; an unknown domain is ErrNotFound.
func (c *Client) DescribeDomain(ctx context.Context, domain string) (Domain, error) {
	var out struct {
		DomainDetail Domain
	}
	err := c.call(ctx, "DescribeLiveDomainDetail", map[string]any{"DomainName": domain}, &out)
	return out.DomainDetail, err
}

// ListDomains returns every domain of the account with the given type and status (empty:
// any), reading every page of DescribeLiveUserDomains (whose paging names differ from the
// other Describe actions).
func (c *Client) ListDomains(ctx context.Context, liveDomainType, status string) ([]Domain, error) {
	var all []Domain
	for page := 1; ; page++ {
		p, err := c.DomainsPage(ctx, liveDomainType, status, page)
		if err != nil {
			return nil, err
		}
		all = append(all, p.Domains...)
		if len(p.Domains) == 0 || int64(len(all)) >= p.Total {
			return all, nil
		}
	}
}

// OnlineStreams returns every stream being pushed to domain now: the raw streams only
// (StreamType raw), since a transcoded copy is the same ingest under another name.
func (c *Client) OnlineStreams(ctx context.Context, domain string) ([]Stream, error) {
	var all []Stream
	for page := 1; ; page++ {
		var out struct {
			TotalPage  int
			TotalNum   int
			OnlineInfo struct {
				LiveStreamOnlineInfo []struct {
					DomainName, AppName, StreamName, PublishTime string
					PublishURL                                   string `json:"PublishUrl"`
				}
			}
		}
		if err := c.call(ctx, "DescribeLiveStreamsOnlineList", map[string]any{"DomainName": domain, "PageNum": page, "PageSize": 3000, "StreamType": "raw"}, &out); err != nil {
			return nil, err
		}
		for _, s := range out.OnlineInfo.LiveStreamOnlineInfo {
			all = append(all, Stream{DomainName: s.DomainName, AppName: s.AppName, StreamName: s.StreamName, PublishURL: s.PublishURL, PublishTime: s.PublishTime})
		}
		if page >= out.TotalPage || len(out.OnlineInfo.LiveStreamOnlineInfo) == 0 || len(all) >= out.TotalNum {
			return all, nil
		}
	}
}

// isWrite reports whether action changes state: retrying one in place is safe only when the
// first attempt provably did nothing.
func isWrite(action string) bool {
	return strings.HasPrefix(action, "Add") || strings.HasPrefix(action, "Update") || strings.HasPrefix(action, "Delete")
}

// ambiguous reports whether a failed call may have taken effect: a 5xx, or a transport error
// after the connection was made (a timeout or reset while the request was in flight). The API
// answering Throttling* or another 4xx, and a dial that never connected, prove nothing ran. A
// write with an ambiguous failure goes back to the caller, which reads the state before trying
// again instead of repeating a write that may have committed.
func ambiguous(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return true
	}
	if e.Code != CodeNetwork {
		return e.Status >= 500
	}
	var op *net.OpError
	return !(errors.As(err, &op) && op.Op == "dial")
}

// sdkError is what darabonba's ClientError, ServerError and ThrottlingError share.
type sdkError interface {
	GetStatusCode() *int
	GetCode() *string
	GetMessage() *string
	GetRequestId() *string
}

func classify(action string, err error) error {
	var se sdkError
	if errors.As(err, &se) {
		e := &Error{Action: action, Status: dara.IntValue(se.GetStatusCode()), Code: dara.StringValue(se.GetCode()),
			RequestID: dara.StringValue(se.GetRequestId()), Message: dara.StringValue(se.GetMessage())}
		if te, ok := err.(interface{ GetRetryAfter() *int64 }); ok {
			if ms := dara.Int64Value(te.GetRetryAfter()); ms > 0 {
				e.RetryAfter = time.Duration(ms) * time.Millisecond
			}
		}
		return e
	}
	return &Error{Action: action, Code: CodeNetwork, Message: err.Error(), Err: err}
}
