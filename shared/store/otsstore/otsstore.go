// Package otsstore is the store contract on Alibaba Cloud Tablestore (DESIGN §10), the state
// store of livepack on Function Compute: Tablestore is reached over its public endpoint with the
// function's role credentials, so the function needs no VPC.
//
// Layout (fixed; the templates and `livepack state init` declare it): primary key `pk` (STRING)
// = namespace + "|" + kind, `sk` (STRING) = the rest of the key; attribute columns `v` (BINARY,
// the value), `ver` (INTEGER, the version) and `exp` (INTEGER, expiry in Unix milliseconds, 0 =
// never). A kind is one pk, so List is one GetRange over a run of sk.
//
// Every write is one conditional row operation, so it is atomic across processes without a
// lock: Create is PutRow with RowExistenceExpectation IGNORE and the column condition
// "exp > 0 AND exp <= now", each side passing when the column is missing (Tablestore evaluates a
// missing row as one whose columns are all missing), so it lands on an absent or expired row
// and on nothing else; Update is PutRow and Delete is DeleteRow, both EXPECT_EXIST with
// "ver == version AND (exp == 0 OR exp > now)". A failed condition (OTSConditionCheckFail) is
// store.ErrConflict.
//
// Expiry is decided here, on this process's clock, in milliseconds; the table has no TTL
// (TimeToLive -1). A Tablestore TTL counts from a column's last write, and records without
// expiry (target records, cursors) must outlive any TTL, so a TTL would delete live records.
// An expired row stays in the table, invisible to every operation, until a Create of its key
// replaces it or a protocol deletes it.
package otsstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aliyun/aliyun-tablestore-go-sdk/tablestore"
	"github.com/aliyun/credentials-go/credentials"

	"github.com/livepack/livepack/shared/store"
)

// Column names of the table layout.
const (
	colPK      = "pk"
	colSK      = "sk"
	colValue   = "v"
	colVersion = "ver"
	colExpires = "exp"
)

// Tablestore error codes the backend branches on.
const (
	codeConditionCheckFail = "OTSConditionCheckFail"
	codeObjectNotExist     = "OTSObjectNotExist"
	codeObjectAlreadyExist = "OTSObjectAlreadyExist"
)

// CredentialsFunc returns the credentials for the next request. It is called for every
// request, so credentials that rotate (Function Compute's role credentials, STS) are picked up
// without reopening the store; it should answer from a cache.
type CredentialsFunc func(ctx context.Context) (accessKeyID, accessKeySecret, securityToken string, err error)

// StaticCredentials returns a CredentialsFunc that always answers the same key pair.
func StaticCredentials(accessKeyID, accessKeySecret, securityToken string) CredentialsFunc {
	return func(context.Context) (string, string, string, error) {
		return accessKeyID, accessKeySecret, securityToken, nil
	}
}

// FromCredential adapts the Alibaba Cloud credentials chain (credentials-go), which caches and
// refreshes what it hands out, to a CredentialsFunc.
func FromCredential(c credentials.Credential) CredentialsFunc {
	return func(context.Context) (string, string, string, error) {
		m, err := c.GetCredential()
		if err != nil {
			return "", "", "", err
		}
		deref := func(p *string) string {
			if p == nil {
				return ""
			}
			return *p
		}
		return deref(m.AccessKeyId), deref(m.AccessKeySecret), deref(m.SecurityToken), nil
	}
}

// Options say which table a Store uses and how it signs in.
type Options struct {
	// Endpoint is the instance's endpoint, e.g. https://INSTANCE.cn-shanghai.ots.aliyuncs.com,
	// or an emulator's base URL.
	Endpoint string
	// Instance is the Tablestore instance name.
	Instance string
	// Table is the table in the layout this package documents (Init creates it).
	Table string
	// Namespace separates deployments sharing the table: it is the first part of every pk and
	// may not contain '|', which ends it.
	Namespace string
	// Credentials sign every request.
	Credentials CredentialsFunc
}

