package daemon_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
	tt "github.com/trakx/trakx/internal/trackertest"
	"github.com/trakx/trakx/internal/udpproto"
)

// httpFrom is an HTTP client whose connections come from the local
// address ip, so that it acts as a distinct client.
func httpFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		DisableKeepAlives: true,
	}}
}

// withHTTP is baseConfig with more keys in its [http] section.
func withHTTP(t *testing.T, keys string) string {
	return strings.Replace(baseConfig(t), "[http]\n", "[http]\n"+keys, 1)
}

// swarmCounts are the whole tracker's seeders and leechers.
func swarmCounts(t *testing.T, d interface{ StatsAddr() net.Addr }) (seeders, leechers float64) {
	t.Helper()
	vars := tt.Vars(t, d.StatsAddr().String())
	seeders, _ = tt.Lookup(vars, "trakx.swarm.seeders")
	leechers, _ = tt.Lookup(vars, "trakx.swarm.leechers")
	return seeders, leechers
}

// expectSilence sends pkt and asserts that, once the tracker has counted
// it as a rate refusal (refused.rate reaches want), no reply is waiting.
func expectSilence(t *testing.T, c *tt.UDPClient, statsAddr string, pkt []byte, want float64) {
	t.Helper()
	if _, err := c.Conn.Write(pkt); err != nil {
		t.Fatal(err)
	}
	tt.WaitForVar(t, statsAddr, "trakx.refused.rate", func(v float64) bool { return v >= want })
	c.Conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	buf := make([]byte, 2048)
	if n, err := c.Conn.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a packet over budget was answered: %x %v", buf[:n], err)
	}
}

// TestPerIPBudget: a budget of 4 requests (and practically no refill) per
// source, shared by UDP and HTTP. Every request counts, malformed or not;
// over budget, UDP gets silence and HTTP a 429 and a closed connection;
// other sources are unaffected.
func TestPerIPBudget(t *testing.T) {
	d, _ := fileTracker(t, baseConfig(t)+"[limits]\nper_ip_rate = 0.0001\nper_ip_burst = 4\n")
	udpAddr, httpAddr, stats := d.UDPAddrs()[0].String(), d.HTTPAddrs()[0].String(), d.StatsAddr().String()
	noisy := tt.DialUDPFrom(t, "127.0.0.2", udpAddr)
	noisy.Connect()                                     // 1
	noisy.Announce(peerReq(tt.Hash("budget"), 1, 0, 0)) // 2
	noisy.Conn.Write([]byte("garbage"))                 // 3: malformed, counted all the same
	tt.WaitForVar(t, stats, "trakx.udp.bad_request", func(v float64) bool { return v == 1 })
	if _, err := noisy.Scrape(tt.Hash("budget")); err != nil { // 4
		t.Fatal(err)
	}
	tx := noisy.NextTx()
	expectSilence(t, noisy, stats, udpproto.AppendConnectRequest(nil, tx), 1)
	expectSilence(t, noisy, stats, []byte("garbage"), 2) // a rate refusal only
	vars := tt.Vars(t, stats)
	if bad, _ := tt.Lookup(vars, "trakx.udp.bad_request"); bad != 1 {
		t.Fatalf("a refused packet was also counted as malformed: bad_request %v", bad)
	}

	// The budget is the address's, whatever the protocol.
	resp, r, closed := rawReply(t, "127.0.0.2", httpAddr, "GET /scrape HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != 429 || !strings.Contains(fmt.Sprint(r["failure reason"]), "too many requests") || !closed {
		t.Fatalf("HTTP over budget: %d %v closed %v", resp.StatusCode, r, closed)
	}
	if resp.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	// Another address is served, over both protocols.
	other := tt.DialUDPFrom(t, "127.0.0.3", udpAddr)
	other.Connect()
	if _, err := other.Announce(peerReq(tt.Hash("budget"), 2, 0, 0)); err != nil {
		t.Fatal(err)
	}
	if status, r := get(t, httpFrom("127.0.0.4"), announceURL(httpAddr, tt.Hash("budget"), 3, 0, "")); status != 200 || r["failure reason"] != nil {
		t.Fatalf("another address over HTTP: %d %v", status, r)
	}
	vars = tt.Vars(t, stats)
	for path, want := range map[string]float64{"trakx.refused.rate": 3, "trakx.refused.host": 0, "trakx.refused.client": 0,
		"trakx.udp.connect": 2, "trakx.udp.announce": 2, "trakx.udp.scrape": 1, "trakx.http.error": 0, "trakx.http.announce": 1} {
		if got, _ := tt.Lookup(vars, path); got != want {
			t.Errorf("%s = %v, want %v", path, got, want)
		}
	}
}

