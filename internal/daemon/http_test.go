package daemon_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/config"
	"github.com/trakx/trakx/internal/httpproto"
	tt "github.com/trakx/trakx/internal/trackertest"
)

func announceURL(base string, hash bittorrent.InfoHash, port int, left int, extra string) string {
	peerID := fmt.Sprintf("-TT0001-%012d", port)
	return fmt.Sprintf("http://%s/announce?info_hash=%s&peer_id=%s&port=%d&uploaded=0&downloaded=0&left=%d%s",
		base, url.QueryEscape(string(hash[:])), url.QueryEscape(peerID), port, left, extra)
}

// announceWithHeader fetches an announce URL sending one more header, and
// decodes the bencoded reply.
func announceWithHeader(t *testing.T, u, name, value string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set(name, value)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	v, err := httpproto.Decode(body)
	if err != nil {
		t.Fatal(err)
	}
	return v.(map[string]any)
}

// peerPorts maps the address of each peer of a non-compact reply to its
// port.
func peerPorts(r map[string]any) map[string]int64 {
	ips := map[string]int64{}
	peers, _ := r["peers"].([]any)
	for _, p := range peers {
		p := p.(map[string]any)
		ips[p["ip"].(string)] = p["port"].(int64)
	}
	return ips
}

// get fetches a URL and decodes the bencoded body.
func get(t *testing.T, client *http.Client, u string) (int, map[string]any) {
	t.Helper()
	return tt.GetBencoded(t, client, u)
}

func TestHTTPAnnounceAndScrape(t *testing.T) {
	d := startTracker(t, nil)
	families(t, func(t *testing.T, i int) {
		base := d.HTTPAddrs()[i].String()
		hash := tt.Hash(fmt.Sprintf("http-announce-%d", i))
		client := &http.Client{}
		status, r := get(t, client, announceURL(base, hash, 1111, 0, "&event=started&compact=1"))
		if status != 200 || r["complete"] != int64(1) || r["incomplete"] != int64(0) || r["peers"] != "" {
			t.Fatalf("first announce %d %v", status, r)
		}
		if r["interval"].(int64) < 1800 || r["min interval"] != int64(300) {
			t.Fatalf("intervals %v", r)
		}
		_, r = get(t, client, announceURL(base, hash, 2222, 5, "&event=started"))
		want := "\x7f\x00\x00\x01\x04\x57"
		peersKey := "peers"
		if i == 1 {
			want, peersKey = "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x04\x57", "peers6"
		}
		if r[peersKey] != want || r["complete"] != int64(1) || r["incomplete"] != int64(1) {
			t.Fatalf("second announce %q", r)
		}

		// BEP 3 dictionaries: ip and port, no peer id (none is stored).
		_, r = get(t, client, announceURL(base, hash, 3333, 5, "&compact=0"))
		peers := r["peers"].([]any)
		if len(peers) != 2 {
			t.Fatalf("peers %v", peers)
		}
		for _, p := range peers {
			p := p.(map[string]any)
			port := p["port"].(int64)
			if len(p) != 2 || port != 1111 && port != 2222 || (p["ip"] != "127.0.0.1" && p["ip"] != "::1") {
				t.Fatalf("peer %v", p)
			}
		}
		_, r = get(t, client, announceURL(base, hash, 3333, 5, "&compact=0&no_peer_id=1"))
		for _, p := range r["peers"].([]any) {
			if _, has := p.(map[string]any)["peer id"]; has {
				t.Fatalf("no_peer_id ignored: %v", p)
			}
		}

		if status, _ := get(t, client, announceURL(base, hash, 2222, 0, "&event=completed")); status != 200 {
			t.Fatalf("completed: status %d", status)
		}
		nobody := tt.Hash("nobody")
		scrape := fmt.Sprintf("http://%s/scrape?info_hash=%s&info_hash=%s", base,
			url.QueryEscape(string(hash[:])), url.QueryEscape(string(nobody[:])))
		status, r = get(t, client, scrape)
		files := r["files"].(map[string]any)
		f := files[string(hash[:])].(map[string]any)
		if status != 200 || len(files) != 2 || f["complete"] != int64(2) || f["downloaded"] != int64(1) || f["incomplete"] != int64(1) {
			t.Fatalf("scrape %v", files)
		}
	})
}

