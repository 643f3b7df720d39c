package export

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
)

// Pickle opcodes of protocols 0 to 5, as Python's Lib/pickle.py names
// them.
const (
	opMark           = '('
	opStop           = '.'
	opPop            = '0'
	opPopMark        = '1'
	opDup            = '2'
	opFloat          = 'F'
	opInt            = 'I'
	opBinInt         = 'J'
	opBinInt1        = 'K'
	opLong           = 'L'
	opBinInt2        = 'M'
	opNone           = 'N'
	opPersID         = 'P'
	opBinPersID      = 'Q'
	opReduce         = 'R'
	opString         = 'S'
	opBinString      = 'T'
	opShortBinString = 'U'
	opUnicode        = 'V'
	opBinUnicode     = 'X'
	opAppend         = 'a'
	opBuild          = 'b'
	opGlobal         = 'c'
	opDict           = 'd'
	opEmptyDict      = '}'
	opAppends        = 'e'
	opGet            = 'g'
	opBinGet         = 'h'
	opInst           = 'i'
	opLongBinGet     = 'j'
	opList           = 'l'
	opEmptyList      = ']'
	opObj            = 'o'
	opPut            = 'p'
	opBinPut         = 'q'
	opLongBinPut     = 'r'
	opSetItem        = 's'
	opTuple          = 't'
	opEmptyTuple     = ')'
	opSetItems       = 'u'
	opBinFloat       = 'G'

	opProto    = 0x80
	opNewObj   = 0x81
	opExt1     = 0x82
	opExt2     = 0x83
	opExt4     = 0x84
	opTuple1   = 0x85
	opTuple2   = 0x86
	opTuple3   = 0x87
	opNewTrue  = 0x88
	opNewFalse = 0x89
	opLong1    = 0x8a
	opLong4    = 0x8b

	opBinBytes      = 'B'
	opShortBinBytes = 'C'

	opShortBinUnicode = 0x8c
	opBinUnicode8     = 0x8d
	opBinBytes8       = 0x8e
	opEmptySet        = 0x8f
	opAddItems        = 0x90
	opFrozenSet       = 0x91
	opNewObjEx        = 0x92
	opStackGlobal     = 0x93
	opMemoize         = 0x94
	opFrame           = 0x95

	opByteArray8     = 0x96
	opNextBuffer     = 0x97
	opReadOnlyBuffer = 0x98
)

// maxPickleProtocol is the newest protocol the reader reads, the default
// of Python 3.8 and later.
const maxPickleProtocol = 5

var opcodeNames = map[byte]string{
	opMark: "MARK", opStop: "STOP", opPop: "POP", opPopMark: "POP_MARK", opDup: "DUP",
	opFloat: "FLOAT", opInt: "INT", opBinInt: "BININT", opBinInt1: "BININT1", opLong: "LONG",
	opBinInt2: "BININT2", opNone: "NONE", opPersID: "PERSID", opBinPersID: "BINPERSID",
	opReduce: "REDUCE", opString: "STRING", opBinString: "BINSTRING",
	opShortBinString: "SHORT_BINSTRING", opUnicode: "UNICODE", opBinUnicode: "BINUNICODE",
	opAppend: "APPEND", opBuild: "BUILD", opGlobal: "GLOBAL", opDict: "DICT",
	opEmptyDict: "EMPTY_DICT", opAppends: "APPENDS", opGet: "GET", opBinGet: "BINGET",
	opInst: "INST", opLongBinGet: "LONG_BINGET", opList: "LIST", opEmptyList: "EMPTY_LIST",
	opObj: "OBJ", opPut: "PUT", opBinPut: "BINPUT", opLongBinPut: "LONG_BINPUT",
	opSetItem: "SETITEM", opTuple: "TUPLE", opEmptyTuple: "EMPTY_TUPLE", opSetItems: "SETITEMS",
	opBinFloat: "BINFLOAT", opProto: "PROTO", opNewObj: "NEWOBJ", opExt1: "EXT1",
	opExt2: "EXT2", opExt4: "EXT4", opTuple1: "TUPLE1", opTuple2: "TUPLE2", opTuple3: "TUPLE3",
	opNewTrue: "NEWTRUE", opNewFalse: "NEWFALSE", opLong1: "LONG1", opLong4: "LONG4",
	opBinBytes: "BINBYTES", opShortBinBytes: "SHORT_BINBYTES",
	opShortBinUnicode: "SHORT_BINUNICODE", opBinUnicode8: "BINUNICODE8",
	opBinBytes8: "BINBYTES8", opEmptySet: "EMPTY_SET", opAddItems: "ADDITEMS",
	opFrozenSet: "FROZENSET", opNewObjEx: "NEWOBJ_EX", opStackGlobal: "STACK_GLOBAL",
	opMemoize: "MEMOIZE", opFrame: "FRAME", opByteArray8: "BYTEARRAY8",
	opNextBuffer: "NEXT_BUFFER", opReadOnlyBuffer: "READONLY_BUFFER",
}

