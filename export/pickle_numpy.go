package export

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"unicode/utf8"
)

// reduceHandler rebuilds the value that calling an allowlisted global with
// args would return. It returns false when args do not have the form that
// numpy or flax pickles use, and the call then stays a placeholder. A
// handler runs only Go code of this package.
type reduceHandler func(args []any) (any, bool)

// pickleAllowlist holds the only globals whose REDUCE the reader rebuilds.
// The numpy names cover numpy 1.x (numpy.core) and 2.x (numpy._core).
// Python 3 writes builtins as __builtin__ at protocols 0 to 2.
var pickleAllowlist = map[pyGlobal]reduceHandler{
	{"numpy.core.multiarray", "_reconstruct"}:  reconstructArray,
	{"numpy._core.multiarray", "_reconstruct"}: reconstructArray,
	{"numpy.core.numeric", "_frombuffer"}:      arrayFromBuffer,
	{"numpy._core.numeric", "_frombuffer"}:     arrayFromBuffer,
	{"numpy", "dtype"}:                         newDType,
	{"numpy.core.multiarray", "scalar"}:        numpyScalar,
	{"numpy._core.multiarray", "scalar"}:       numpyScalar,
	{"_codecs", "encode"}:                      encodeLatin1,
	{"builtins", "bytes"}:                      emptyBytes,
	{"__builtin__", "bytes"}:                   emptyBytes,
	{"builtins", "bytearray"}:                  byteArrayOf,
	{"__builtin__", "bytearray"}:               byteArrayOf,
	{"collections", "OrderedDict"}:             emptyDict,
	{"flax.core.frozen_dict", "FrozenDict"}:    unwrapFrozenDict,
}

// reduceValue returns what REDUCE of callable with args rebuilds: the
// handler's value for an allowlisted global, a placeholder otherwise.
func reduceValue(callable, args any) any {
	if g, ok := callable.(*pyGlobal); ok {
		if handler, ok := pickleAllowlist[*g]; ok {
			if tuple, ok := args.(*pyTuple); ok {
				if v, ok := handler(tuple.items); ok {
					return v
				}
			}
		}
	}
	return &pyObject{how: "REDUCE", callable: callable, args: args}
}

// npDType is a numpy dtype as numpy pickles it: numpy.dtype(name, align,
// copy), then BUILD with a state tuple whose second item is the byte
// order.
type npDType struct {
	// name is the type string, such as "f4" or "i8".
	name string
	// byteOrder is "<", ">", "|" or "=", or "" before BUILD.
	byteOrder string
	// compound marks a structured or subarray dtype.
	compound bool
}

func (d *npDType) String() string {
	order := d.byteOrder
	if order == "" {
		order = "="
	}
	return fmt.Sprintf("%q", order+d.name)
}

func newDType(args []any) (any, bool) {
	if len(args) == 0 {
		return nil, false
	}
	name, ok := args[0].(string)
	if !ok || len(name) > 64 {
		return nil, false
	}
	return &npDType{name: name}, true
}

// setState applies the dtype's BUILD state: (version, byte order,
// subarray, names, fields, element size, alignment, flags[, metadata]) in
// numpy's versions 3 and 4.
func (d *npDType) setState(state any) {
	t, ok := state.(*pyTuple)
	if !ok || len(t.items) < 2 {
		return
	}
	if order, ok := t.items[1].(string); ok {
		d.byteOrder = order
	}
	if len(t.items) >= 4 && (t.items[2] != nil || t.items[3] != nil) {
		d.compound = true
	}
}

// littleEndian reports whether the dtype's data is little-endian. "=" is
// the writer's native order, which numpy never pickles: it writes "<" or
// ">" in its place. The reader takes "=" as little-endian, the order of
// every machine the official checkpoints come from.
func (d *npDType) littleEndian() bool { return d.byteOrder != ">" }

// isFloat32 reports whether the dtype is a plain float32.
func (d *npDType) isFloat32() bool {
	return !d.compound && (d.name == "f4" || d.name == "float32")
}

// npArray is a numpy ndarray rebuilt from its pickle, without its data:
// data refers to the bytes in memory or in the file. Fields keep the
// values the pickle gave, unchecked, and arrayLayout checks them when the
// importer uses the array.
type npArray struct {
	// constructor is "_frombuffer" (protocol 5) or "_reconstruct"
	// (protocols 0 to 4).
	constructor string
	dtype       any
	shape       any
	fortran     bool
	data        any
	// built is false for a _reconstruct array before its BUILD.
	built bool
	// problem is the reason the BUILD state was unusable, or "".
	problem string
}