// TestHTTPBothFamilies: an HTTP reply can carry both families (BEP 7).
func TestHTTPBothFamilies(t *testing.T) {
	d := startTracker(t, nil)
	hash := tt.Hash("both-families")
	client := &http.Client{}
	get(t, client, announceURL(d.HTTPAddrs()[1].String(), hash, 6666, 1, ""))
	_, r := get(t, client, announceURL(d.HTTPAddrs()[0].String(), hash, 4444, 1, ""))
	if r["peers"] != "" || len(r["peers6"].(string)) != 18 {
		t.Fatalf("IPv4 client was not sent the IPv6 peer: %q", r)
	}
}

func TestHTTPErrors(t *testing.T) {
	d := startTracker(t, nil)
	base := d.HTTPAddrs()[0].String()
	client := &http.Client{}
	hash := tt.Hash("errors")
	for _, c := range []struct {
		url    string
		status int
		reason string
	}{
		{"http://" + base + "/announce?peer_id=-TT0001-000000000001&port=1&left=0", 200, "missing info_hash"},
		{announceURL(base, hash, 0, 0, ""), 200, "invalid port"},
		{announceURL(base, hash, 1, 0, "&event=exploded"), 200, "invalid event"},
		{announceURL(base, hash, 1, 0, "&left=-1"), 200, "invalid number"},
		{"http://" + base + "/announce?info_hash=%ZZ", 200, "malformed percent-encoding"},
		{"http://" + base + "/announce?info_hash=short&peer_id=x&port=1&left=0", 200, "info_hash must be 20 bytes"},
		{"http://" + base + "/scrape", 200, "full scrape is disabled"},
		{"http://" + base + "/scrape?info_hash=%ZZ", 200, "malformed percent-encoding"},
		{"http://" + base + "/", 404, "not found"},
		{"http://" + base + "/announce.php", 404, "not found"},
		{"http://" + base + "/announce?" + strings.Repeat("x", 9000), 431, "request too large"},
	} {
		status, r := get(t, client, c.url)
		if reason, _ := r["failure reason"].(string); status != c.status || !strings.Contains(reason, c.reason) {
			t.Errorf("%.80s: %d %q, want %d %q", c.url, status, reason, c.status, c.reason)
		}
	}
	resp, err := client.Post("http://"+base+"/announce", "text/plain", strings.NewReader(""))
	if err != nil || resp.StatusCode != 405 {
		t.Fatalf("POST: %v %v", resp, err)
	}
	resp.Body.Close()
	// The tracker still serves after all that.
	if status, r := get(t, client, announceURL(base, hash, 1, 0, "")); status != 200 || r["complete"] != int64(1) {
		t.Fatalf("after errors: %d %v", status, r)
	}
	vars := tt.Vars(t, d.StatsAddr().String())
	if n, _ := tt.Lookup(vars, "trakx.http.bad_request"); n < 7 {
		t.Errorf("bad_request counted %v", n)
	}
}

