// Package stores opens the state store LIVEPACK_STATE names (DESIGN §3, §10): it is the one
// place that knows every backend, so the protocols above the contract never do. The cloud
// backends register from files of their own, so that each cloud artifact leaves the other
// cloud's SDK out: dynamo.go (not in the FC artifact) and tablestore.go (not in the Lambda
// artifact).
package stores

import (
	"context"
	"fmt"
	"strings"

	"github.com/aliyun/credentials-go/credentials"

	"github.com/livepack/livepack/shared/artifact"
	"github.com/livepack/livepack/shared/store"
	"github.com/livepack/livepack/shared/store/boltstore"
	"github.com/livepack/livepack/shared/store/memstore"
	"github.com/livepack/livepack/shared/store/redisstore"
)

// opener opens a cloud backend's store from its spec.
type opener func(ctx context.Context, spec, namespace string, cred credentials.Credential) (store.Store, error)

// The cloud backends this build carries, set by their files' init (nil: left out).
var openDynamoDB, openTablestore opener

// Open returns the store spec names, for namespace. cred signs Tablestore's requests (the
// function's role on FC, the default chain elsewhere); the other backends take theirs from
// their URL or their SDK's own chain. A cloud backend this build leaves out is an error naming
// the build and the specs it does take.
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
		if openTablestore == nil {
			return nil, leftOut(spec, "Tablestore")
		}
		return openTablestore(ctx, spec, namespace, cred)
	case strings.HasPrefix(spec, "dynamodb://"):
		if openDynamoDB == nil {
			return nil, leftOut(spec, "DynamoDB")
		}
		return openDynamoDB(ctx, spec, namespace, cred)
	}
	return nil, fmt.Errorf("stores: state %q: want %s", redact(spec), Specs())
}

// Specs lists the forms of LIVEPACK_STATE this build opens.
func Specs() string {
	specs := []string{"memory", "file:PATH", "redis://…"}
	if openDynamoDB != nil {
		specs = append(specs, "dynamodb://TABLE")
	}
	if openTablestore != nil {
		specs = append(specs, "tablestore://INSTANCE/TABLE")
	}
	return strings.Join(specs[:len(specs)-1], ", ") + " or " + specs[len(specs)-1]
}

// Carries reports whether this build carries the backend spec names.
func Carries(spec string) bool {
	switch {
	case strings.HasPrefix(spec, "tablestore://"):
		return openTablestore != nil
	case strings.HasPrefix(spec, "dynamodb://"):
		return openDynamoDB != nil
	}
	return true
}

func leftOut(spec, backend string) error {
	return fmt.Errorf("stores: state %q: %s leaves the %s backend out; it takes %s", redact(spec), artifact.Name, backend, Specs())
}

// Shared reports whether the store spec names is reached by every instance (and so carries the
// shared quota): all but memory.
func Shared(spec string) bool { return spec != "memory" }

func redact(spec string) string {
	if i := strings.Index(spec, "@"); i >= 0 {
		if j := strings.Index(spec, "://"); j >= 0 && j < i {
			return spec[:j+3] + "…" + spec[i:]
		}
	}
	return spec
}
