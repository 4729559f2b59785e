package http

import (
	"bytes"
	"sync/atomic"
	"time"
)

// parseRequest reads a request line and headers (ending in the blank line)
// into r. It keeps slices of raw, and reports false for anything that is not
// a well-formed HTTP/1.x request. It is strict about framing (RFC 9112 §2.2,
// §3, §5), because a lenient parser is how requests get smuggled: lines end
// in CRLF only, with no bare CR or LF anywhere; header names are tokens; no
// control bytes in values; no line folding; one Host, required in HTTP/1.1.
func parseRequest(raw []byte, r *request, realIPHeader string) bool {
	line, rest, ok := bytes.Cut(raw, crlf)
	if !ok || !parseRequestLine(line, r) {
		return false
	}
	hosts := 0
	for len(rest) > 0 {
		var header []byte
		header, rest, _ = bytes.Cut(rest, crlf)
		if len(header) == 0 {
			return len(rest) == 0 && (hosts == 1 || (hosts == 0 && !r.http11))
		}
		name, value, ok := bytes.Cut(header, []byte(":"))
		if !ok || !isToken(name) || !isFieldValue(value) {
			return false // a bad name, a bare CR or LF, a folded line
		}
		value = bytes.Trim(value, " \t")
		switch {
		case bytes.EqualFold(name, []byte("Host")):
			hosts++
			if hosts > 1 || !isHost(value) {
				return false
			}
			r.host, r.hasHost = value, true
		case bytes.EqualFold(name, []byte("Connection")):
			connectionOptions(value, r)
		case bytes.EqualFold(name, []byte("Content-Length")):
			if !bytes.Equal(value, []byte("0")) {
				r.hasBody = true
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			r.hasBody = true
		case bytes.EqualFold(name, []byte("Accept-Encoding")):
			r.acceptGzip = acceptsGzip(value)
		case bytes.EqualFold(name, []byte("Upgrade")):
			r.upgrade = hasToken(value, "websocket")
		case realIPHeader != "" && bytes.EqualFold(name, []byte(realIPHeader)):
			r.realIP, r.hasRealIP = value, true
		}
	}
	return false // raw did not end in the blank line
}

var crlf = []byte("\r\n")

// parseRequestLine reads "METHOD TARGET HTTP/1.x".
func parseRequestLine(line []byte, r *request) bool {
	method, line, ok1 := bytes.Cut(line, []byte(" "))
	target, version, ok2 := bytes.Cut(line, []byte(" "))
	if !ok1 || !ok2 || !isToken(method) || len(target) == 0 {
		return false
	}
	for _, c := range target {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	switch string(version) {
	case "HTTP/1.1":
		r.keepAlive, r.http11 = true, true
	case "HTTP/1.0":
		r.keepAlive, r.http11 = false, false
	default:
		return false
	}
	// An absolute-form target, as sent to proxies, still names our path.
	if bytes.HasPrefix(target, []byte("http://")) || bytes.HasPrefix(target, []byte("https://")) {
		scheme := bytes.Index(target, []byte("//"))
		slash := bytes.IndexByte(target[scheme+2:], '/')
		if slash < 0 || !isAuthority(target[scheme+2:scheme+2+slash]) {
			return false
		}
		target = target[scheme+2+slash:]
	}
	if target[0] != '/' {
		return false
	}
	r.method = method
	r.path, r.query, _ = bytes.Cut(target, []byte("?"))
	return hasValidEscapes(r.path)
}

// isAuthority reports whether b is host[:port] as an absolute-form target
// carries it: a name of letters, digits and "-._~", or an IP literal in
// brackets, then an optional port of digits. It is stricter than RFC 3986
// (no user info, no percent escapes): a tracker's clients send neither.
func isAuthority(b []byte) bool {
	host, port := b, []byte(nil)
	if i := bytes.LastIndexByte(b, ':'); i >= 0 && i > bytes.LastIndexByte(b, ']') {
		host, port = b[:i], b[i+1:]
	}
	for _, c := range port {
		if c < '0' || c > '9' {
			return false
		}
	}
	allowed := "-._~"
	if len(host) >= 2 && host[0] == '[' && host[len(host)-1] == ']' {
		host, allowed = host[1:len(host)-1], ":."
	}
	for _, c := range host {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || bytes.IndexByte([]byte(allowed), c) >= 0
		if !ok {
			return false
		}
	}
	return true
}

// hasValidEscapes reports whether every '%' in path begins a two-digit hex
// escape (RFC 3986 §2.1); a path that breaks this is not a URL at all.
func hasValidEscapes(path []byte) bool {
	for i := 0; i < len(path); i++ {
		if path[i] != '%' {
			continue
		}
		if i+2 >= len(path) || !isHex(path[i+1]) || !isHex(path[i+2]) {
			return false
		}
		i += 2
	}
	return true
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// hasToken reports whether a comma-separated header value lists token,
// without case.
func hasToken(value []byte, token string) bool {
	for len(value) > 0 {
		var item []byte
		item, value, _ = bytes.Cut(value, []byte(","))
		if bytes.EqualFold(bytes.Trim(item, " \t"), []byte(token)) {
			return true
		}
	}
	return false
}

// acceptsGzip reads an Accept-Encoding header (RFC 9110 §12.5.3): true if
// it lists gzip (or x-gzip) with a weight above 0.
func acceptsGzip(value []byte) bool {
	for len(value) > 0 {
		var item []byte
		item, value, _ = bytes.Cut(value, []byte(","))
		coding, params, _ := bytes.Cut(item, []byte(";"))
		coding = bytes.Trim(coding, " \t")
		if bytes.EqualFold(coding, []byte("gzip")) || bytes.EqualFold(coding, []byte("x-gzip")) {
			return !zeroWeight(params)
		}
	}
	return false
}

// zeroWeight reports whether a coding's parameters are a weight of 0
// ("q=0", "q=0.000"): that coding is refused.
func zeroWeight(params []byte) bool {
	params = bytes.Trim(params, " \t")
	if len(params) < 3 || (params[0] != 'q' && params[0] != 'Q') || params[1] != '=' || params[2] != '0' {
		return false
	}
	return len(bytes.Trim(params[3:], ".0")) == 0
}

// connectionOptions reads the Connection header: a comma-separated list of
// case-insensitive options (RFC 9110 §7.6.1), of which close and
// keep-alive matter here.
func connectionOptions(value []byte, r *request) {
	for len(value) > 0 {
		var option []byte
		option, value, _ = bytes.Cut(value, []byte(","))
		option = bytes.Trim(option, " \t")
		switch {
		case bytes.EqualFold(option, []byte("close")):
			r.close = true
		case bytes.EqualFold(option, []byte("keep-alive")):
			r.keepAlive = true
		}
	}
	if r.close {
		r.keepAlive = false
	}
}

// isToken reports whether b is an RFC 9110 token: a method or a header name.
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c >= 0x80 || !tokenByte[c] {
			return false
		}
	}
	return true
}

var tokenByte = func() (t [128]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// isFieldValue reports whether b may be a header's value: no control bytes
// but horizontal tab, so no CR, LF or NUL. (A folded line, obs-fold, starts
// with white space, so its "name" is no token and it is refused there.)
func isFieldValue(b []byte) bool {
	for _, c := range b {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// isHost reports whether b may be a Host header's value: the bytes of a
// host name, an IP literal in brackets and a port (the set net/http takes).
func isHost(b []byte) bool {
	for _, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || bytes.IndexByte([]byte("!$%&'()*+,-.:;=[]_~"), c) >= 0
		if !ok {
			return false
		}
	}
	return true
}

// date caches the Date header's text, which changes once a second.
type date struct {
	unix int64
	text []byte
}

var cachedDate atomic.Pointer[date]

func appendDate(dst []byte) []byte {
	now := time.Now()
	d := cachedDate.Load()
	if d == nil || d.unix != now.Unix() {
		d = &date{unix: now.Unix(), text: now.UTC().AppendFormat(nil, "Mon, 02 Jan 2006 15:04:05 GMT")}
		cachedDate.Store(d)
	}
	return append(dst, d.text...)
}
