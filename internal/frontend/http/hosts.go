package http

import (
	"bytes"
	"net/netip"
)

// Hosts is the set of host names requests may be addressed to
// (http.allowed_hosts): a request for any other, in its Host header, is
// misdirected. It guards against domains pointed at the tracker's address
// by others, so that its bandwidth serves their lists. Names are matched
// without case, without a port and without a trailing dot; IPv6 literals
// with or without their brackets.
type Hosts struct {
	names map[string]struct{}
}

// AnyHost is the empty list: every host, and none, is served.
var AnyHost = &Hosts{}

// NewHosts makes the set of names; none means any host.
func NewHosts(names []string) *Hosts {
	if len(names) == 0 {
		return AnyHost
	}
	h := &Hosts{names: make(map[string]struct{}, len(names))}
	for _, n := range names {
		if a, err := netip.ParseAddr(n); err == nil && a.Is6() {
			n = "[" + n + "]" // an IPv6 literal written bare: as a Host header has it
		}
		var buf [maxHostLength]byte
		if key, ok := hostKey([]byte(n), &buf); ok {
			h.names[string(key)] = struct{}{}
		}
	}
	return h
}

// maxHostLength is the longest Host value looked up: a DNS name is at
// most 253 bytes, and a port adds 6.
const maxHostLength = 260

// Allowed reports whether a request with this Host value (present or not)
// is addressed to a served host.
func (h *Hosts) Allowed(host []byte, present bool) bool {
	if h.names == nil {
		return true
	}
	if !present {
		return false
	}
	var buf [maxHostLength]byte
	key, ok := hostKey(host, &buf)
	if !ok {
		return false
	}
	_, listed := h.names[string(key)]
	return listed
}

// hostKey is the form names are compared in: lower case, no port, no
// trailing dot, an IPv6 literal kept in its brackets.
func hostKey(host []byte, buf *[maxHostLength]byte) ([]byte, bool) {
	if len(host) > 0 && host[0] == '[' {
		end := bytes.IndexByte(host, ']')
		if end < 0 {
			return nil, false
		}
		host = host[:end+1]
	} else if i := bytes.IndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	host = bytes.TrimSuffix(host, []byte("."))
	if len(host) == 0 || len(host) > len(buf) {
		return nil, false
	}
	for i, c := range host {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return buf[:len(host)], true
}
