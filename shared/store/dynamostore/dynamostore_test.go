package dynamostore_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/livepack/livepack/shared/store"
	"github.com/livepack/livepack/shared/store/dynamostore"
	"github.com/livepack/livepack/shared/store/dynamostore/dynalitetest"
	"github.com/livepack/livepack/shared/store/storetest"
)

const table = "livepack-state"

func TestMain(m *testing.M) {
	dynalitetest.Isolate()
	// A racing child process gets "endpoint table" and opens the store the way a function does,
	// through the SDK's endpoint variable.
	storetest.Main(m, func(ctx context.Context, spec, namespace string) (store.Store, error) {
		endpoint, tbl, ok := strings.Cut(spec, " ")
		if !ok {
			return nil, fmt.Errorf("bad spec %q", spec)
		}
		if err := os.Setenv("AWS_ENDPOINT_URL_DYNAMODB", endpoint); err != nil {
			return nil, err
		}
		return dynamostore.Open(ctx, tbl, namespace)
	})
}

// client returns a client of the server at endpoint; do, when set, carries its HTTP requests.
func client(t testing.TB, endpoint string, do dynamodb.HTTPClient) *dynamodb.Client {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		if do != nil {
			o.HTTPClient = do
		}
	})
}

// server starts dynalite with the store's table and returns its endpoint and a client.
func server(t testing.TB) (string, *dynamodb.Client) {
	t.Helper()
	endpoint := dynalitetest.Start(t)
	c := client(t, endpoint, nil)
	if _, err := dynamostore.Init(context.Background(), c, table); err != nil {
		t.Fatal(err)
	}
	return endpoint, c
}

func open(t testing.TB, c *dynamodb.Client, namespace string) *dynamostore.Store {
	t.Helper()
	s, err := dynamostore.New(c, table, namespace)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	endpoint, c := server(t)
	storetest.Run(t, storetest.Backend{
		Open: func(t testing.TB, ns string) store.Store { return open(t, c, ns) },
		Spec: endpoint + " " + table,
		Tick: time.Millisecond,
	})
}

func TestInit(t *testing.T) {
	ctx := context.Background()
	endpoint := dynalitetest.Start(t)
	c := client(t, endpoint, nil)
	setup, err := dynamostore.Init(ctx, c, "fresh")
	if err != nil || !setup.Created {
		t.Fatalf("Init of a missing table: %+v, %v", setup, err)
	}
	// dynalite has no TTL: Init must say so rather than fail.
	if setup.TTL || !strings.Contains(setup.Note, "time to live") {
		t.Fatalf("Init on dynalite: %+v, want a note that TTL is unsupported", setup)
	}
	desc, err := c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String("fresh")})
	if err != nil {
		t.Fatal(err)
	}
	if desc.Table.TableStatus != types.TableStatusActive {
		t.Fatalf("table is %s after Init, want ACTIVE", desc.Table.TableStatus)
	}
	if bm := desc.Table.BillingModeSummary; bm == nil || bm.BillingMode != types.BillingModePayPerRequest {
		t.Fatalf("billing mode %+v, want on demand", bm)
	}
	s, err := dynamostore.New(c, "fresh", "ns")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, "k/a", []byte("kept"), time.Time{}); err != nil {
		t.Fatal(err)
	}

	again, err := dynamostore.Init(ctx, c, "fresh")
	if err != nil || again.Created {
		t.Fatalf("Init of an existing table: %+v, %v", again, err)
	}
	if it, err := s.Get(ctx, "k/a"); err != nil || string(it.Value) != "kept" {
		t.Fatalf("after a second Init: %+v, %v", it, err)
	}

	_, err = c.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String("foreign"),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}},
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = dynamostore.Init(ctx, c, "foreign")
	if err == nil || !strings.Contains(err.Error(), "HASH id (S)") || !strings.Contains(err.Error(), "HASH PK (S), RANGE SK (S)") {
		t.Fatalf("Init of a table with another key schema: %v, want an error naming both schemas", err)
	}
}

// TestEndpointFromEnvironment: Open honours the SDK's own endpoint variables, the service's
// before the general one, so DynamoDB Local or dynalite needs no livepack setting.
func TestEndpointFromEnvironment(t *testing.T) {
	ctx := context.Background()
	endpoint, c := server(t)
	direct := open(t, c, "env")
	for _, tc := range []struct{ name, dynamo, general string }{
		{"AWS_ENDPOINT_URL_DYNAMODB", endpoint, ""},
		// Nothing listens on port 1: only the service's variable can have led to dynalite.
		{"AWS_ENDPOINT_URL_DYNAMODB over AWS_ENDPOINT_URL", endpoint, "http://127.0.0.1:1"},
		{"AWS_ENDPOINT_URL", "", endpoint},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range map[string]string{"AWS_ENDPOINT_URL_DYNAMODB": tc.dynamo, "AWS_ENDPOINT_URL": tc.general} {
				t.Setenv(k, v)
				if v == "" {
					_ = os.Unsetenv(k)
				}
			}
			s, err := dynamostore.Open(ctx, table, "env")
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			key := "env/" + strings.ReplaceAll(tc.name, " ", "-")
			v, err := s.Create(ctx, key, []byte("via env"), time.Time{})
			if err != nil {
				t.Fatalf("Create through the endpoint from the environment: %v", err)
			}
			if it, err := direct.Get(ctx, key); err != nil || it.Version != v {
				t.Fatalf("the write did not reach dynalite: %+v, %v", it, err)
			}
		})
	}
}

