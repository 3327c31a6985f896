package emulator

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aliyun/aliyun-tablestore-go-sdk/tablestore/otsprotocol"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
)

// The emulator also serves the Tablestore (OTS) operations livepack's state store uses, on the
// SDK's own wire protocol (DESIGN §7), so the Tablestore backend is tested with the real SDK
// end to end: protobuf bodies (the SDK's generated messages), rows in PlainBuffer, the x-ots-*
// headers and their HMAC-SHA1 signature checked with the emulator's key pairs, conditions (row
// existence, single and composite column conditions), GetRange order and paging, and the
// documented error codes in the protobuf Error body the SDK decodes. Tables live in memory,
// per instance (the x-ots-instancename header); any instance name is served. Each column keeps
// one version, and a table's TTL is recorded and reported but not enforced: nothing here waits
// a day.

// TablestoreAPIVersion is the x-ots-apiversion the emulator speaks (the Go SDK's).
const TablestoreAPIVersion = "2015-12-31"

// Limits of the service the emulator enforces (Tablestore's documented limits).
const (
	otsMaxBody          = 5 << 20
	otsMaxPKColumns     = 4
	otsMaxPKLength      = 1024
	otsMaxValueLength   = 2 << 20
	otsMaxConditions    = 10
	otsMaxRangeRows     = 5000
	otsMaxRangeBytes    = 4 << 20
	otsMinTTL           = 86400
	otsDefaultDeviation = 86400
)

// otsOperation reports a request path served, each an operation of the SDK (a switch, not a
// package-level map: the emulator builds nothing at init, which a cloud host would pay for).
func otsOperation(path string) bool {
	switch path {
	case "/CreateTable", "/ListTable", "/DescribeTable", "/DeleteTable",
		"/GetRow", "/PutRow", "/UpdateRow", "/DeleteRow", "/GetRange":
		return true
	}
	return false
}

// isTablestore tells a Tablestore request from a Live or KMS RPC call: the SDK posts to the
// operation's path and always sends x-ots-apiversion.
func isTablestore(r *http.Request) bool {
	return otsOperation(r.URL.Path) || r.Header.Get("x-ots-apiversion") != ""
}

// otsError is an error answer: an HTTP status and an otsprotocol.Error.
type otsError struct {
	Status  int
	Code    string
	Message string
}

