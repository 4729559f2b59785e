package http

import (
	"bytes"
	"sync/atomic"
	"time"
)

// parseRequest reads a request line and headers (ending in the blank line)
// into r. It keeps slices of raw, and reports false for anything that is not
// a well-formed HTTP/1.x request.
func parseRequest(raw []byte, r *request, realIPHeader string) bool {
	line, rest, ok := bytes.Cut(raw, []byte("\r\n"))
	if !ok {
		return false
	}
	method, line, ok1 := bytes.Cut(line, []byte(" "))
	target, version, ok2 := bytes.Cut(line, []byte(" "))
	if !ok1 || !ok2 || len(method) == 0 || len(target) == 0 {
		return false
	}
	switch string(version) {
	case "HTTP/1.1":
		r.keepAlive = true
	case "HTTP/1.0":
		r.keepAlive = false
	default:
		return false
	}
	// An absolute-form target, as sent to proxies, still names our path.
	if bytes.HasPrefix(target, []byte("http://")) || bytes.HasPrefix(target, []byte("https://")) {
		scheme := bytes.Index(target, []byte("//"))
		slash := bytes.IndexByte(target[scheme+2:], '/')
		if slash < 0 {
			return false
		}
		target = target[scheme+2+slash:]
	}
	if target[0] != '/' {
		return false
	}
	r.method = method
	r.path, r.query, _ = bytes.Cut(target, []byte("?"))
	for len(rest) > 0 {
		var header []byte
		header, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		if len(header) == 0 {
			continue
		}
		name, value, ok := bytes.Cut(header, []byte(":"))
		if !ok || len(name) == 0 || bytes.ContainsAny(name, " \t") {
			return false
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Connection")):
			if bytes.EqualFold(value, []byte("close")) {
				r.keepAlive = false
			} else if bytes.EqualFold(value, []byte("keep-alive")) {
				r.keepAlive = true
			}
		case bytes.EqualFold(name, []byte("Content-Length")):
			if !bytes.Equal(value, []byte("0")) {
				r.hasBody = true
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			r.hasBody = true
		case realIPHeader != "" && bytes.EqualFold(name, []byte(realIPHeader)):
			r.realIP = value
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