// counting is an HTTP client that counts the requests the SDK sends.
type counting struct {
	n    atomic.Int64
	next *http.Client
}

func (c *counting) Do(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.Do(r)
}

// TestGetCostsOneRequest: reading one event key, as a replay does, is one read, whether the key
// is live, absent or expired.
func TestGetCostsOneRequest(t *testing.T) {
	ctx := context.Background()
	endpoint, _ := server(t)
	rec := &counting{next: &http.Client{}}
	s := open(t, client(t, endpoint, rec), "replay")
	if _, err := s.Create(ctx, "key/live", []byte("result"), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, "key/expired", []byte("result"), time.Now().Add(time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	for _, k := range []string{"key/live", "key/absent", "key/expired"} {
		rec.n.Store(0)
		_, err := s.Get(ctx, k)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
		if n := rec.n.Load(); n != 1 {
			t.Errorf("Get %s sent %d requests, want 1", k, n)
		}
	}
}

// BenchmarkOps measures one Get, Create and Update on dynalite over loopback, for the README's
// per-backend latency table (dynalite is far slower than DynamoDB's service time but shows the
// client's own cost and the request count).
func BenchmarkOps(b *testing.B) {
	ctx := context.Background()
	_, c := server(b)
	s := open(b, c, "bench")
	val := []byte(strings.Repeat("x", 512))
	if _, err := s.Create(ctx, "bench/get", val, time.Time{}); err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B, op func(i int) error) {
		var lat []time.Duration
		for i := 0; b.Loop(); i++ {
			t0 := time.Now()
			if err := op(i); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
		}
		b.StopTimer()
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
		b.ReportMetric(pct(0.5), "p50-ms")
		b.ReportMetric(pct(0.99), "p99-ms")
	}
	b.Run("Get", func(b *testing.B) {
		run(b, func(int) error { _, err := s.Get(ctx, "bench/get"); return err })
	})
	b.Run("Create", func(b *testing.B) {
		prefix := fmt.Sprintf("bench/c%d-", time.Now().UnixNano())
		run(b, func(i int) error {
			_, err := s.Create(ctx, fmt.Sprintf("%s%d", prefix, i), val, time.Time{})
			return err
		})
	})
	b.Run("Update", func(b *testing.B) {
		key := fmt.Sprintf("bench/u%d", time.Now().UnixNano())
		v, err := s.Create(ctx, key, val, time.Time{})
		if err != nil {
			b.Fatal(err)
		}
		run(b, func(int) error { v, err = s.Update(ctx, key, v, val, time.Time{}); return err })
	})
}

// loseAnswer delivers the first request of the operation named target to the server and then
// reports a reset connection instead of its answer, as a network may: the SDK retries a request
// that did land.
type loseAnswer struct {
	target string
	lost   atomic.Bool
	n      atomic.Int64
	next   *http.Client
}

func (l *loseAnswer) Do(r *http.Request) (*http.Response, error) {
	l.n.Add(1)
	resp, err := l.next.Do(r)
	if err != nil || !strings.HasSuffix(r.Header.Get("X-Amz-Target"), "."+l.target) || l.lost.Swap(true) {
		return resp, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return nil, errors.New("read tcp 127.0.0.1: connection reset by peer")
}

// TestRetriedWriteLandsOnce: a write whose answer was lost and whose retry then fails its
// condition on the first attempt's own item reports success with that item's version, not a
// conflict that would make a caller apply its change twice; a real conflict stays one.
func TestRetriedWriteLandsOnce(t *testing.T) {
	ctx := context.Background()
	endpoint, c := server(t)
	direct := open(t, c, "lost")
	flaky := func() (*loseAnswer, *dynamostore.Store) {
		l := &loseAnswer{target: "PutItem", next: &http.Client{}}
		return l, open(t, client(t, endpoint, l), "lost")
	}

	l, s := flaky()
	v, err := s.Create(ctx, "k/create", []byte("one"), time.Time{})
	if err != nil {
		t.Fatalf("Create whose answer was lost: %v", err)
	}
	if l.n.Load() < 2 {
		t.Fatalf("the SDK sent %d requests: the lost answer was not retried", l.n.Load())
	}
	if it, err := direct.Get(ctx, "k/create"); err != nil || it.Version != v {
		t.Fatalf("stored %+v, %v; Create returned version %d", it, err, v)
	}

	l, s = flaky()
	v2, err := s.Update(ctx, "k/create", v, []byte("two"), time.Time{})
	if err != nil || l.n.Load() < 2 {
		t.Fatalf("Update whose answer was lost: %v after %d requests", err, l.n.Load())
	}
	if it, err := direct.Get(ctx, "k/create"); err != nil || it.Version != v2 || string(it.Value) != "two" {
		t.Fatalf("stored %+v, %v; Update returned version %d", it, err, v2)
	}

	// The first attempt itself fails its condition: still a conflict.
	_, s = flaky()
	if _, err := s.Create(ctx, "k/create", []byte("three"), time.Time{}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Create over a live item whose answer was lost: %v, want ErrConflict", err)
	}
}