func otsFail(status int, code, format string, args ...any) *otsError {
	return &otsError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func otsInvalid(format string, args ...any) *otsError {
	return otsFail(http.StatusBadRequest, "OTSParameterInvalid", format, args...)
}

var (
	errOTSConditionFailed = otsFail(http.StatusForbidden, "OTSConditionCheckFail", "Condition check failed.")
	errOTSNoTable         = otsFail(http.StatusNotFound, "OTSObjectNotExist", "Requested table does not exist.")
)

// otsTables holds every instance's tables.
type otsTables struct {
	mu        sync.Mutex
	instances map[string]map[string]*otsTable
}

type otsTable struct {
	name        string
	pk          []*otsprotocol.PrimaryKeySchema
	ttl         int32
	maxVersions int32
	deviation   int64
	read, write int32
	created     time.Time
	// rows in primary-key order.
	rows []*otsRow
}

type otsRow struct {
	pk   []pbValue
	cols map[string]otsColumn
}

type otsColumn struct {
	value pbValue
	ts    int64
}

// serveTablestore answers one Tablestore request.
func (s *Server) serveTablestore(w http.ResponseWriter, r *http.Request) {
	op := strings.TrimPrefix(r.URL.Path, "/")
	body, instance, oerr := s.otsAuthenticate(r)
	var resp protoadapt.MessageV1
	if oerr == nil {
		resp, oerr = s.otsDispatch(op, instance, body)
	}
	var out []byte
	status := http.StatusOK
	if oerr == nil {
		var err error
		if out, err = proto.Marshal(protoadapt.MessageV2Of(resp)); err != nil {
			oerr = otsFail(http.StatusInternalServerError, "OTSInternalServerError", "encoding the response: %v", err)
		}
	}
	if oerr != nil {
		status = oerr.Status
		out, _ = proto.Marshal(protoadapt.MessageV2Of(&otsprotocol.Error{Code: &oerr.Code, Message: &oerr.Message}))
		s.log.Info("tablestore call refused", "operation", op, "status", oerr.Status, "code", oerr.Code, "message", oerr.Message)
	}
	s.mu.Lock()
	s.reqSeq++
	requestID := fmt.Sprintf("0005%04x-%04x-4000-8000-%012x", s.reqSeq>>16&0xffff, s.reqSeq&0xffff, s.reqSeq)
	s.mu.Unlock()
	sum := md5.Sum(out)
	h := w.Header()
	h.Set("x-ots-requestid", requestID)
	h.Set("x-ots-date", s.now().UTC().Format("2006-01-02T15:04:05.000Z"))
	h.Set("x-ots-contenttype", "protocol buffer")
	h.Set("x-ots-contentmd5", base64.StdEncoding.EncodeToString(sum[:]))
	h.Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(status)
	_, _ = w.Write(out)
}

// otsSignedHeaders are the headers every request carries and signs.
var otsSignedHeaders = []string{"x-ots-date", "x-ots-apiversion", "x-ots-accesskeyid", "x-ots-contentmd5", "x-ots-instancename", "x-ots-signature"}

// otsAuthenticate reads the body and checks the headers, the body's MD5 and the signature:
// HMAC-SHA1 with the AccessKey secret over the path, the method, an empty query and every
// x-ots-* header but the signature, sorted, one "name:value" a line.
func (s *Server) otsAuthenticate(r *http.Request) (body []byte, instance string, _ *otsError) {
	if r.Method != http.MethodPost {
		return nil, "", otsFail(http.StatusMethodNotAllowed, "OTSMethodNotAllowed", "OTSMethodNotAllowedOnly POST method for requests is supported.")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, otsMaxBody+1))
	if err != nil {
		return nil, "", otsFail(http.StatusRequestTimeout, "OTSRequestTimeout", "Request timeout.")
	}
	if len(body) > otsMaxBody {
		return nil, "", otsFail(http.StatusRequestEntityTooLarge, "OTSRequestBodyTooLarge", "The size of POST data is too large.")
	}
	for _, name := range otsSignedHeaders {
		if r.Header.Get(name) == "" {
			return nil, "", otsInvalid("Missing header: %s.", name)
		}
	}
	if v := r.Header.Get("x-ots-apiversion"); v != TablestoreAPIVersion {
		return nil, "", otsInvalid("Unsupported API version: %s.", v)
	}
	if !otsOperation(r.URL.Path) {
		return nil, "", otsInvalid("Unsupported operation: %s.", strings.TrimPrefix(r.URL.Path, "/"))
	}
	date := r.Header.Get("x-ots-date")
	t, err := time.Parse(time.RFC3339Nano, date)
	if err != nil {
		return nil, "", otsInvalid("Invalid date format: %s.", date)
	}
	if d := s.now().Sub(t); d > skew || d < -skew {
		return nil, "", otsFail(http.StatusForbidden, "OTSAuthFailed", "Mismatch between system time and x-ots-date: %s.", date)
	}
	secret, ok := s.creds[r.Header.Get("x-ots-accesskeyid")]
	if !ok {
		return nil, "", otsFail(http.StatusForbidden, "OTSAuthFailed", "The AccessKeyID does not exist.")
	}
	sum := md5.Sum(body)
	if base64.StdEncoding.EncodeToString(sum[:]) != r.Header.Get("x-ots-contentmd5") {
		return nil, "", otsFail(http.StatusForbidden, "OTSAuthFailed", "Mismatch between MD5 value of request body and x-ots-contentmd5 in header.")
	}
	if !hmac.Equal([]byte(otsSignature(secret, r.URL.Path, r.Method, r.Header)), []byte(r.Header.Get("x-ots-signature"))) {
		return nil, "", otsFail(http.StatusForbidden, "OTSAuthFailed", "Signature mismatch.")
	}
	return body, r.Header.Get("x-ots-instancename"), nil
}

