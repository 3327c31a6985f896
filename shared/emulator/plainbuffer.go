package emulator

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
)

// PlainBuffer is the row encoding of the Tablestore wire protocol: a little-endian header
// (0x75), then rows; a row is tagged primary-key cells, optionally tagged data cells and a
// delete marker, and a CRC-8 checksum; a cell is a tagged name, an optional tagged value (a
// length, a variant type and its payload), an optional operation type and timestamp, and a
// CRC-8 checksum. The codec here is written from the documented format, independently of the
// SDK's own (unexported) one, and checks every length and checksum: a request the SDK encodes
// wrongly is refused as the service would, not silently accepted.

const (
	pbHeader = 0x75

	tagRowPK        = 0x1
	tagRowData      = 0x2
	tagCell         = 0x3
	tagCellName     = 0x4
	tagCellValue    = 0x5
	tagCellType     = 0x6
	tagCellTS       = 0x7
	tagDeleteMarker = 0x8
	tagRowChecksum  = 0x9
	tagCellChecksum = 0xA

	// Cell operation types of an UpdateRow change.
	opDeleteAll = 0x1
	opDeleteOne = 0x3
	opIncrement = 0x4

	// Variant types.
	vtInteger = 0x0
	vtDouble  = 0x1
	vtBoolean = 0x2
	vtString  = 0x3
	vtBlob    = 0x7
	vtInfMin  = 0x9
	vtInfMax  = 0xa
	vtAutoInc = 0xb
)

// pbValue is one variant: a primary-key or attribute value, or a range bound.
type pbValue struct {
	Type byte
	Int  int64 // vtInteger; the bits of a vtDouble
	Bool bool
	Data []byte // vtString, vtBlob
}

// pbCell is one cell of a row.
type pbCell struct {
	Name     string
	Value    *pbValue
	Op       byte
	HasOp    bool
	TS       int64
	HasTS    bool
	checksum byte
}

// pbRow is one row: its primary key, its data cells, and whether it carries a delete marker.
type pbRow struct {
	PK     []pbCell
	Cells  []pbCell
	Delete bool
}

// crc8Table is built on first use: the emulator does no work at init.
var crc8Table = sync.OnceValue(func() *[256]byte {
	t := new([256]byte)
	for i := range t {
		x := byte(i)
		for range 8 {
			if x&0x80 != 0 {
				x = x<<1 ^ 0x07
			} else {
				x <<= 1
			}
		}
		t[i] = x
	}
	return t
})

func crc8(crc byte, b ...byte) byte {
	t := crc8Table()
	for _, c := range b {
		crc = t[crc^c]
	}
	return crc
}

