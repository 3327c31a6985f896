//go:build !lambda

package stores

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/aliyun/credentials-go/credentials"

	"github.com/livepack/livepack/shared/store"
	"github.com/livepack/livepack/shared/store/otsstore"
)

// The Tablestore backend: in the FC artifact and the full build, not in the Lambda artifact.
func init() { openTablestore = openOTS }

// openOTS opens tablestore://INSTANCE/TABLE, signing with cred.
func openOTS(ctx context.Context, spec, namespace string, cred credentials.Credential) (store.Store, error) {
	o, err := TablestoreOptions(spec, namespace)
	if err != nil {
		return nil, err
	}
	if cred == nil {
		return nil, fmt.Errorf("stores: %s needs Alibaba Cloud credentials", spec)
	}
	o.Credentials = otsstore.FromCredential(cred)
	return otsstore.Open(ctx, o)
}

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