// opcodeName returns the opcode's name and byte, for error messages.
func opcodeName(op byte) string {
	if name, ok := opcodeNames[op]; ok {
		return fmt.Sprintf("opcode %s (0x%02x)", name, op)
	}
	return fmt.Sprintf("unknown opcode 0x%02x", op)
}

// step runs one opcode. It returns the result and true at STOP.
func (p *pickleReader) step(op byte) (any, bool, error) {
	var err error
	switch op {
	case opStop:
		v, err := p.pop()
		return v, err == nil, err
	case opProto:
		err = p.readProto()
	case opFrame:
		err = p.readFrame()

	case opMark:
		err = p.mark()
	case opPop:
		if len(p.stack) > 0 {
			_, err = p.pop()
		} else {
			_, err = p.popMark()
		}
	case opPopMark:
		_, err = p.popMark()
	case opDup:
		var v any
		if v, err = p.top(); err == nil {
			err = p.push(v)
		}

	case opNone, opNewTrue, opNewFalse, opInt, opBinInt, opBinInt1, opBinInt2,
		opLong, opLong1, opLong4, opFloat, opBinFloat:
		err = p.readScalar(op)
	case opString, opBinString, opShortBinString, opUnicode, opBinUnicode,
		opShortBinUnicode, opBinUnicode8, opBinBytes, opShortBinBytes, opBinBytes8, opByteArray8:
		err = p.readStringOp(op)

	case opEmptyTuple, opTuple, opTuple1, opTuple2, opTuple3, opEmptyList, opList,
		opEmptyDict, opDict, opEmptySet, opFrozenSet:
		err = p.makeContainer(op)
	case opAppend, opAppends, opSetItem, opSetItems, opAddItems:
		err = p.fillContainer(op)

	case opPut, opBinPut, opLongBinPut, opMemoize, opGet, opBinGet, opLongBinGet:
		err = p.memoOp(op)

	case opGlobal, opStackGlobal, opExt1, opExt2, opExt4:
		err = p.readGlobal(op)
	case opReduce, opNewObj, opNewObjEx, opObj, opInst, opBuild, opPersID, opBinPersID:
		err = p.callOp(op)

	case opNextBuffer:
		err = p.pushNew(&pyBuffer{index: p.buffers})
		p.buffers++
	case opReadOnlyBuffer:
		_, err = p.top()

	default:
		return nil, false, fmt.Errorf("%w: unknown opcode 0x%02x at offset %d: the file is not a pickle, is corrupt, or uses a protocol newer than %d",
			ErrInvalidPickle, op, p.pos-1, maxPickleProtocol)
	}
	return nil, false, err
}

func (p *pickleReader) readProto() error {
	b, err := p.readFixed(1)
	if err != nil {
		return err
	}
	if b[0] > maxPickleProtocol {
		return fmt.Errorf("pickle protocol %d is not supported: this reader reads protocols 0 to %d", b[0], maxPickleProtocol)
	}
	return nil
}