// arrayFromBuffer rebuilds numpy's protocol 5 reduction,
// _frombuffer(buffer, dtype, shape, order).
func arrayFromBuffer(args []any) (any, bool) {
	if len(args) != 4 {
		return nil, false
	}
	order, ok := args[3].(string)
	if !ok || (order != "C" && order != "F") {
		return nil, false
	}
	return &npArray{constructor: "_frombuffer", data: args[0], dtype: args[1], shape: args[2], fortran: order == "F", built: true}, true
}

// reconstructArray rebuilds numpy's protocol 0 to 4 reduction,
// _reconstruct(numpy.ndarray, (0,), b"b"), whose BUILD state carries the
// array.
func reconstructArray(args []any) (any, bool) {
	if len(args) != 3 {
		return nil, false
	}
	if cls, ok := args[0].(*pyGlobal); !ok || cls.module != "numpy" || cls.name != "ndarray" {
		return nil, false
	}
	return &npArray{constructor: "_reconstruct"}, true
}

// setState applies the BUILD state of a _reconstruct array: (version,
// shape, dtype, is_fortran, rawdata), or the same without version.
func (a *npArray) setState(state any) {
	t, ok := state.(*pyTuple)
	if !ok || (len(t.items) != 4 && len(t.items) != 5) {
		a.problem = fmt.Sprintf("its BUILD state is %s, want numpy's (version, shape, dtype, is_fortran, data) tuple", describeShallow(state))
		return
	}
	items := t.items
	if len(items) == 5 {
		items = items[1:]
	}
	fortran, ok := items[2].(bool)
	if !ok {
		if i, isInt := items[2].(int64); isInt {
			fortran, ok = i != 0, true
		}
	}
	if !ok {
		a.problem = fmt.Sprintf("its is_fortran flag is %s, want a bool", describeShallow(items[2]))
		return
	}
	a.shape, a.dtype, a.fortran, a.data = items[0], items[1], fortran, items[3]
	a.built = true
	a.problem = ""
}

// describe returns a short description for error messages.
func (a *npArray) describe() string {
	layout, err := a.layout()
	if err != nil {
		return "a numpy array that cannot be read (" + err.Error() + ")"
	}
	return fmt.Sprintf("a numpy array of dtype %s and shape %v", layout.dtype, layout.shape)
}

// arrayLayout is a checked view of an npArray: its dtype, shape and where
// its bytes are.
type arrayLayout struct {
	dtype *npDType
	shape []int
	// numElements is the product of shape.
	numElements uint64
	fortran     bool
	source      byteSource
}

// maxArrayDims bounds the dims of an array the importer reads. Parameters
// have at most 3.
const maxArrayDims = 8

// maxArrayElements bounds one array's element count, so that byte counts
// fit in int64.
const maxArrayElements = 1 << 40

// layout checks the array's fields and returns its layout.
func (a *npArray) layout() (arrayLayout, error) {
	if a.problem != "" {
		return arrayLayout{}, errors.New(a.problem)
	}
	if !a.built {
		return arrayLayout{}, errors.New("numpy's _reconstruct made it but no BUILD gave it data")
	}

	dtype, ok := a.dtype.(*npDType)
	if !ok {
		return arrayLayout{}, fmt.Errorf("its dtype is %s, not a numpy dtype", describeShallow(a.dtype))
	}
	shapeTuple, ok := a.shape.(*pyTuple)
	if !ok {
		return arrayLayout{}, fmt.Errorf("its shape is %s, not a tuple", describeShallow(a.shape))
	}
	if len(shapeTuple.items) > maxArrayDims {
		return arrayLayout{}, fmt.Errorf("its shape has %d dims, more than %d", len(shapeTuple.items), maxArrayDims)
	}

	layout := arrayLayout{dtype: dtype, fortran: a.fortran, numElements: 1}
	for _, item := range shapeTuple.items {
		d, ok := item.(int64)
		if !ok || d < 0 || d > maxArrayElements {
			return arrayLayout{}, fmt.Errorf("its shape has the dim %s, want an int from 0 to %d", describeShallow(item), int64(maxArrayElements))
		}
		layout.shape = append(layout.shape, int(d))
		if d != 0 && layout.numElements > maxArrayElements/uint64(d) {
			return arrayLayout{}, fmt.Errorf("its shape %v has more than %d elements", layout.shape, int64(maxArrayElements))
		}
		layout.numElements *= uint64(d)
	}

	source, err := newByteSource(a.data)
	if err != nil {
		return arrayLayout{}, err
	}
	layout.source = source
	return layout, nil
}

