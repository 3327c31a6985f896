package emulator

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aliyun/aliyun-tablestore-go-sdk/tablestore"
	"github.com/aliyun/aliyun-tablestore-go-sdk/tablestore/otsprotocol"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
)

func otsServer(t *testing.T, page int) (*tablestore.TableStoreClient, string) {
	t.Helper()
	srv := httptest.NewServer(New(Options{TablestorePage: page}))
	t.Cleanup(srv.Close)
	cfg := tablestore.NewDefaultTableStoreConfig()
	cfg.RetryTimes = 0
	c := tablestore.NewClientWithConfig(srv.URL, "inst", AccessKeyID, AccessKeySecret, "", cfg)
	meta := &tablestore.TableMeta{TableName: "t"}
	meta.AddPrimaryKeyColumn("a", tablestore.PrimaryKeyType_STRING)
	meta.AddPrimaryKeyColumn("b", tablestore.PrimaryKeyType_INTEGER)
	if _, err := c.CreateTable(&tablestore.CreateTableRequest{TableMeta: meta, TableOption: &tablestore.TableOption{TimeToAlive: -1, MaxVersion: 1},
		ReservedThroughput: &tablestore.ReservedThroughput{}}); err != nil {
		t.Fatal(err)
	}
	return c, srv.URL
}

func key(a string, b int64) *tablestore.PrimaryKey {
	pk := &tablestore.PrimaryKey{}
	pk.AddPrimaryKeyColumn("a", a)
	pk.AddPrimaryKeyColumn("b", b)
	return pk
}

func otsCode(err error) (string, int) {
	var oe *tablestore.OtsError
	if errors.As(err, &oe) {
		return oe.Code, oe.HttpStatusCode
	}
	return "", 0
}

func wantCode(t *testing.T, what string, err error, code string, status int) {
	t.Helper()
	if c, s := otsCode(err); c != code || s != status {
		t.Fatalf("%s: %v (code %q, status %d), want %s %d", what, err, c, s, code, status)
	}
}

func put(c *tablestore.TableStoreClient, pk *tablestore.PrimaryKey, exist tablestore.RowExistenceExpectation, cond tablestore.ColumnFilter, cols map[string]any) error {
	ch := &tablestore.PutRowChange{TableName: "t", PrimaryKey: pk}
	for k, v := range cols {
		ch.AddColumn(k, v)
	}
	ch.SetCondition(exist)
	if cond != nil {
		ch.SetColumnCondition(cond)
	}
	_, err := c.PutRow(&tablestore.PutRowRequest{PutRowChange: ch})
	return err
}

func single(col string, op tablestore.ComparatorType, v any, passIfMissing bool) *tablestore.SingleColumnCondition {
	c := tablestore.NewSingleColumnCondition(col, op, v)
	c.FilterIfMissing = !passIfMissing
	c.LatestVersionOnly = true
	return c
}

