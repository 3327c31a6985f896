package handler_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aliyun/credentials-go/credentials"

	"github.com/livepack/livepack/shared/apply"
	"github.com/livepack/livepack/shared/classify"
	"github.com/livepack/livepack/shared/emulator"
	"github.com/livepack/livepack/shared/handler"
	"github.com/livepack/livepack/shared/liveapi"
	"github.com/livepack/livepack/shared/policy"
	"github.com/livepack/livepack/shared/store/memstore"
)

// TestDomainCreatedNotReadyIsDeferred: a domain-created event for a domain the API does not
// show yet, or shows as configuring, succeeds (a nil error: the platform does not deliver it
// again) with the outcome deferred and no error to report, whatever the envelope.
func TestDomainCreatedNotReadyIsDeferred(t *testing.T) {
	seed := emulator.DefaultSeed()
	seed.Arriving = []emulator.NewDomain{{DomainName: "late.example.com", HiddenFor: "1h"}}
	srv := httptest.NewServer(emulator.New(emulator.Options{Seed: seed}))
	t.Cleanup(srv.Close)
	typ, id, key := "access_key", emulator.AccessKeyID, emulator.AccessKeySecret
	cred, _ := credentials.NewCredential(&credentials.Config{Type: &typ, AccessKeyId: &id, AccessKeySecret: &key})
	api, err := liveapi.New(liveapi.Options{Endpoint: srv.URL, Credential: cred})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := policy.Parse([]byte(`[{"DomainName":"*.example.com","AppName":"sports","StreamName":"*","Protocol":"HLS_CMAF"}]`))
	if err != nil {
		t.Fatal(err)
	}
	h := handler.New(apply.Options{API: api, Store: memstore.New(nil), Defaults: doc.Policies}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	now := time.Now().UTC().Format(time.RFC3339)
	tests := []struct {
		name, event string
	}{
		{"hidden, CloudEvent", `{"specversion":"1.0","id":"e1","source":"livepack.console","type":"livepack.domain.created","time":"` + now + `","data":{"DomainName":"late.example.com"}}`},
		{"hidden, AWS EventBridge", `{"version":"0","id":"e2","detail-type":"livepack.domain.created","source":"livepack.console","time":"` + now + `","detail":{"DomainName":"late.example.com"}}`},
		{"configuring", `{"specversion":"1.0","id":"e3","source":"livepack.console","type":"livepack.domain.created","time":"` + now + `","data":{"DomainName":"staging.example.com"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := h.Invoke(context.Background(), []byte(tt.event))
			if err != nil || resp.Dropped != nil || resp.Result == nil || len(resp.Result.Results) != 1 {
				t.Fatalf("err %v (%s), dropped %v, result %+v", err, classify.Of(err), resp.Dropped, resp.Result)
			}
			if r := resp.Result.Results[0]; r.Outcome != apply.Deferred || r.Reason == "" || len(r.Errors) != 0 {
				t.Fatalf("result %+v, want deferred with a reason", r)
			}
		})
	}
}