// byteSource is the location of an array's bytes: memory or a range of the
// file.
type byteSource struct {
	data   []byte
	inFile bool
	offset int64
	// length is the byte length of data or of the file range.
	length int64
	// latin1 marks a file range of UTF-8 text whose code points are the
	// bytes.
	latin1 bool
}

func newByteSource(v any) (byteSource, error) {
	switch x := v.(type) {
	case *pyBytes:
		if x.inFile {
			return byteSource{inFile: true, offset: x.offset, length: x.length, latin1: x.latin1}, nil
		}
		return byteSource{data: x.data, length: int64(len(x.data))}, nil
	case string:
		// A Python 2 str (BINSTRING) holds raw bytes.
		return byteSource{data: []byte(x), length: int64(len(x))}, nil
	case *pyBuffer:
		return byteSource{}, fmt.Errorf("its data is out-of-band buffer %d, which is not stored in the pickle: save the checkpoint again with pickle.dump and no buffer_callback", x.index)
	}
	return byteSource{}, fmt.Errorf("its data is %s, not bytes", describeShallow(v))
}

// open returns a reader of the source's bytes, decoding latin-1 text.
func (s byteSource) open(r io.ReaderAt) io.Reader {
	switch {
	case !s.inFile:
		return bytes.NewReader(s.data)
	case s.latin1:
		return &latin1Reader{in: bufio.NewReaderSize(io.NewSectionReader(r, s.offset, s.length), readBufferSize)}
	}
	return io.NewSectionReader(r, s.offset, s.length)
}

// latin1Reader returns the code points of UTF-8 text as bytes, each below
// 256, which is what _codecs.encode(text, "latin1") does.
type latin1Reader struct{ in *bufio.Reader }

func (l *latin1Reader) Read(p []byte) (int, error) {
	for i := range p {
		r, size, err := l.in.ReadRune()
		if err != nil {
			return i, err
		}
		if r == utf8.RuneError && size == 1 {
			return i, errors.New("the array's text data is not valid UTF-8")
		}
		if r > 0xff {
			return i, fmt.Errorf("the array's text data has the code point U+%04X, which latin-1 cannot encode", r)
		}
		p[i] = byte(r)
	}
	return len(p), nil
}

// readFloat32s reads the float32 data of layout into dst, which has
// layout.numElements elements, and converts Fortran order to C order.
func readFloat32s(r io.ReaderAt, layout arrayLayout, dst []float32) error {
	want := int64(len(dst)) * 4
	src := layout.source
	switch {
	case !src.latin1 && src.length != want:
		return fmt.Errorf("its data has %d bytes, want %d for %d float32 values", src.length, want, len(dst))
	case src.latin1 && (src.length < want || src.length > 2*want):
		// Each byte takes one or two bytes of UTF-8.
		return fmt.Errorf("its data has %d bytes of text, want %d to %d for %d float32 values", src.length, want, 2*want, len(dst))
	}

	target := dst
	if layout.fortran && len(layout.shape) >= 2 {
		// NOTE: Fortran-order arrays take a second copy for the
		// transpose. Flax parameters are C-ordered, so the official
		// checkpoints never take this path.
		target = make([]float32, len(dst))
	}
	in := src.open(r)
	if err := decodeFloat32s(in, target, layout.dtype.littleEndian()); err != nil {
		return err
	}
	if src.latin1 {
		var extra [1]byte
		if n, _ := in.Read(extra[:]); n > 0 {
			return fmt.Errorf("its text data contains more than the %d bytes of %d float32 values", want, len(dst))
		}
	}
	if layout.fortran && len(layout.shape) >= 2 {
		fortranToC(dst, target, layout.shape)
	}
	return nil
}

// decodeFloat32s fills dst from in, 4 bytes per value.
func decodeFloat32s(in io.Reader, dst []float32, littleEndian bool) error {
	var order binary.ByteOrder = binary.LittleEndian
	if !littleEndian {
		order = binary.BigEndian
	}
	buf := make([]byte, readBufferSize)
	for done := 0; done < len(dst); {
		n := min(len(buf)/4, len(dst)-done)
		if _, err := io.ReadFull(in, buf[:4*n]); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				return fmt.Errorf("its data ends after %d of %d float32 values", done, len(dst))
			}
			return fmt.Errorf("read its data: %w", err)
		}
		for i := range n {
			dst[done+i] = math.Float32frombits(order.Uint32(buf[4*i:]))
		}
		done += n
	}
	return nil
}