// TestHTTPKeepAliveAndPipelining sends requests on one raw connection,
// the second and third in one write.
func TestHTTPKeepAliveAndPipelining(t *testing.T) {
	d := startTracker(t, nil)
	base := d.HTTPAddrs()[0].String()
	conn, err := net.Dial("tcp", base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	path := func(port int) string {
		return strings.TrimPrefix(announceURL(base, tt.Hash("keepalive"), port, 1, ""), "http://"+base)
	}
	req := func(port int, extra string) string {
		return "GET " + path(port) + " HTTP/1.1\r\nHost: tracker\r\n" + extra + "\r\n"
	}
	rd := bufio.NewReader(conn)
	read := func(wantClose bool) {
		t.Helper()
		resp, err := http.ReadResponse(rd, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		if _, err := httpproto.Decode(body); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
		if resp.Close != wantClose {
			t.Fatalf("Connection close = %v, want %v", resp.Close, wantClose)
		}
	}
	io.WriteString(conn, req(1, ""))
	read(false)
	io.WriteString(conn, req(2, "")+req(3, "Connection: close\r\n"))
	read(false)
	read(true)
	if _, err := rd.ReadByte(); err != io.EOF {
		t.Fatalf("connection left open after Connection: close: %v", err)
	}
}

// TestHTTPRealIP: the real-IP header counts only from a trusted proxy.
func TestHTTPRealIP(t *testing.T) {
	d := startTracker(t, func(c *config.Config) {
		c.HTTP.RealIPHeader = "X-Forwarded-For"
		c.HTTP.TrustedProxies = []string{"127.0.0.1/32"}
	})
	hash := tt.Hash("real-ip")
	send := func(base string, port int, xff string) map[string]any {
		return announceWithHeader(t, announceURL(base, hash, port, 1, "&compact=0"), "X-Forwarded-For", xff)
	}
	send(d.HTTPAddrs()[0].String(), 1000, "203.0.113.9, 198.51.100.7") // trusted: rightmost entry counts
	send(d.HTTPAddrs()[1].String(), 2000, "198.51.100.8")              // ::1 is not trusted
	// A public client is not sent the loopback peer; a loopback one is.
	if ips := peerPorts(send(d.HTTPAddrs()[0].String(), 3000, "192.0.2.1")); ips["198.51.100.7"] != 1000 || len(ips) != 1 {
		t.Fatalf("a public client was sent %v", ips)
	}
	if ips := peerPorts(send(d.HTTPAddrs()[1].String(), 4000, "")); ips["198.51.100.7"] != 1000 || ips["::1"] != 2000 || ips["192.0.2.1"] != 3000 || len(ips) != 3 {
		t.Fatalf("a loopback client was sent %v", ips)
	}
}

// TestHTTPConnectionCap: past http.max_connections a connection gets a 503
// and is closed, and idle connections do not block announces on the others.
func TestHTTPConnectionCap(t *testing.T) {
	// The read timeout is far longer than the test, so the stalled
	// connections stay counted however slowly a loaded machine runs it.
	d := startTracker(t, func(c *config.Config) {
		c.HTTP.MaxConnections = 5
		c.HTTP.ReadTimeout = config.Duration{Duration: time.Minute}
	})
	base := d.HTTPAddrs()[0].String()
	stats := d.StatsAddr().String()
	for range 4 {
		c, err := net.Dial("tcp", base)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// With TCP_DEFER_ACCEPT the kernel hands trakx a connection only
		// once data arrives: a connection that sends nothing costs trakx
		// nothing. These send the start of a request and stall.
		io.WriteString(c, "GET /")
	}
	tt.WaitForVar(t, stats, "trakx.http.connections", func(v float64) bool { return v == 4 })
	// One slot is left: an announce still goes through.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	if status, r := get(t, client, announceURL(base, tt.Hash("cap"), 1, 1, "")); status != 200 || r["incomplete"] != int64(1) {
		t.Fatalf("with idle connections open: %d %v", status, r)
	}
	// The announce's own connection may still be counted while the server
	// closes it; until it is gone, a count of 5 would not mean the fifth
	// idle connection.
	tt.WaitForVar(t, stats, "trakx.http.connections", func(v float64) bool { return v == 4 })
	// A fifth idle connection fills the cap; the next is refused.
	fifth, _ := net.Dial("tcp", base)
	defer fifth.Close()
	io.WriteString(fifth, "GET /")
	tt.WaitForVar(t, stats, "trakx.http.connections", func(v float64) bool { return v == 5 })
	status, r := get(t, client, announceURL(base, tt.Hash("cap"), 2, 1, ""))
	if status != 503 || r["failure reason"] != "too many connections, try again later" {
		t.Fatalf("over the cap: %d %v", status, r)
	}
	// The refusal arrives whole, followed by an orderly end of stream, not
	// a reset, although the tracker never read the request.
	raw, err := net.Dial("tcp", base)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(raw, "GET "+strings.TrimPrefix(announceURL(base, tt.Hash("cap"), 3, 1, ""), "http://"+base)+" HTTP/1.1\r\n\r\n")
	if reply, err := io.ReadAll(raw); err != nil || !strings.HasPrefix(string(reply), "HTTP/1.1 503 ") {
		t.Fatalf("refused raw connection: %q, %v", reply, err)
	}
	if n, _ := tt.Lookup(tt.Vars(t, stats), "trakx.http.connections_refused"); n != 2 {
		t.Fatalf("connections_refused = %v", n)
	}
}

// TestHTTPTricklingClientCutOff: the read timeout bounds a whole request, so
// a client sending a byte now and then cannot hold its connection open.
func TestHTTPTricklingClientCutOff(t *testing.T) {
	d := startTracker(t, func(c *config.Config) { c.HTTP.ReadTimeout = config.Duration{Duration: time.Second} })
	c, err := net.Dial("tcp", d.HTTPAddrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /")
	// A byte every 100 ms for up to 10 s: each write would renew a timeout
	// that counted from the last read.
	started := time.Now()
	closed := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 1))
		closed <- err
	}()
	for range 100 {
		select {
		case err := <-closed:
			if err == nil {
				t.Fatal("the tracker answered a request that never ended")
			}
			t.Logf("cut off after %v", time.Since(started))
			return
		case <-time.After(100 * time.Millisecond):
			io.WriteString(c, "x")
		}
	}
	t.Fatalf("a trickling client kept its connection for %v against a 1s read timeout", time.Since(started))
}

