package onnx

import (
	"encoding/binary"
	"math"
)

// Field numbers and enum values of the ONNX protobuf schema (onnx.proto in
// the ONNX repository, IR version 8) for the messages and fields this
// package writes. The schema is proto2, whose parsers accept every field in
// any order, so messages are written field by field as they are built.
const (
	// ModelProto.
	fieldModelIRVersion       = 1
	fieldModelProducerName    = 2
	fieldModelProducerVersion = 3
	fieldModelDocString       = 6
	fieldModelGraph           = 7
	fieldModelOpsetImport     = 8
	fieldModelMetadataProps   = 14

	// OperatorSetIdProto.
	fieldOpsetDomain  = 1
	fieldOpsetVersion = 2

	// StringStringEntryProto, the entries of metadata_props.
	fieldEntryKey   = 1
	fieldEntryValue = 2

	// GraphProto.
	fieldGraphNode        = 1
	fieldGraphName        = 2
	fieldGraphInitializer = 5
	fieldGraphDocString   = 10
	fieldGraphInput       = 11
	fieldGraphOutput      = 12

	// NodeProto.
	fieldNodeInput     = 1
	fieldNodeOutput    = 2
	fieldNodeName      = 3
	fieldNodeOpType    = 4
	fieldNodeAttribute = 5

	// AttributeProto.
	fieldAttributeName  = 1
	fieldAttributeFloat = 2
	fieldAttributeInt   = 3
	fieldAttributeInts  = 8
	fieldAttributeType  = 20

	// TensorProto.
	fieldTensorDims     = 1
	fieldTensorDataType = 2
	fieldTensorName     = 8
	fieldTensorRawData  = 9

	// ValueInfoProto.
	fieldValueInfoName = 1
	fieldValueInfoType = 2

	// TypeProto and its TypeProto.Tensor member.
	fieldTypeTensor         = 1
	fieldTensorTypeElemType = 1
	fieldTensorTypeShape    = 2

	// TensorShapeProto and its Dimension member.
	fieldShapeDim       = 1
	fieldDimensionValue = 1
	fieldDimensionParam = 2
)

// AttributeProto.AttributeType values.
const (
	attributeTypeFloat = 1
	attributeTypeInt   = 2
	attributeTypeInts  = 7
)

// TensorProto.DataType values.
const (
	dataTypeFloat = 1
	dataTypeInt32 = 6
	dataTypeInt64 = 7
	dataTypeBool  = 9
)

// Protobuf wire types.
const (
	wireVarint  = 0
	wireBytes   = 2
	wireFixed32 = 5
)

// message is a protobuf message being encoded, its fields appended in the
// order the methods are called.
type message struct {
	b []byte
}

func (m *message) tag(field, wireType int) {
	m.b = binary.AppendUvarint(m.b, uint64(field)<<3|uint64(wireType))
}

// int64 appends a varint field. Negative values take ten bytes, as
// protobuf encodes int64.
func (m *message) int64(field int, v int64) {
	m.tag(field, wireVarint)
	m.b = binary.AppendUvarint(m.b, uint64(v))
}

func (m *message) float32(field int, v float32) {
	m.tag(field, wireFixed32)
	m.b = binary.LittleEndian.AppendUint32(m.b, math.Float32bits(v))
}

func (m *message) bytes(field int, data []byte) {
	m.tag(field, wireBytes)
	m.b = binary.AppendUvarint(m.b, uint64(len(data)))
	m.b = append(m.b, data...)
}

func (m *message) string(field int, s string) {
	m.tag(field, wireBytes)
	m.b = binary.AppendUvarint(m.b, uint64(len(s)))
	m.b = append(m.b, s...)
}

func (m *message) message(field int, sub *message) {
	m.bytes(field, sub.b)
}