func (o Options) check(needNamespace bool) error {
	switch {
	case o.Endpoint == "":
		return errors.New("otsstore: no endpoint")
	case o.Instance == "":
		return errors.New("otsstore: no instance")
	case o.Table == "":
		return errors.New("otsstore: no table")
	case needNamespace && o.Namespace == "":
		return errors.New("otsstore: no namespace")
	case strings.Contains(o.Namespace, "|"):
		return fmt.Errorf("otsstore: namespace %q contains '|', which separates it from the kind", o.Namespace)
	case o.Credentials == nil:
		return errors.New("otsstore: no credentials")
	}
	return nil
}

// Store is the Tablestore backend of store.Store. It is safe for concurrent use.
type Store struct {
	opts      Options
	endpoint  string
	transport *http.Transport
	now       func() time.Time
}

var _ store.Store = (*Store)(nil)

// Open returns a Store on the table opts names. It makes no request: a missing table or a
// refused credential shows on the first operation (Init creates the table), so opening costs
// nothing at a cold start.
func Open(_ context.Context, opts Options) (*Store, error) {
	if err := opts.check(true); err != nil {
		return nil, err
	}
	return newStore(opts), nil
}

func newStore(opts Options) *Store {
	return &Store{
		opts:     opts,
		endpoint: strings.TrimRight(opts.Endpoint, "/"),
		transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout: 10 * time.Second,
			MaxIdleConnsPerHost: 16,
			IdleConnTimeout:     90 * time.Second,
		},
		now: time.Now,
	}
}

// client returns an SDK client bound to ctx and signed with the current credentials. The SDK
// takes neither a context nor a credentials provider, so a client is made per operation: it
// shares this Store's connections, and its transport ties every request to ctx. Writes get no
// SDK retries: the SDK retries a broken connection whatever the operation, and a conditional
// write retried after it landed would fail its own condition and read as a conflict.
func (s *Store) client(ctx context.Context, write bool) (*tablestore.TableStoreClient, error) {
	id, secret, token, err := s.opts.Credentials(ctx)
	if err != nil {
		return nil, fmt.Errorf("otsstore: credentials: %w", err)
	}
	cfg := tablestore.NewDefaultTableStoreConfig()
	cfg.Transport = ctxTransport{ctx: ctx, base: s.transport}
	cfg.MaxRetryTime = 5 * time.Second
	cfg.RetryTimes = 3
	if write {
		cfg.RetryTimes = 0
	}
	return tablestore.NewClientWithConfig(s.endpoint, s.opts.Instance, id, secret, token, cfg), nil
}

// ctxTransport ties the SDK's requests to a context. Once the context is done its error comes
// back as one the SDK does not retry (a deadline's error says it is temporary, and the SDK
// would sleep and retry it until its own deadline); it still unwraps to the context's error.
type ctxTransport struct {
	ctx  context.Context
	base http.RoundTripper
}

func (t ctxTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := t.ctx.Err(); err != nil {
		return nil, ctxDone{err}
	}
	resp, err := t.base.RoundTrip(r.WithContext(t.ctx))
	if err != nil && t.ctx.Err() != nil {
		return nil, ctxDone{t.ctx.Err()}
	}
	return resp, err
}

type ctxDone struct{ err error }

func (e ctxDone) Error() string { return "request abandoned: " + e.err.Error() }
func (e ctxDone) Unwrap() error { return e.err }

// Close releases the Store's idle connections.
func (s *Store) Close() error {
	s.transport.CloseIdleConnections()
	return nil
}

// primaryKey maps a key to the row's primary key.
func (s *Store) primaryKey(key string) (*tablestore.PrimaryKey, error) {
	kind, rest, ok := store.Kind(key)
	if !ok {
		return nil, fmt.Errorf("otsstore: key %q has no kind", key)
	}
	pk := &tablestore.PrimaryKey{}
	pk.AddPrimaryKeyColumn(colPK, s.opts.Namespace+"|"+kind)
	pk.AddPrimaryKeyColumn(colSK, rest)
	return pk, nil
}

