// Package dynamostore is the store contract on Amazon DynamoDB, the state of livepack on AWS
// Lambda. It is a thin translation: every operation is one single-item request, conditional
// where the contract has a condition, so the protocols above it hold across every Lambda
// instance sharing the table.
//
// The table layout is fixed (the SAM template and `livepack state init` declare it):
//
//	PK  (S, partition key)  namespace + "|" + kind
//	SK  (S, sort key)       the rest of the key, after the kind's '/'
//	v   (B)                 the value
//	ver (N)                 the version (store.NewVersion)
//	exp (N)                 when the item expires, Unix milliseconds; 0: never
//	ttl (N)                 the same in Unix seconds, only on expiring items
//
// One partition per kind keeps List a single ordered Query. Expiry is checked in code against
// exp on every read and inside every write's condition: the table's TTL on ttl only cleans up,
// and DynamoDB may run it up to two days late.
package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/livepack/livepack/shared/store"
)

// Attribute names of the table layout.
const (
	attrPK      = "PK"
	attrSK      = "SK"
	attrValue   = "v"
	attrVersion = "ver"
	attrExpires = "exp"
	attrTTL     = "ttl"
)

// The write conditions. Every attribute goes through a placeholder, so no name can collide with
// DynamoDB's long list of reserved words.
const (
	// condAbsent: no item, or only an expired one (which the write replaces).
	condAbsent = "attribute_not_exists(#pk) OR (#exp > :zero AND #exp <= :now)"
	// condVersion: a live item at exactly the version the caller read.
	condVersion = "#ver = :ver AND (#exp = :zero OR #exp > :now)"
)

// Store is the DynamoDB backend for one namespace of one table. It is safe for concurrent use.
type Store struct {
	client    *dynamodb.Client
	table     string
	namespace string
	now       func() time.Time
}

var _ store.Store = (*Store)(nil)

// Open returns the store for namespace in table, with the SDK's default configuration: the
// standard credential chain (on Lambda, the function's role), the region from AWS_REGION, and an
// endpoint from AWS_ENDPOINT_URL_DYNAMODB or AWS_ENDPOINT_URL when set (DynamoDB Local, dynalite).
// It sends no request: a missing table shows on the first operation, so a cold start pays for
// nothing it does not use.
func Open(ctx context.Context, table, namespace string) (*Store, error) {
	client, err := NewClient(ctx)
	if err != nil {
		return nil, err
	}
	return New(client, table, namespace)
}

// New returns the store for namespace in table through client. The namespace may not contain
// '|', which separates it from the kind in the partition key: "a|b" + "c" and "a" + "b|c" would
// otherwise name one partition.
func New(client *dynamodb.Client, table, namespace string) (*Store, error) {
	if table == "" {
		return nil, errors.New("dynamodb: no table name")
	}
	if strings.Contains(namespace, "|") {
		return nil, fmt.Errorf("dynamodb: namespace %q contains '|', the separator of namespace and kind", namespace)
	}
	return &Store{client: client, table: table, namespace: namespace, now: time.Now}, nil
}

// Close implements store.Store. The client holds no connection of its own to release: idle HTTP
// connections belong to the SDK's shared transport.
func (s *Store) Close() error { return nil }

// primaryKey splits key into the table's partition and sort keys.
func (s *Store) primaryKey(key string) (pk, sk string, err error) {
	kind, rest, ok := store.Kind(key)
	if !ok {
		return "", "", fmt.Errorf("dynamodb: key %q has no kind (want kind/rest)", key)
	}
	if rest == "" {
		// DynamoDB refuses an empty string as a key attribute.
		return "", "", fmt.Errorf("dynamodb: key %q is empty after its kind", key)
	}
	return s.partition(kind), rest, nil
}

func (s *Store) partition(kind string) string { return s.namespace + "|" + kind }

func keyAttrs(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: str(pk), attrSK: str(sk)}
}

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }
func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

// expiresAttr is the exp attribute's number: 0 for never, else Unix milliseconds, at least 1 so
// that an expiry at or before 1970 still reads as expired rather than as never.
func expiresAttr(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return max(t.UnixMilli(), 1)
}

// item builds the whole item of a write. A write replaces the item, so an update that clears the
// expiry also drops the ttl attribute and TTL never removes a record that now lives for ever.
func (s *Store) item(pk, sk string, value []byte, version int64, expires time.Time) map[string]types.AttributeValue {
	if value == nil {
		value = []byte{}
	}
	it := keyAttrs(pk, sk)
	it[attrValue] = &types.AttributeValueMemberB{Value: value}
	it[attrVersion] = num(version)
	exp := expiresAttr(expires)
	it[attrExpires] = num(exp)
	if exp > 0 {
		// Rounded up: TTL must never remove an item before the code stops showing it.
		it[attrTTL] = num((exp + 999) / 1000)
	}
	return it
}

