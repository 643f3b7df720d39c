package export

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// ErrInvalidPickle marks a pickle stream that is malformed, truncated or
// over one of the reader's limits.
var ErrInvalidPickle = errors.New("invalid pickle")

// The pickle reader interprets the opcodes of protocols 0 to 5 itself and
// never imports or calls anything. A pickle names Python callables (GLOBAL,
// STACK_GLOBAL) and instructs the loader to call them (REDUCE, NEWOBJ,
// INST, OBJ, BUILD), so a general unpickler runs whatever the file names. This
// one rebuilds only what pickleAllowlist lists: numpy arrays and dtypes,
// and the bytes and dict wrappers that numpy and flax pickles use. Every
// other global, call and BUILD becomes an opaque placeholder (pyGlobal,
// pyObject) that records what the file asked for and is never executed.
//
// It reads in one pass, keeping str and bytes values of up to 64 KiB in
// memory. Longer ones stay in the file: the reader records their offset
// and length, skips them, and the importer reads the ones it needs later
// through an io.ReaderAt.

// pickleLimits bounds what one stream may make the reader allocate. Every
// declared length is also checked against the bytes left in the file
// before anything is read or allocated.
type pickleLimits struct {
	// maxValues bounds the values created, the container insertions and
	// the memo entries together, and so the memory that small opcodes can
	// claim: a few bytes of file per value.
	maxValues int
	// maxStack bounds the entries on the stack, those saved by MARK
	// included.
	maxStack int
	// maxNesting bounds the MARKs open at once.
	maxNesting int
	// maxLine bounds one protocol 0 text line.
	maxLine int
	// keepText is the longest str value kept in memory, and keepBytes
	// the longest bytes value. Longer ones stay in the file, where a str
	// can still become an array's data but no longer a name or a key.
	keepText, keepBytes int
	// maxKeptBytes bounds the str and bytes values kept in memory
	// together. Past it, binary values stay in the file whatever their
	// length, and protocol 0 strings, which must be decoded, are an error.
	maxKeptBytes int64
}

// defaultPickleLimits fit the official checkpoints with a wide margin. The
// large one contains about 1,200 parameter and optimizer arrays and some
// thousands of other values (pickled functions, config). It nests far less
// deeply than Python's default recursion limit of 1000 lets a pickler
// nest, and has no protocol 0 text. At the limits the reader holds at most
// some hundreds of megabytes, whatever the file declares (an estimate from
// the sizes of the values, not a measurement).
var defaultPickleLimits = pickleLimits{
	maxValues:    1 << 23,
	maxStack:     1 << 20,
	maxNesting:   4096,
	maxLine:      64 << 20,
	keepText:     64 << 10,
	keepBytes:    64 << 10,
	maxKeptBytes: 256 << 20,
}

// pyTuple is a Python tuple.
type pyTuple struct{ items []any }

// pyList is a Python list.
type pyList struct{ items []any }

// pyDict is a Python dict, with its entries in insertion order. Lookups
// compare str keys only, which is all the importer needs.
type pyDict struct{ keys, values []any }

// pySet is a Python set or frozenset. Items are not deduplicated.
type pySet struct {
	items  []any
	frozen bool
}

// pyGlobal is a reference to a module attribute, as GLOBAL, STACK_GLOBAL,
// INST or an extension code names it. It is never imported.
type pyGlobal struct{ module, name string }

// pyObject is the placeholder for anything the reader does not rebuild: a
// call of a callable outside pickleAllowlist, a persistent id or an
// oversized integer. It records the request and the state, items and
// entries that later opcodes add, so that the importer can look inside
// wrappers such as a train state, but none of it is ever executed.
type pyObject struct {
	// how is the opcode that made the object: "REDUCE", "NEWOBJ",
	// "NEWOBJ_EX", "INST", "OBJ", "PERSID", "BINPERSID" or "LONG4".
	how      string
	callable any
	args     any
	kwargs   any
	// state is the argument of BUILD, merged when BUILD runs twice with
	// dicts.
	state any
	// items are the values that APPEND, APPENDS and ADDITEMS added.
	items []any
	// entries are the pairs that SETITEM and SETITEMS added.
	entries *pyDict
}

// pyBytes is a bytes or bytearray value, in memory or left in the file.
type pyBytes struct {
	// data holds the value when inFile is false.
	data []byte
	// inFile marks a value left in the file at offset, length bytes long.
	inFile         bool
	offset, length int64
	// latin1 marks a value that _codecs.encode(text, "latin1") made from
	// a str left in the file: the range holds UTF-8 text whose code
	// points, all below 256, are the bytes. Protocols 0 to 2 pickle
	// bytes this way.
	latin1 bool
	// mutable marks a bytearray.
	mutable bool
}

// pyLazyText is a str value longer than keepText, left in the file as
// length bytes of UTF-8 at offset.
type pyLazyText struct{ offset, length int64 }

