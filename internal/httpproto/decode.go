package httpproto

import (
	"errors"
	"strconv"
)

// Decode reads one bencoded value: dictionaries become map[string]any,
// lists []any, integers int64 and strings string. It is the client's side,
// for the load generator and the tests; the tracker never decodes bencode.
func Decode(b []byte) (any, error) {
	v, rest, err := decodeValue(b, 0)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, errors.New("bencode: trailing bytes after value")
	}
	return v, nil
}

// maxDepth stops a hostile reply from nesting its way through the stack.
const maxDepth = 32

var errBencode = errors.New("bencode: malformed value")

func decodeValue(b []byte, depth int) (any, []byte, error) {
	if len(b) == 0 || depth > maxDepth {
		return nil, nil, errBencode
	}
	switch c := b[0]; {
	case c == 'i':
		end := indexByte(b, 'e')
		if end < 0 {
			return nil, nil, errBencode
		}
		n, err := strconv.ParseInt(string(b[1:end]), 10, 64)
		if err != nil {
			return nil, nil, errBencode
		}
		return n, b[end+1:], nil
	case c >= '0' && c <= '9':
		colon := indexByte(b, ':')
		if colon < 0 {
			return nil, nil, errBencode
		}
		n, err := strconv.ParseUint(string(b[:colon]), 10, 32)
		if err != nil || uint64(len(b)-colon-1) < n {
			return nil, nil, errBencode
		}
		return string(b[colon+1 : colon+1+int(n)]), b[colon+1+int(n):], nil
	case c == 'l':
		list := []any{}
		for b = b[1:]; len(b) > 0 && b[0] != 'e'; {
			var v any
			var err error
			if v, b, err = decodeValue(b, depth+1); err != nil {
				return nil, nil, err
			}
			list = append(list, v)
		}
		if len(b) == 0 {
			return nil, nil, errBencode
		}
		return list, b[1:], nil
	case c == 'd':
		dict := map[string]any{}
		for b = b[1:]; len(b) > 0 && b[0] != 'e'; {
			k, rest, err := decodeValue(b, depth+1)
			key, ok := k.(string)
			if err != nil || !ok {
				return nil, nil, errBencode
			}
			var v any
			if v, b, err = decodeValue(rest, depth+1); err != nil {
				return nil, nil, err
			}
			dict[key] = v
		}
		if len(b) == 0 {
			return nil, nil, errBencode
		}
		return dict, b[1:], nil
	}
	return nil, nil, errBencode
}

func indexByte(b []byte, c byte) int {
	for i := range b {
		if b[i] == c {
			return i
		}
	}
	return -1
}
