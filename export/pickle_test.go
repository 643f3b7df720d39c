package export

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"strings"
	"testing"
)

// tup is a tuple in the plain form of a pickle value.
type tup []any

// set is a set in the plain form of a pickle value.
type set []any

// toPlain converts a pickle value into Go values that reflect.DeepEqual
// compares: lists become []any, tuples tup, dicts map[string]any, bytes
// []byte, big ints their decimal string with a "big:" prefix, and
// placeholders a description.
func toPlain(v any, depth int) any {
	if depth > 20 {
		return "too deep"
	}
	plainItems := func(items []any) []any {
		out := make([]any, len(items))
		for i, item := range items {
			out[i] = toPlain(item, depth+1)
		}
		return out
	}
	switch x := v.(type) {
	case *big.Int:
		return "big:" + x.String()
	case *pyBytes:
		if x.inFile {
			return fmt.Sprintf("file bytes %d+%d latin1=%v", x.offset, x.length, x.latin1)
		}
		return x.data
	case *pyLazyText:
		return fmt.Sprintf("file text %d+%d", x.offset, x.length)
	case *pyTuple:
		return tup(plainItems(x.items))
	case *pyList:
		return plainItems(x.items)
	case *pySet:
		return set(plainItems(x.items))
	case *pyDict:
		m := map[string]any{}
		for i, k := range x.keys {
			m[fmt.Sprint(toPlain(k, depth+1))] = toPlain(x.values[i], depth+1)
		}
		return m
	case *pyGlobal:
		return "global " + x.module + "." + x.name
	case *pyObject:
		desc := fmt.Sprintf("%s %v %v", x.how, toPlain(x.callable, depth+1), toPlain(x.args, depth+1))
		if x.kwargs != nil {
			desc += fmt.Sprintf(" kwargs=%v", toPlain(x.kwargs, depth+1))
		}
		if x.state != nil {
			desc += fmt.Sprintf(" state=%v", toPlain(x.state, depth+1))
		}
		if x.items != nil {
			desc += fmt.Sprintf(" items=%v", plainItems(x.items))
		}
		if x.entries != nil {
			desc += fmt.Sprintf(" entries=%v", toPlain(x.entries, depth+1))
		}
		return desc
	case *pyBuffer:
		return fmt.Sprintf("buffer %d", x.index)
	}
	return v
}

func readPickleBytes(data string, limits pickleLimits) (any, error) {
	return readPickle(strings.NewReader(data), int64(len(data)), limits)
}

