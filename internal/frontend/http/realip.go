package http

import (
	"bytes"
	"net/netip"
	"strings"
)

// forwardedClient reads the client's address from a trusted proxy's
// real-IP header. The rightmost entry of a comma-separated list counts: it
// is the one the trusted proxy added; entries left of it were written by
// whoever sent the request. An entry is an address, with or without a
// port, IPv6 in brackets when it has one (1.2.3.4, 1.2.3.4:5678,
// 2001:db8::1, [2001:db8::1]:5678), or an RFC 7239 Forwarded element whose
// for= parameter is one of those, quoted or not. Anything else (unknown,
// an obfuscated identifier, an empty for=, garbage) is not an address.
func forwardedClient(value []byte) (netip.Addr, bool) {
	if i := bytes.LastIndexByte(value, ','); i >= 0 {
		value = value[i+1:]
	}
	entry := strings.TrimSpace(string(value))
	if strings.Contains(entry, "=") {
		var ok bool
		if entry, ok = forwardedFor(entry); !ok {
			return netip.Addr{}, false
		}
	}
	if ap, err := netip.ParseAddrPort(entry); err == nil {
		return ap.Addr().Unmap(), true
	}
	entry = strings.TrimSuffix(strings.TrimPrefix(entry, "["), "]")
	if a, err := netip.ParseAddr(entry); err == nil && a.Zone() == "" {
		return a.Unmap(), true
	}
	return netip.Addr{}, false
}

// forwardedFor is the node of an RFC 7239 element's for= parameter.
func forwardedFor(element string) (string, bool) {
	for pair := range strings.SplitSeq(element, ";") {
		key, value, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok || !strings.EqualFold(key, "for") {
			continue
		}
		if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
			value = value[1 : len(value)-1]
		}
		return value, value != ""
	}
	return "", false
}
