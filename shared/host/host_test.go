package host

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/livepack/livepack/shared/config"
	"github.com/livepack/livepack/shared/emulator"
	"github.com/livepack/livepack/shared/store"
	"github.com/livepack/livepack/shared/store/memstore"
	"github.com/livepack/livepack/shared/store/storetest"
)

func TestSwapCredential(t *testing.T) {
	c := NewSwapCredential(staticCredential("base", "base-secret", ""))
	cr, err := c.GetCredential()
	if err != nil || *cr.AccessKeyId != "base" {
		t.Fatalf("%+v %v", cr, err)
	}
	c.Set("STS.x", "s", "tok")
	cr, err = c.GetCredential()
	if err != nil || *cr.AccessKeyId != "STS.x" || *cr.SecurityToken != "tok" {
		t.Fatalf("after Set: %+v %v", cr, err)
	}
}

// TestGivenStore: Options.Store replaces the store LIVEPACK_STATE names (nothing is opened
// there) and stays open after Close, since its caller owns it.
func TestGivenStore(t *testing.T) {
	t.Setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
	api := httptest.NewServer(emulator.New(emulator.Options{Seed: emulator.DefaultSeed()}))
	defer api.Close()
	file := filepath.Join(t.TempDir(), "state.db")
	env := map[string]string{"LIVEPACK_ENDPOINT": api.URL, "LIVEPACK_STATE": "file:" + file, "LIVEPACK_NOTIFY": "none", "HOME": t.TempDir()}
	cfg, err := config.FromEnv(config.CLI, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	given := &storetest.Faulty{Store: &closeCounter{Store: memstore.New(nil)}}
	w, err := Build(context.Background(), cfg, slog.New(slog.DiscardHandler), Options{Store: given})
	if err != nil {
		t.Fatal(err)
	}
	doc := `{"id": "given-store", "policies": [{"DomainName": "play.example.com", "AppName": "given", "StreamName": "*", "Protocol": "HLS_CMAF"}]}`
	if _, err := w.Handler.Invoke(context.Background(), []byte(doc)); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if given.Ops() == 0 {
		t.Error("the invocation made no operation on the given store")
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LIVEPACK_STATE's file was opened: %v", err)
	}
	if n := given.Store.(*closeCounter).closed; n != 0 {
		t.Errorf("Close closed the given store %d times; its caller owns it", n)
	}
}

// closeCounter counts the Close calls of a store.
type closeCounter struct {
	store.Store
	closed int
}

func (c *closeCounter) Close() error {
	c.closed++
	return c.Store.Close()
}