func TestReadPickleValues(t *testing.T) {
	tests := []struct {
		name   string
		stream string
		want   any
	}{
		{"protocol 0 scalars",
			"(lp0\nI1\naI01\naI00\naF1.5\naL123456789012345678901234567890L\naI-7\naNa.",
			[]any{int64(1), true, false, 1.5, "big:123456789012345678901234567890", int64(-7), nil}},
		{"protocol 0 strings",
			"(S'a\\x41\\n\\'\\101'\nVcaf\\u00e9 \\\\u0041 \\U0001F600\nl.",
			[]any{"aA\n'A", "café \\\\u0041 😀"}},
		{"protocol 0 dict and memo",
			"(dp0\nS'k'\np1\n(I1\nI2\ntp2\nsg1\ng2\ns.",
			map[string]any{"k": tup{int64(1), int64(2)}}},
		{"POP, DUP and POP_MARK",
			"\x80\x02K\x01K\x020(K\x03K\x041K\x052\x86.",
			tup{int64(5), int64(5)}},
		{"POP with an empty stack pops the mark",
			"\x80\x02K\x01(0.",
			int64(1)},
		{"protocol 2 integers",
			"\x80\x02(K\xffM\x00\x01J\xff\xff\xff\xff\x8a\x00\x8a\x02\x00\x80\x8a\x01\xff\x8a\t\x00\x00\x00\x00\x00\x00\x00\x00\x01\x88\x89l.",
			[]any{int64(255), int64(256), int64(-1), int64(0), int64(-32768), int64(-1), "big:18446744073709551616", true, false}},
		{"tuples and floats",
			"\x80\x02)K\x01\x85K\x01K\x02\x86\x87G?\xf8\x00\x00\x00\x00\x00\x00\x86.",
			tup{tup{tup{}, tup{int64(1)}, tup{int64(1), int64(2)}}, 1.5}},
		{"binary strings and bytes",
			"\x80\x03(U\x02hiT\x03\x00\x00\x00abcX\x03\x00\x00\x00\xc3\xa9xC\x02\x00\x01B\x01\x00\x00\x00\x02l.",
			[]any{"hi", "abc", "éx", []byte{0, 1}, []byte{2}}},
		{"protocol 4 frame, memoize and stack global",
			"\x80\x04\x95\x17\x00\x00\x00\x00\x00\x00\x00\x8c\x06module\x94\x8c\x04name\x94\x93\x94h\x02\x86\x94.",
			tup{"global module.name", "global module.name"}},
		{"unicode8 and bytes8",
			"\x80\x04(\x8d\x02\x00\x00\x00\x00\x00\x00\x00ok\x8e\x01\x00\x00\x00\x00\x00\x00\x00\x07\x96\x01\x00\x00\x00\x00\x00\x00\x00\x08l.",
			[]any{"ok", []byte{7}, []byte{8}}},
		{"sets",
			"\x80\x04\x8f(K\x01K\x02\x90(K\x03\x91\x86.",
			tup{set{int64(1), int64(2)}, set{int64(3)}}},
		{"global kept opaque",
			"cos\nsystem\n(S'touch x'\ntR.",
			"REDUCE global os.system [touch x]"},
		{"newobj, build, setitems and appends on a placeholder",
			"\x80\x02cmod\nCls\n)\x81}U\x01aK\x01sb(K\x02K\x03u(K\x04e.",
			"NEWOBJ global mod.Cls [] state=map[a:1] items=[4] entries=map[2:3]"},
		{"newobj_ex",
			"\x80\x04\x8c\x03mod\x8c\x03Cls\x93K\x01\x85}\x92.",
			"NEWOBJ_EX global mod.Cls [1] kwargs=map[]"},
		{"inst, obj, persistent ids and extensions",
			"((I1\nimod\nCls\n(cmod\nCls\nI2\noPid\nK\x05Q\x82\x01l.",
			[]any{"INST global mod.Cls [1]", "OBJ global mod.Cls [2]", "PERSID <nil> [id]", "BINPERSID <nil> [5]", "global copyreg extension.1"}},
		{"out-of-band buffer",
			"\x80\x05\x97\x98\x97\x86.",
			tup{"buffer 0", "buffer 1"}},
		{"frozen dict and ordered dict",
			"\x80\x02cflax.core.frozen_dict\nFrozenDict\n}U\x01aK\x01s\x85RccollEctions\nOrderedDict\n)R\x86.",
			tup{map[string]any{"a": int64(1)}, "REDUCE global collEctions.OrderedDict []"}},
		{"latin-1 bytes",
			"\x80\x02c_codecs\nencode\nX\x04\x00\x00\x00\xc3\xa9abX\x06\x00\x00\x00latin1\x86R.",
			[]byte{0xe9, 'a', 'b'}},
		{"latin-1 that cannot encode stays opaque",
			"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00\xe2\x82\xacX\x06\x00\x00\x00latin1\x86R.",
			"REDUCE global _codecs.encode [€ latin1]"},
		{"bytes() and bytearray()",
			"\x80\x02c__builtin__\nbytes\n)Rc__builtin__\nbytearray\nC\x01z\x85R\x86.",
			tup{[]byte{}, []byte{'z'}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := readPickleBytes(tc.stream, defaultPickleLimits)
			if err != nil {
				t.Fatal(err)
			}
			if got := toPlain(v, 0); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestReadPickleNumpyScalar(t *testing.T) {
	b := &pickleBuilder{}
	b.proto(2).global("numpy.core.multiarray", "scalar").op(opMark).dtype("i4", "<").op(opShortBinBytes, 4, 0xfe, 0xff, 0xff, 0xff, opTuple, opReduce)
	b.global("numpy.core.multiarray", "scalar").op(opMark).dtype("f8", ">").op(opShortBinBytes, 8, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, opTuple, opReduce)
	b.op(opTuple2, opStop)
	v, err := readPickleBytes(b.String(), defaultPickleLimits)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := toPlain(v, 0), (tup{int64(-2), 1.5}); !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v, want %#v", got, want)
	}
}

func TestReadPickleReconstructArray(t *testing.T) {
	// numpy's protocol 2 form: _reconstruct(ndarray, (0,), b"b"), then
	// BUILD with (1, shape, dtype, is_fortran, rawdata).
	b := &pickleBuilder{}
	b.proto(2).global("numpy.core.multiarray", "_reconstruct").global("numpy", "ndarray").op(opBinInt1, 0, opTuple1, opShortBinBytes, 1, 'b', opTuple3, opReduce)
	b.op(opMark).integer(1).shape([]int{2, 2}).dtype("f4", ">").op(opNewTrue)
	b.op(opShortBinBytes, 16, 0x3f, 0x80, 0, 0, 0x40, 0, 0, 0, 0x40, 0x40, 0, 0, 0x40, 0x80, 0, 0)
	b.op(opTuple, opBuild, opStop)
	v, err := readPickleBytes(b.String(), defaultPickleLimits)
	if err != nil {
		t.Fatal(err)
	}
	arr, ok := v.(*npArray)
	if !ok {
		t.Fatalf("got %s, want a numpy array", describeValue(v))
	}
	layout, err := arr.layout()
	if err != nil {
		t.Fatal(err)
	}
	got := make([]float32, layout.numElements)
	if err := readFloat32s(strings.NewReader(b.String()), layout, got); err != nil {
		t.Fatal(err)
	}
	// Fortran order [1 2 3 4] is [[1 3] [2 4]] in C order.
	if want := []float32{1, 3, 2, 4}; !reflect.DeepEqual(got, want) {
		t.Errorf("values = %v, want %v", got, want)
	}
}

// TestReadPickleLeavesLargeValuesInFile checks that values over the
// in-memory limit are recorded by offset, not read, and that the file is
// read only where the opcodes are.
func TestReadPickleLeavesLargeValuesInFile(t *testing.T) {
	const size = 10 << 20
	b := &pickleBuilder{}
	b.proto(5).op(opMark)
	b.op(opBinBytes8)
	b.uint64(size)
	b.Write(make([]byte, size))
	b.op(opBinUnicode8)
	b.uint64(size)
	b.Write(bytes.Repeat([]byte{'a'}, size))
	b.op(opTuple2, opStop)
	reader := &countingReaderAt{data: b.Bytes()}
	v, err := readPickle(reader, int64(b.Len()), defaultPickleLimits)
	if err != nil {
		t.Fatal(err)
	}
	want := tup{fmt.Sprintf("file bytes %d+%d latin1=false", 12, size), fmt.Sprintf("file text %d+%d", 12+size+9, size)}
	if got := toPlain(v, 0); !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v, want %#v", got, want)
	}
	if read := reader.read.Load(); read > 4*readBufferSize {
		t.Errorf("read %d bytes of a %d-byte stream, want at most %d", read, b.Len(), 4*readBufferSize)
	}
}

func TestLatin1ArrayFromFile(t *testing.T) {
	// 1.0 and -2.0 as float32 bytes 00 00 80 3f 00 00 00 c0, written as
	// the UTF-8 text of their latin-1 code points.
	text := string([]rune{0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0})
	b := &pickleBuilder{}
	b.proto(2).global("_codecs", "encode").str(text).str("latin1").op(opTuple2, opReduce, opStop)
	limits := defaultPickleLimits
	limits.keepText = 6
	v, err := readPickleBytes(b.String(), limits)
	if err != nil {
		t.Fatal(err)
	}
	data, ok := v.(*pyBytes)
	if !ok || !data.inFile || !data.latin1 {
		t.Fatalf("got %#v, want latin-1 bytes left in the file", toPlain(v, 0))
	}
	layout := arrayLayout{dtype: &npDType{name: "f4", byteOrder: "<"}, shape: []int{2}, numElements: 2,
		source: byteSource{inFile: true, offset: data.offset, length: data.length, latin1: true}}
	got := make([]float32, 2)
	if err := readFloat32s(strings.NewReader(b.String()), layout, got); err != nil {
		t.Fatal(err)
	}
	if want := []float32{1, -2}; !reflect.DeepEqual(got, want) {
		t.Errorf("values = %v, want %v", got, want)
	}

	// One code point too many.
	layout.numElements, layout.source.length = 1, data.length
	if err := readFloat32s(strings.NewReader(b.String()), layout, got[:1]); err == nil || !strings.Contains(err.Error(), "want 4 to 8") {
		t.Errorf("error = %v, want a length error", err)
	}
}

func TestReadPickleErrors(t *testing.T) {
	small := defaultPickleLimits
	small.maxValues, small.maxStack, small.maxNesting, small.maxLine, small.maxKeptBytes = 20, 8, 3, 8, 12
	tests := []struct {
		name   string
		stream string
		limits pickleLimits
		want   string
	}{
		{"empty", "", defaultPickleLimits, "the file is empty"},
		{"newer protocol", "\x80\x06N.", defaultPickleLimits, "pickle protocol 6 is not supported"},
		{"unknown opcode", "\x80\x02N\xff.", defaultPickleLimits, "unknown opcode 0xff at offset 3"},
		{"no STOP", "\x80\x02N", defaultPickleLimits, "the stream ends at offset 3 before its STOP opcode: the file is truncated"},
		{"stack underflow", "a.", defaultPickleLimits, "offset 0, opcode APPEND (0x61): the stack is empty"},
		{"POP without mark", "0.", defaultPickleLimits, "no MARK is open"},
		{"missing memo key", "h\x05.", defaultPickleLimits, "memo key 5 was never stored"},
		{"truncated argument", "J\x01\x00", defaultPickleLimits, "the 4-byte argument runs past the end of the file"},
		{"declared length past the end", "X\x05\x00\x00\x00ab", defaultPickleLimits, "declared length 5 runs past the end of the file, which has 2 bytes left"},
		{"line without newline", "I12", defaultPickleLimits, "no terminating newline"},
		{"odd DICT", "(Nd.", defaultPickleLimits, "DICT has 1 items after its MARK"},
		{"BUILD on None", "NK\x01b.", defaultPickleLimits, "BUILD sets the state of None"},
		{"SETITEM on a list", "]NNs.", defaultPickleLimits, "sets items of a list of 0 items, which is not a dict"},
		{"APPEND on a dict", "}Na.", defaultPickleLimits, "appends to a dict with keys [], which is not a list"},
		{"STACK_GLOBAL of non-strings", "NN\x93.", defaultPickleLimits, "STACK_GLOBAL needs two str values"},
		{"unquoted STRING", "Sabc\n.", defaultPickleLimits, "STRING argument \"abc\" is not quoted"},
		{"bad escape", "S'\\x4g'\n.", defaultPickleLimits, "invalid \\x escape"},
		{"truncated escape", "S'\\x4'\n.", defaultPickleLimits, "truncated \\x escape"},
		{"bad unicode escape", "V\\u12\n.", defaultPickleLimits, "truncated \\u escape"},
		{"negative LONG4", "\x8b\xff\xff\xff\xff.", defaultPickleLimits, "LONG4 byte count -1 is negative"},
		{"negative BINSTRING", "T\xff\xff\xff\xff.", defaultPickleLimits, "BINSTRING length -1 is negative"},
		{"bad INT", "Ix\n.", defaultPickleLimits, "INT argument \"x\" is not a decimal integer"},
		{"bad FLOAT", "Fx\n.", defaultPickleLimits, "FLOAT argument \"x\" is not a number"},
		{"negative PUT", "Np-1\n.", defaultPickleLimits, "memo key \"-1\" is not a non-negative integer"},
		{"OBJ without class", "(o.", defaultPickleLimits, "OBJ has no class"},
		{"frozenset ADDITEMS", "(\x91(N\x90.", defaultPickleLimits, "ADDITEMS adds to a frozenset"},
		{"values limit", "]" + strings.Repeat("Na", 20) + ".", small, "more than 20 values"},
		{"stack limit", strings.Repeat("N", 9) + ".", small, "the stack contains more than 8 entries"},
		{"nesting limit", "((((.", small, "more than 3 MARKs are open at once"},
		{"line limit", "I123456789\n.", small, "text argument is longer than 8 bytes"},
		{"in-memory limit", "S'abcdefg'\nS'hijklmn'\n.", pickleLimits{maxValues: 10, maxStack: 10, maxNesting: 10, maxLine: 100, maxKeptBytes: 12},
			"held in memory exceed 12 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readPickleBytes(tc.stream, tc.limits)
			if err == nil {
				t.Fatalf("read succeeded, want an error containing %q", tc.want)
			}
			if !errors.Is(err, ErrInvalidPickle) {
				t.Errorf("error %q does not wrap ErrInvalidPickle", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

// TestReadPickleInMemoryLimitKeepsBinaryInFile checks that binary values
// past the in-memory budget stay in the file instead of failing.
func TestReadPickleBinaryPastMemoryLimit(t *testing.T) {
	limits := defaultPickleLimits
	limits.maxKeptBytes = 6
	v, err := readPickleBytes("C\x04abcdC\x04efgh\x86.", limits)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := toPlain(v, 0), (tup{[]byte("abcd"), "file bytes 8+4 latin1=false"}); !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v, want %#v", got, want)
	}
}

func TestReadPickleIOError(t *testing.T) {
	_, err := readPickle(failingReaderAt{}, 10, defaultPickleLimits)
	if err == nil || !strings.Contains(err.Error(), "disk failed") {
		t.Fatalf("error = %v, want the read error", err)
	}
}

type failingReaderAt struct{}

func (failingReaderAt) ReadAt([]byte, int64) (int, error) { return 0, errors.New("disk failed") }

func TestFortranToC(t *testing.T) {
	shape := []int{2, 3, 4}
	c := make([]float32, 24)
	for i := range c {
		c[i] = float32(i)
	}
	got := make([]float32, 24)
	fortranToC(got, cToFortran(c, shape), shape)
	if !reflect.DeepEqual(got, c) {
		t.Errorf("round trip = %v, want %v", got, c)
	}
}

func TestDecodeFloat32sShortData(t *testing.T) {
	err := decodeFloat32s(bytes.NewReader(make([]byte, 6)), make([]float32, 2), true)
	if err == nil || !strings.Contains(err.Error(), "ends after 0 of 2 float32 values") {
		t.Fatalf("error = %v, want a short-data error", err)
	}
}