// expiresMillis is the exp column of an expiry: 0 for never; an expiry at or before the epoch
// is 1, so it stays expired instead of turning into never.
func expiresMillis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return max(t.UnixMilli(), 1)
}

// item reads a row's columns; ok is false for a row missing one of them (not written here).
func item(key string, cols []*tablestore.AttributeColumn) (it store.Item, exp int64, ok bool) {
	var seen int
	for _, c := range cols {
		switch c.ColumnName {
		case colValue:
			if v, isBytes := c.Value.([]byte); isBytes {
				it.Value, seen = v, seen|1
			}
		case colVersion:
			if v, isInt := c.Value.(int64); isInt {
				it.Version, seen = v, seen|2
			}
		case colExpires:
			if v, isInt := c.Value.(int64); isInt {
				exp, seen = v, seen|4
			}
		}
	}
	it.Key = key
	if exp > 0 {
		it.Expires = time.UnixMilli(exp)
	}
	if it.Value == nil {
		it.Value = []byte{}
	}
	return it, exp, seen == 7
}

func live(exp, now int64) bool { return exp == 0 || exp > now }

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, key string) (store.Item, error) {
	pk, err := s.primaryKey(key)
	if err != nil {
		return store.Item{}, err
	}
	c, err := s.client(ctx, false)
	if err != nil {
		return store.Item{}, err
	}
	resp, err := c.GetRow(&tablestore.GetRowRequest{SingleRowQueryCriteria: &tablestore.SingleRowQueryCriteria{
		TableName: s.opts.Table, PrimaryKey: pk, MaxVersion: 1, ColumnsToGet: []string{colValue, colVersion, colExpires},
	}})
	if err != nil {
		return store.Item{}, s.fail("get", key, err)
	}
	if len(resp.Columns) == 0 {
		return store.Item{}, store.ErrNotFound
	}
	it, exp, ok := item(key, resp.Columns)
	if !ok {
		return store.Item{}, fmt.Errorf("otsstore: get %q: the row lacks a column of the layout (v, ver, exp)", key)
	}
	if !live(exp, s.now().UnixMilli()) {
		return store.Item{}, store.ErrNotFound
	}
	return it, nil
}

// cond builds a single-column condition; passIfMissing decides for a missing column (and so
// for a missing row).
func cond(col string, op tablestore.ComparatorType, v int64, passIfMissing bool) *tablestore.SingleColumnCondition {
	c := tablestore.NewSingleColumnCondition(col, op, v)
	c.FilterIfMissing = !passIfMissing
	c.LatestVersionOnly = true
	return c
}

func composite(op tablestore.LogicalOperator, subs ...tablestore.ColumnFilter) *tablestore.CompositeColumnValueFilter {
	c := tablestore.NewCompositeColumnCondition(op)
	for _, sub := range subs {
		c.AddFilter(sub)
	}
	return c
}

// absentOrExpired passes on a missing row and on a row whose expiry has passed at now.
func absentOrExpired(now int64) tablestore.ColumnFilter {
	return composite(tablestore.LO_AND,
		cond(colExpires, tablestore.CT_GREATER_THAN, 0, true),
		cond(colExpires, tablestore.CT_LESS_EQUAL, now, true))
}

// liveAt passes on a row holding version that has not expired at now.
func liveAt(version, now int64) tablestore.ColumnFilter {
	return composite(tablestore.LO_AND,
		cond(colVersion, tablestore.CT_EQUAL, version, false),
		composite(tablestore.LO_OR,
			cond(colExpires, tablestore.CT_EQUAL, 0, false),
			cond(colExpires, tablestore.CT_GREATER_THAN, now, false)))
}