// readFrame checks a protocol 4 frame header. Frames only group opcodes for
// buffering, so the reader does not track them.
func (p *pickleReader) readFrame() error {
	b, err := p.readFixed(8)
	if err != nil {
		return err
	}
	if n := binary.LittleEndian.Uint64(b); n > uint64(p.remaining()) {
		return fmt.Errorf("frame length %d runs past the end of the file, which has %d bytes left: the file is truncated or corrupt", n, p.remaining())
	}
	return nil
}

func (p *pickleReader) readScalar(op byte) error {
	switch op {
	case opNone:
		return p.pushNew(nil)
	case opNewTrue:
		return p.pushNew(true)
	case opNewFalse:
		return p.pushNew(false)
	case opBinInt:
		b, err := p.readFixed(4)
		if err != nil {
			return err
		}
		return p.pushNew(int64(int32(binary.LittleEndian.Uint32(b))))
	case opBinInt1:
		b, err := p.readFixed(1)
		if err != nil {
			return err
		}
		return p.pushNew(int64(b[0]))
	case opBinInt2:
		b, err := p.readFixed(2)
		if err != nil {
			return err
		}
		return p.pushNew(int64(binary.LittleEndian.Uint16(b)))
	case opBinFloat:
		b, err := p.readFixed(8)
		if err != nil {
			return err
		}
		return p.pushNew(math.Float64frombits(binary.BigEndian.Uint64(b)))
	case opLong1, opLong4:
		return p.readBinaryLong(op)
	}

	line, err := p.readLine()
	if err != nil {
		return err
	}
	var v any
	switch op {
	case opInt:
		v, err = parseIntLine(line)
	case opLong:
		v, err = parseLongLine(line)
	case opFloat:
		v, err = strconv.ParseFloat(line, 64)
		if err != nil {
			err = fmt.Errorf("FLOAT argument %q is not a number", truncateForMessage(line))
		}
	}
	if err != nil {
		return err
	}
	return p.pushNew(v)
}

// maxLongBytes is the longest LONG1 or LONG4 integer rebuilt as a number.
// A longer one becomes an opaque placeholder and its bytes are skipped.
const maxLongBytes = 1024

func (p *pickleReader) readBinaryLong(op byte) error {
	var n int64
	if op == opLong1 {
		b, err := p.readFixed(1)
		if err != nil {
			return err
		}
		n = int64(b[0])
	} else {
		b, err := p.readFixed(4)
		if err != nil {
			return err
		}
		n = int64(int32(binary.LittleEndian.Uint32(b)))
		if n < 0 {
			return fmt.Errorf("LONG4 byte count %d is negative: the stream is corrupt", n)
		}
	}
	if n > maxLongBytes {
		if _, err := p.readPayload(uint64(n), payloadBytes); err != nil {
			return err
		}
		return p.pushNew(&pyObject{how: "LONG4", args: &pyTuple{items: []any{n}}})
	}
	payload, err := p.readPayload(uint64(n), payloadBytes)
	if err != nil {
		return err
	}
	data := payload.(*pyBytes)
	if data.inFile {
		// The in-memory budget is spent, so the digits stayed in the file.
		return p.pushNew(&pyObject{how: "LONG4", args: &pyTuple{items: []any{n}}})
	}
	return p.pushNew(decodeLong(data.data))
}

// decodeLong returns the little-endian two's-complement integer in data as
// an int64 when it fits and as a *big.Int otherwise.
func decodeLong(data []byte) any {
	if len(data) == 0 {
		return int64(0)
	}
	if len(data) <= 8 {
		var u uint64
		for i := len(data) - 1; i >= 0; i-- {
			u = u<<8 | uint64(data[i])
		}
		shift := uint(64 - 8*len(data))
		return int64(u<<shift) >> shift
	}
	bigEndian := make([]byte, len(data))
	for i, b := range data {
		bigEndian[len(data)-1-i] = b
	}
	v := new(big.Int).SetBytes(bigEndian)
	if data[len(data)-1]&0x80 != 0 {
		v.Sub(v, new(big.Int).Lsh(big.NewInt(1), uint(8*len(data))))
	}
	if v.IsInt64() {
		return v.Int64()
	}
	return v
}

