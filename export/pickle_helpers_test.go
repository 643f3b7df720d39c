package export

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"strings"
	"sync/atomic"

	"github.com/m3ae-edge/m3ae-edge/core"
)

// fixtureValues returns the values that make_fixtures.py's fill gives the
// array at path: tree 0 is the parameters, 1 the Adam mu, 2 nu. Every step
// is the same float64 operation as in numpy, so the bits match.
func fixtureValues(path string, numElements int, tree int) []float32 {
	crc := int64(crc32.ChecksumIEEE([]byte(path)))
	leaf := path[strings.LastIndex(path, "/")+1:]
	values := make([]float32, numElements)
	for i := range values {
		k := (int64(i)*7919+crc+int64(tree)*104729)%2001 - 1000
		u := float64(k) / 1000.0
		var v float64
		switch leaf {
		case "scale":
			v = 1.0 + float64(0.25*u)
		case "kernel":
			v = 0.125 * u
		case "bias":
			v = 0.0625 * u
		default:
			v = 0.5 * u
		}
		values[i] = float32(v)
	}
	return values
}

// fixtureModelFile returns the model file whose tensors hold
// fixtureValues(tree 0), built without the importer.
func fixtureModelFile(cfg core.Config) *core.ModelFile {
	mf := &core.ModelFile{
		Config:       cfg,
		Vocab:        testVocab(cfg.VocabSize),
		Norm:         core.CC12MNorm,
		Quantization: core.QuantizationNone,
		Tensors:      make(map[string]*core.Tensor),
	}
	for _, spec := range core.ParamSpecs(cfg) {
		mf.Tensors[spec.Name] = &core.Tensor{
			Name: spec.Name, DType: core.F32, Shape: spec.Shape,
			F32: fixtureValues(flaxPath(spec.Name), spec.NumElements(), 0),
		}
	}
	return mf
}

// testVocab returns size distinct tokens, "[PAD]" first.
func testVocab(size int) []string {
	vocab := make([]string, size)
	vocab[0] = "[PAD]"
	for i := 1; i < size; i++ {
		vocab[i] = fmt.Sprintf("tok%d", i)
	}
	return vocab
}

// pickleBuilder assembles pickle streams opcode by opcode.
type pickleBuilder struct{ bytes.Buffer }

func (b *pickleBuilder) op(ops ...byte) *pickleBuilder {
	b.Write(ops)
	return b
}

func (b *pickleBuilder) proto(v byte) *pickleBuilder { return b.op(opProto, v) }

func (b *pickleBuilder) uint32(v uint32) {
	var buf [4]byte
	binary.LittleEndian.PutUint32(buf[:], v)
	b.Write(buf[:])
}

func (b *pickleBuilder) uint64(v uint64) {
	var buf [8]byte
	binary.LittleEndian.PutUint64(buf[:], v)
	b.Write(buf[:])
}

// str writes a str with BINUNICODE.
func (b *pickleBuilder) str(s string) *pickleBuilder {
	b.op(opBinUnicode)
	b.uint32(uint32(len(s)))
	b.WriteString(s)
	return b
}

// integer writes an int with BININT.
func (b *pickleBuilder) integer(v int32) *pickleBuilder {
	b.op(opBinInt)
	b.uint32(uint32(v))
	return b
}

// global writes a GLOBAL opcode.
func (b *pickleBuilder) global(module, name string) *pickleBuilder {
	b.op(opGlobal)
	b.WriteString(module + "\n" + name + "\n")
	return b
}

// byteArray8 writes a bytearray with BYTEARRAY8.
func (b *pickleBuilder) byteArray8(data []byte) *pickleBuilder {
	b.op(opByteArray8)
	b.uint64(uint64(len(data)))
	b.Write(data)
	return b
}

// dtype writes numpy.dtype(name) with its BUILD state, as numpy pickles it.
func (b *pickleBuilder) dtype(name, byteOrder string) *pickleBuilder {
	b.global("numpy", "dtype").op(opMark).str(name).op(opNewFalse, opNewTrue, opTuple, opReduce)
	b.op(opMark).integer(3).str(byteOrder).op(opNone, opNone, opNone).integer(-1).integer(-1).integer(0).op(opTuple, opBuild)
	return b
}

// shape writes a tuple of ints.
func (b *pickleBuilder) shape(dims []int) *pickleBuilder {
	b.op(opMark)
	for _, d := range dims {
		b.integer(int32(d))
	}
	return b.op(opTuple)
}

// array describes one numpy array for pickleBuilder.value.
type array struct {
	values []float32
	shape  []int
	// dtype is "f4" unless set; byteOrder is "<" unless set.
	dtype, byteOrder string
	// fortran stores the values in column-major order.
	fortran bool
	// raw replaces the data bytes when set.
	raw []byte
	// writeData writes the data argument instead of a BYTEARRAY8.
	writeData func(b *pickleBuilder)
}

// frombuffer writes a as numpy's protocol 5 reduction.
func (b *pickleBuilder) frombuffer(a array) *pickleBuilder {
	dtype := a.dtype
	if dtype == "" {
		dtype = "f4"
	}
	byteOrder := a.byteOrder
	if byteOrder == "" {
		byteOrder = "<"
	}
	data := a.raw
	if data == nil {
		values := a.values
		if a.fortran {
			values = cToFortran(a.values, a.shape)
		}
		var order binary.ByteOrder = binary.LittleEndian
		if byteOrder == ">" {
			order = binary.BigEndian
		}
		data = make([]byte, 4*len(values))
		for i, v := range values {
			order.PutUint32(data[4*i:], math.Float32bits(v))
		}
	}
	b.global("numpy.core.numeric", "_frombuffer").op(opMark)
	if a.writeData != nil {
		a.writeData(b)
	} else {
		b.byteArray8(data)
	}
	b.dtype(dtype, byteOrder).shape(a.shape)
	if a.fortran {
		b.str("F")
	} else {
		b.str("C")
	}
	return b.op(opTuple, opReduce)
}

