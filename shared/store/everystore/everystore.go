// Package everystore gives tests every backend of the store contract, each on a real server
// the test starts (redis-server, dynalite, the emulator's Tablestore), so a protocol test runs
// on all of them with one loop.
package everystore

import (
	"context"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livepack/livepack/shared/emulator"
	"github.com/livepack/livepack/shared/redisconn"
	"github.com/livepack/livepack/shared/redistest"
	"github.com/livepack/livepack/shared/store"
	"github.com/livepack/livepack/shared/store/boltstore"
	"github.com/livepack/livepack/shared/store/dynamostore"
	"github.com/livepack/livepack/shared/store/dynamostore/dynalitetest"
	"github.com/livepack/livepack/shared/store/memstore"
	"github.com/livepack/livepack/shared/store/otsstore"
	"github.com/livepack/livepack/shared/store/redisstore"
)

var seq atomic.Int64

// Namespace returns a namespace no other store of this process uses.
func Namespace() string { return fmt.Sprintf("t%d-%d", time.Now().UnixNano(), seq.Add(1)) }

// Backends returns a constructor per backend: each call opens a fresh store (its own
// namespace) that the test closes. The servers start on the first call of their backend.
func Backends(t testing.TB) map[string]func() store.Store {
	return map[string]func() store.Store{
		"memory":     func() store.Store { return memstore.New(nil) },
		"file":       Bolt(t),
		"redis":      Redis(t),
		"dynamodb":   Dynamo(t),
		"tablestore": Tablestore(t),
	}
}

// Bolt returns a constructor of bbolt stores, each in a file of its own.
func Bolt(t testing.TB) func() store.Store {
	return func() store.Store {
		s, err := boltstore.Open(filepath.Join(t.TempDir(), "state.db"), Namespace())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

// Redis returns a constructor of Redis stores on one redis-server started for t.
func Redis(t testing.TB) func() store.Store {
	var pool *redisconn.Pool
	return func() store.Store {
		if pool == nil {
			pool = redistest.Start(t)
		}
		return redisstore.New(pool, Namespace())
	}
}

// Tablestore returns a constructor of Tablestore stores on one emulator started for t, through
// the official SDK.
func Tablestore(t testing.TB) func() store.Store {
	var base string
	return func() store.Store {
		o := otsstore.Options{Instance: "livepack", Table: "livepack_state", Namespace: Namespace(),
			Credentials: otsstore.StaticCredentials(emulator.AccessKeyID, emulator.AccessKeySecret, "")}
		if base == "" {
			srv := httptest.NewServer(emulator.New(emulator.Options{}))
			t.Cleanup(srv.Close)
			base = srv.URL
			o.Endpoint = base
			if err := otsstore.Init(context.Background(), o); err != nil {
				t.Fatal(err)
			}
		}
		o.Endpoint = base
		s, err := otsstore.Open(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		return s
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