// fortranToC copies src, in Fortran (column-major) order for shape, into
// dst in C (row-major) order.
func fortranToC(dst, src []float32, shape []int) {
	strides := make([]int, len(shape))
	stride := 1
	for k := range shape {
		strides[k] = stride
		stride *= shape[k]
	}
	index := make([]int, len(shape))
	offset := 0
	for i := range dst {
		dst[i] = src[offset]
		// Advance the C-order index, last dim fastest.
		for k := len(shape) - 1; k >= 0; k-- {
			index[k]++
			offset += strides[k]
			if index[k] < shape[k] {
				break
			}
			offset -= strides[k] * shape[k]
			index[k] = 0
		}
	}
}

// numpyScalar rebuilds numpy.core.multiarray.scalar(dtype, data) for
// integer and float dtypes, which checkpoints use for counters.
func numpyScalar(args []any) (any, bool) {
	if len(args) != 2 {
		return nil, false
	}
	dtype, ok := args[0].(*npDType)
	if !ok || dtype.compound {
		return nil, false
	}
	var data []byte
	switch x := args[1].(type) {
	case *pyBytes:
		if x.inFile {
			return nil, false
		}
		data = x.data
	case string:
		data = []byte(x)
	default:
		return nil, false
	}
	if len(data) != 1 && len(data) != 2 && len(data) != 4 && len(data) != 8 {
		return nil, false
	}

	var bits uint64
	for i := range data {
		shift := 8 * i
		if !dtype.littleEndian() {
			shift = 8 * (len(data) - 1 - i)
		}
		bits |= uint64(data[i]) << shift
	}

	width := 8 * len(data)
	kind, size := dtype.name[:min(1, len(dtype.name))], dtype.name[min(1, len(dtype.name)):]
	if size != fmt.Sprint(len(data)) {
		return nil, false
	}
	switch kind {
	case "i":
		return int64(bits<<(64-width)) >> (64 - width), true
	case "u":
		if bits > math.MaxInt64 {
			return nil, false
		}
		return int64(bits), true
	case "f":
		switch width {
		case 32:
			return float64(math.Float32frombits(uint32(bits))), true
		case 64:
			return math.Float64frombits(bits), true
		}
	}
	return nil, false
}

// encodeLatin1 rebuilds _codecs.encode(text, "latin1"), which protocols 0
// to 2 use to pickle bytes. A str left in the file stays there and is
// decoded when read.
func encodeLatin1(args []any) (any, bool) {
	if len(args) != 2 {
		return nil, false
	}
	encoding, ok := args[1].(string)
	if !ok || (strings.ToLower(encoding) != "latin1" && strings.ToLower(encoding) != "latin-1") {
		return nil, false
	}
	switch text := args[0].(type) {
	case *pyLazyText:
		return &pyBytes{inFile: true, offset: text.offset, length: text.length, latin1: true}, true
	case string:
		data := make([]byte, 0, len(text))
		for _, r := range text {
			if r > 0xff {
				return nil, false
			}
			data = append(data, byte(r))
		}
		if !utf8.ValidString(text) {
			return nil, false
		}
		return &pyBytes{data: data}, true
	}
	return nil, false
}

// emptyBytes rebuilds bytes(), the protocol 0 to 2 form of b"".
func emptyBytes(args []any) (any, bool) {
	if len(args) != 0 {
		return nil, false
	}
	return &pyBytes{data: []byte{}}, true
}

// byteArrayOf rebuilds bytearray(data), the protocol 0 to 4 form of a
// bytearray. The result shares the argument's bytes, which nothing
// modifies.
func byteArrayOf(args []any) (any, bool) {
	if len(args) != 1 {
		return nil, false
	}
	b, ok := args[0].(*pyBytes)
	if !ok {
		return nil, false
	}
	copied := *b
	copied.mutable = true
	return &copied, true
}

// emptyDict rebuilds OrderedDict(), whose items SETITEMS adds next.
func emptyDict(args []any) (any, bool) {
	if len(args) != 0 {
		return nil, false
	}
	return &pyDict{}, true
}

// unwrapFrozenDict rebuilds flax's FrozenDict(d) as d: its __reduce__ is
// (FrozenDict, (dict,)).
func unwrapFrozenDict(args []any) (any, bool) {
	if len(args) != 1 {
		return nil, false
	}
	d, ok := args[0].(*pyDict)
	return d, ok
}