func (p *pickleReader) readStringOp(op byte) error {
	var v any
	var err error
	switch op {
	case opString:
		var s string
		if s, err = p.readQuotedString(); err == nil {
			v, err = s, p.keep(int64(len(s)))
		}
	case opUnicode:
		var line string
		if line, err = p.readLine(); err == nil {
			v, err = decodeRawUnicodeEscape(line)
		}
		if err == nil {
			err = p.keep(int64(len(v.(string))))
		}
	default:
		v, err = p.readLengthPrefixed(op)
	}
	if err != nil {
		return err
	}
	return p.pushNew(v)
}

// readLengthPrefixed reads the argument of a binary str or bytes opcode.
func (p *pickleReader) readLengthPrefixed(op byte) (any, error) {
	var width int
	var kind payloadKind
	switch op {
	case opShortBinString:
		width, kind = 1, payloadPy2String
	case opBinString:
		width, kind = 4, payloadPy2String
	case opShortBinUnicode:
		width, kind = 1, payloadText
	case opBinUnicode:
		width, kind = 4, payloadText
	case opBinUnicode8:
		width, kind = 8, payloadText
	case opShortBinBytes:
		width, kind = 1, payloadBytes
	case opBinBytes:
		width, kind = 4, payloadBytes
	case opBinBytes8:
		width, kind = 8, payloadBytes
	case opByteArray8:
		width, kind = 8, payloadByteArray
	}
	b, err := p.readFixed(width)
	if err != nil {
		return nil, err
	}
	var n uint64
	switch width {
	case 1:
		n = uint64(b[0])
	case 4:
		n = uint64(binary.LittleEndian.Uint32(b))
		if op == opBinString && int32(n) < 0 {
			return nil, fmt.Errorf("BINSTRING length %d is negative: the stream is corrupt", int32(n))
		}
	case 8:
		n = binary.LittleEndian.Uint64(b)
	}
	return p.readPayload(n, kind)
}

// readQuotedString reads a protocol 0 STRING argument: a quoted Python 2
// str literal.
func (p *pickleReader) readQuotedString() (string, error) {
	line, err := p.readLine()
	if err != nil {
		return "", err
	}
	if len(line) < 2 || line[0] != line[len(line)-1] || (line[0] != '\'' && line[0] != '"') {
		return "", fmt.Errorf("STRING argument %q is not quoted: the stream is corrupt", truncateForMessage(line))
	}
	return decodeStringEscape(line[1 : len(line)-1])
}

func (p *pickleReader) makeContainer(op byte) error {
	var v any
	switch op {
	case opEmptyTuple:
		v = &pyTuple{}
	case opTuple1, opTuple2, opTuple3:
		n := int(op-opTuple1) + 1
		if len(p.stack) < n {
			return errStackUnderflow
		}
		items := make([]any, n)
		copy(items, p.stack[len(p.stack)-n:])
		clear(p.stack[len(p.stack)-n:])
		p.stack = p.stack[:len(p.stack)-n]
		v = &pyTuple{items: items}
	case opEmptyList:
		v = &pyList{}
	case opEmptyDict:
		v = &pyDict{}
	case opEmptySet:
		v = &pySet{}
	default:
		items, err := p.popMark()
		if err != nil {
			return err
		}
		switch op {
		case opTuple:
			v = &pyTuple{items: items}
		case opList:
			v = &pyList{items: items}
		case opFrozenSet:
			v = &pySet{items: items, frozen: true}
		case opDict:
			if len(items)%2 != 0 {
				return fmt.Errorf("DICT has %d items after its MARK, want key and value pairs: the stream is corrupt", len(items))
			}
			d := &pyDict{}
			for i := 0; i < len(items); i += 2 {
				d.set(items[i], items[i+1])
			}
			v = d
		}
		if err := p.count(len(items)); err != nil {
			return err
		}
	}
	return p.pushNew(v)
}