// TestHTTPIPParameter: the ip parameter counts only from a trusted proxy.
func TestHTTPIPParameter(t *testing.T) {
	d := startTracker(t, func(c *config.Config) { c.HTTP.TrustedProxies = []string{"127.0.0.1"} })
	hash := tt.Hash("ip-param")
	get(t, http.DefaultClient, announceURL(d.HTTPAddrs()[0].String(), hash, 1000, 1, "&ip=203.0.113.50")) // trusted
	get(t, http.DefaultClient, announceURL(d.HTTPAddrs()[1].String(), hash, 2000, 1, "&ip=203.0.113.51")) // not trusted
	_, r := get(t, http.DefaultClient, announceURL(d.HTTPAddrs()[1].String(), hash, 3000, 1, "&compact=0"))
	if ips := peerPorts(r); ips["203.0.113.50"] != 1000 || ips["::1"] != 2000 || len(ips) != 2 {
		t.Fatalf("peers %v", ips)
	}
}

// TestThousandIdleConnections: a thousand connections that sent half a
// request and stalled do not keep another client from being answered.
func TestThousandIdleConnections(t *testing.T) {
	d := startTracker(t, func(c *config.Config) { c.HTTP.ReadTimeout = config.Duration{Duration: 30 * time.Second} })
	base := d.HTTPAddrs()[0].String()
	for range 1000 {
		c, err := net.Dial("tcp", base)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "GET /announce?info_hash=")
	}
	tt.WaitForVar(t, d.StatsAddr().String(), "trakx.http.connections", func(v float64) bool { return v == 1000 })
	// Were the idle ones in the way, this would wait for their 30 s
	// timeout and fail at the client's 10 s one.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	if status, r := get(t, client, announceURL(base, tt.Hash("busy"), 1, 1, "")); status != 200 || r["incomplete"] != int64(1) {
		t.Fatalf("beside 1000 idle connections: %d %v", status, r)
	}
}

// TestHTTPOversizedRequestReplyArrives: the tracker gives up on a request
// before reading all of it. Closing with the rest unread would send a
// reset, which can destroy the reply before the client reads it; the reply
// and an orderly end of stream must arrive every time.
func TestHTTPOversizedRequestReplyArrives(t *testing.T) {
	d := startTracker(t, nil)
	request := "GET /announce?" + strings.Repeat("x", 32<<10) + " HTTP/1.1\r\n\r\n"
	for i := range 20 {
		c, err := net.Dial("tcp", d.HTTPAddrs()[0].String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, request); err != nil {
			t.Fatalf("try %d: writing: %v", i, err)
		}
		reply, err := io.ReadAll(c)
		c.Close()
		if err != nil || !strings.HasPrefix(string(reply), "HTTP/1.1 431 ") || !strings.Contains(string(reply), "request too large") {
			t.Fatalf("try %d: %q, %v", i, reply, err)
		}
	}
}

// TestHTTPNumWant: a negative numwant means the default, and one above
// numwant_max is capped to it; neither is refused.
func TestHTTPNumWant(t *testing.T) {
	d := startTracker(t, func(cfg *config.Config) { cfg.Tracker.NumWantDefault, cfg.Tracker.NumWantMax = 10, 20 })
	base := d.HTTPAddrs()[0].String()
	client := &http.Client{}
	hash := tt.Hash("numwant")
	for port := 1000; port < 1030; port++ {
		if status, _ := get(t, client, announceURL(base, hash, port, 1, "&numwant=0")); status != 200 {
			t.Fatalf("announce: status %d", status)
		}
	}
	for _, c := range []struct {
		numwant string
		peers   int
	}{{"-1", 10}, {"-50", 10}, {"500", 20}, {"5", 5}} {
		status, r := get(t, client, announceURL(base, hash, 2000, 1, "&numwant="+c.numwant))
		peers, _ := r["peers"].(string)
		if status != 200 || r["failure reason"] != nil || len(peers) != 6*c.peers {
			t.Errorf("numwant=%s: status %d, %d peers (want %d): %v", c.numwant, status, len(peers)/6, c.peers, r)
		}
	}
}