// pyBuffer is an out-of-band buffer (NEXT_BUFFER, protocol 5). Its data is
// not in the pickle: the process that wrote the file handed it to a
// buffer_callback.
type pyBuffer struct{ index int }

// readPickle interprets the pickle stream of size bytes in r and returns
// the object that its STOP opcode returns. Bytes after STOP are ignored, as
// Python's pickle.load ignores them. Errors wrap ErrInvalidPickle and name
// the offset and the opcode.
func readPickle(r io.ReaderAt, size int64, limits pickleLimits) (any, error) {
	if size < 0 {
		return nil, fmt.Errorf("%w: negative size %d", ErrInvalidPickle, size)
	}
	p := &pickleReader{
		source: r,
		size:   size,
		limits: limits,
		memo:   make(map[uint64]any),
	}
	p.seek(0)
	for {
		at := p.pos
		op, err := p.in.ReadByte()
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("read pickle at offset %d: %w", at, err)
		}
		if err != nil {
			if at == 0 {
				return nil, fmt.Errorf("%w: the file is empty", ErrInvalidPickle)
			}
			return nil, fmt.Errorf("%w: the stream ends at offset %d before its STOP opcode: the file is truncated", ErrInvalidPickle, at)
		}
		p.pos++
		result, done, err := p.step(op)
		if err != nil {
			if errors.Is(err, ErrInvalidPickle) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: offset %d, %s: %w", ErrInvalidPickle, at, opcodeName(op), err)
		}
		if done {
			return result, nil
		}
	}
}

// pickleReader is the state of one readPickle call: Python's _Unpickler
// stack machine, with the stack split at each MARK as Python 3 does.
type pickleReader struct {
	source io.ReaderAt
	in     *bufio.Reader
	// pos is the file offset of the next byte that in returns.
	pos    int64
	size   int64
	limits pickleLimits

	stack []any
	// marks holds the stacks that MARK saved, innermost last, and marked
	// counts their entries.
	marks  [][]any
	marked int
	memo   map[uint64]any
	// values counts values created, container insertions and memo
	// entries; kept counts the bytes of str and bytes values in memory.
	values  int
	kept    int64
	buffers int
}

// readBufferSize is the read-ahead of the opcode stream. Values longer than
// this are skipped by seeking, so a multi-gigabyte checkpoint is read only
// where its structure is.
const readBufferSize = 64 << 10

// seek moves the stream to offset pos of the file.
func (p *pickleReader) seek(pos int64) {
	section := io.NewSectionReader(p.source, pos, p.size-pos)
	if p.in == nil {
		p.in = bufio.NewReaderSize(section, readBufferSize)
	} else {
		p.in.Reset(section)
	}
	p.pos = pos
}

// remaining returns the bytes left after the current position.
func (p *pickleReader) remaining() int64 { return p.size - p.pos }

// readFixed reads exactly n bytes, n at most 8, for an opcode's fixed-size
// argument.
func (p *pickleReader) readFixed(n int) ([]byte, error) {
	var buf [8]byte
	if _, err := io.ReadFull(p.in, buf[:n]); err != nil {
		return nil, fmt.Errorf("the %d-byte argument runs past the end of the file: the file is truncated", n)
	}
	p.pos += int64(n)
	return buf[:n], nil
}

// readLine reads a protocol 0 argument line and returns it without its
// newline.
func (p *pickleReader) readLine() (string, error) {
	var line []byte
	for {
		chunk, err := p.in.ReadSlice('\n')
		if len(line)+len(chunk) > p.limits.maxLine {
			return "", fmt.Errorf("text argument is longer than %d bytes, the reader's limit", p.limits.maxLine)
		}
		line = append(line, chunk...)
		switch {
		case err == nil:
			p.pos += int64(len(line))
			return string(line[:len(line)-1]), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return "", fmt.Errorf("text argument has no terminating newline before the end of the file: the file is truncated")
		}
	}
}

// keep accounts n more bytes of str and bytes values held in memory.
func (p *pickleReader) keep(n int64) error {
	if p.kept+n > p.limits.maxKeptBytes {
		return fmt.Errorf("str and bytes values held in memory exceed %d bytes, the reader's limit", p.limits.maxKeptBytes)
	}
	p.kept += n
	return nil
}

// payloadKind is the type of value that a length-prefixed opcode argument
// becomes.
type payloadKind int

const (
	payloadText      payloadKind = iota // str: UTF-8
	payloadBytes                        // bytes
	payloadByteArray                    // bytearray
	payloadPy2String                    // Python 2 str (BINSTRING): raw bytes
)

