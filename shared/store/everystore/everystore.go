// Package everystore gives tests every backend of the store contract, each on a real server
// the test starts (redis-server, dynalite, the emulator's Tablestore), so a protocol test runs
// on all of them with one loop.
package everystore

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livepack/livepack/shared/store"
	"github.com/livepack/livepack/shared/store/dynamostore"
	"github.com/livepack/livepack/shared/store/dynamostore/dynalitetest"
	"github.com/livepack/livepack/shared/store/memstore"
)

var seq atomic.Int64

// Namespace returns a namespace no other store of this process uses.
func Namespace() string { return fmt.Sprintf("t%d-%d", time.Now().UnixNano(), seq.Add(1)) }

// Backends returns a constructor per backend: each call opens a fresh store (its own
// namespace) that the test closes. The servers start on the first call of their backend.
func Backends(t testing.TB) map[string]func() store.Store {
	return map[string]func() store.Store{
		"memory":   func() store.Store { return memstore.New(nil) },
		"dynamodb": Dynamo(t),
	}
}

// Dynamo returns a constructor of DynamoDB stores on one dynalite server started for t.
func Dynamo(t testing.TB) func() store.Store {
	var client func() store.Store
	return func() store.Store {
		if client == nil {
			t.Helper()
			dynalitetest.Isolate()
			endpoint := dynalitetest.Start(t)
			t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", endpoint)
			c, err := dynamostore.NewClient(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := dynamostore.Init(context.Background(), c, "livepack-state"); err != nil {
				t.Fatal(err)
			}
			client = func() store.Store {
				s, err := dynamostore.New(c, "livepack-state", Namespace())
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
		}
		return client()
	}
}
