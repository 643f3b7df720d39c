package onnx

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// graph builds one GraphProto. Nodes and initializers are encoded into body
// as they are added, so each weight is converted straight into its final
// bytes and never copied again until the model is written.
type graph struct {
	body    message
	inputs  []valueInfo
	outputs []valueInfo

	// scope prefixes the names of the values that nodes produce, such as
	// "encoder.Block_0", so a graph viewer groups them by layer.
	scope string
	count int
	// constants maps the key of a constant's type and values to the name
	// of its initializer, so each constant is stored once.
	constants map[string]string
}

func newGraph() *graph {
	return &graph{constants: make(map[string]string)}
}

// valueInfo is a graph input or output: a name, an element type and a
// shape whose dimensions are fixed sizes or named symbolic sizes.
type valueInfo struct {
	name     string
	elemType int
	dims     []dimension
}

// dimension is one axis of a valueInfo's shape: a fixed size, or a symbolic
// size such as "batch" when param is set.
type dimension struct {
	value int
	param string
}

func fixed(n int) dimension          { return dimension{value: n} }
func symbolic(name string) dimension { return dimension{param: name} }

// attribute is one node attribute of type INT, FLOAT or INTS.
type attribute struct {
	name string
	kind int
	i    int64
	f    float32
	ints []int64
}

func intAttribute(name string, v int64) attribute {
	return attribute{name: name, kind: attributeTypeInt, i: v}
}

func floatAttribute(name string, v float32) attribute {
	return attribute{name: name, kind: attributeTypeFloat, f: v}
}

func intsAttribute(name string, v ...int64) attribute {
	return attribute{name: name, kind: attributeTypeInts, ints: v}
}

// node appends a node of opType and returns the names of its numOutputs
// outputs.
func (g *graph) node(opType string, inputs []string, numOutputs int, attributes ...attribute) []string {
	outputs := make([]string, numOutputs)
	for i := range outputs {
		outputs[i] = g.newName(opType)
	}
	n := &message{}
	for _, in := range inputs {
		n.string(fieldNodeInput, in)
	}
	for _, out := range outputs {
		n.string(fieldNodeOutput, out)
	}
	n.string(fieldNodeName, outputs[0])
	n.string(fieldNodeOpType, opType)
	for _, a := range attributes {
		n.message(fieldNodeAttribute, encodeAttribute(a))
	}
	g.body.message(fieldGraphNode, n)
	return outputs
}

// op appends a node of opType with one output and returns that output.
func (g *graph) op(opType string, inputs ...string) string {
	return g.node(opType, inputs, 1)[0]
}

// opWith appends a node of opType with one output and the given
// attributes, and returns that output.
func (g *graph) opWith(opType string, inputs []string, attributes ...attribute) string {
	return g.node(opType, inputs, 1, attributes...)[0]
}

func (g *graph) newName(opType string) string {
	g.count++
	if g.scope == "" {
		return fmt.Sprintf("%s_%d", opType, g.count)
	}
	return fmt.Sprintf("%s/%s_%d", g.scope, opType, g.count)
}

func encodeAttribute(a attribute) *message {
	m := &message{}
	m.string(fieldAttributeName, a.name)
	m.int64(fieldAttributeType, int64(a.kind))
	switch a.kind {
	case attributeTypeInt:
		m.int64(fieldAttributeInt, a.i)
	case attributeTypeFloat:
		m.float32(fieldAttributeFloat, a.f)
	case attributeTypeInts:
		for _, v := range a.ints {
			m.int64(fieldAttributeInts, v)
		}
	}
	return m
}

// input declares a graph input.
func (g *graph) input(name string, elemType int, dims ...dimension) string {
	g.inputs = append(g.inputs, valueInfo{name: name, elemType: elemType, dims: dims})
	return name
}

// output declares a graph output called name that holds value, through an
// Identity node, because the output must be a value of that name.
func (g *graph) output(name, value string, elemType int, dims ...dimension) {
	n := &message{}
	n.string(fieldNodeInput, value)
	n.string(fieldNodeOutput, name)
	n.string(fieldNodeName, name)
	n.string(fieldNodeOpType, "Identity")
	g.body.message(fieldGraphNode, n)
	g.outputs = append(g.outputs, valueInfo{name: name, elemType: elemType, dims: dims})
}

