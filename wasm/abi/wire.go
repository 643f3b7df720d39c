package abi

import (
	"encoding/binary"
	"fmt"
	"math"
)

// encoder appends little-endian values to buf.
type encoder struct {
	buf []byte
}

func (e *encoder) u8(v uint8)   { e.buf = append(e.buf, v) }
func (e *encoder) u32(v uint32) { e.buf = binary.LittleEndian.AppendUint32(e.buf, v) }
func (e *encoder) u64(v uint64) { e.buf = binary.LittleEndian.AppendUint64(e.buf, v) }
func (e *encoder) f32(v float32) {
	e.u32(math.Float32bits(v))
}
func (e *encoder) f64(v float64) { e.u64(math.Float64bits(v)) }

func (e *encoder) flag(v bool) {
	if v {
		e.u8(1)
	} else {
		e.u8(0)
	}
}

// bytes writes a u32 length and the bytes.
func (e *encoder) bytes(v []byte) {
	e.u32(uint32(len(v)))
	e.buf = append(e.buf, v...)
}

func (e *encoder) str(v string) {
	e.u32(uint32(len(v)))
	e.buf = append(e.buf, v...)
}

// bools writes a u32 count and one byte per value, 1 for true.
func (e *encoder) bools(v []bool) {
	e.u32(uint32(len(v)))
	for _, b := range v {
		e.flag(b)
	}
}

// float32s writes a u32 count and the values' bits.
func (e *encoder) float32s(v []float32) {
	e.u32(uint32(len(v)))
	for _, f := range v {
		e.f32(f)
	}
}

// decoder reads little-endian values from buf. The first failure sticks in
// err and every later read returns zero values, so a caller checks err once
// at the end. Every count is checked against the bytes left before anything
// is allocated, so a hostile length cannot make the decoder allocate more
// than the buffer holds.
type decoder struct {
	buf    []byte
	off    int
	kind   error  // the sentinel that every error wraps
	layout string // the layout being decoded, such as "embed request"
	err    error
}

func newDecoder(buf []byte, kind error, layout string) *decoder {
	return &decoder{buf: buf, kind: kind, layout: layout}
}

// fail records the first error, naming the field and the byte offset.
func (d *decoder) fail(field, format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s: %s at byte %d: %s", d.kind, d.layout, field, d.off, fmt.Sprintf(format, args...))
	}
}

// take returns the next n bytes, aliasing buf.
func (d *decoder) take(field string, n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if left := uint64(len(d.buf) - d.off); n > left {
		d.fail(field, "needs %d bytes, %d left", n, left)
		return nil
	}
	out := d.buf[d.off : d.off+int(n)]
	d.off += int(n)
	return out
}

func (d *decoder) u8(field string) uint8 {
	b := d.take(field, 1)
	if b == nil {
		return 0
	}
	return b[0]
}

func (d *decoder) u32(field string) uint32 {
	b := d.take(field, 4)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(b)
}

func (d *decoder) u64(field string) uint64 {
	b := d.take(field, 8)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(b)
}

func (d *decoder) f32(field string) float32 { return math.Float32frombits(d.u32(field)) }
func (d *decoder) f64(field string) float64 { return math.Float64frombits(d.u64(field)) }

// flag reads one byte that must be 0 or 1.
func (d *decoder) flag(field string) bool {
	v := d.u8(field)
	if v > 1 {
		d.fail(field, "flag is %d, want 0 or 1", v)
	}
	return v == 1
}

// count reads a u32 count of elements of size bytes each and checks that
// they fit in the bytes left and under limit elements.
func (d *decoder) count(field string, size, limit uint64) int {
	n := uint64(d.u32(field))
	if d.err != nil {
		return 0
	}
	if n > limit {
		d.fail(field, "count %d is over the limit of %d", n, limit)
		return 0
	}
	if left := uint64(len(d.buf) - d.off); n*size > left {
		d.fail(field, "%d elements need %d bytes, %d left", n, n*size, left)
		return 0
	}
	return int(n)
}

// bytes reads a u32 length and that many bytes, aliasing buf.
func (d *decoder) bytes(field string, limit uint64) []byte {
	n := d.count(field, 1, limit)
	return d.take(field, uint64(n))
}

func (d *decoder) str(field string, limit uint64) string {
	return string(d.bytes(field, limit))
}

func (d *decoder) bools(field string, limit uint64) []bool {
	n := d.count(field, 1, limit)
	raw := d.take(field, uint64(n))
	if d.err != nil || n == 0 {
		return nil
	}
	out := make([]bool, n)
	for i, v := range raw {
		if v > 1 {
			d.fail(field, "entry %d is %d, want 0 or 1", i, v)
			return nil
		}
		out[i] = v == 1
	}
	return out
}

func (d *decoder) float32s(field string, limit uint64) []float32 {
	n := d.count(field, 4, limit)
	raw := d.take(field, 4*uint64(n))
	if d.err != nil || n == 0 {
		return nil
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return out
}

// finish fails when bytes are left over, since every layout has a fixed
// end, and returns the first error.
func (d *decoder) finish() error {
	if d.err == nil && d.off != len(d.buf) {
		d.fail("end", "%d trailing bytes", len(d.buf)-d.off)
	}
	return d.err
}
