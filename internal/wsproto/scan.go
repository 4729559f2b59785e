package wsproto

import (
	"bytes"
	"encoding/json"
	"strings"
)

// A small JSON reader for the protocol's messages: it validates the text
// as encoding/json would and hands out each member's raw value, without
// reflection. Every message is read with it, so it is most of the cost of
// a request; FuzzScanAgainstEncodingJSON holds it to encoding/json.

// maxDepth bounds nesting: an SDP offer is an object of strings.
const maxDepth = 32

type scanner struct {
	b []byte
	i int
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) take(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// value skips one JSON value, checking it.
func (s *scanner) value(depth int) bool {
	if s.i >= len(s.b) || depth > maxDepth {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		return s.str()
	case c == '{':
		return s.members(depth+1, nil)
	case c == '[':
		return s.elements(depth+1, nil)
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	}
	for _, lit := range []string{"true", "false", "null"} {
		if bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
			s.i += len(lit)
			return true
		}
	}
	return false
}

func (s *scanner) str() bool {
	if !s.take('"') {
		return false
	}
	for s.i < len(s.b) {
		c := s.b[s.i]
		s.i++
		switch {
		case c == '"':
			return true
		case c < 0x20:
			return false
		case c == '\\':
			if s.i >= len(s.b) {
				return false
			}
			e := s.b[s.i]
			s.i++
			switch e {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if s.i+4 > len(s.b) {
					return false
				}
				for _, h := range s.b[s.i : s.i+4] {
					if !isHex(h) {
						return false
					}
				}
				s.i += 4
			default:
				return false
			}
		}
	}
	return false
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func (s *scanner) digits() bool {
	start := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}

func (s *scanner) number() bool {
	s.take('-')
	if s.take('0') {
		// no more digits before the point
	} else if !s.digits() {
		return false
	}
	if s.take('.') && !s.digits() {
		return false
	}
	if s.take('e') || s.take('E') {
		if !s.take('+') {
			s.take('-')
		}
		if !s.digits() {
			return false
		}
	}
	return true
}

// members reads an object, handing each member's key (raw, between the
// quotes) and raw value to f when f is not nil.
func (s *scanner) members(depth int, f func(key, value []byte) bool) bool {
	if !s.take('{') {
		return false
	}
	s.space()
	if s.take('}') {
		return true
	}
	for {
		s.space()
		start := s.i
		if !s.str() {
			return false
		}
		key := s.b[start+1 : s.i-1]
		s.space()
		if !s.take(':') {
			return false
		}
		s.space()
		start = s.i
		if !s.value(depth) {
			return false
		}
		if f != nil && !f(key, s.b[start:s.i]) {
			return false
		}
		s.space()
		if s.take('}') {
			return true
		}
		if !s.take(',') {
			return false
		}
	}
}

// elements reads an array, handing each raw element to f when f is not
// nil.
func (s *scanner) elements(depth int, f func(value []byte) bool) bool {
	if !s.take('[') {
		return false
	}
	s.space()
	if s.take(']') {
		return true
	}
	for {
		s.space()
		start := s.i
		if !s.value(depth) {
			return false
		}
		if f != nil && !f(s.b[start:s.i]) {
			return false
		}
		s.space()
		if s.take(']') {
			return true
		}
		if !s.take(',') {
			return false
		}
	}
}

// eachMember calls f for each member of the JSON object raw, which must
// be all there is, with its key as written (between the quotes): readers
// compare it with nameIs.
func eachMember(raw []byte, f func(key, value []byte)) error {
	s := scanner{b: raw}
	s.space()
	ok := s.members(1, func(key, value []byte) bool {
		f(key, value)
		return true
	})
	s.space()
	if !ok || s.i != len(raw) {
		return ErrInvalidJSON
	}
	return nil
}

// nameIs reports whether a member's key, as written, is name, compared as
// encoding/json compares keys with a struct's fields: unescaped, and
// without case.
func nameIs(key []byte, name string) bool {
	if bytes.IndexByte(key, '\\') >= 0 {
		return strings.EqualFold(memberName(key), name)
	}
	return bytes.EqualFold(key, []byte(name))
}

// eachElement calls f for each element of the JSON array raw; false if raw
// is not an array.
func eachElement(raw []byte, f func(value []byte) bool) bool {
	s := scanner{b: raw}
	return s.elements(1, f) && s.i == len(raw)
}

// memberName is a key as a Go string, unescaped if it must be. Callers
// compare it without case (strings.EqualFold), as encoding/json does.
func memberName(key []byte) string {
	if bytes.IndexByte(key, '\\') >= 0 {
		var k string
		if json.Unmarshal(append(append([]byte{'"'}, key...), '"'), &k) == nil {
			return k
		}
	}
	return string(key)
}

// stringValue is a JSON string's text, if raw is one.
func stringValue(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return string(inner), true
	}
	var v string
	return v, json.Unmarshal(raw, &v) == nil
}