// condValues are the placeholders of condAbsent and condVersion.
func condValues(now time.Time, version int64, withVersion bool) (map[string]string, map[string]types.AttributeValue) {
	names := map[string]string{"#exp": attrExpires}
	values := map[string]types.AttributeValue{":zero": num(0), ":now": num(now.UnixMilli())}
	if withVersion {
		names["#ver"] = attrVersion
		values[":ver"] = num(version)
	} else {
		names["#pk"] = attrPK
	}
	return names, values
}

// decode turns a table item back into a store item for key.
func decode(key string, av map[string]types.AttributeValue) (store.Item, error) {
	it := store.Item{Key: key}
	if b, ok := av[attrValue].(*types.AttributeValueMemberB); ok {
		it.Value = b.Value
	}
	n, ok := av[attrVersion].(*types.AttributeValueMemberN)
	if !ok {
		return store.Item{}, fmt.Errorf("dynamodb: item %s has no version attribute %q", key, attrVersion)
	}
	v, err := strconv.ParseInt(n.Value, 10, 64)
	if err != nil {
		return store.Item{}, fmt.Errorf("dynamodb: item %s: version %q: %w", key, n.Value, err)
	}
	it.Version = v
	if n, ok := av[attrExpires].(*types.AttributeValueMemberN); ok {
		ms, err := strconv.ParseInt(n.Value, 10, 64)
		if err != nil {
			return store.Item{}, fmt.Errorf("dynamodb: item %s: expiry %q: %w", key, n.Value, err)
		}
		if ms > 0 {
			it.Expires = time.UnixMilli(ms)
		}
	}
	return it, nil
}

// versionOf reads the version attribute of a raw item (0 when there is none).
func versionOf(av map[string]types.AttributeValue) int64 {
	n, ok := av[attrVersion].(*types.AttributeValueMemberN)
	if !ok {
		return 0
	}
	v, _ := strconv.ParseInt(n.Value, 10, 64)
	return v
}

// Get implements store.Store: one strongly consistent GetItem, so a replayed event costs one
// read, and a write that just landed anywhere is seen.
func (s *Store) Get(ctx context.Context, key string) (store.Item, error) {
	pk, sk, err := s.primaryKey(key)
	if err != nil {
		return store.Item{}, err
	}
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            keyAttrs(pk, sk),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return store.Item{}, fmt.Errorf("dynamodb: get %s: %w", key, err)
	}
	if out.Item == nil {
		return store.Item{}, store.ErrNotFound
	}
	it, err := decode(key, out.Item)
	if err != nil {
		return store.Item{}, err
	}
	if !it.Live(s.now()) {
		return store.Item{}, store.ErrNotFound
	}
	return it, nil
}

// Create implements store.Store with a conditional PutItem.
func (s *Store) Create(ctx context.Context, key string, value []byte, expires time.Time) (int64, error) {
	return s.put(ctx, "create", key, 0, value, expires)
}

// Update implements store.Store with a conditional PutItem: the new item replaces the old one
// whole, so no attribute of the previous version survives.
func (s *Store) Update(ctx context.Context, key string, version int64, value []byte, expires time.Time) (int64, error) {
	return s.put(ctx, "update", key, version, value, expires)
}

func (s *Store) put(ctx context.Context, op, key string, version int64, value []byte, expires time.Time) (int64, error) {
	pk, sk, err := s.primaryKey(key)
	if err != nil {
		return 0, err
	}
	update := op == "update"
	cond := condAbsent
	if update {
		cond = condVersion
	}
	names, values := condValues(s.now(), version, update)
	v := store.NewVersion()
	var sent attempts
	_, err = s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                 aws.String(s.table),
		Item:                      s.item(pk, sk, value, v, expires),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
		// The item that failed the condition comes back with the failure, so a retried write can
		// recognise its own first attempt without another read (see landed).
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}, sent.count)
	var failed *types.ConditionalCheckFailedException
	switch {
	case errors.As(err, &failed):
		if s.landed(ctx, pk, sk, v, failed.Item, sent.n.Load()) {
			return v, nil
		}
		return 0, store.ErrConflict
	case err != nil:
		return 0, fmt.Errorf("dynamodb: %s %s: %w", op, key, err)
	}
	return v, nil
}

// landed tells whether a write that failed its condition had in fact landed: the SDK retries a
// request whose answer was lost (a reset connection, a timeout), and if the first attempt had
// been applied, the retry fails its condition on this very write. Reporting a conflict then
// would make the caller read its own write as another's and apply its change twice. The item
// at the key carries the version this call drew, which no other writer can hold, so it tells.
// It usually comes with the failure; a server that does not return it (dynalite) or an item
// since removed costs one consistent read, and only after a retry.
func (s *Store) landed(ctx context.Context, pk, sk string, version int64, failed map[string]types.AttributeValue, requests int32) bool {
	if len(failed) > 0 {
		return versionOf(failed) == version
	}
	if requests < 2 {
		return false
	}
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            keyAttrs(pk, sk),
		ConsistentRead: aws.Bool(true),
	})
	return err == nil && versionOf(out.Item) == version
}