// TestHTTPErrorsCountedOnce: each request answered with an error adds one
// to trakx.http.error.
func TestHTTPErrorsCountedOnce(t *testing.T) {
	d := startTracker(t, nil)
	base := d.HTTPAddrs()[0].String()
	stats := d.StatsAddr().String()
	client := &http.Client{}
	for i, u := range []string{"http://" + base + "/nothing-here", "http://" + base + "/announce?info_hash=short"} {
		before, _ := tt.Lookup(tt.Vars(t, stats), "trakx.http.error")
		get(t, client, u)
		after, _ := tt.Lookup(tt.Vars(t, stats), "trakx.http.error")
		if after-before != 1 {
			t.Errorf("request %d: trakx.http.error rose by %v, want 1", i, after-before)
		}
	}
}

// rawExchange writes one request on a new connection and returns the
// status of the reply and whether the server then closed the connection.
func rawExchange(t *testing.T, addr, raw string) (status int, closed bool) {
	t.Helper()
	resp, _, closed := rawReply(t, "", addr, raw)
	return resp.StatusCode, closed
}

// rawReply sends raw on a new connection from the local address ip ("" for
// any) and returns the reply, its decoded body and whether the server
// closed the connection after it.
func rawReply(t *testing.T, ip, addr, raw string) (*http.Response, map[string]any, bool) {
	t.Helper()
	d := net.Dialer{}
	if ip != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(ip)}
	}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, raw)
	rd := bufio.NewReader(conn)
	resp, err := http.ReadResponse(rd, nil)
	if err != nil {
		t.Fatalf("%q: %v", raw, err)
	}
	body, _ := io.ReadAll(resp.Body)
	v, err := httpproto.Decode(body)
	if err != nil {
		t.Fatalf("%q: body %q: %v", raw, body, err)
	}
	// A closed connection reads EOF at once; an open one times out.
	conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	_, err = rd.ReadByte()
	return resp, v.(map[string]any), err == io.EOF
}

// TestHTTPFraming: requests framed so that a proxy and trakx could read
// them differently get 400 and a closed connection, and the Connection
// header is read as a list of options.
func TestHTTPFraming(t *testing.T) {
	d := startTracker(t, nil)
	addr := d.HTTPAddrs()[0].String()
	path := strings.TrimPrefix(announceURL(addr, tt.Hash("framing"), 1, 1, ""), "http://"+addr)
	for name, raw := range map[string]string{
		"bare LF hides a Content-Length": "GET " + path + " HTTP/1.1\r\nHost: t\r\nX: a\nContent-Length: 5\r\n\r\nGET /scrape HTTP/1.1\r\n\r\n",
		"bare CR":                        "GET " + path + " HTTP/1.1\r\nHost: t\r\nX: a\rY: b\r\n\r\n",
		"space in a header name":         "GET " + path + " HTTP/1.1\r\nHost: t\r\nContent-Length : 5\r\n\r\nhello",
		"GET with a body":                "GET " + path + " HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello",
		"GET with Transfer-Encoding":     "GET " + path + " HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"HTTP/1.1 without Host":          "GET " + path + " HTTP/1.1\r\n\r\n",
	} {
		if status, closed := rawExchange(t, addr, raw); status != 400 || !closed {
			t.Errorf("%s: status %d, closed %v; want 400 and closed", name, status, closed)
		}
	}
	for name, c := range map[string]struct {
		raw    string
		closed bool
	}{
		"HTTP/1.0 without Host":   {"GET " + path + " HTTP/1.0\r\n\r\n", true},
		"Connection: TE, close":   {"GET " + path + " HTTP/1.1\r\nHost: t\r\nConnection: TE, close\r\n\r\n", true},
		"Connection: Close":       {"GET " + path + " HTTP/1.1\r\nHost: t\r\nConnection: Close\r\n\r\n", true},
		"keep-alive by default":   {"GET " + path + " HTTP/1.1\r\nHost: t\r\n\r\n", false},
		"HTTP/1.0 and keep-alive": {"GET " + path + " HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", false},
	} {
		if status, closed := rawExchange(t, addr, c.raw); status != 200 || closed != c.closed {
			t.Errorf("%s: status %d, closed %v; want 200, closed %v", name, status, closed, c.closed)
		}
	}
}