// otsSignature computes a request's x-ots-signature.
func otsSignature(secret, path, method string, header http.Header) string {
	var names []string
	for k := range header {
		if k = strings.ToLower(k); strings.HasPrefix(k, "x-ots-") && k != "x-ots-signature" {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(path + "\n" + method + "\n\n")
	for _, k := range names {
		b.WriteString(k + ":" + strings.TrimSpace(header.Get(k)) + "\n")
	}
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func (s *Server) otsDispatch(op, instance string, body []byte) (protoadapt.MessageV1, *otsError) {
	var req protoadapt.MessageV1
	switch op {
	case "CreateTable":
		req = &otsprotocol.CreateTableRequest{}
	case "ListTable":
		req = &otsprotocol.ListTableRequest{}
	case "DescribeTable":
		req = &otsprotocol.DescribeTableRequest{}
	case "DeleteTable":
		req = &otsprotocol.DeleteTableRequest{}
	case "GetRow":
		req = &otsprotocol.GetRowRequest{}
	case "PutRow":
		req = &otsprotocol.PutRowRequest{}
	case "UpdateRow":
		req = &otsprotocol.UpdateRowRequest{}
	case "DeleteRow":
		req = &otsprotocol.DeleteRowRequest{}
	case "GetRange":
		req = &otsprotocol.GetRangeRequest{}
	}
	if err := proto.Unmarshal(body, protoadapt.MessageV2Of(req)); err != nil {
		return nil, otsInvalid("Failed to parse the ProtoBuf message: %v.", err)
	}
	ts := &s.tables
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.instances == nil {
		ts.instances = map[string]map[string]*otsTable{}
	}
	tables := ts.instances[instance]
	if tables == nil {
		tables = map[string]*otsTable{}
		ts.instances[instance] = tables
	}
	now := s.now()
	switch req := req.(type) {
	case *otsprotocol.CreateTableRequest:
		return createTable(tables, req, now)
	case *otsprotocol.ListTableRequest:
		names := make([]string, 0, len(tables))
		for n := range tables {
			names = append(names, n)
		}
		sort.Strings(names)
		return &otsprotocol.ListTableResponse{TableNames: names}, nil
	case *otsprotocol.DescribeTableRequest:
		t := tables[req.GetTableName()]
		if t == nil {
			return nil, errOTSNoTable
		}
		return t.describe(), nil
	case *otsprotocol.DeleteTableRequest:
		if tables[req.GetTableName()] == nil {
			return nil, errOTSNoTable
		}
		delete(tables, req.GetTableName())
		return &otsprotocol.DeleteTableResponse{}, nil
	}
	var name string
	if req, ok := req.(interface{ GetTableName() string }); ok {
		name = req.GetTableName()
	}
	t := tables[name]
	if t == nil {
		return nil, errOTSNoTable
	}
	switch req := req.(type) {
	case *otsprotocol.GetRowRequest:
		return t.getRow(req)
	case *otsprotocol.PutRowRequest:
		return t.putRow(req, now)
	case *otsprotocol.UpdateRowRequest:
		return t.updateRow(req, now)
	case *otsprotocol.DeleteRowRequest:
		return t.deleteRow(req)
	case *otsprotocol.GetRangeRequest:
		return t.getRange(req, s.opts.TablestorePage)
	}
	return nil, otsInvalid("Unsupported operation: %s.", op)
}

// otsName reports a valid table or column name, ^[A-Za-z_][A-Za-z0-9_]{0,254}$, checked by
// hand: compiling that pattern costs some 200 KB, which the emulator must not spend at init.
func otsName(name string) bool {
	if len(name) < 1 || len(name) > 255 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

func createTable(tables map[string]*otsTable, req *otsprotocol.CreateTableRequest, now time.Time) (protoadapt.MessageV1, *otsError) {
	meta := req.GetTableMeta()
	name := meta.GetTableName()
	if !otsName(name) {
		return nil, otsInvalid("Invalid table name: '%s'.", name)
	}
	if n := len(meta.GetPrimaryKey()); n < 1 || n > otsMaxPKColumns {
		return nil, otsInvalid("The number of primary key columns must be in range: [1, %d].", otsMaxPKColumns)
	}
	seen := map[string]bool{}
	for _, pk := range meta.GetPrimaryKey() {
		if !otsName(pk.GetName()) {
			return nil, otsInvalid("Invalid column name: '%s'.", pk.GetName())
		}
		if seen[pk.GetName()] {
			return nil, otsInvalid("Duplicated primary key name: '%s'.", pk.GetName())
		}
		seen[pk.GetName()] = true
		if _, ok := otsprotocol.PrimaryKeyType_name[int32(pk.GetType())]; !ok {
			return nil, otsInvalid("Invalid primary key type of '%s'.", pk.GetName())
		}
		if pk.Option != nil {
			return nil, otsInvalid("Auto-increment primary key columns are not served by the emulator.")
		}
	}
	if len(req.GetIndexMetas()) > 0 || req.GetStreamSpec().GetEnableStream() {
		return nil, otsInvalid("Indexes and streams are not served by the emulator.")
	}
	opts := req.GetTableOptions()
	ttl, maxVersions, deviation := int32(-1), int32(1), int64(otsDefaultDeviation)
	if opts != nil && opts.TimeToLive != nil {
		ttl = opts.GetTimeToLive()
	}
	if ttl != -1 && ttl < otsMinTTL {
		return nil, otsInvalid("TimeToLive must be -1 or at least %d seconds, got %d.", otsMinTTL, ttl)
	}
	if opts != nil && opts.MaxVersions != nil {
		maxVersions = opts.GetMaxVersions()
	}
	if maxVersions < 1 {
		return nil, otsInvalid("MaxVersions must be greater than 0, got %d.", maxVersions)
	}
	if opts != nil && opts.DeviationCellVersionInSec != nil {
		deviation = opts.GetDeviationCellVersionInSec()
	}
	if deviation < 1 {
		return nil, otsInvalid("DeviationCellVersionInSec must be greater than 0, got %d.", deviation)
	}
	cu := req.GetReservedThroughput().GetCapacityUnit()
	if cu.GetRead() < 0 || cu.GetWrite() < 0 {
		return nil, otsInvalid("Reserved capacity units must not be negative.")
	}
	if tables[name] != nil {
		return nil, otsFail(http.StatusConflict, "OTSObjectAlreadyExist", "Requested table already exists.")
	}
	tables[name] = &otsTable{name: name, pk: meta.GetPrimaryKey(), ttl: ttl, maxVersions: maxVersions, deviation: deviation,
		read: cu.GetRead(), write: cu.GetWrite(), created: now}
	return &otsprotocol.CreateTableResponse{}, nil
}

func (t *otsTable) describe() *otsprotocol.DescribeTableResponse {
	return &otsprotocol.DescribeTableResponse{
		TableMeta: &otsprotocol.TableMeta{TableName: proto.String(t.name), PrimaryKey: t.pk},
		ReservedThroughputDetails: &otsprotocol.ReservedThroughputDetails{
			CapacityUnit:     &otsprotocol.CapacityUnit{Read: proto.Int32(t.read), Write: proto.Int32(t.write)},
			LastIncreaseTime: proto.Int64(t.created.Unix()),
		},
		TableOptions: &otsprotocol.TableOptions{TimeToLive: proto.Int32(t.ttl), MaxVersions: proto.Int32(t.maxVersions),
			DeviationCellVersionInSec: proto.Int64(t.deviation)},
		TableStatus: otsprotocol.TableStatus_ACTIVE.Enum(),
	}
}

// primaryKey checks a row's primary key against the schema: the columns in order, their types,
// their lengths; bound admits INF_MIN and INF_MAX (a GetRange bound).
func (t *otsTable) primaryKey(cells []pbCell, bound bool) ([]pbValue, *otsError) {
	if len(cells) != len(t.pk) {
		return nil, otsInvalid("Validate PK size fail. Input: %d, Meta: %d.", len(cells), len(t.pk))
	}
	out := make([]pbValue, len(cells))
	for i, c := range cells {
		schema := t.pk[i]
		if c.Name != schema.GetName() {
			return nil, otsInvalid("Validate PK name fail. Input: %s, Meta: %s.", c.Name, schema.GetName())
		}
		if c.Value == nil || c.HasOp || c.HasTS {
			return nil, otsInvalid("Invalid primary key column '%s'.", c.Name)
		}
		v := *c.Value
		want := map[otsprotocol.PrimaryKeyType]byte{otsprotocol.PrimaryKeyType_INTEGER: vtInteger,
			otsprotocol.PrimaryKeyType_STRING: vtString, otsprotocol.PrimaryKeyType_BINARY: vtBlob}[schema.GetType()]
		switch {
		case bound && (v.Type == vtInfMin || v.Type == vtInfMax):
		case v.Type != want:
			return nil, otsInvalid("Validate PK type fail. Input: %s, Meta: %s.", variantName(v.Type), schema.GetType())
		case len(v.Data) > otsMaxPKLength:
			return nil, otsInvalid("The length of primary key column: '%s' exceeded the MaxLength:%d with CurrentLength:%d.", c.Name, otsMaxPKLength, len(v.Data))
		}
		out[i] = v
	}
	return out, nil
}

func variantName(t byte) string {
	switch t {
	case vtInteger:
		return "INTEGER"
	case vtDouble:
		return "DOUBLE"
	case vtBoolean:
		return "BOOLEAN"
	case vtString:
		return "STRING"
	case vtBlob:
		return "BINARY"
	case vtInfMin:
		return "INF_MIN"
	case vtInfMax:
		return "INF_MAX"
	case vtAutoInc:
		return "AUTO_INCREMENT"
	}
	return fmt.Sprintf("0x%x", t)
}

func comparePK(a, b []pbValue) int {
	for i := range a {
		if c := compareValues(&a[i], &b[i]); c != 0 {
			return c
		}
	}
	return 0
}

// find returns where pk is or would be in t.rows.
func (t *otsTable) find(pk []pbValue) (int, bool) {
	return slices.BinarySearchFunc(t.rows, pk, func(r *otsRow, pk []pbValue) int { return comparePK(r.pk, pk) })
}

func (t *otsTable) lookup(pk []pbValue) *otsRow {
	if i, ok := t.find(pk); ok {
		return t.rows[i]
	}
	return nil
}

func (t *otsTable) store(row *otsRow) {
	if i, ok := t.find(row.pk); ok {
		t.rows[i] = row
	} else {
		t.rows = slices.Insert(t.rows, i, row)
	}
}

// attribute checks one attribute cell to write.
func (t *otsTable) attribute(c pbCell, now time.Time) *otsError {
	if c.Name == "" || len(c.Name) > 255 {
		return otsInvalid("Invalid column name: '%s'.", c.Name)
	}
	if slices.ContainsFunc(t.pk, func(p *otsprotocol.PrimaryKeySchema) bool { return p.GetName() == c.Name }) {
		return otsInvalid("The attribute column name '%s' is a primary key column.", c.Name)
	}
	if c.Value != nil {
		switch c.Value.Type {
		case vtInteger, vtDouble, vtBoolean, vtString, vtBlob:
		default:
			return otsInvalid("Invalid value type of attribute column '%s': %s.", c.Name, variantName(c.Value.Type))
		}
		if len(c.Value.Data) > otsMaxValueLength {
			return otsInvalid("The length of attribute column: '%s' exceeded the MaxLength:%d with CurrentLength:%d.", c.Name, otsMaxValueLength, len(c.Value.Data))
		}
	}
	if c.HasTS && (c.TS < now.UnixMilli()-t.deviation*1000 || c.TS >= now.UnixMilli()+t.deviation*1000) {
		return otsInvalid("The timestamp %d of column '%s' is out of the table's version range.", c.TS, c.Name)
	}
	return nil
}

// check applies a write's condition to the row as it is (nil: absent).
func (t *otsTable) check(cond *otsprotocol.Condition, row *otsRow) *otsError {
	switch cond.GetRowExistence() {
	case otsprotocol.RowExistenceExpectation_EXPECT_EXIST:
		if row == nil {
			return errOTSConditionFailed
		}
	case otsprotocol.RowExistenceExpectation_EXPECT_NOT_EXIST:
		if row != nil {
			return errOTSConditionFailed
		}
	}
	if len(cond.GetColumnCondition()) == 0 {
		return nil
	}
	var f otsprotocol.Filter
	if err := proto.Unmarshal(cond.GetColumnCondition(), protoadapt.MessageV2Of(&f)); err != nil {
		return otsInvalid("Invalid column condition: %v.", err)
	}
	budget := otsMaxConditions
	ok, e := t.eval(&f, row, &budget)
	if e != nil {
		return e
	}
	if !ok {
		return errOTSConditionFailed
	}
	return nil
}

// eval evaluates a column condition on a row (nil: absent, so every column is missing). Every
// sub-condition is evaluated, so a malformed one is refused whatever the others decide.
func (t *otsTable) eval(f *otsprotocol.Filter, row *otsRow, budget *int) (bool, *otsError) {
	switch f.GetType() {
	case otsprotocol.FilterType_FT_SINGLE_COLUMN_VALUE:
		if *budget--; *budget < 0 {
			return false, otsInvalid("The number of column conditions exceeds the limit: %d.", otsMaxConditions)
		}
		var sf otsprotocol.SingleColumnValueFilter
		if err := proto.Unmarshal(f.GetFilter(), protoadapt.MessageV2Of(&sf)); err != nil {
			return false, otsInvalid("Invalid column condition: %v.", err)
		}
		want, err := decodeVariant(sf.GetColumnValue())
		if err != nil {
			return false, otsInvalid("Invalid value in the condition on '%s': %v.", sf.GetColumnName(), err)
		}
		switch want.Type {
		case vtInteger, vtDouble, vtBoolean, vtString, vtBlob:
		default:
			return false, otsInvalid("Invalid value type in the condition on '%s'.", sf.GetColumnName())
		}
		have, ok := t.column(row, sf.GetColumnName())
		if !ok {
			return !sf.GetFilterIfMissing(), nil
		}
		if have.Type != want.Type {
			return false, nil
		}
		c := compareValues(&have, want)
		switch sf.GetComparator() {
		case otsprotocol.ComparatorType_CT_EQUAL:
			return c == 0, nil
		case otsprotocol.ComparatorType_CT_NOT_EQUAL:
			return c != 0, nil
		case otsprotocol.ComparatorType_CT_GREATER_THAN:
			return c > 0, nil
		case otsprotocol.ComparatorType_CT_GREATER_EQUAL:
			return c >= 0, nil
		case otsprotocol.ComparatorType_CT_LESS_THAN:
			return c < 0, nil
		case otsprotocol.ComparatorType_CT_LESS_EQUAL:
			return c <= 0, nil
		}
		return false, otsInvalid("Invalid comparator in the condition on '%s'.", sf.GetColumnName())
	case otsprotocol.FilterType_FT_COMPOSITE_COLUMN_VALUE:
		var cf otsprotocol.CompositeColumnValueFilter
		if err := proto.Unmarshal(f.GetFilter(), protoadapt.MessageV2Of(&cf)); err != nil {
			return false, otsInvalid("Invalid column condition: %v.", err)
		}
		subs := cf.GetSubFilters()
		results := make([]bool, len(subs))
		for i, sub := range subs {
			ok, e := t.eval(sub, row, budget)
			if e != nil {
				return false, e
			}
			results[i] = ok
		}
		switch cf.GetCombinator() {
		case otsprotocol.LogicalOperator_LO_NOT:
			if len(subs) != 1 {
				return false, otsInvalid("A NOT condition takes exactly one sub-condition, got %d.", len(subs))
			}
			return !results[0], nil
		case otsprotocol.LogicalOperator_LO_AND, otsprotocol.LogicalOperator_LO_OR:
			if len(subs) < 2 {
				return false, otsInvalid("An AND or OR condition takes at least two sub-conditions, got %d.", len(subs))
			}
			and := cf.GetCombinator() == otsprotocol.LogicalOperator_LO_AND
			for _, r := range results {
				if r != and {
					return !and, nil
				}
			}
			return and, nil
		}
		return false, otsInvalid("Invalid logical operator in a column condition.")
	}
	return false, otsInvalid("Invalid column condition type: %v.", f.GetType())
}

// column finds a column of a row, attribute or primary key (conditions may name either).
func (t *otsTable) column(row *otsRow, name string) (pbValue, bool) {
	if row == nil {
		return pbValue{}, false
	}
	if c, ok := row.cols[name]; ok {
		return c.value, true
	}
	for i, p := range t.pk {
		if p.GetName() == name {
			return row.pk[i], true
		}
	}
	return pbValue{}, false
}

// encode renders a row for a response: its primary key and the columns asked for (all when
// none are named), in name order with their timestamps.
func (t *otsTable) encode(row *otsRow, columns []string) (pbRow, int) {
	out := pbRow{PK: make([]pbCell, len(t.pk))}
	size := 0
	for i, p := range t.pk {
		out.PK[i] = pbCell{Name: p.GetName(), Value: &row.pk[i]}
		size += len(p.GetName()) + len(row.pk[i].Data) + 8
	}
	names := make([]string, 0, len(row.cols))
	for n := range row.cols {
		if len(columns) == 0 || slices.Contains(columns, n) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		c := row.cols[n]
		out.Cells = append(out.Cells, pbCell{Name: n, Value: &c.value, TS: c.ts, HasTS: true})
		size += len(n) + len(c.value.Data) + 8
	}
	return out, size
}

// consumed is the capacity a call consumed: a unit per 4 KB read or written, at least one for
// an operation that touched the row.
func consumed(read, write int) *otsprotocol.ConsumedCapacity {
	cu := func(n int) *int32 {
		if n <= 0 {
			return proto.Int32(0)
		}
		return proto.Int32(int32((n + 4095) / 4096))
	}
	return &otsprotocol.ConsumedCapacity{CapacityUnit: &otsprotocol.CapacityUnit{Read: cu(read), Write: cu(write)}}
}

func (t *otsTable) getRow(req *otsprotocol.GetRowRequest) (protoadapt.MessageV1, *otsError) {
	if req.MaxVersions == nil && req.TimeRange == nil {
		return nil, otsInvalid("Neither max_versions nor time_range is set.")
	}
	if req.MaxVersions != nil && req.GetMaxVersions() < 1 {
		return nil, otsInvalid("max_versions must be greater than 0.")
	}
	key, err := decodeRow(req.GetPrimaryKey())
	if err != nil {
		return nil, otsInvalid("Invalid primary key: %v.", err)
	}
	pk, e := t.primaryKey(key.PK, false)
	if e != nil {
		return nil, e
	}
	row := t.lookup(pk)
	resp := &otsprotocol.GetRowResponse{Consumed: consumed(1, 0), Row: []byte{}}
	if row == nil {
		return resp, nil
	}
	if len(req.GetFilter()) > 0 {
		if ok, e := t.filter(req.GetFilter(), row); e != nil || !ok {
			return resp, e
		}
	}
	out, size := t.encode(row, req.GetColumnsToGet())
	if len(req.GetColumnsToGet()) > 0 && len(out.Cells) == 0 {
		return resp, nil
	}
	resp.Consumed, resp.Row = consumed(size, 0), encodeRows(out)
	return resp, nil
}

// filter applies a read's filter to a row.
func (t *otsTable) filter(raw []byte, row *otsRow) (bool, *otsError) {
	var f otsprotocol.Filter
	if err := proto.Unmarshal(raw, protoadapt.MessageV2Of(&f)); err != nil {
		return false, otsInvalid("Invalid filter: %v.", err)
	}
	budget := otsMaxConditions
	return t.eval(&f, row, &budget)
}

// changedRow decodes the row of a PutRow or UpdateRow and checks its key and cells.
func (t *otsTable) changedRow(raw []byte, now time.Time) (pbRow, []pbValue, *otsError) {
	row, err := decodeRow(raw)
	if err != nil {
		return row, nil, otsInvalid("Invalid row: %v.", err)
	}
	if row.Delete {
		return row, nil, otsInvalid("A delete marker has no place in a written row.")
	}
	pk, e := t.primaryKey(row.PK, false)
	if e != nil {
		return row, nil, e
	}
	for _, c := range row.Cells {
		if e := t.attribute(c, now); e != nil {
			return row, nil, e
		}
	}
	return row, pk, nil
}

func (t *otsTable) putRow(req *otsprotocol.PutRowRequest, now time.Time) (protoadapt.MessageV1, *otsError) {
	row, pk, e := t.changedRow(req.GetRow(), now)
	if e != nil {
		return nil, e
	}
	cols := map[string]otsColumn{}
	for _, c := range row.Cells {
		if c.Value == nil || c.HasOp {
			return nil, otsInvalid("Column '%s' of a PutRow needs a value and no operation.", c.Name)
		}
		if _, dup := cols[c.Name]; dup && t.maxVersions == 1 {
			return nil, otsInvalid("Duplicated attribute column name: '%s'.", c.Name)
		}
		ts := now.UnixMilli()
		if c.HasTS {
			ts = c.TS
		}
		cols[c.Name] = otsColumn{value: *c.Value, ts: ts}
	}
	cur := t.lookup(pk)
	if e := t.check(req.GetCondition(), cur); e != nil {
		return nil, e
	}
	t.store(&otsRow{pk: pk, cols: cols})
	return &otsprotocol.PutRowResponse{Consumed: consumed(0, len(req.GetRow())), Row: t.returnPK(req.GetReturnContent(), row)}, nil
}

// returnPK answers a write that asked for the primary key back.
func (t *otsTable) returnPK(rc *otsprotocol.ReturnContent, row pbRow) []byte {
	if rc.GetReturnType() != otsprotocol.ReturnType_RT_PK {
		return nil
	}
	return encodeRows(pbRow{PK: row.PK})
}

func (t *otsTable) updateRow(req *otsprotocol.UpdateRowRequest, now time.Time) (protoadapt.MessageV1, *otsError) {
	if rt := req.GetReturnContent().GetReturnType(); rt == otsprotocol.ReturnType_RT_AFTER_MODIFY {
		return nil, otsInvalid("Return type RT_AFTER_MODIFY is not served by the emulator.")
	}
	row, pk, e := t.changedRow(req.GetRowChange(), now)
	if e != nil {
		return nil, e
	}
	if len(row.Cells) == 0 {
		return nil, otsInvalid("UpdateRow needs at least one column to change.")
	}
	cur := t.lookup(pk)
	if e := t.check(req.GetCondition(), cur); e != nil {
		return nil, e
	}
	cols := map[string]otsColumn{}
	if cur != nil {
		for k, v := range cur.cols {
			cols[k] = v
		}
	}
	for _, c := range row.Cells {
		ts := now.UnixMilli()
		if c.HasTS {
			ts = c.TS
		}
		switch {
		case !c.HasOp:
			if c.Value == nil {
				return nil, otsInvalid("Column '%s' to put has no value.", c.Name)
			}
			cols[c.Name] = otsColumn{value: *c.Value, ts: ts}
		case c.Op == opDeleteAll:
			delete(cols, c.Name)
		case c.Op == opDeleteOne:
			if !c.HasTS {
				return nil, otsInvalid("Deleting one version of '%s' needs its timestamp.", c.Name)
			}
			if old, ok := cols[c.Name]; ok && old.ts == c.TS {
				delete(cols, c.Name)
			}
		case c.Op == opIncrement:
			old, ok := cols[c.Name]
			if c.Value == nil || c.Value.Type != vtInteger || ok && old.value.Type != vtInteger {
				return nil, otsInvalid("Increment of '%s' needs integers.", c.Name)
			}
			cols[c.Name] = otsColumn{value: pbValue{Type: vtInteger, Int: old.value.Int + c.Value.Int}, ts: ts}
		default:
			return nil, otsInvalid("Unknown operation 0x%x on column '%s'.", c.Op, c.Name)
		}
	}
	t.store(&otsRow{pk: pk, cols: cols})
	return &otsprotocol.UpdateRowResponse{Consumed: consumed(0, len(req.GetRowChange()))}, nil
}

func (t *otsTable) deleteRow(req *otsprotocol.DeleteRowRequest) (protoadapt.MessageV1, *otsError) {
	key, err := decodeRow(req.GetPrimaryKey())
	if err != nil {
		return nil, otsInvalid("Invalid primary key: %v.", err)
	}
	if len(key.Cells) > 0 {
		return nil, otsInvalid("A DeleteRow names the primary key alone.")
	}
	pk, e := t.primaryKey(key.PK, false)
	if e != nil {
		return nil, e
	}
	i, found := t.find(pk)
	var cur *otsRow
	if found {
		cur = t.rows[i]
	}
	if e := t.check(req.GetCondition(), cur); e != nil {
		return nil, e
	}
	if found {
		t.rows = slices.Delete(t.rows, i, i+1)
	}
	return &otsprotocol.DeleteRowResponse{Consumed: consumed(0, 1)}, nil
}

// getRange reads rows from the inclusive start key towards the exclusive end key, at most
// limit rows and at most page rows (5,000 when 0, the service's cap) or 4 MB in one answer;
// next_start_primary_key names the row to continue from when rows remain.
func (t *otsTable) getRange(req *otsprotocol.GetRangeRequest, page int) (protoadapt.MessageV1, *otsError) {
	if req.MaxVersions == nil && req.TimeRange == nil {
		return nil, otsInvalid("Neither max_versions nor time_range is set.")
	}
	bound := func(raw []byte, what string) ([]pbValue, *otsError) {
		r, err := decodeRow(raw)
		if err != nil {
			return nil, otsInvalid("Invalid %s primary key: %v.", what, err)
		}
		return t.primaryKey(r.PK, true)
	}
	start, e := bound(req.GetInclusiveStartPrimaryKey(), "start")
	if e != nil {
		return nil, e
	}
	end, e := bound(req.GetExclusiveEndPrimaryKey(), "end")
	if e != nil {
		return nil, e
	}
	forward := req.GetDirection() == otsprotocol.Direction_FORWARD
	c := comparePK(start, end)
	if forward && c >= 0 {
		return nil, otsInvalid("Begin key must less than end key in FORWARD.")
	}
	if !forward && c <= 0 {
		return nil, otsInvalid("Begin key must more than end key in BACKWARD.")
	}
	n := otsMaxRangeRows
	if page > 0 && page < n {
		n = page
	}
	if req.Limit != nil {
		if req.GetLimit() <= 0 {
			return nil, otsInvalid("The limit must be greater than 0.")
		}
		n = min(n, int(req.GetLimit()))
	}
	var filter []byte
	if len(req.GetFilter()) > 0 {
		filter = req.GetFilter()
	}
	i, found := t.find(start)
	step := 1
	if !forward {
		step = -1
		if !found {
			i--
		}
	}
	inRange := func(i int) bool {
		if i < 0 || i >= len(t.rows) {
			return false
		}
		c := comparePK(t.rows[i].pk, end)
		return forward && c < 0 || !forward && c > 0
	}
	var rows []pbRow
	read, size := 0, 0
	for ; inRange(i) && len(rows) < n && size < otsMaxRangeBytes; i += step {
		row := t.rows[i]
		if filter != nil {
			ok, e := t.filter(filter, row)
			if e != nil {
				return nil, e
			}
			if !ok {
				continue
			}
		}
		out, sz := t.encode(row, req.GetColumnsToGet())
		read += sz
		if len(req.GetColumnsToGet()) > 0 && len(out.Cells) == 0 {
			continue
		}
		rows = append(rows, out)
		size += sz
	}
	resp := &otsprotocol.GetRangeResponse{Consumed: consumed(max(read, 1), 0), Rows: []byte{}}
	if len(rows) > 0 {
		resp.Rows = encodeRows(rows...)
	}
	if inRange(i) {
		next := pbRow{PK: make([]pbCell, len(t.pk))}
		for j, p := range t.pk {
			next.PK[j] = pbCell{Name: p.GetName(), Value: &t.rows[i].pk[j]}
		}
		resp.NextStartPrimaryKey = encodeRows(next)
	}
	return resp, nil
}