// TestBudgetBehindAProxy: behind a trusted proxy the address charged is
// the client's from the real-IP header, so the proxy is not throttled.
func TestBudgetBehindAProxy(t *testing.T) {
	d, _ := fileTracker(t, withHTTP(t, "real_ip_header = \"X-Forwarded-For\"\ntrusted_proxies = [\"127.0.0.1\"]\n")+
		"[limits]\nper_ip_rate = 0.0001\nper_ip_burst = 2\n")
	base := d.HTTPAddrs()[0].String()
	u := announceURL(base, tt.Hash("proxied"), 1, 0, "")
	for i := range 2 {
		if r := announceWithHeader(t, u, "X-Forwarded-For", "198.51.100.7"); r["failure reason"] != nil {
			t.Fatalf("request %d within budget: %v", i, r)
		}
	}
	resp, _, _ := rawReply(t, "127.0.0.1", base, "GET /announce HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 198.51.100.7\r\n\r\n")
	if resp.StatusCode != 429 {
		t.Fatalf("third request of one client behind the proxy: %d", resp.StatusCode)
	}
	for i := range 5 { // other clients of the same proxy
		if r := announceWithHeader(t, u, "X-Forwarded-For", fmt.Sprintf("198.51.100.%d", 20+i)); r["failure reason"] != nil {
			t.Fatalf("another client behind the proxy: %v", r)
		}
	}
}

// TestAllowedHosts: a request for a host not listed gets 421 and touches
// no swarm; names match without case, port or trailing dot.
func TestAllowedHosts(t *testing.T) {
	d, _ := fileTracker(t, withHTTP(t, "allowed_hosts = [\"Tracker.Example.org\", \"[::1]\", \"192.0.2.1:80\"]\n"))
	addr, stats := d.HTTPAddrs()[0].String(), d.StatsAddr().String()
	hash := tt.Hash("hosts")
	q := "/announce?info_hash=" + url.QueryEscape(string(hash[:])) + "&peer_id=-TT0001-000000000001&port=1&left=0&uploaded=0&downloaded=0"
	for _, host := range []string{"tracker.example.org", "TRACKER.example.ORG:6969", "tracker.example.org.", "[::1]:6969", "192.0.2.1"} {
		resp, r, _ := rawReply(t, "127.0.0.1", addr, "GET "+q+" HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n\r\n")
		if resp.StatusCode != 200 || r["failure reason"] != nil {
			t.Fatalf("Host %s: %d %v", host, resp.StatusCode, r)
		}
	}
	refused := 0
	for _, raw := range []string{
		"GET " + q + "&port=2 HTTP/1.1\r\nHost: cname.example.net\r\n\r\n",
		"GET " + q + "&port=3 HTTP/1.1\r\nHost: tracker.example.org.evil\r\n\r\n",
		"GET " + q + "&port=4 HTTP/1.0\r\n\r\n", // HTTP/1.0 with no Host
		"GET /scrape?info_hash=" + url.QueryEscape(string(hash[:])) + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
		"GET /nowhere HTTP/1.1\r\nHost: cname.example.net\r\n\r\n",
	} {
		resp, r, closed := rawReply(t, "127.0.0.1", addr, raw)
		if resp.StatusCode != 421 || !strings.Contains(fmt.Sprint(r["failure reason"]), "host") || !closed {
			t.Fatalf("%q: %d %v closed %v", raw, resp.StatusCode, r, closed)
		}
		refused++
	}
	// HTTP/1.1 with no Host is malformed whatever the list says.
	if status, _ := rawExchange(t, addr, "GET "+q+" HTTP/1.1\r\n\r\n"); status != 400 {
		t.Fatalf("HTTP/1.1 without Host: %d", status)
	}
	if seeders, _ := swarmCounts(t, d); seeders != 1 { // port 1; ports 2 to 4 refused
		t.Fatalf("refused requests touched the swarm: %v seeders", seeders)
	}
	vars := tt.Vars(t, stats)
	if got, _ := tt.Lookup(vars, "trakx.refused.host"); got != float64(refused) {
		t.Fatalf("refused.host = %v, want %d", got, refused)
	}
}