// initializer appends a TensorProto called name with the given dims and
// element type, whose raw_data of rawLength bytes appendRaw appends
// directly to the graph's buffer.
func (g *graph) initializer(name string, elemType int, dims []int, rawLength int, appendRaw func([]byte) []byte) string {
	header := &message{}
	for _, d := range dims {
		header.int64(fieldTensorDims, int64(d))
	}
	header.int64(fieldTensorDataType, int64(elemType))
	header.string(fieldTensorName, name)
	header.tag(fieldTensorRawData, wireBytes)
	header.b = binary.AppendUvarint(header.b, uint64(rawLength))

	g.body.tag(fieldGraphInitializer, wireBytes)
	g.body.b = binary.AppendUvarint(g.body.b, uint64(len(header.b)+rawLength))
	g.body.b = append(g.body.b, header.b...)
	g.body.b = appendRaw(g.body.b)
	return name
}

// float32Initializer stores data, little-endian, as the float tensor name.
func (g *graph) float32Initializer(name string, dims []int, data []float32) string {
	return g.initializer(name, dataTypeFloat, dims, 4*len(data), func(b []byte) []byte {
		for _, v := range data {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
		}
		return b
	})
}

// constInt64 returns a 1-D int64 constant holding values, as the shape,
// axes and index inputs of operators take them.
func (g *graph) constInt64(values ...int64) string {
	return g.constant("int64", []int{len(values)}, values)
}

// scalarInt64 returns a rank-0 int64 constant.
func (g *graph) scalarInt64(v int64) string {
	return g.constant("int64", nil, []int64{v})
}

// scalarInt32 returns a rank-0 int32 constant.
func (g *graph) scalarInt32(v int32) string {
	return g.constant("int32", nil, []int64{int64(v)})
}

// scalarFloat32 returns a rank-0 float constant.
func (g *graph) scalarFloat32(v float32) string {
	key := "float32:" + strconv.FormatUint(uint64(math.Float32bits(v)), 16)
	if name, ok := g.constants[key]; ok {
		return name
	}
	name := fmt.Sprintf("const_%d", len(g.constants))
	g.constants[key] = name
	return g.float32Initializer(name, nil, []float32{v})
}

// constant stores an int32 or int64 tensor of the given dims once per
// distinct type, shape and values.
func (g *graph) constant(typeName string, dims []int, values []int64) string {
	var key strings.Builder
	fmt.Fprintf(&key, "%s%v:", typeName, dims)
	for _, v := range values {
		key.WriteString(strconv.FormatInt(v, 10))
		key.WriteByte(',')
	}
	if name, ok := g.constants[key.String()]; ok {
		return name
	}
	name := fmt.Sprintf("const_%d", len(g.constants))
	g.constants[key.String()] = name
	if typeName == "int32" {
		return g.initializer(name, dataTypeInt32, dims, 4*len(values), func(b []byte) []byte {
			for _, v := range values {
				b = binary.LittleEndian.AppendUint32(b, uint32(int32(v)))
			}
			return b
		})
	}
	return g.initializer(name, dataTypeInt64, dims, 8*len(values), func(b []byte) []byte {
		for _, v := range values {
			b = binary.LittleEndian.AppendUint64(b, uint64(v))
		}
		return b
	})
}

func encodeValueInfo(v valueInfo) *message {
	shape := &message{}
	for _, d := range v.dims {
		dim := &message{}
		if d.param != "" {
			dim.string(fieldDimensionParam, d.param)
		} else {
			dim.int64(fieldDimensionValue, int64(d.value))
		}
		shape.message(fieldShapeDim, dim)
	}
	tensorType := &message{}
	tensorType.int64(fieldTensorTypeElemType, int64(v.elemType))
	tensorType.message(fieldTensorTypeShape, shape)
	typeProto := &message{}
	typeProto.message(fieldTypeTensor, tensorType)

	m := &message{}
	m.string(fieldValueInfoName, v.name)
	m.message(fieldValueInfoType, typeProto)
	return m
}

// finish appends the graph's name, documentation, inputs and outputs to
// its body and returns the encoded GraphProto.
func (g *graph) finish(name, doc string) []byte {
	g.body.string(fieldGraphName, name)
	if doc != "" {
		g.body.string(fieldGraphDocString, doc)
	}
	for _, in := range g.inputs {
		g.body.message(fieldGraphInput, encodeValueInfo(in))
	}
	for _, out := range g.outputs {
		g.body.message(fieldGraphOutput, encodeValueInfo(out))
	}
	return g.body.b
}