// put writes a whole row under a condition and returns its new version.
func (s *Store) put(ctx context.Context, op, key string, value []byte, expires time.Time, existence tablestore.RowExistenceExpectation, condition func(now int64) tablestore.ColumnFilter) (int64, error) {
	pk, err := s.primaryKey(key)
	if err != nil {
		return 0, err
	}
	if value == nil {
		value = []byte{}
	}
	v := store.NewVersion()
	err = s.write(ctx, op, key, func(c *tablestore.TableStoreClient) error {
		change := &tablestore.PutRowChange{TableName: s.opts.Table, PrimaryKey: pk}
		change.AddColumn(colValue, value)
		change.AddColumn(colVersion, v)
		change.AddColumn(colExpires, expiresMillis(expires))
		change.SetCondition(existence)
		change.SetColumnCondition(condition(s.now().UnixMilli()))
		_, err := c.PutRow(&tablestore.PutRowRequest{PutRowChange: change})
		return err
	})
	if err != nil {
		return 0, err
	}
	return v, nil
}

// Create implements store.Store.
func (s *Store) Create(ctx context.Context, key string, value []byte, expires time.Time) (int64, error) {
	return s.put(ctx, "create", key, value, expires, tablestore.RowExistenceExpectation_IGNORE, absentOrExpired)
}

// Update implements store.Store.
func (s *Store) Update(ctx context.Context, key string, version int64, value []byte, expires time.Time) (int64, error) {
	return s.put(ctx, "update", key, value, expires, tablestore.RowExistenceExpectation_EXPECT_EXIST,
		func(now int64) tablestore.ColumnFilter { return liveAt(version, now) })
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, key string, version int64) error {
	pk, err := s.primaryKey(key)
	if err != nil {
		return err
	}
	return s.write(ctx, "delete", key, func(c *tablestore.TableStoreClient) error {
		change := &tablestore.DeleteRowChange{TableName: s.opts.Table, PrimaryKey: pk}
		change.SetCondition(tablestore.RowExistenceExpectation_EXPECT_EXIST)
		change.SetColumnCondition(liveAt(version, s.now().UnixMilli()))
		_, err := c.DeleteRow(&tablestore.DeleteRowRequest{DeleteRowChange: change})
		return err
	})
}

// notExecuted are the error codes with which Tablestore refuses a request before doing it
// (throttling, a busy or moving partition, a table still loading): a write that met one may be
// sent again without risk of applying twice.
var notExecuted = map[string]bool{
	"OTSRowOperationConflict": true, "OTSNotEnoughCapacityUnit": true, "OTSTableNotReady": true,
	"OTSPartitionUnavailable": true, "OTSServerBusy": true, "OTSStorageServerBusy": true, "OTSQuotaExhausted": true,
}

// write runs a conditional write, retrying only refusals that did not execute, with backoff,
// for as long as ctx allows; a failed condition is store.ErrConflict.
func (s *Store) write(ctx context.Context, op, key string, do func(*tablestore.TableStoreClient) error) error {
	backoff := 20 * time.Millisecond
	for attempt := 1; ; attempt++ {
		c, err := s.client(ctx, true)
		if err != nil {
			return err
		}
		err = do(c)
		if err == nil {
			return nil
		}
		var oe *tablestore.OtsError
		if errors.As(err, &oe) && oe.Code == codeConditionCheckFail {
			return fmt.Errorf("otsstore: %s %q: %w", op, key, store.ErrConflict)
		}
		if !errors.As(err, &oe) || !notExecuted[oe.Code] || attempt == 6 {
			return s.fail(op, key, err)
		}
		t := time.NewTimer(backoff/2 + rand.N(backoff))
		select {
		case <-ctx.Done():
			t.Stop()
			return s.fail(op, key, ctx.Err())
		case <-t.C:
		}
		backoff *= 2
	}
}