// TestClientFilter: deny wins over allow; a non-empty allow list serves
// only its prefixes; refusals name the reason over both protocols and add
// nothing to the swarm.
func TestClientFilter(t *testing.T) {
	d, _ := fileTracker(t, baseConfig(t)+"[access]\nclient_allow = [\"-qB\", \"-TR\"]\nclient_deny = [\"-qB46\"]\n")
	udpAddr, httpAddr, stats := d.UDPAddrs()[0].String(), d.HTTPAddrs()[0].String(), d.StatsAddr().String()
	hash := tt.Hash("clients")
	c := tt.DialUDP(t, udpAddr)
	c.Connect()
	announce := func(peerID string, port uint16) error {
		req := peerReq(hash, port, 1, 0)
		copy(req.PeerID[:], peerID)
		_, err := c.Announce(req)
		return err
	}
	if err := announce("-qB4500-abcdefghijkl", 1); err != nil {
		t.Fatalf("allowed client: %v", err)
	}
	if err := announce("-TR3000-abcdefghijkl", 2); err != nil {
		t.Fatalf("allowed client: %v", err)
	}
	for i, id := range []string{"-qB4610-abcdefghijkl", "-XL0019-abcdefghijkl", "-qb4500-abcdefghijkl"} {
		if err := announce(id, uint16(10+i)); err == nil || err.Error() != bittorrent.ErrClientNotAllowed.Message {
			t.Fatalf("%s over UDP: %v", id, err)
		}
	}
	// Over HTTP the peer id arrives percent-encoded, with bytes that are
	// not text.
	for id, want := range map[string]bool{"-qB4610-\xff\x00abcdefghij": false, "-TR4050-\xff\x00abcdefghij": true} {
		u := fmt.Sprintf("http://%s/announce?info_hash=%s&peer_id=%s&port=20&left=1", httpAddr, url.QueryEscape(string(hash[:])), url.QueryEscape(id))
		status, r := get(t, http.DefaultClient, u)
		if status != 200 || (r["failure reason"] == nil) != want {
			t.Fatalf("%q over HTTP: %d %v", id, status, r)
		}
		if !want && r["failure reason"] != bittorrent.ErrClientNotAllowed.Message {
			t.Fatalf("refusal says %v", r["failure reason"])
		}
	}
	if seeders, leechers := swarmCounts(t, d); seeders != 0 || leechers != 3 {
		t.Fatalf("refused clients touched the swarm: %v seeders, %v leechers", seeders, leechers)
	}
	if got, _ := tt.Lookup(tt.Vars(t, stats), "trakx.refused.client"); got != 4 {
		t.Fatalf("refused.client = %v, want 4", got)
	}
}

// TestDefencesReload: SIGHUP's reload turns on and changes all three
// without a restart, keeps the budgets' buckets and loses no peer.
func TestDefencesReload(t *testing.T) {
	d, cfgPath := fileTracker(t, baseConfig(t))
	udpAddr, httpAddr := d.UDPAddrs()[0].String(), d.HTTPAddrs()[0].String()
	hash := tt.Hash("reloaded")
	c := tt.DialUDPFrom(t, "127.0.0.5", udpAddr)
	c.Connect()
	if _, err := c.Announce(peerReq(hash, 1, 0, 0)); err != nil {
		t.Fatal(err)
	}
	reload := func(text string) {
		t.Helper()
		if err := os.WriteFile(cfgPath, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := d.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	cfgText, _ := os.ReadFile(cfgPath) // the listeners' ports stay as they are
	base := string(cfgText)
	reload(strings.Replace(base, "[http]\n", "[http]\nallowed_hosts = [\"tracker.example.org\"]\n", 1) +
		"[limits]\nper_ip_rate = 0.0001\nper_ip_burst = 3\n[access]\nclient_deny = [\"-TT\"]\n")
	if _, err := c.Announce(peerReq(hash, 2, 0, 0)); err == nil || err.Error() != bittorrent.ErrClientNotAllowed.Message { // 1
		t.Fatalf("client filter after reload: %v", err)
	}
	if status, _ := rawExchange(t, httpAddr, "GET /scrape HTTP/1.1\r\nHost: other.example\r\n\r\n"); status != 421 {
		t.Fatalf("host list after reload: %d", status)
	}
	c.Scrape(hash) // 2
	c.Scrape(hash) // 3: the bucket is empty
	// A larger burst keeps what the bucket has spent: one more request
	// only, not a fresh four.
	reload(base + "[limits]\nper_ip_rate = 0.0001\nper_ip_burst = 4\ntracked_ips = 5000\n")
	if _, err := c.Scrape(hash); err != nil {
		t.Fatal(err)
	}
	expectSilence(t, c, d.StatsAddr().String(), udpproto.AppendConnectRequest(nil, c.NextTx()), 1)
	// Off again: served, and no peer was lost on the way.
	reload(base)
	if _, err := c.Announce(peerReq(hash, 3, 0, 0)); err != nil {
		t.Fatal(err)
	}
	if seeders, _ := swarmCounts(t, d); seeders != 2 {
		t.Fatalf("%v peers after reloads, want 2", seeders)
	}
	if status, _ := rawExchange(t, httpAddr, "GET /scrape HTTP/1.1\r\nHost: other.example\r\n\r\n"); status != 200 {
		t.Fatalf("host list after it was emptied: %d", status)
	}
}
