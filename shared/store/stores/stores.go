// Package stores opens the state store LIVEPACK_STATE names (DESIGN §3, §10): it is the one
// place that knows every backend, so the protocols above the contract never do.
package stores

import (
	"context"
	"fmt"
	"strings"

	"github.com/livepack/livepack/shared/store"
	"github.com/livepack/livepack/shared/store/dynamostore"
	"github.com/livepack/livepack/shared/store/memstore"
)

// Open returns the store spec names, for namespace.
func Open(ctx context.Context, spec, namespace string) (store.Store, error) {
	switch {
	case spec == "memory":
		return memstore.New(nil), nil
	case strings.HasPrefix(spec, "dynamodb://"):
		table := strings.TrimPrefix(spec, "dynamodb://")
		if table == "" || strings.ContainsAny(table, "/?#") {
			return nil, fmt.Errorf("stores: state %q: want dynamodb://TABLE", spec)
		}
		return dynamostore.Open(ctx, table, namespace)
	}
	return nil, fmt.Errorf("stores: state %q: want memory, file:PATH, redis://…, dynamodb://TABLE or tablestore://INSTANCE/TABLE", redact(spec))
}

func redact(spec string) string {
	if i := strings.Index(spec, "@"); i >= 0 {
		if j := strings.Index(spec, "://"); j >= 0 && j < i {
			return spec[:j+3] + "…" + spec[i:]
		}
	}
	return spec
}