// fillContainer runs APPEND, APPENDS, SETITEM, SETITEMS and ADDITEMS. On a
// placeholder object they record the items, where Python would call the
// object's append, extend, __setitem__ or add methods.
func (p *pickleReader) fillContainer(op byte) error {
	var items []any
	var err error
	switch op {
	case opAppend:
		var v any
		v, err = p.pop()
		items = []any{v}
	case opSetItem:
		var key, value any
		if value, err = p.pop(); err == nil {
			key, err = p.pop()
		}
		items = []any{key, value}
	default:
		items, err = p.popMark()
	}
	if err != nil {
		return err
	}
	target, err := p.top()
	if err != nil {
		return err
	}
	if err := p.count(len(items)); err != nil {
		return err
	}

	switch op {
	case opAppend, opAppends:
		switch t := target.(type) {
		case *pyList:
			t.items = append(t.items, items...)
			return nil
		case *pyObject:
			t.items = append(t.items, items...)
			return nil
		}
		return fmt.Errorf("%s appends to %s, which is not a list", opcodeNames[op], describeValue(target))
	case opAddItems:
		switch t := target.(type) {
		case *pySet:
			if t.frozen {
				return errors.New("ADDITEMS adds to a frozenset: the stream is corrupt")
			}
			t.items = append(t.items, items...)
			return nil
		case *pyObject:
			t.items = append(t.items, items...)
			return nil
		}
		return fmt.Errorf("ADDITEMS adds to %s, which is not a set", describeValue(target))
	}

	if len(items)%2 != 0 {
		return fmt.Errorf("SETITEMS has %d items after its MARK, want key and value pairs: the stream is corrupt", len(items))
	}
	var dict *pyDict
	switch t := target.(type) {
	case *pyDict:
		dict = t
	case *pyObject:
		if t.entries == nil {
			t.entries = &pyDict{}
		}
		dict = t.entries
	default:
		return fmt.Errorf("%s sets items of %s, which is not a dict", opcodeNames[op], describeValue(target))
	}
	for i := 0; i < len(items); i += 2 {
		dict.set(items[i], items[i+1])
	}
	return nil
}

func (p *pickleReader) memoOp(op byte) error {
	var key uint64
	switch op {
	case opMemoize:
		return p.memoPut(uint64(len(p.memo)))
	case opBinPut, opBinGet:
		b, err := p.readFixed(1)
		if err != nil {
			return err
		}
		key = uint64(b[0])
	case opLongBinPut, opLongBinGet:
		b, err := p.readFixed(4)
		if err != nil {
			return err
		}
		key = uint64(binary.LittleEndian.Uint32(b))
	case opPut, opGet:
		line, err := p.readLine()
		if err != nil {
			return err
		}
		key, err = strconv.ParseUint(line, 10, 64)
		if err != nil {
			return fmt.Errorf("memo key %q is not a non-negative integer: the stream is corrupt", truncateForMessage(line))
		}
	}
	if op == opPut || op == opBinPut || op == opLongBinPut {
		return p.memoPut(key)
	}
	return p.memoGet(key)
}

// readGlobal pushes a reference to the named global. Nothing is imported.
func (p *pickleReader) readGlobal(op byte) error {
	var g *pyGlobal
	switch op {
	case opGlobal:
		module, err := p.readLine()
		if err != nil {
			return err
		}
		name, err := p.readLine()
		if err != nil {
			return err
		}
		g = &pyGlobal{module: module, name: name}
	case opStackGlobal:
		name, err := p.pop()
		if err != nil {
			return err
		}
		module, err := p.pop()
		if err != nil {
			return err
		}
		moduleName, ok1 := module.(string)
		attrName, ok2 := name.(string)
		if !ok1 || !ok2 {
			return fmt.Errorf("STACK_GLOBAL needs two str values, got %s and %s: the stream is corrupt",
				describeValue(module), describeValue(name))
		}
		g = &pyGlobal{module: moduleName, name: attrName}
	default:
		width := map[byte]int{opExt1: 1, opExt2: 2, opExt4: 4}[op]
		b, err := p.readFixed(width)
		if err != nil {
			return err
		}
		var code int64
		switch width {
		case 1:
			code = int64(b[0])
		case 2:
			code = int64(binary.LittleEndian.Uint16(b))
		case 4:
			code = int64(int32(binary.LittleEndian.Uint32(b)))
		}
		// The copyreg extension registry maps codes to globals in the
		// loading process. The reader has no registry, so the code
		// stays a placeholder.
		g = &pyGlobal{module: "copyreg extension", name: strconv.FormatInt(code, 10)}
	}
	return p.pushNew(g)
}