// readPayload reads the n-byte argument of a length-prefixed opcode. A
// value of up to keepText or keepBytes is read into memory while the
// in-memory total stays within maxKeptBytes. A longer one is skipped and
// recorded by its offset. n is checked against the bytes left in the file
// first, so a huge declared length fails here without allocating.
func (p *pickleReader) readPayload(n uint64, kind payloadKind) (any, error) {
	if n > uint64(p.remaining()) {
		return nil, fmt.Errorf("declared length %d runs past the end of the file, which has %d bytes left: the file is truncated or corrupt",
			n, p.remaining())
	}
	length := int64(n)
	keep := p.limits.keepBytes
	if kind == payloadText || kind == payloadPy2String {
		keep = p.limits.keepText
	}
	if length <= int64(keep) && p.kept+length <= p.limits.maxKeptBytes {
		data := make([]byte, length)
		if _, err := io.ReadFull(p.in, data); err != nil {
			return nil, fmt.Errorf("read %d bytes: %w", length, err)
		}
		p.pos += length
		p.kept += length
		switch kind {
		case payloadText, payloadPy2String:
			return string(data), nil
		default:
			return &pyBytes{data: data, mutable: kind == payloadByteArray}, nil
		}
	}

	offset := p.pos
	if length <= int64(p.in.Buffered()) {
		if _, err := p.in.Discard(int(length)); err != nil {
			return nil, err
		}
		p.pos += length
	} else {
		p.seek(offset + length)
	}
	if kind == payloadText {
		return &pyLazyText{offset: offset, length: length}, nil
	}
	return &pyBytes{inFile: true, offset: offset, length: length, mutable: kind == payloadByteArray}, nil
}

// count accounts n new values, container insertions or memo entries.
func (p *pickleReader) count(n int) error {
	p.values += n
	if p.values > p.limits.maxValues {
		return fmt.Errorf("the stream creates more than %d values, the reader's limit", p.limits.maxValues)
	}
	return nil
}

// push puts an existing value on the stack.
func (p *pickleReader) push(v any) error {
	if len(p.stack)+p.marked >= p.limits.maxStack {
		return fmt.Errorf("the stack contains more than %d entries, the reader's limit", p.limits.maxStack)
	}
	p.stack = append(p.stack, v)
	return nil
}

// pushNew puts a newly created value on the stack.
func (p *pickleReader) pushNew(v any) error {
	if err := p.count(1); err != nil {
		return err
	}
	return p.push(v)
}

func (p *pickleReader) pop() (any, error) {
	if len(p.stack) == 0 {
		return nil, errStackUnderflow
	}
	v := p.stack[len(p.stack)-1]
	p.stack[len(p.stack)-1] = nil
	p.stack = p.stack[:len(p.stack)-1]
	return v, nil
}

func (p *pickleReader) top() (any, error) {
	if len(p.stack) == 0 {
		return nil, errStackUnderflow
	}
	return p.stack[len(p.stack)-1], nil
}

var errStackUnderflow = errors.New("the stack is empty, so the opcode has no value to take: the stream is corrupt")

// mark opens a new stack level (MARK).
func (p *pickleReader) mark() error {
	if len(p.marks) >= p.limits.maxNesting {
		return fmt.Errorf("more than %d MARKs are open at once, the reader's nesting limit", p.limits.maxNesting)
	}
	p.marks = append(p.marks, p.stack)
	p.marked += len(p.stack)
	p.stack = nil
	return nil
}

// popMark returns the entries pushed since the last MARK and restores the
// stack below it.
func (p *pickleReader) popMark() ([]any, error) {
	if len(p.marks) == 0 {
		return nil, errors.New("no MARK is open, so the opcode has no items to take: the stream is corrupt")
	}
	items := p.stack
	p.stack = p.marks[len(p.marks)-1]
	p.marks[len(p.marks)-1] = nil
	p.marks = p.marks[:len(p.marks)-1]
	p.marked -= len(p.stack)
	return items, nil
}

// memoPut stores the top of the stack under key.
func (p *pickleReader) memoPut(key uint64) error {
	v, err := p.top()
	if err != nil {
		return err
	}
	if _, exists := p.memo[key]; !exists {
		if err := p.count(1); err != nil {
			return err
		}
	}
	p.memo[key] = v
	return nil
}

// memoGet pushes the value stored under key.
func (p *pickleReader) memoGet(key uint64) error {
	v, ok := p.memo[key]
	if !ok {
		return fmt.Errorf("memo key %d was never stored: the stream is corrupt", key)
	}
	return p.push(v)
}

// get returns d[key] for a str key, the last entry winning as in a Python
// dict.
func (d *pyDict) get(key string) (any, bool) {
	for i := len(d.keys) - 1; i >= 0; i-- {
		if k, ok := d.keys[i].(string); ok && k == key {
			return d.values[i], true
		}
	}
	return nil, false
}

func (d *pyDict) set(key, value any) {
	d.keys = append(d.keys, key)
	d.values = append(d.values, value)
}

// stringKeys returns the dict's str keys in insertion order.
func (d *pyDict) stringKeys() []string {
	var keys []string
	for _, k := range d.keys {
		if s, ok := k.(string); ok {
			keys = append(keys, s)
		}
	}
	return keys
}
