package data

import (
	"fmt"
	"strconv"
	"strings"
)

// maxBraceExpansion bounds the number of strings ExpandBraces returns, so a
// typo such as {0..999999999} fails fast instead of exhausting memory.
const maxBraceExpansion = 1_000_000

// ExpandBraces expands shell-style brace groups in pattern, as WebDataset
// shard lists are written:
//
//	shards/{00000..00003}.tar  shards/00000.tar ... shards/00003.tar
//	{train,val}-{0..1}.tar     train-0.tar train-1.tar val-0.tar val-1.tar
//	{0..10..5}                 0 5 10
//
// A group is a comma list or a numeric range start..end[..step] of
// non-negative integers. A range counts down when end < start, and it pads
// its numbers with zeros to the longer bound's width when either bound
// starts with a zero (as bash does). Groups nest inside comma lists, and
// several groups expand left to right, the leftmost varying slowest. A
// pattern without braces returns itself.
func ExpandBraces(pattern string) ([]string, error) {
	out, err := expandBraces(pattern)
	if err != nil {
		return nil, fmt.Errorf("brace pattern %q: %w", pattern, err)
	}
	return out, nil
}

func expandBraces(pattern string) ([]string, error) {
	open := strings.IndexByte(pattern, '{')
	if open < 0 {
		if strings.IndexByte(pattern, '}') >= 0 {
			return nil, fmt.Errorf("unmatched }")
		}
		return []string{pattern}, nil
	}
	end, err := matchingBrace(pattern, open)
	if err != nil {
		return nil, err
	}
	prefix, body, suffix := pattern[:open], pattern[open+1:end], pattern[end+1:]
	if strings.IndexByte(prefix, '}') >= 0 {
		return nil, fmt.Errorf("unmatched }")
	}

	alternatives, err := expandGroup(body)
	if err != nil {
		return nil, err
	}
	rest, err := expandBraces(suffix)
	if err != nil {
		return nil, err
	}
	if int64(len(alternatives))*int64(len(rest)) > maxBraceExpansion {
		return nil, fmt.Errorf("expands to more than %d strings", maxBraceExpansion)
	}
	out := make([]string, 0, len(alternatives)*len(rest))
	for _, alt := range alternatives {
		for _, tail := range rest {
			out = append(out, prefix+alt+tail)
		}
	}
	return out, nil
}

// matchingBrace returns the index of the } that closes the { at open.
func matchingBrace(pattern string, open int) (int, error) {
	depth := 0
	for i := open; i < len(pattern); i++ {
		switch pattern[i] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return i, nil
			}
		}
	}
	return 0, fmt.Errorf("unmatched { at byte %d", open)
}

// expandGroup expands the text between a pair of braces: a comma list
// whose items may hold groups themselves, or a numeric range.
func expandGroup(body string) ([]string, error) {
	items := splitTopLevelCommas(body)
	if len(items) == 1 {
		if values, ok, err := expandRange(body); ok || err != nil {
			return values, err
		}
		return nil, fmt.Errorf("group {%s} is neither a comma list nor a numeric range such as {0..9}", body)
	}
	var out []string
	for _, item := range items {
		values, err := expandBraces(item)
		if err != nil {
			return nil, err
		}
		if len(out)+len(values) > maxBraceExpansion {
			return nil, fmt.Errorf("expands to more than %d strings", maxBraceExpansion)
		}
		out = append(out, values...)
	}
	return out, nil
}

// splitTopLevelCommas splits body at the commas that are not inside a
// nested group.
func splitTopLevelCommas(body string) []string {
	var items []string
	depth, start := 0, 0
	for i := 0; i < len(body); i++ {
		switch body[i] {
		case '{':
			depth++
		case '}':
			depth--
		case ',':
			if depth == 0 {
				items = append(items, body[start:i])
				start = i + 1
			}
		}
	}
	return append(items, body[start:])
}

// expandRange expands start..end or start..end..step. ok is false when
// body does not have that form.
func expandRange(body string) (values []string, ok bool, err error) {
	parts := strings.Split(body, "..")
	if len(parts) != 2 && len(parts) != 3 {
		return nil, false, nil
	}
	for _, part := range parts {
		if part == "" || strings.Trim(part, "0123456789") != "" {
			return nil, false, nil
		}
	}

	start, err1 := strconv.ParseInt(parts[0], 10, 64)
	end, err2 := strconv.ParseInt(parts[1], 10, 64)
	if err1 != nil || err2 != nil {
		return nil, true, fmt.Errorf("range {%s} has a bound that does not fit int64", body)
	}
	step := int64(1)
	if len(parts) == 3 {
		step, err = strconv.ParseInt(parts[2], 10, 64)
		if err != nil || step == 0 {
			return nil, true, fmt.Errorf("range {%s} has step %q: want a positive integer", body, parts[2])
		}
	}

	count := (max(start, end)-min(start, end))/step + 1
	if count > maxBraceExpansion {
		return nil, true, fmt.Errorf("range {%s} expands to %d strings, over the limit of %d", body, count, maxBraceExpansion)
	}
	width := 0
	if padded(parts[0]) || padded(parts[1]) {
		width = max(len(parts[0]), len(parts[1]))
	}
	if end < start {
		step = -step
	}
	values = make([]string, 0, count)
	for i := int64(0); i < count; i++ {
		values = append(values, fmt.Sprintf("%0*d", width, start+i*step))
	}
	return values, true, nil
}

// padded reports whether a range bound is written with leading zeros.
func padded(bound string) bool { return len(bound) > 1 && bound[0] == '0' }