// fail wraps an error of an operation with what it was doing; a missing table says how to
// create it.
func (s *Store) fail(op, key string, err error) error {
	var oe *tablestore.OtsError
	if errors.As(err, &oe) && oe.Code == codeObjectNotExist {
		return fmt.Errorf("otsstore: %s %q: table %s of instance %s does not exist (`livepack state init` creates it): %w", op, key, s.opts.Table, s.opts.Instance, err)
	}
	return fmt.Errorf("otsstore: %s %q: %w", op, key, err)
}

// List implements store.Store: one GetRange over the kind's pk from the first sk the prefix and
// after allow to the end of the prefix's run, page after page, expired rows left out.
func (s *Store) List(ctx context.Context, prefix, after string, limit int) ([]store.Item, error) {
	kind, rest, ok := store.Kind(prefix)
	if !ok {
		return nil, fmt.Errorf("otsstore: list prefix %q has no kind", prefix)
	}
	from := prefix
	if after >= prefix {
		from = after + "\x00" // the first key that sorts after after
	}
	if !strings.HasPrefix(from, prefix) {
		return nil, nil
	}
	pkValue := s.opts.Namespace + "|" + kind
	start := &tablestore.PrimaryKey{}
	start.AddPrimaryKeyColumn(colPK, pkValue)
	start.AddPrimaryKeyColumn(colSK, from[len(kind)+1:])
	end := &tablestore.PrimaryKey{}
	end.AddPrimaryKeyColumn(colPK, pkValue)
	if stop, ok := prefixEnd(rest); ok {
		end.AddPrimaryKeyColumn(colSK, stop)
	} else {
		end.AddPrimaryKeyColumnWithMaxValue(colSK)
	}
	var out []store.Item
	for {
		c, err := s.client(ctx, false)
		if err != nil {
			return nil, err
		}
		crit := &tablestore.RangeRowQueryCriteria{TableName: s.opts.Table, StartPrimaryKey: start, EndPrimaryKey: end,
			Direction: tablestore.FORWARD, MaxVersion: 1, ColumnsToGet: []string{colValue, colVersion, colExpires}}
		if limit > 0 {
			crit.Limit = int32(min(limit-len(out), 5000))
		}
		resp, err := c.GetRange(&tablestore.GetRangeRequest{RangeRowQueryCriteria: crit})
		if err != nil {
			return nil, s.fail("list", prefix, err)
		}
		now := s.now().UnixMilli()
		for _, row := range resp.Rows {
			sk, _ := skOf(row.PrimaryKey)
			key := kind + "/" + sk
			if !strings.HasPrefix(key, prefix) {
				return out, nil
			}
			it, exp, ok := item(key, row.Columns)
			if !ok {
				return nil, fmt.Errorf("otsstore: list %q: the row of %q lacks a column of the layout (v, ver, exp)", prefix, key)
			}
			if !live(exp, now) {
				continue
			}
			if out = append(out, it); limit > 0 && len(out) == limit {
				return out, nil
			}
		}
		if resp.NextStartPrimaryKey == nil {
			return out, nil
		}
		start = resp.NextStartPrimaryKey
	}
}

func skOf(pk *tablestore.PrimaryKey) (string, bool) {
	if pk == nil {
		return "", false
	}
	for _, c := range pk.PrimaryKeys {
		if c.ColumnName == colSK {
			s, ok := c.Value.(string)
			return s, ok
		}
	}
	return "", false
}

// prefixEnd returns the least string above every string starting with p, when there is one
// that is valid UTF-8 (a STRING key column holds UTF-8); otherwise the range runs to the end
// of the kind and the rows past the prefix are cut off as they come.
func prefixEnd(p string) (string, bool) {
	b := []byte(p)
	for len(b) > 0 {
		if last := len(b) - 1; b[last] < 0xff {
			b[last]++
			return string(b), utf8.Valid(b)
		}
		b = b[:len(b)-1]
	}
	return "", false
}
