package otsstore_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aliyun/aliyun-tablestore-go-sdk/tablestore"
	"github.com/aliyun/aliyun-tablestore-go-sdk/tablestore/otsprotocol"
	"github.com/aliyun/credentials-go/credentials"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"

	"github.com/livepack/livepack/shared/emulator"
	"github.com/livepack/livepack/shared/store"
	"github.com/livepack/livepack/shared/store/otsstore"
	"github.com/livepack/livepack/shared/store/storetest"
)

const (
	instance = "livepack"
	table    = "livepack_state"
)

func TestMain(m *testing.M) {
	storetest.Main(m, func(ctx context.Context, spec, namespace string) (store.Store, error) {
		endpoint, tbl, _ := strings.Cut(spec, " ")
		return otsstore.Open(ctx, options(endpoint, tbl, namespace))
	})
}

func options(endpoint, tbl, namespace string) otsstore.Options {
	return otsstore.Options{Endpoint: endpoint, Instance: instance, Table: tbl, Namespace: namespace,
		Credentials: otsstore.StaticCredentials(emulator.AccessKeyID, emulator.AccessKeySecret, "")}
}

// serve starts an emulator on loopback; page caps a GetRange answer so lists page.
func serve(t testing.TB, page int) string {
	t.Helper()
	srv := httptest.NewServer(emulator.New(emulator.Options{TablestorePage: page}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestConformance(t *testing.T) {
	url := serve(t, 7)
	if err := otsstore.Init(context.Background(), options(url, table, "")); err != nil {
		t.Fatal(err)
	}
	storetest.Run(t, storetest.Backend{
		Open: func(t testing.TB, ns string) store.Store {
			s, err := otsstore.Open(context.Background(), options(url, table, ns))
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		Spec: url + " " + table,
		Tick: time.Millisecond,
	})
}

func TestInit(t *testing.T) {
	url := serve(t, 0)
	ctx := context.Background()
	opts := options(url, "state", "")
	for i := range 2 {
		if err := otsstore.Init(ctx, opts); err != nil {
			t.Fatalf("Init #%d: %v", i+1, err)
		}
	}
	c := tablestore.NewClient(url, instance, emulator.AccessKeyID, emulator.AccessKeySecret)
	desc, err := c.DescribeTable(&tablestore.DescribeTableRequest{TableName: "state"})
	if err != nil {
		t.Fatal(err)
	}
	var pk []string
	for _, e := range desc.TableMeta.SchemaEntry {
		pk = append(pk, fmt.Sprintf("%s:%v", *e.Name, *e.Type))
	}
	if got := strings.Join(pk, ","); got != fmt.Sprintf("pk:%v,sk:%v", tablestore.PrimaryKeyType_STRING, tablestore.PrimaryKeyType_STRING) {
		t.Errorf("primary key %s", got)
	}
	if desc.TableOption.TimeToAlive != -1 || desc.TableOption.MaxVersion != 1 {
		t.Errorf("table options %+v, want no TTL and one version", desc.TableOption)
	}

	// A table of the same name with another key is refused, naming the difference.
	meta := &tablestore.TableMeta{TableName: "other"}
	meta.AddPrimaryKeyColumn("id", tablestore.PrimaryKeyType_INTEGER)
	if _, err := c.CreateTable(&tablestore.CreateTableRequest{TableMeta: meta, TableOption: &tablestore.TableOption{TimeToAlive: -1, MaxVersion: 1},
		ReservedThroughput: &tablestore.ReservedThroughput{}}); err != nil {
		t.Fatal(err)
	}
	err = otsstore.Init(ctx, options(url, "other", ""))
	if err == nil || !strings.Contains(err.Error(), "(id INTEGER)") || !strings.Contains(err.Error(), "(pk STRING, sk STRING)") {
		t.Fatalf("Init over another layout: %v", err)
	}
	// So is one with a TTL, which would delete records that never expire.
	meta = &tablestore.TableMeta{TableName: "ttl"}
	meta.AddPrimaryKeyColumn("pk", tablestore.PrimaryKeyType_STRING)
	meta.AddPrimaryKeyColumn("sk", tablestore.PrimaryKeyType_STRING)
	if _, err := c.CreateTable(&tablestore.CreateTableRequest{TableMeta: meta, TableOption: &tablestore.TableOption{TimeToAlive: 86400, MaxVersion: 1},
		ReservedThroughput: &tablestore.ReservedThroughput{}}); err != nil {
		t.Fatal(err)
	}
	if err := otsstore.Init(ctx, options(url, "ttl", "")); err == nil || !strings.Contains(err.Error(), "TTL of 86400") {
		t.Fatalf("Init over a table with a TTL: %v", err)
	}
}

// TestErrors: a failed condition is store.ErrConflict; other refusals keep the service's error
// (for errors.As) under a message saying what failed.
func TestErrors(t *testing.T) {
	url := serve(t, 0)
	ctx := context.Background()
	otsCode := func(err error) string {
		var oe *tablestore.OtsError
		if errors.As(err, &oe) {
			return oe.Code
		}
		return ""
	}

	s, err := otsstore.Open(ctx, options(url, "missing", "ns"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.Get(ctx, "k/a")
	if otsCode(err) != "OTSObjectNotExist" || !strings.Contains(err.Error(), "livepack state init") {
		t.Fatalf("Get on a missing table: %v", err)
	}
	if _, err := s.Create(ctx, "k/a", nil, time.Time{}); otsCode(err) != "OTSObjectNotExist" || errors.Is(err, store.ErrConflict) {
		t.Fatalf("Create on a missing table: %v", err)
	}

	if err := otsstore.Init(ctx, options(url, table, "")); err != nil {
		t.Fatal(err)
	}
	s, err = otsstore.Open(ctx, options(url, table, "ns"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Create(ctx, "k/a", []byte("x"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	_, err = s.Create(ctx, "k/a", []byte("y"), time.Time{})
	if !errors.Is(err, store.ErrConflict) || otsCode(err) != "" {
		t.Fatalf("Create of a live key: %v, want ErrConflict alone", err)
	}

	bad := options(url, table, "ns")
	bad.Credentials = otsstore.StaticCredentials(emulator.AccessKeyID, "wrong", "")
	s2, err := otsstore.Open(ctx, bad)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, err := s2.Get(ctx, "k/a"); otsCode(err) != "OTSAuthFailed" || !strings.Contains(err.Error(), `get "k/a"`) {
		t.Fatalf("Get with a wrong secret: %v", err)
	}
	if _, err := s2.Update(ctx, "k/a", 1, nil, time.Time{}); otsCode(err) != "OTSAuthFailed" {
		t.Fatalf("Update with a wrong secret: %v", err)
	}

	failing := options(url, table, "ns")
	failing.Credentials = func(context.Context) (string, string, string, error) {
		return "", "", "", errors.New("role not assumed")
	}
	s3, _ := otsstore.Open(ctx, failing)
	if _, err := s3.Get(ctx, "k/a"); err == nil || !strings.Contains(err.Error(), "role not assumed") {
		t.Fatalf("Get without credentials: %v", err)
	}

	if _, err := s.Get(ctx, "nokind"); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get of a key without a kind: %v", err)
	}
	if _, err := otsstore.Open(ctx, options(url, table, "a|b")); err == nil {
		t.Fatal("a namespace with '|' was accepted")
	}

	done, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Get(done, "k/a"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get on a cancelled context: %v", err)
	}
	if _, err := s.Create(done, "k/b", nil, time.Time{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Create on a cancelled context: %v", err)
	}
}

// TestCredentialChain: the standard chain's credentials sign the requests, and a security
// token travels with them.
func TestCredentialChain(t *testing.T) {
	t.Setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
	url := serve(t, 0)
	typ := "sts"
	id, secret, token := emulator.AccessKeyID, emulator.AccessKeySecret, "sts-token"
	c, err := credentials.NewCredential(&credentials.Config{Type: &typ, AccessKeyId: &id, AccessKeySecret: &secret, SecurityToken: &token})
	if err != nil {
		t.Fatal(err)
	}
	opts := options(url, table, "ns")
	opts.Credentials = otsstore.FromCredential(c)
	ctx := context.Background()
	if err := otsstore.Init(ctx, opts); err != nil {
		t.Fatal(err)
	}
	s, err := otsstore.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Create(ctx, "k/a", []byte("x"), time.Time{}); err != nil {
		t.Fatal(err)
	}
}

// TestWriteRetries: a write the service refused without doing it (busy) is sent again; a write
// whose answer was lost is not, so it fails as unknown instead of reading as a conflict with
// itself (the SDK alone would resend it, and the resent condition would fail on its own row).
func TestWriteRetries(t *testing.T) {
	emu := emulator.New(emulator.Options{})
	var busy, drop atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/PutRow" && busy.Add(-1) >= 0 {
			code, msg := "OTSServerBusy", "Server is busy."
			body, _ := proto.Marshal(protoadapt.MessageV2Of(&otsprotocol.Error{Code: &code, Message: &msg}))
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write(body)
			return
		}
		if r.URL.Path == "/PutRow" && drop.Add(-1) >= 0 {
			emu.ServeHTTP(httptest.NewRecorder(), r) // the write lands; its answer is lost
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_ = conn.Close()
			}
			return
		}
		emu.ServeHTTP(w, r)
	}))
	defer srv.Close()
	ctx := context.Background()
	if err := otsstore.Init(ctx, options(srv.URL, table, "")); err != nil {
		t.Fatal(err)
	}
	s, err := otsstore.Open(ctx, options(srv.URL, table, "ns"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	busy.Store(2)
	if _, err := s.Create(ctx, "k/busy", []byte("x"), time.Time{}); err != nil {
		t.Fatalf("Create after two busy refusals: %v", err)
	}
	drop.Store(1)
	_, err = s.Create(ctx, "k/lost", []byte("x"), time.Time{})
	if err == nil || errors.Is(err, store.ErrConflict) {
		t.Fatalf("Create whose answer was lost: %v, want an error that is not a conflict", err)
	}
	if it, err := s.Get(ctx, "k/lost"); err != nil || string(it.Value) != "x" {
		t.Fatalf("the lost answer's write: %+v, %v", it, err)
	}
}