func crc8u32(crc byte, v uint32) byte {
	return crc8(crc, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
}

func crc8u64(crc byte, v uint64) byte {
	return crc8u32(crc8u32(crc, uint32(v)), uint32(v>>32))
}

// checksum folds the value into crc as the format defines: the type, then the payload (a
// length before string and blob bytes).
func (v *pbValue) checksum(crc byte) byte {
	crc = crc8(crc, v.Type)
	switch v.Type {
	case vtInteger, vtDouble:
		crc = crc8u64(crc, uint64(v.Int))
	case vtBoolean:
		b := byte(0)
		if v.Bool {
			b = 1
		}
		crc = crc8(crc, b)
	case vtString, vtBlob:
		crc = crc8u32(crc, uint32(len(v.Data)))
		crc = crc8(crc, v.Data...)
	}
	return crc
}

// cellChecksum is the checksum of a cell: name, value, timestamp, then operation type.
func (c *pbCell) cellChecksum() byte {
	crc := crc8(0, []byte(c.Name)...)
	if c.Value != nil {
		crc = c.Value.checksum(crc)
	}
	if c.HasTS {
		crc = crc8u64(crc, uint64(c.TS))
	}
	if c.HasOp {
		crc = crc8(crc, c.Op)
	}
	return crc
}

// errPlainBuffer marks a malformed PlainBuffer; the service answers OTSParameterInvalid.
var errPlainBuffer = errors.New("plainbuffer")

type pbReader struct {
	b   []byte
	off int
}

func (r *pbReader) fail(format string, args ...any) error {
	return fmt.Errorf("%w: at byte %d: %s", errPlainBuffer, r.off, fmt.Sprintf(format, args...))
}

func (r *pbReader) byte() (byte, error) {
	if r.off >= len(r.b) {
		return 0, r.fail("unexpected end")
	}
	r.off++
	return r.b[r.off-1], nil
}

func (r *pbReader) peek() (byte, bool) {
	if r.off >= len(r.b) {
		return 0, false
	}
	return r.b[r.off], true
}

func (r *pbReader) u32() (uint32, error) {
	if len(r.b)-r.off < 4 {
		return 0, r.fail("unexpected end")
	}
	r.off += 4
	return binary.LittleEndian.Uint32(r.b[r.off-4:]), nil
}

func (r *pbReader) u64() (uint64, error) {
	if len(r.b)-r.off < 8 {
		return 0, r.fail("unexpected end")
	}
	r.off += 8
	return binary.LittleEndian.Uint64(r.b[r.off-8:]), nil
}

func (r *pbReader) bytes(n uint32) ([]byte, error) {
	if uint64(len(r.b)-r.off) < uint64(n) {
		return nil, r.fail("length %d runs past the end", n)
	}
	r.off += int(n)
	return bytes.Clone(r.b[r.off-int(n) : r.off]), nil
}

func (r *pbReader) expect(tag byte, what string) error {
	t, err := r.byte()
	if err != nil {
		return err
	}
	if t != tag {
		return r.fail("tag 0x%x where %s (0x%x) belongs", t, what, tag)
	}
	return nil
}

// variant reads a type byte and its payload (the SQLVariant form a column condition carries).
func (r *pbReader) variant() (*pbValue, error) {
	t, err := r.byte()
	if err != nil {
		return nil, err
	}
	v := &pbValue{Type: t}
	switch t {
	case vtInteger, vtDouble:
		u, err := r.u64()
		if err != nil {
			return nil, err
		}
		v.Int = int64(u)
	case vtBoolean:
		b, err := r.byte()
		if err != nil {
			return nil, err
		}
		if b > 1 {
			return nil, r.fail("boolean byte 0x%x", b)
		}
		v.Bool = b == 1
	case vtString, vtBlob:
		n, err := r.u32()
		if err != nil {
			return nil, err
		}
		if v.Data, err = r.bytes(n); err != nil {
			return nil, err
		}
	case vtInfMin, vtInfMax, vtAutoInc:
	default:
		return nil, r.fail("unknown variant type 0x%x", t)
	}
	return v, nil
}

func (r *pbReader) cell() (pbCell, error) {
	var c pbCell
	if err := r.expect(tagCellName, "a cell name"); err != nil {
		return c, err
	}
	n, err := r.u32()
	if err != nil {
		return c, err
	}
	name, err := r.bytes(n)
	if err != nil {
		return c, err
	}
	c.Name = string(name)
	tag, err := r.byte()
	if err != nil {
		return c, err
	}
	if tag == tagCellValue {
		size, err := r.u32()
		if err != nil {
			return c, err
		}
		start := r.off
		if c.Value, err = r.variant(); err != nil {
			return c, err
		}
		if uint64(r.off-start) != uint64(size) {
			return c, r.fail("cell %q: value length %d, payload %d", c.Name, size, r.off-start)
		}
		if tag, err = r.byte(); err != nil {
			return c, err
		}
	}
	if tag == tagCellType {
		if c.Op, err = r.byte(); err != nil {
			return c, err
		}
		c.HasOp = true
		if tag, err = r.byte(); err != nil {
			return c, err
		}
	}
	if tag == tagCellTS {
		u, err := r.u64()
		if err != nil {
			return c, err
		}
		c.TS, c.HasTS = int64(u), true
		if tag, err = r.byte(); err != nil {
			return c, err
		}
	}
	if tag != tagCellChecksum {
		return c, r.fail("cell %q: tag 0x%x where its checksum belongs", c.Name, tag)
	}
	sum, err := r.byte()
	if err != nil {
		return c, err
	}
	c.checksum = c.cellChecksum()
	if sum != c.checksum {
		return c, r.fail("cell %q: checksum 0x%x, computed 0x%x", c.Name, sum, c.checksum)
	}
	return c, nil
}

func (r *pbReader) cells() ([]pbCell, error) {
	var out []pbCell
	for {
		if t, ok := r.peek(); !ok || t != tagCell {
			return out, nil
		}
		r.off++
		c, err := r.cell()
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
}

func (r *pbReader) row() (pbRow, error) {
	var row pbRow
	var err error
	if err = r.expect(tagRowPK, "the primary key"); err != nil {
		return row, err
	}
	if row.PK, err = r.cells(); err != nil {
		return row, err
	}
	if t, ok := r.peek(); ok && t == tagRowData {
		r.off++
		if row.Cells, err = r.cells(); err != nil {
			return row, err
		}
	}
	if t, ok := r.peek(); ok && t == tagDeleteMarker {
		r.off++
		row.Delete = true
	}
	if err := r.expect(tagRowChecksum, "the row checksum"); err != nil {
		return row, err
	}
	sum, err := r.byte()
	if err != nil {
		return row, err
	}
	if want := row.checksum(); sum != want {
		return row, r.fail("row checksum 0x%x, computed 0x%x", sum, want)
	}
	return row, nil
}

// checksum is the row's checksum: each cell's checksum in order, then the delete marker.
func (row *pbRow) checksum() byte {
	crc := byte(0)
	for _, cs := range [][]pbCell{row.PK, row.Cells} {
		for i := range cs {
			crc = crc8(crc, cs[i].cellChecksum())
		}
	}
	del := byte(0)
	if row.Delete {
		del = 1
	}
	return crc8(crc, del)
}

// decodeRows reads a PlainBuffer of rows, checking the header, every length and every checksum.
func decodeRows(b []byte) ([]pbRow, error) {
	r := &pbReader{b: b}
	h, err := r.u32()
	if err != nil {
		return nil, err
	}
	if h != pbHeader {
		return nil, r.fail("header 0x%x, want 0x%x", h, pbHeader)
	}
	var rows []pbRow
	for r.off < len(b) {
		row, err := r.row()
		if err != nil {
			return nil, err
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// decodeRow reads a PlainBuffer that must hold exactly one row.
func decodeRow(b []byte) (pbRow, error) {
	rows, err := decodeRows(b)
	if err != nil {
		return pbRow{}, err
	}
	if len(rows) != 1 {
		return pbRow{}, fmt.Errorf("%w: %d rows where one belongs", errPlainBuffer, len(rows))
	}
	return rows[0], nil
}

// decodeVariant reads a bare variant (a column condition's value) that fills b exactly.
func decodeVariant(b []byte) (*pbValue, error) {
	r := &pbReader{b: b}
	v, err := r.variant()
	if err != nil {
		return nil, err
	}
	if r.off != len(b) {
		return nil, r.fail("%d bytes after the value", len(b)-r.off)
	}
	return v, nil
}

type pbWriter struct{ bytes.Buffer }

func (w *pbWriter) u32(v uint32) { w.Write(binary.LittleEndian.AppendUint32(nil, v)) }
func (w *pbWriter) u64(v uint64) { w.Write(binary.LittleEndian.AppendUint64(nil, v)) }

func (w *pbWriter) value(v *pbValue) {
	var payload pbWriter
	payload.WriteByte(v.Type)
	switch v.Type {
	case vtInteger, vtDouble:
		payload.u64(uint64(v.Int))
	case vtBoolean:
		b := byte(0)
		if v.Bool {
			b = 1
		}
		payload.WriteByte(b)
	case vtString, vtBlob:
		payload.u32(uint32(len(v.Data)))
		payload.Write(v.Data)
	}
	w.WriteByte(tagCellValue)
	w.u32(uint32(payload.Len()))
	w.Write(payload.Bytes())
}

func (w *pbWriter) cell(c *pbCell) {
	w.WriteByte(tagCell)
	w.WriteByte(tagCellName)
	w.u32(uint32(len(c.Name)))
	w.WriteString(c.Name)
	if c.Value != nil {
		w.value(c.Value)
	}
	if c.HasOp {
		w.WriteByte(tagCellType)
		w.WriteByte(c.Op)
	}
	if c.HasTS {
		w.WriteByte(tagCellTS)
		w.u64(uint64(c.TS))
	}
	w.WriteByte(tagCellChecksum)
	w.WriteByte(c.cellChecksum())
}

// encodeRows writes rows as a PlainBuffer with its header and checksums.
func encodeRows(rows ...pbRow) []byte {
	var w pbWriter
	w.u32(pbHeader)
	for i := range rows {
		row := &rows[i]
		w.WriteByte(tagRowPK)
		for j := range row.PK {
			w.cell(&row.PK[j])
		}
		if len(row.Cells) > 0 {
			w.WriteByte(tagRowData)
			for j := range row.Cells {
				w.cell(&row.Cells[j])
			}
		}
		if row.Delete {
			w.WriteByte(tagDeleteMarker)
		}
		w.WriteByte(tagRowChecksum)
		w.WriteByte(row.checksum())
	}
	return w.Bytes()
}

// compareValues orders two values of one type (the caller checks the types): integers and
// doubles by number, booleans false first, strings and blobs by bytes; the range bounds
// INF_MIN and INF_MAX sort before and after everything.
func compareValues(a, b *pbValue) int {
	switch {
	case a.Type == b.Type && (a.Type == vtInfMin || a.Type == vtInfMax):
		return 0
	case a.Type == vtInfMin || b.Type == vtInfMax:
		return -1
	case a.Type == vtInfMax || b.Type == vtInfMin:
		return 1
	}
	switch a.Type {
	case vtInteger:
		return cmp.Compare(a.Int, b.Int)
	case vtDouble:
		return cmp.Compare(math.Float64frombits(uint64(a.Int)), math.Float64frombits(uint64(b.Int)))
	case vtBoolean:
		return cmp.Compare(boolInt(a.Bool), boolInt(b.Bool))
	}
	return bytes.Compare(a.Data, b.Data)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