// attempts counts the HTTP requests of one operation, retries included.
type attempts struct {
	n    atomic.Int32
	next dynamodb.HTTPClient
}

// count is a per-operation option that routes the operation's requests through a.
func (a *attempts) count(o *dynamodb.Options) {
	a.next, o.HTTPClient = o.HTTPClient, a
}

// Do implements dynamodb.HTTPClient.
func (a *attempts) Do(r *http.Request) (*http.Response, error) {
	a.n.Add(1)
	return a.next.Do(r)
}

// Delete implements store.Store with a conditional DeleteItem. A delete whose answer was lost
// and whose retry then fails its condition reports ErrConflict although it landed; the caller
// reads again and finds the item gone, which is what it wanted.
func (s *Store) Delete(ctx context.Context, key string, version int64) error {
	pk, sk, err := s.primaryKey(key)
	if err != nil {
		return err
	}
	names, values := condValues(s.now(), version, true)
	_, err = s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 aws.String(s.table),
		Key:                       keyAttrs(pk, sk),
		ConditionExpression:       aws.String(condVersion),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	})
	var failed *types.ConditionalCheckFailedException
	switch {
	case errors.As(err, &failed):
		return store.ErrConflict
	case err != nil:
		return fmt.Errorf("dynamodb: delete %s: %w", key, err)
	}
	return nil
}

// List implements store.Store with a strongly consistent Query of the kind's partition, paging
// until it has limit live items. The sort key orders by the UTF-8 bytes of the rest of the key,
// which within one kind is the byte order of the whole keys.
func (s *Store) List(ctx context.Context, prefix, after string, limit int) ([]store.Item, error) {
	kind, p, ok := store.Kind(prefix)
	if !ok {
		return nil, fmt.Errorf("dynamodb: list prefix %q has no kind (want kind/...)", prefix)
	}
	head := kind + "/"
	// Reduce after to a bound on the sort key: a.
	a := ""
	switch {
	case after < head:
		// Every key of the kind sorts after it.
	case strings.HasPrefix(after, head):
		a = after[len(head):]
	default:
		return nil, nil // after sorts past every key of the kind
	}
	names := map[string]string{"#pk": attrPK}
	values := map[string]types.AttributeValue{":pk": str(s.partition(kind))}
	cond := "#pk = :pk"
	// Only one condition on the sort key fits in a key condition. When after falls inside the
	// prefix's range, the query starts after it and the prefix ends the scan in code: the keys come
	// in order, so the first key without the prefix is past all of them.
	stopOutside := false
	switch {
	case a == "" || a < p:
		if p != "" {
			cond += " AND begins_with(#sk, :p)"
			names["#sk"] = attrSK
			values[":p"] = str(p)
		}
	case strings.HasPrefix(a, p):
		cond += " AND #sk > :a"
		names["#sk"] = attrSK
		values[":a"] = str(a)
		stopOutside = p != ""
	default:
		return nil, nil // after sorts past every key with the prefix
	}
	now := s.now()
	var out []store.Item
	var start map[string]types.AttributeValue
	for {
		in := &dynamodb.QueryInput{
			TableName:                 aws.String(s.table),
			KeyConditionExpression:    aws.String(cond),
			ExpressionAttributeNames:  names,
			ExpressionAttributeValues: values,
			ConsistentRead:            aws.Bool(true),
			ExclusiveStartKey:         start,
		}
		if limit > 0 {
			// Ask for what is still missing; expired items may make another page necessary.
			in.Limit = aws.Int32(int32(min(limit-len(out), 1000)))
		}
		page, err := s.client.Query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("dynamodb: list %s after %q: %w", prefix, after, err)
		}
		for _, av := range page.Items {
			sk, ok := av[attrSK].(*types.AttributeValueMemberS)
			if !ok {
				return nil, fmt.Errorf("dynamodb: list %s: an item has no sort key", prefix)
			}
			if stopOutside && !strings.HasPrefix(sk.Value, p) {
				return out, nil
			}
			it, err := decode(head+sk.Value, av)
			if err != nil {
				return nil, err
			}
			if it.Live(now) {
				out = append(out, it)
				if limit > 0 && len(out) == limit {
					return out, nil
				}
			}
		}
		if len(page.LastEvaluatedKey) == 0 {
			return out, nil
		}
		start = page.LastEvaluatedKey
	}
}