// TestHTTPRealIPForms: from a trusted proxy, the real-IP header's usual
// forms name the client; a value that names no address is refused with a
// failure reason and counted, and the ip parameter never stands in for it.
func TestHTTPRealIPForms(t *testing.T) {
	d := startTracker(t, func(c *config.Config) {
		c.HTTP.RealIPHeader = "Forwarded"
		c.HTTP.TrustedProxies = []string{"127.0.0.1/32"}
	})
	base := d.HTTPAddrs()[0].String()
	hash := tt.Hash("real-ip-forms")
	send := func(port int, forwarded string) map[string]any {
		return announceWithHeader(t, announceURL(base, hash, port, 1, "&compact=0&ip=192.0.2.99"), "Forwarded", forwarded)
	}
	before, _ := tt.Lookup(tt.Vars(t, d.StatsAddr().String()), "trakx.http.bad_request")
	bad := []string{"unknown", "for=", "for=_hidden", "garbage", ""}
	for i, v := range bad {
		if r := send(1000+i, v); r["failure reason"] == nil {
			t.Errorf("Forwarded: %q was accepted: %v", v, r)
		}
	}
	after, _ := tt.Lookup(tt.Vars(t, d.StatsAddr().String()), "trakx.http.bad_request")
	if after-before != float64(len(bad)) {
		t.Errorf("bad_request rose by %v for %d refusals", after-before, len(bad))
	}
	send(2000, `for="[2001:db8::7]:5678"`)
	send(2001, "for=203.0.113.8:4000;proto=http")
	if ips := peerPorts(send(2002, "for=198.51.100.9")); ips["203.0.113.8"] != 2001 || ips["2001:db8::7"] != 2000 || len(ips) != 2 {
		t.Fatalf("peers %v: want the two addresses the proxy named, and no refused one", ips)
	}
}

// TestHTTPMaxRequestsPerConnection: the last request a connection may
// carry is answered with Connection: close, and the connection closes.
func TestHTTPMaxRequestsPerConnection(t *testing.T) {
	d := startTracker(t, func(c *config.Config) { c.HTTP.MaxRequestsPerConnection = 3 })
	addr := d.HTTPAddrs()[0].String()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	path := strings.TrimPrefix(announceURL(addr, tt.Hash("per-connection"), 1, 1, ""), "http://"+addr)
	io.WriteString(conn, strings.Repeat("GET "+path+" HTTP/1.1\r\nHost: t\r\n\r\n", 4))
	rd := bufio.NewReader(conn)
	for i := 1; i <= 3; i++ {
		resp, err := http.ReadResponse(rd, nil)
		if err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || resp.Close != (i == 3) {
			t.Fatalf("reply %d: status %d, Connection: close %v", i, resp.StatusCode, resp.Close)
		}
	}
	if _, err := rd.ReadByte(); err != io.EOF {
		t.Fatalf("a fourth request was served on the connection: %v", err)
	}
}

// TestHTTPCapEvictsIdleConnections: at http.max_connections, a newcomer is
// admitted by closing the connection idle the longest (here keep-alive
// connections between requests), and counted; it is not turned away.
func TestHTTPCapEvictsIdleConnections(t *testing.T) {
	d := startTracker(t, func(c *config.Config) {
		c.HTTP.MaxConnections = 3
		c.HTTP.ReadTimeout = config.Duration{Duration: time.Minute}
	})
	addr := d.HTTPAddrs()[0].String()
	stats := d.StatsAddr().String()
	path := strings.TrimPrefix(announceURL(addr, tt.Hash("evict"), 1, 1, ""), "http://"+addr)
	var idle []*bufio.Reader
	for i := range 3 {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(conn, "GET "+path+" HTTP/1.1\r\nHost: t\r\n\r\n")
		rd := bufio.NewReader(conn)
		resp, err := http.ReadResponse(rd, nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("connection %d: %v %v", i, resp, err)
		}
		io.ReadAll(resp.Body)
		idle = append(idle, rd)
		tt.WaitForVar(t, stats, "trakx.http.connections", func(v float64) bool { return v == float64(i+1) })
	}
	// All three are idle keep-alive connections; the cap is reached.
	if status, closed := rawExchange(t, addr, "GET "+path+" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"); status != 200 || !closed {
		t.Fatalf("a newcomer at the cap: status %d", status)
	}
	if _, err := idle[0].ReadByte(); err != io.EOF {
		t.Fatalf("the oldest idle connection was not closed: %v", err)
	}
	if n, _ := tt.Lookup(tt.Vars(t, stats), "trakx.http.connections_evicted"); n != 1 {
		t.Fatalf("connections_evicted = %v", n)
	}
	if n, _ := tt.Lookup(tt.Vars(t, stats), "trakx.http.connections_refused"); n != 0 {
		t.Fatalf("connections_refused = %v", n)
	}
}