// TestTablestoreTables: CreateTable, DescribeTable, ListTable and DeleteTable with their
// documented refusals.
func TestTablestoreTables(t *testing.T) {
	c, _ := otsServer(t, 0)
	meta := &tablestore.TableMeta{TableName: "t"}
	meta.AddPrimaryKeyColumn("a", tablestore.PrimaryKeyType_STRING)
	_, err := c.CreateTable(&tablestore.CreateTableRequest{TableMeta: meta, TableOption: &tablestore.TableOption{TimeToAlive: -1, MaxVersion: 1},
		ReservedThroughput: &tablestore.ReservedThroughput{}})
	wantCode(t, "CreateTable of an existing table", err, "OTSObjectAlreadyExist", 409)
	meta.TableName = "short_ttl"
	_, err = c.CreateTable(&tablestore.CreateTableRequest{TableMeta: meta, TableOption: &tablestore.TableOption{TimeToAlive: 3600, MaxVersion: 1},
		ReservedThroughput: &tablestore.ReservedThroughput{}})
	wantCode(t, "CreateTable with a TTL under a day", err, "OTSParameterInvalid", 400)
	_, err = c.DescribeTable(&tablestore.DescribeTableRequest{TableName: "none"})
	wantCode(t, "DescribeTable of no table", err, "OTSObjectNotExist", 404)
	d, err := c.DescribeTable(&tablestore.DescribeTableRequest{TableName: "t"})
	if err != nil || len(d.TableMeta.SchemaEntry) != 2 || *d.TableMeta.SchemaEntry[1].Name != "b" || d.TableOption.TimeToAlive != -1 {
		t.Fatalf("DescribeTable: %+v, %v", d, err)
	}
	l, err := c.ListTable()
	if err != nil || !reflect.DeepEqual(l.TableNames, []string{"t"}) {
		t.Fatalf("ListTable: %+v, %v", l, err)
	}
	if _, err := c.DeleteTable(&tablestore.DeleteTableRequest{TableName: "t"}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetRow(&tablestore.GetRowRequest{SingleRowQueryCriteria: &tablestore.SingleRowQueryCriteria{TableName: "t", PrimaryKey: key("x", 1), MaxVersion: 1}})
	wantCode(t, "GetRow of a deleted table", err, "OTSObjectNotExist", 404)
}

// TestTablestoreConditions: row existence and column conditions as the service applies them,
// a missing row's columns all being missing.
func TestTablestoreConditions(t *testing.T) {
	c, _ := otsServer(t, 0)
	k := key("x", 1)
	// A condition that passes only when "n" is missing or below 5: on no row, it passes.
	below5 := single("n", tablestore.CT_LESS_THAN, int64(5), true)
	if err := put(c, k, tablestore.RowExistenceExpectation_IGNORE, below5, map[string]any{"n": int64(7), "s": "x"}); err != nil {
		t.Fatalf("IGNORE with a pass-if-missing condition on no row: %v", err)
	}
	err := put(c, k, tablestore.RowExistenceExpectation_IGNORE, below5, map[string]any{"n": int64(1)})
	wantCode(t, "condition n < 5 on n = 7", err, "OTSConditionCheckFail", 403)
	err = put(c, k, tablestore.RowExistenceExpectation_EXPECT_NOT_EXIST, nil, map[string]any{"n": int64(1)})
	wantCode(t, "EXPECT_NOT_EXIST on a row", err, "OTSConditionCheckFail", 403)
	err = put(c, key("y", 1), tablestore.RowExistenceExpectation_EXPECT_EXIST, nil, map[string]any{"n": int64(1)})
	wantCode(t, "EXPECT_EXIST on no row", err, "OTSConditionCheckFail", 403)
	err = put(c, key("z", 1), tablestore.RowExistenceExpectation_IGNORE, single("n", tablestore.CT_EQUAL, int64(0), false), map[string]any{"n": int64(1)})
	wantCode(t, "a condition that fails on a missing column, on no row", err, "OTSConditionCheckFail", 403)

	// (n == 7 AND NOT s == "y") OR missing == 1
	and := tablestore.NewCompositeColumnCondition(tablestore.LO_AND)
	and.AddFilter(single("n", tablestore.CT_EQUAL, int64(7), false))
	not := tablestore.NewCompositeColumnCondition(tablestore.LO_NOT)
	not.AddFilter(single("s", tablestore.CT_EQUAL, "y", false))
	and.AddFilter(not)
	or := tablestore.NewCompositeColumnCondition(tablestore.LO_OR)
	or.AddFilter(and)
	or.AddFilter(single("missing", tablestore.CT_EQUAL, int64(1), false))
	if err := put(c, k, tablestore.RowExistenceExpectation_EXPECT_EXIST, or, map[string]any{"n": int64(8), "s": "x"}); err != nil {
		t.Fatalf("composite condition that holds: %v", err)
	}
	if err := put(c, k, tablestore.RowExistenceExpectation_EXPECT_EXIST, or, map[string]any{"n": int64(9)}); err == nil {
		t.Fatal("composite condition that fails (n is 8) passed")
	}
	// A comparison across types never holds.
	err = put(c, k, tablestore.RowExistenceExpectation_IGNORE, single("n", tablestore.CT_EQUAL, "8", false), map[string]any{"n": int64(1)})
	wantCode(t, "integer column against a string", err, "OTSConditionCheckFail", 403)

	bad := tablestore.NewCompositeColumnCondition(tablestore.LO_NOT)
	bad.AddFilter(single("n", tablestore.CT_EQUAL, int64(8), false))
	bad.AddFilter(single("n", tablestore.CT_EQUAL, int64(8), false))
	err = put(c, k, tablestore.RowExistenceExpectation_IGNORE, bad, map[string]any{"n": int64(1)})
	wantCode(t, "NOT with two sub-conditions", err, "OTSParameterInvalid", 400)
	many := tablestore.NewCompositeColumnCondition(tablestore.LO_AND)
	for range 11 {
		many.AddFilter(single("n", tablestore.CT_EQUAL, int64(8), false))
	}
	err = put(c, k, tablestore.RowExistenceExpectation_IGNORE, many, map[string]any{"n": int64(1)})
	wantCode(t, "eleven column conditions", err, "OTSParameterInvalid", 400)

	// UpdateRow puts, deletes and increments columns; DeleteRow honours its condition.
	u := &tablestore.UpdateRowChange{TableName: "t", PrimaryKey: k}
	u.SetCondition(tablestore.RowExistenceExpectation_EXPECT_EXIST)
	u.PutColumn("p", []byte{0, 1})
	u.DeleteColumn("s")
	u.IncrementColumn("n", 2)
	if _, err := c.UpdateRow(&tablestore.UpdateRowRequest{UpdateRowChange: u}); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetRow(&tablestore.GetRowRequest{SingleRowQueryCriteria: &tablestore.SingleRowQueryCriteria{TableName: "t", PrimaryKey: k, MaxVersion: 1}})
	if err != nil {
		t.Fatal(err)
	}
	var cols []string
	for _, col := range got.Columns {
		cols = append(cols, fmt.Sprintf("%s=%v", col.ColumnName, col.Value))
	}
	if s := strings.Join(cols, " "); s != "n=10 p=[0 1]" {
		t.Fatalf("row after UpdateRow: %s", s)
	}
	d := &tablestore.DeleteRowChange{TableName: "t", PrimaryKey: k}
	d.SetCondition(tablestore.RowExistenceExpectation_EXPECT_EXIST)
	d.SetColumnCondition(single("n", tablestore.CT_EQUAL, int64(9), false))
	_, err = c.DeleteRow(&tablestore.DeleteRowRequest{DeleteRowChange: d})
	wantCode(t, "DeleteRow whose condition fails", err, "OTSConditionCheckFail", 403)
	d.SetColumnCondition(single("n", tablestore.CT_EQUAL, int64(10), false))
	if _, err := c.DeleteRow(&tablestore.DeleteRowRequest{DeleteRowChange: d}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DeleteRow(&tablestore.DeleteRowRequest{DeleteRowChange: d})
	wantCode(t, "DeleteRow EXPECT_EXIST of no row", err, "OTSConditionCheckFail", 403)

	// A key that does not match the schema is refused.
	wrong := &tablestore.PrimaryKey{}
	wrong.AddPrimaryKeyColumn("a", int64(1))
	wrong.AddPrimaryKeyColumn("b", int64(1))
	err = put(c, wrong, tablestore.RowExistenceExpectation_IGNORE, nil, map[string]any{"n": int64(1)})
	wantCode(t, "a key of the wrong type", err, "OTSParameterInvalid", 400)
}

// TestTablestoreGetRange: rows come in key order both ways between the bounds, a page at a
// time, with next_start_primary_key naming where to continue.
func TestTablestoreGetRange(t *testing.T) {
	c, _ := otsServer(t, 3)
	for _, a := range []string{"p", "q"} {
		for b := range int64(5) {
			if err := put(c, key(a, b), tablestore.RowExistenceExpectation_IGNORE, nil, map[string]any{"v": fmt.Sprint(a, b)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	scan := func(dir tablestore.Direction, start, end *tablestore.PrimaryKey, limit int32) (string, int) {
		var out []string
		pages := 0
		for start != nil {
			resp, err := c.GetRange(&tablestore.GetRangeRequest{RangeRowQueryCriteria: &tablestore.RangeRowQueryCriteria{
				TableName: "t", StartPrimaryKey: start, EndPrimaryKey: end, Direction: dir, MaxVersion: 1, Limit: limit}})
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, r := range resp.Rows {
				out = append(out, r.Columns[0].Value.(string))
			}
			start = resp.NextStartPrimaryKey
			if limit > 0 {
				break
			}
		}
		return strings.Join(out, ","), pages
	}
	bound := func(a string, b any) *tablestore.PrimaryKey {
		pk := &tablestore.PrimaryKey{}
		pk.AddPrimaryKeyColumn("a", a)
		switch b {
		case "min":
			pk.AddPrimaryKeyColumnWithMinValue("b")
		case "max":
			pk.AddPrimaryKeyColumnWithMaxValue("b")
		default:
			pk.AddPrimaryKeyColumn("b", b)
		}
		return pk
	}
	if got, pages := scan(tablestore.FORWARD, bound("p", "min"), bound("p", "max"), 0); got != "p0,p1,p2,p3,p4" || pages != 2 {
		t.Errorf("forward over p: %s in %d pages", got, pages)
	}
	if got, _ := scan(tablestore.FORWARD, bound("p", int64(3)), bound("q", int64(2)), 0); got != "p3,p4,q0,q1" {
		t.Errorf("forward p3..q2: %s", got)
	}
	if got, _ := scan(tablestore.BACKWARD, bound("q", int64(1)), bound("p", int64(2)), 0); got != "q1,q0,p4,p3" {
		t.Errorf("backward q1..p2: %s", got)
	}
	if got, _ := scan(tablestore.FORWARD, bound("p", "min"), bound("q", "max"), 2); got != "p0,p1" {
		t.Errorf("limit 2: %s", got)
	}
	_, err := c.GetRange(&tablestore.GetRangeRequest{RangeRowQueryCriteria: &tablestore.RangeRowQueryCriteria{
		TableName: "t", StartPrimaryKey: bound("q", "min"), EndPrimaryKey: bound("p", "min"), Direction: tablestore.FORWARD, MaxVersion: 1}})
	wantCode(t, "a forward range that runs backwards", err, "OTSParameterInvalid", 400)
}

// TestTablestoreAuth: requests are refused as the service refuses them, in the protobuf error
// body the SDK decodes.
func TestTablestoreAuth(t *testing.T) {
	c, url := otsServer(t, 0)
	_ = c
	wrong := tablestore.NewClient(url, "inst", AccessKeyID, "wrong-secret")
	_, err := wrong.ListTable()
	wantCode(t, "a wrong secret", err, "OTSAuthFailed", 403)
	unknown := tablestore.NewClient(url, "inst", "nobody", AccessKeySecret)
	_, err = unknown.ListTable()
	wantCode(t, "an unknown AccessKeyId", err, "OTSAuthFailed", 403)

	body, _ := proto.Marshal(protoadapt.MessageV2Of(&otsprotocol.ListTableRequest{}))
	send := func(tamper func(*http.Request)) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, url+"/ListTable", bytes.NewReader(body))
		sum := md5.Sum(body)
		h := req.Header
		h.Set("x-ots-date", time.Now().UTC().Format("2006-01-02T15:04:05.000Z"))
		h.Set("x-ots-apiversion", TablestoreAPIVersion)
		h.Set("x-ots-accesskeyid", AccessKeyID)
		h.Set("x-ots-instancename", "inst")
		h.Set("x-ots-contentmd5", base64.StdEncoding.EncodeToString(sum[:]))
		h.Set("x-ots-signature", otsSignature(AccessKeySecret, "/ListTable", http.MethodPost, h))
		tamper(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var e otsprotocol.Error
		if resp.StatusCode != http.StatusOK {
			if err := proto.Unmarshal(raw, protoadapt.MessageV2Of(&e)); err != nil {
				t.Fatalf("status %d with a body that is no Error: %v", resp.StatusCode, err)
			}
		}
		return resp.StatusCode, e.GetCode()
	}
	cases := []struct {
		name   string
		tamper func(*http.Request)
		status int
		code   string
	}{
		{"as signed", func(*http.Request) {}, 200, ""},
		{"another body", func(r *http.Request) { r.Body = io.NopCloser(strings.NewReader("x")); r.ContentLength = 1 }, 403, "OTSAuthFailed"},
		{"a stale date", func(r *http.Request) {
			r.Header.Set("x-ots-date", time.Now().Add(-time.Hour).UTC().Format("2006-01-02T15:04:05.000Z"))
			r.Header.Set("x-ots-signature", otsSignature(AccessKeySecret, "/ListTable", http.MethodPost, r.Header))
		}, 403, "OTSAuthFailed"},
		{"a signed header changed", func(r *http.Request) { r.Header.Set("x-ots-instancename", "other") }, 403, "OTSAuthFailed"},
		{"no date", func(r *http.Request) { r.Header.Del("x-ots-date") }, 400, "OTSParameterInvalid"},
		{"GET", func(r *http.Request) { r.Method = http.MethodGet }, 405, "OTSMethodNotAllowed"},
	}
	for _, tc := range cases {
		if status, code := send(tc.tamper); status != tc.status || code != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.name, status, code, tc.status, tc.code)
		}
	}
}

// TestPlainBufferSDK: what the SDK encodes decodes, checksums and all, to what it meant.
func TestPlainBufferSDK(t *testing.T) {
	put := &tablestore.PutRowChange{TableName: "t", PrimaryKey: key("k\x01é", -3)}
	put.AddColumn("s", "text")
	put.AddColumn("i", int64(-42))
	put.AddColumn("b", []byte{})
	put.AddColumn("t", true)
	put.AddColumn("f", 2.5)
	put.AddColumnWithTimestamp("ts", int64(1), 1700000000000)
	row, err := decodeRow(put.Serialize())
	if err != nil {
		t.Fatal(err)
	}
	if row.PK[0].Name != "a" || string(row.PK[0].Value.Data) != "k\x01é" || row.PK[1].Value.Int != -3 {
		t.Fatalf("primary key %+v", row.PK)
	}
	var got []string
	for _, c := range row.Cells {
		got = append(got, fmt.Sprintf("%s:%d:%d:%v:%q:%d", c.Name, c.Value.Type, c.Value.Int, c.Value.Bool, c.Value.Data, c.TS))
	}
	want := `s:3:0:false:"text":0 i:0:-42:false:"":0 b:7:0:false:"":0 t:2:0:true:"":0 f:1:4612811918334230528:false:"":0 ts:0:1:false:"":1700000000000`
	if s := strings.Join(got, " "); s != want {
		t.Fatalf("cells\n got %s\nwant %s", s, want)
	}

	u := &tablestore.UpdateRowChange{TableName: "t", PrimaryKey: key("k", 1)}
	u.DeleteColumn("gone")
	u.DeleteColumnWithTimestamp("old", 5)
	u.IncrementColumn("n", 1)
	row, err = decodeRow(u.Serialize())
	if err != nil {
		t.Fatal(err)
	}
	if c := row.Cells; len(c) != 3 || c[0].Op != opDeleteAll || c[0].Value != nil || c[1].Op != opDeleteOne || c[1].TS != 5 || c[2].Op != opIncrement || c[2].Value.Int != 1 {
		t.Fatalf("update cells %+v", row.Cells)
	}

	d := &tablestore.DeleteRowChange{TableName: "t", PrimaryKey: key("k", 1)}
	if row, err = decodeRow(d.Serialize()); err != nil || !row.Delete {
		t.Fatalf("delete row %+v, %v", row, err)
	}
	bound := &tablestore.PrimaryKey{}
	bound.AddPrimaryKeyColumnWithMinValue("a")
	bound.AddPrimaryKeyColumnWithMaxValue("b")
	if row, err = decodeRow(bound.Build(false)); err != nil || row.PK[0].Value.Type != vtInfMin || row.PK[1].Value.Type != vtInfMax {
		t.Fatalf("range bound %+v, %v", row, err)
	}

	// One flipped bit anywhere is caught.
	raw := put.Serialize()
	for i := range raw {
		bad := bytes.Clone(raw)
		bad[i] ^= 0x10
		if _, err := decodeRow(bad); err == nil {
			t.Errorf("a flipped bit in byte %d of %d went unnoticed", i, len(raw))
		}
	}
}

// FuzzPlainBuffer: the decoder never panics on any input, and what it accepts encodes to bytes
// it decodes to the same rows.
func FuzzPlainBuffer(f *testing.F) {
	put := &tablestore.PutRowChange{TableName: "t", PrimaryKey: key("k", 7)}
	put.AddColumn("v", []byte("value"))
	put.AddColumn("d", 1.5)
	put.AddColumn("t", false)
	f.Add(put.Serialize())
	u := &tablestore.UpdateRowChange{TableName: "t", PrimaryKey: key("", 0)}
	u.DeleteColumn("x")
	u.IncrementColumn("n", -1)
	f.Add(u.Serialize())
	f.Add((&tablestore.DeleteRowChange{TableName: "t", PrimaryKey: key("z", 1)}).Serialize())
	f.Add(encodeRows(pbRow{PK: []pbCell{{Name: "a", Value: &pbValue{Type: vtString, Data: []byte("x")}}}}, pbRow{}))
	f.Add([]byte{0x75, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		rows, err := decodeRows(b)
		if err != nil {
			if !errors.Is(err, errPlainBuffer) {
				t.Fatalf("error %v is not a PlainBuffer error", err)
			}
			return
		}
		again, err := decodeRows(encodeRows(rows...))
		if err != nil {
			t.Fatalf("re-encoding of accepted rows does not decode: %v", err)
		}
		if !reflect.DeepEqual(again, rows) {
			t.Fatalf("round trip changed the rows:\n%+v\n%+v", rows, again)
		}
	})
}
