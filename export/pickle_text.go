package export

import (
	"fmt"
	"math/big"
	"strings"
	"unicode/utf8"
)

// This file decodes the text arguments of protocol 0 opcodes and describes
// values for error messages.

// parseIntLine parses an INT argument: "00" and "01" are False and True,
// as Python 2 wrote them, and anything else is a decimal integer.
func parseIntLine(line string) (any, error) {
	switch line {
	case "00":
		return false, nil
	case "01":
		return true, nil
	}
	return parseDecimal(line, "INT")
}

// parseLongLine parses a LONG argument, a decimal integer with an optional
// trailing L.
func parseLongLine(line string) (any, error) {
	return parseDecimal(strings.TrimSuffix(line, "L"), "LONG")
}

// maxDecimalDigits bounds the integers parsed from text. CPython 3.11 and
// later reject longer decimal strings by default (sys.int_info
// default_max_str_digits), so their unpicklers read no longer ones.
const maxDecimalDigits = 4300

func parseDecimal(text, opcode string) (any, error) {
	text = strings.TrimSpace(text)
	if len(text) > maxDecimalDigits+1 {
		return nil, fmt.Errorf("%s argument has %d characters, more than the %d digits Python converts", opcode, len(text), maxDecimalDigits)
	}
	v, ok := new(big.Int).SetString(text, 10)
	if !ok {
		return nil, fmt.Errorf("%s argument %q is not a decimal integer: the stream is corrupt", opcode, truncateForMessage(text))
	}
	if v.IsInt64() {
		return v.Int64(), nil
	}
	return v, nil
}

// decodeStringEscape undoes Python's string-escape encoding, as
// codecs.escape_decode does for a protocol 0 STRING argument. The result
// holds raw bytes, as a Python 2 str does.
func decodeStringEscape(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		if i == len(s) {
			return "", fmt.Errorf("STRING argument ends with a lone backslash: the stream is corrupt")
		}
		switch c = s[i]; c {
		case '\n':
			// A backslash before a newline continues the line.
		case '\\', '\'', '"':
			b.WriteByte(c)
		case 'a':
			b.WriteByte('\a')
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'v':
			b.WriteByte('\v')
		case 'x':
			if i+2 >= len(s) {
				return "", fmt.Errorf(`STRING argument has a truncated \x escape: the stream is corrupt`)
			}
			hi, ok1 := hexDigit(s[i+1])
			lo, ok2 := hexDigit(s[i+2])
			if !ok1 || !ok2 {
				return "", fmt.Errorf(`STRING argument has an invalid \x escape %q: the stream is corrupt`, s[i-1:i+3])
			}
			b.WriteByte(byte(hi<<4 | lo))
			i += 2
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v := int(c - '0')
			for n := 1; n < 3 && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '7'; n++ {
				i++
				v = v*8 + int(s[i]-'0')
			}
			b.WriteByte(byte(v))
		default:
			// Python keeps an unknown escape as written.
			b.WriteByte('\\')
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

func hexDigit(c byte) (int, bool) {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0'), true
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10, true
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10, true
	}
	return 0, false
}

// decodeRawUnicodeEscape decodes a protocol 0 UNICODE argument as Python's
// raw-unicode-escape codec does: every byte is the code point of the same
// value, except that \uXXXX and \UXXXXXXXX after an odd number of
// backslashes give the code point they spell. The result is UTF-8.
func decodeRawUnicodeEscape(s string) (string, error) {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		if s[i] != '\\' {
			b.WriteRune(rune(s[i]))
			i++
			continue
		}
		start := i
		for i < len(s) && s[i] == '\\' {
			i++
		}
		run := i - start
		if run%2 == 0 || i == len(s) || (s[i] != 'u' && s[i] != 'U') {
			b.WriteString(s[start:i])
			continue
		}
		b.WriteString(s[start : i-1])
		digits := 4
		if s[i] == 'U' {
			digits = 8
		}
		i++
		if i+digits > len(s) {
			return "", fmt.Errorf(`UNICODE argument has a truncated \u escape: the stream is corrupt`)
		}
		var code rune
		for _, c := range []byte(s[i : i+digits]) {
			d, ok := hexDigit(c)
			if !ok {
				return "", fmt.Errorf(`UNICODE argument has an invalid \u escape %q: the stream is corrupt`, s[i-2:i+digits])
			}
			code = code<<4 | rune(d)
		}
		if code > utf8.MaxRune {
			return "", fmt.Errorf(`UNICODE argument escapes code point 0x%x, above U+10FFFF: the stream is corrupt`, code)
		}
		b.WriteRune(code)
		i += digits
	}
	return b.String(), nil
}

// truncateForMessage shortens text that goes into an error message.
func truncateForMessage(s string) string {
	const maxLen = 60
	if len(s) <= maxLen {
		return s
	}
	return s[:maxLen] + "..."
}

// describeValue returns a short description of a pickle value for error
// messages. It looks at most two levels into placeholders and arrays, so
// cyclic or deep values cannot make it recurse without bound.
func describeValue(v any) string { return describeDepth(v, 2) }

// describeShallow describes v without looking into placeholders or arrays.
// An array's description uses it for the array's own fields, which a
// pickle can make refer back to the array.
func describeShallow(v any) string { return describeDepth(v, 0) }

func describeDepth(v any, depth int) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		return fmt.Sprintf("bool %v", x)
	case int64:
		return fmt.Sprintf("int %d", x)
	case *big.Int:
		return "an int of more than 64 bits"
	case float64:
		return fmt.Sprintf("float %v", x)
	case string:
		return fmt.Sprintf("str %q", truncateForMessage(x))
	case *pyLazyText:
		return fmt.Sprintf("a str of %d bytes", x.length)
	case *pyBytes:
		n := x.length
		if !x.inFile {
			n = int64(len(x.data))
		}
		if x.mutable {
			return fmt.Sprintf("a bytearray of %d bytes", n)
		}
		return fmt.Sprintf("a bytes value of %d bytes", n)
	case *pyTuple:
		return fmt.Sprintf("a tuple of %d items", len(x.items))
	case *pyList:
		return fmt.Sprintf("a list of %d items", len(x.items))
	case *pySet:
		return fmt.Sprintf("a set of %d items", len(x.items))
	case *pyDict:
		keys := x.stringKeys()
		if len(keys) > 8 {
			keys = append(keys[:8:8], "...")
		}
		return fmt.Sprintf("a dict with keys %v", keys)
	case *pyGlobal:
		return fmt.Sprintf("the global %s.%s", x.module, x.name)
	case *pyBuffer:
		return fmt.Sprintf("out-of-band buffer %d", x.index)
	case *npDType:
		return fmt.Sprintf("numpy dtype %s", x)
	case *npArray:
		if depth <= 0 {
			return "a numpy array"
		}
		return x.describe()
	case *pyObject:
		if depth <= 0 {
			return "an object"
		}
		switch x.how {
		case "PERSID", "BINPERSID":
			return "a persistent id placeholder"
		case "LONG4":
			return "an integer too long to rebuild"
		}
		return fmt.Sprintf("an object that %s of %s would make", x.how, describeDepth(x.callable, depth-1))
	}
	return fmt.Sprintf("a value of Go type %T", v)
}