// callOp runs the opcodes that ask the loader to call something: REDUCE,
// NEWOBJ, NEWOBJ_EX, OBJ, INST, BUILD, PERSID and BINPERSID. Only REDUCE of
// an allowlisted global and BUILD of a numpy array or dtype rebuild a
// value. Everything else becomes a pyObject.
func (p *pickleReader) callOp(op byte) error {
	switch op {
	case opReduce:
		args, err := p.pop()
		if err != nil {
			return err
		}
		callable, err := p.pop()
		if err != nil {
			return err
		}
		return p.pushNew(reduceValue(callable, args))
	case opNewObj:
		args, err := p.pop()
		if err != nil {
			return err
		}
		cls, err := p.pop()
		if err != nil {
			return err
		}
		return p.pushNew(&pyObject{how: "NEWOBJ", callable: cls, args: args})
	case opNewObjEx:
		kwargs, err := p.pop()
		if err != nil {
			return err
		}
		args, err := p.pop()
		if err != nil {
			return err
		}
		cls, err := p.pop()
		if err != nil {
			return err
		}
		return p.pushNew(&pyObject{how: "NEWOBJ_EX", callable: cls, args: args, kwargs: kwargs})
	case opObj:
		items, err := p.popMark()
		if err != nil {
			return err
		}
		if len(items) == 0 {
			return errors.New("OBJ has no class after its MARK: the stream is corrupt")
		}
		return p.pushNew(&pyObject{how: "OBJ", callable: items[0], args: &pyTuple{items: items[1:]}})
	case opInst:
		module, err := p.readLine()
		if err != nil {
			return err
		}
		name, err := p.readLine()
		if err != nil {
			return err
		}
		items, err := p.popMark()
		if err != nil {
			return err
		}
		return p.pushNew(&pyObject{how: "INST", callable: &pyGlobal{module: module, name: name}, args: &pyTuple{items: items}})
	case opPersID:
		id, err := p.readLine()
		if err != nil {
			return err
		}
		return p.pushNew(&pyObject{how: "PERSID", args: &pyTuple{items: []any{id}}})
	case opBinPersID:
		id, err := p.pop()
		if err != nil {
			return err
		}
		return p.pushNew(&pyObject{how: "BINPERSID", args: &pyTuple{items: []any{id}}})
	}

	state, err := p.pop()
	if err != nil {
		return err
	}
	inst, err := p.top()
	if err != nil {
		return err
	}
	return buildValue(inst, state)
}

// buildValue runs BUILD: it records state on a placeholder or applies it
// to a numpy array or dtype. A None state changes nothing, as in Python.
func buildValue(inst, state any) error {
	if state == nil {
		return nil
	}
	switch v := inst.(type) {
	case *pyObject:
		old, oldIsDict := v.state.(*pyDict)
		add, addIsDict := state.(*pyDict)
		if oldIsDict && addIsDict {
			merged := &pyDict{keys: append(old.keys[:len(old.keys):len(old.keys)], add.keys...),
				values: append(old.values[:len(old.values):len(old.values)], add.values...)}
			v.state = merged
		} else {
			v.state = state
		}
		return nil
	case *npArray:
		v.setState(state)
		return nil
	case *npDType:
		v.setState(state)
		return nil
	}
	return fmt.Errorf("BUILD sets the state of %s, which takes none: the stream is corrupt", describeValue(inst))
}
