// Package stores opens the state store LIVEPACK_STATE names (DESIGN §3, §10): it is the one
// place that knows every backend, so the protocols above the contract never do.
package stores

import (
	"context"
	"fmt"
	"github.com/aliyun/credentials-go/credentials"
	"net/url"
	"os"
	"strings"

	"github.com/livepack/livepack/shared/store"
	"github.com/livepack/livepack/shared/store/boltstore"
	"github.com/livepack/livepack/shared/store/dynamostore"
	"github.com/livepack/livepack/shared/store/memstore"
	"github.com/livepack/livepack/shared/store/otsstore"
	"github.com/livepack/livepack/shared/store/redisstore"
)

// Open returns the store spec names, for namespace. cred signs Tablestore's requests (the
// function's role on FC, the default chain elsewhere); the other backends take theirs from
// their URL or their SDK's own chain.
func Open(ctx context.Context, spec, namespace string, cred credentials.Credential) (store.Store, error) {
	switch {
	case spec == "memory":
		return memstore.New(nil), nil
	case strings.HasPrefix(spec, "file:") && len(spec) > len("file:"):
		return boltstore.Open(strings.TrimPrefix(spec, "file:"), namespace)
	case strings.HasPrefix(spec, "redis://") || strings.HasPrefix(spec, "rediss://"):
		s, err := redisstore.Open(ctx, spec, namespace)
		if err != nil {
			return nil, fmt.Errorf("stores: %w", err)
		}
		return s, nil
	case strings.HasPrefix(spec, "tablestore://"):
		o, err := TablestoreOptions(spec, namespace)
		if err != nil {
			return nil, err
		}
		if cred == nil {
			return nil, fmt.Errorf("stores: %s needs Alibaba Cloud credentials", spec)
		}
		o.Credentials = otsstore.FromCredential(cred)
		return otsstore.Open(ctx, o)
	case strings.HasPrefix(spec, "dynamodb://"):
		table := strings.TrimPrefix(spec, "dynamodb://")
		if table == "" || strings.ContainsAny(table, "/?#") {
			return nil, fmt.Errorf("stores: state %q: want dynamodb://TABLE", spec)
		}
		return dynamostore.Open(ctx, table, namespace)
	}
	return nil, fmt.Errorf("stores: state %q: want memory, file:PATH, redis://…, dynamodb://TABLE or tablestore://INSTANCE/TABLE", redact(spec))
}

// Shared reports whether the store spec names is reached by every instance (and so carries the
// shared quota): all but memory.
func Shared(spec string) bool { return spec != "memory" }

// TablestoreOptions reads tablestore://INSTANCE/TABLE[?endpoint=URL]: the endpoint defaults
// to the instance's public endpoint in LIVEPACK_REGION's region (FC_REGION on FC).
func TablestoreOptions(spec, namespace string) (otsstore.Options, error) {
	u, err := url.Parse(spec)
	if err != nil || u.Host == "" || strings.Trim(u.Path, "/") == "" || strings.Contains(strings.Trim(u.Path, "/"), "/") {
		return otsstore.Options{}, fmt.Errorf("stores: state %q: want tablestore://INSTANCE/TABLE[?endpoint=https://…]", spec)
	}
	o := otsstore.Options{Instance: u.Host, Table: strings.Trim(u.Path, "/"), Namespace: namespace, Endpoint: u.Query().Get("endpoint")}
	if o.Endpoint == "" {
		region := os.Getenv("LIVEPACK_REGION")
		if region == "" {
			region = os.Getenv("FC_REGION")
		}
		if region == "" {
			region = "cn-shanghai"
		}
		o.Endpoint = "https://" + o.Instance + "." + region + ".ots.aliyuncs.com"
	}
	return o, nil
}

func redact(spec string) string {
	if i := strings.Index(spec, "@"); i >= 0 {
		if j := strings.Index(spec, "://"); j >= 0 && j < i {
			return spec[:j+3] + "…" + spec[i:]
		}
	}
	return spec
}
