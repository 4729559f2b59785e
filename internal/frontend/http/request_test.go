package http

import (
	"bufio"
	"net/http"
	"strings"
	"testing"
)

// TestParseRequestFraming: requests whose framing is ambiguous are refused.
func TestParseRequestFraming(t *testing.T) {
	const ok = "GET /announce?x=1 HTTP/1.1\r\nHost: tracker.example:6969\r\n"
	for name, raw := range map[string]string{
		"bare LF hides a header":    "GET /announce HTTP/1.1\r\nHost: t\r\nX: a\nContent-Length: 5\r\n\r\n",
		"bare CR in a header":       "GET /announce HTTP/1.1\r\nHost: t\r\nX: a\rContent-Length: 5\r\n\r\n",
		"bare LF in the start line": "GET /announce\nX HTTP/1.1\r\nHost: t\r\n\r\n",
		"space in a header name":    "GET /announce HTTP/1.1\r\nHost: t\r\nContent-Length : 5\r\n\r\n",
		"control byte in a name":    "GET /announce HTTP/1.1\r\nHost: t\r\nContent\x01Length: 5\r\n\r\n",
		"NUL in a value":            "GET /announce HTTP/1.1\r\nHost: t\r\nX: a\x00b\r\n\r\n",
		"folded line":               "GET /announce HTTP/1.1\r\nHost: t\r\nX: a\r\n b\r\n\r\n",
		"HTTP/1.1 without Host":     "GET /announce HTTP/1.1\r\nX: a\r\n\r\n",
		"two Hosts":                 "GET /announce HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
		"bad Host":                  "GET /announce HTTP/1.1\r\nHost: a b/c\r\n\r\n",
		"space in the target":       "GET /announce x HTTP/1.1\r\nHost: t\r\n\r\n",
		"bad method":                "G(T /announce HTTP/1.1\r\nHost: t\r\n\r\n",
		"HTTP/2":                    "GET /announce HTTP/2.0\r\nHost: t\r\n\r\n",
		"bad escape in the path":    "GET /announce%2 HTTP/1.0\r\n\r\n",
		"bad escape, absolute form": "T http:///% HTTP/1.0\r\nn:close\r\n\r\n",
		"user info in the target":   "GET http://u@h/announce HTTP/1.0\r\n\r\n",
		"bad port in the target":    "GET http://h:x/announce HTTP/1.0\r\n\r\n",
		"open bracket in the host":  "GET http://[::1/announce HTTP/1.0\r\n\r\n",
	} {
		var r request
		if parseRequest([]byte(raw), &r, "") {
			t.Errorf("%s: accepted %q", name, raw)
		}
	}
	for raw, keepAlive := range map[string]bool{
		ok + "\r\n":                                                   true,
		"GET /announce HTTP/1.0\r\n\r\n":                              false,
		ok + "Connection: TE, close\r\n\r\n":                          false,
		ok + "Connection: Close\r\n\r\n":                              false,
		ok + "Connection: keep-alive, TE\r\n\r\n":                     true,
		"GET /scrape HTTP/1.0\r\nConnection: foo ,Keep-Alive\r\n\r\n": true,
		"GET http://[::1]:6969/announce?a=%zz HTTP/1.0\r\n\r\n":       false,
		"GET https://tracker.example/ann%6Fu%6ece HTTP/1.0\r\n\r\n":   false,
	} {
		var r request
		if !parseRequest([]byte(raw), &r, "") || r.keepAlive != keepAlive {
			t.Errorf("%q: keep-alive %v, want %v", raw, r.keepAlive, keepAlive)
		}
	}
}

// FuzzParseRequestAgainstNetHTTP feeds the same bytes to trakx's parser and
// to net/http's, an independent implementation: whatever trakx accepts,
// net/http must accept too, with the same method, target and keep-alive,
// and with no body (trakx refuses any request that has one). The oracle is
// lenient where trakx is strict (bare LF line ends), never the reverse.
func FuzzParseRequestAgainstNetHTTP(f *testing.F) {
	for _, seed := range []string{
		"GET /announce?info_hash=x HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET http://h/scrape HTTP/1.0\r\nConnection: close\r\n\r\n",
		"GET /announce HTTP/1.1\r\nHost: t\r\nX: a\nContent-Length: 5\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: [::1]:80\r\nConnection: TE, close\r\n\r\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if !strings.HasSuffix(raw, "\r\n\r\n") || strings.Count(raw, "\r\n\r\n") != 1 {
			return // the server hands the parser exactly one header block
		}
		var r request
		if !parseRequest([]byte(raw), &r, "") || r.hasBody {
			return // refused: 400 and close
		}
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
		if err != nil {
			t.Fatalf("trakx accepted what net/http rejects (%v): %q", err, raw)
		}
		if req.ContentLength != 0 || len(req.TransferEncoding) > 0 {
			t.Fatalf("net/http sees a body (length %d, encoding %v) that trakx does not: %q", req.ContentLength, req.TransferEncoding, raw)
		}
		if req.Method != string(r.method) {
			t.Fatalf("method %q, net/http %q", r.method, req.Method)
		}
		if path, query, _ := strings.Cut(req.RequestURI, "?"); strings.HasPrefix(path, "/") && (path != string(r.path) || query != string(r.query)) {
			t.Fatalf("target %q %q, net/http %q", r.path, r.query, req.RequestURI)
		}
		if req.Close == r.keepAlive {
			t.Fatalf("keep-alive %v, net/http close %v: %q", r.keepAlive, req.Close, raw)
		}
	})
}

// TestForwardedClient: the forms proxies send are read, anything else is
// refused, never guessed at.
func TestForwardedClient(t *testing.T) {
	for value, want := range map[string]string{
		"1.2.3.4":                   "1.2.3.4",
		" 1.2.3.4:5678 ":            "1.2.3.4",
		"2001:db8::1":               "2001:db8::1",
		"[2001:db8::1]:5678":        "2001:db8::1",
		"[2001:db8::1]":             "2001:db8::1",
		"::ffff:1.2.3.4":            "1.2.3.4",
		"203.0.113.9, 198.51.100.7": "198.51.100.7",
		`for="[2001:db8::1]:5678"`:  "2001:db8::1",
		"for=192.0.2.60;proto=http;by=203.0.113.43": "192.0.2.60",
		`for=unknown, For="198.51.100.17"`:          "198.51.100.17",
	} {
		if a, ok := forwardedClient([]byte(value)); !ok || a.String() != want {
			t.Errorf("%q: %v %v, want %s", value, a, ok, want)
		}
	}
	for _, value := range []string{"", "unknown", "for=", `for=""`, "for=_hidden", "proto=http", "garbage", "1.2.3.4, ", "1.2.3", "fe80::1%eth0", "[1.2.3.4]:x"} {
		if a, ok := forwardedClient([]byte(value)); ok {
			t.Errorf("%q read as %v", value, a)
		}
	}
}