// cToFortran reorders row-major values into column-major order.
func cToFortran(values []float32, shape []int) []float32 {
	strides := make([]int, len(shape))
	stride := 1
	for k := range shape {
		strides[k] = stride
		stride *= shape[k]
	}
	out := make([]float32, len(values))
	for c := range values {
		rest, f := c, 0
		for k := len(shape) - 1; k >= 0; k-- {
			f += (rest % shape[k]) * strides[k]
			rest /= shape[k]
		}
		out[f] = values[c]
	}
	return out
}

// entry is one key and value of a dict for pickleBuilder.value.
type entry struct {
	key   string
	value any
}

// dict is an ordered dict for pickleBuilder.value.
type dict []entry

// tuple is a tuple for pickleBuilder.value.
type tuple []any

// raw writes itself for pickleBuilder.value.
type raw func(b *pickleBuilder)

// value writes v: nil, int, string, dict, tuple, array or raw.
func (b *pickleBuilder) value(v any) *pickleBuilder {
	switch x := v.(type) {
	case nil:
		b.op(opNone)
	case int:
		b.integer(int32(x))
	case string:
		b.str(x)
	case dict:
		b.op(opEmptyDict)
		for _, e := range x {
			b.str(e.key).value(e.value).op(opSetItem)
		}
	case tuple:
		b.op(opMark)
		for _, item := range x {
			b.value(item)
		}
		b.op(opTuple)
	case array:
		b.frombuffer(x)
	case raw:
		x(b)
	default:
		panic(fmt.Sprintf("pickleBuilder.value: unsupported %T", v))
	}
	return b
}

// nestParams turns "/"-separated paths into nested dicts, in the order
// the paths first appear.
func nestParams(paths []string, leaves map[string]any) dict {
	type node struct {
		keys     []string
		children map[string]*node
		leaf     any
	}
	root := &node{children: map[string]*node{}}
	for _, path := range paths {
		n := root
		for _, part := range strings.Split(path, "/") {
			child, ok := n.children[part]
			if !ok {
				child = &node{children: map[string]*node{}}
				n.children[part] = child
				n.keys = append(n.keys, part)
			}
			n = child
		}
		n.leaf = leaves[path]
	}
	var convert func(n *node) dict
	convert = func(n *node) dict {
		var d dict
		for _, k := range n.keys {
			child := n.children[k]
			if len(child.keys) == 0 {
				d = append(d, entry{k, child.leaf})
			} else {
				d = append(d, entry{k, convert(child)})
			}
		}
		return d
	}
	return convert(root)
}

// paramTree returns the parameter tree of cfg with values from tree, in
// ParamSpecs order, with edit applied to each flax path's array (nil
// edit keeps them).
func paramTree(cfg core.Config, tree int, edit func(path string, a *array)) ([]string, map[string]any) {
	var paths []string
	leaves := map[string]any{}
	for _, spec := range core.ParamSpecs(cfg) {
		path := flaxPath(spec.Name)
		a := array{values: fixtureValues(path, spec.NumElements(), tree), shape: spec.Shape}
		if edit != nil {
			edit(path, &a)
		}
		paths = append(paths, path)
		leaves[path] = a
	}
	return paths, leaves
}

// checkpointPickle returns a protocol 5 pickle with the layout of an
// official checkpoint for cfg: the train state is a NEWOBJ placeholder
// whose BUILD dict holds params and an optimizer state with mu and nu.
func checkpointPickle(cfg core.Config, edit func(path string, a *array)) []byte {
	return buildCheckpoint(cfg, edit, true)
}

// buildCheckpoint is checkpointPickle with the optimizer state optional.
func buildCheckpoint(cfg core.Config, edit func(path string, a *array), withOptimizer bool) []byte {
	paths, params := paramTree(cfg, 0, edit)
	fields := dict{
		{"step", 5},
		{"apply_fn", raw(func(b *pickleBuilder) { b.global("m3ae.model", "apply") })},
		{"params", dict{{"params", nestParams(paths, params)}}},
	}
	if withOptimizer {
		_, mu := paramTree(cfg, 1, nil)
		_, nu := paramTree(cfg, 2, nil)
		fields = append(fields, entry{"opt_state", tuple{dict{{"params", nestParams(paths, mu)}}, dict{{"params", nestParams(paths, nu)}}}})
	}
	state := raw(func(b *pickleBuilder) {
		b.global("flax.training.train_state", "TrainState").op(opEmptyTuple, opNewObj)
		b.value(fields)
		b.op(opBuild)
	})
	b := &pickleBuilder{}
	b.proto(5).value(dict{
		{"step", 5},
		{"epoch", 1},
		{"variant", dict{{"m3ae.model_type", "base"}}},
		{"state", state},
	}).op(opStop)
	return b.Bytes()
}

// countingReaderAt counts the bytes read through it.
type countingReaderAt struct {
	data []byte
	read atomic.Int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := bytes.NewReader(c.data).ReadAt(p, off)
	c.read.Add(int64(n))
	return n, err
}
