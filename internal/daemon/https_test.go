package daemon_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/sirupsen/logrus"
	"github.com/trakx/trakx/internal/config"
	"github.com/trakx/trakx/internal/daemon"
	"github.com/trakx/trakx/internal/httpproto"
	tt "github.com/trakx/trakx/internal/trackertest"
)

// startHTTPS runs a tracker with HTTP and HTTPS listeners on loopback,
// serving a fresh certificate.
func startHTTPS(t *testing.T, edit func(*config.Config)) (*daemon.Daemon, *tt.Certificate) {
	t.Helper()
	cert := tt.WriteCertificate(t, t.TempDir(), "tracker", "trakx test")
	d := startTracker(t, func(c *config.Config) {
		c.HTTPS.Listen = []string{"127.0.0.1:0"}
		c.HTTPS.Cert, c.HTTPS.Key = cert.CertPath, cert.KeyPath
		if edit != nil {
			edit(c)
		}
	})
	return d, cert
}

// httpsClient trusts cert alone.
func httpsClient(cert *tt.Certificate) *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: cert.Pool}}}
}

// TestHTTPSServesTheSameTracker: an announce over HTTPS and one over HTTP
// are in one swarm; the scrape counts both; TLS is 1.2 or 1.3 with ALPN
// http/1.1, and a second connection resumes with a session ticket.
func TestHTTPSServesTheSameTracker(t *testing.T) {
	d, cert := startHTTPS(t, nil)
	base := d.HTTPSAddrs()[0].String()
	hash := tt.Hash("https-same-tracker")
	client := httpsClient(cert)
	u := strings.Replace(announceURL(base, hash, 1111, 0, "&event=started&compact=1"), "http://", "https://", 1)
	status, r := get(t, client, u)
	if status != 200 || r["complete"] != int64(1) {
		t.Fatalf("https announce: %d %v", status, r)
	}
	_, r = get(t, &http.Client{}, announceURL(d.HTTPAddrs()[0].String(), hash, 2222, 5, "&compact=1"))
	if r["peers"] != "\x7f\x00\x00\x01\x04\x57" {
		t.Fatalf("the HTTP peer does not get the HTTPS one: %v", r)
	}
	status, r = get(t, client, "https://"+base+"/scrape?info_hash="+urlHash(hash))
	files, _ := r["files"].(map[string]any)
	st, _ := files[string(hash[:])].(map[string]any)
	if status != 200 || st["complete"] != int64(1) || st["incomplete"] != int64(1) {
		t.Fatalf("https scrape: %d %v", status, r)
	}
	cache := tls.NewLRUClientSessionCache(4)
	for i, wantResumed := range []bool{false, true} {
		conn, err := tls.Dial("tcp", base, &tls.Config{RootCAs: cert.Pool, NextProtos: []string{"h2", "http/1.1"}, ClientSessionCache: cache})
		if err != nil {
			t.Fatal(err)
		}
		// A TLS 1.3 ticket arrives after the handshake: a request and
		// its reply bring it in.
		fmt.Fprintf(conn, "GET /scrape?info_hash=%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", urlHash(hash))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		st := conn.ConnectionState()
		conn.Close()
		if st.NegotiatedProtocol != "http/1.1" || st.Version < tls.VersionTLS12 || st.DidResume != wantResumed {
			t.Fatalf("connection %d: ALPN %q, version %x, resumed %v", i, st.NegotiatedProtocol, st.Version, st.DidResume)
		}
	}
	for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11} {
		conn, err := tls.Dial("tcp", base, &tls.Config{RootCAs: cert.Pool, MinVersion: v, MaxVersion: v})
		if err == nil {
			conn.Close()
			t.Fatalf("TLS version %x was accepted", v)
		}
	}
}

// urlHash is an info hash as a query string carries it.
func urlHash(h [20]byte) string {
	var b strings.Builder
	for _, c := range h {
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// TestHTTPSHostRules: http.allowed_hosts applies over HTTPS as over HTTP.
func TestHTTPSHostRules(t *testing.T) {
	d, cert := startHTTPS(t, func(c *config.Config) { c.HTTP.AllowedHosts = []string{"tracker.example"} })
	base := d.HTTPSAddrs()[0].String()
	resp, err := httpsClient(cert).Get("https://" + base + "/scrape?info_hash=" + urlHash(tt.Hash("x")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 421 {
		t.Fatalf("a request for another host got %d, want 421", resp.StatusCode)
	}
}

// TestHTTPSRealClients: Python's ssl and urllib, and curl, announce over
// HTTPS trusting the test certificate alone.
func TestHTTPSRealClients(t *testing.T) {
	d, cert := startHTTPS(t, nil)
	u := strings.Replace(announceURL(d.HTTPSAddrs()[0].String(), tt.Hash("https-real-clients"), 3333, 0, "&compact=1"), "http://", "https://", 1)
	python := tt.NeedCommand(t, tt.Python, "python3")
	script := `import ssl, sys, urllib.request
ctx = ssl.create_default_context(cafile=sys.argv[1])
r = urllib.request.urlopen(sys.argv[2], context=ctx)
sys.stdout.buffer.write(r.read())`
	out, err := exec.Command(python, "-c", script, cert.CertPath, u).CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("8:completei1e")) {
		t.Fatalf("python: %v: %q", err, out)
	}
	curl := tt.NeedCommand(t, "curl", "curl")
	out, err = exec.Command(curl, "-sS", "--cacert", cert.CertPath, u).CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("8:completei1e")) {
		t.Fatalf("curl: %v: %q", err, out)
	}
}

// TestWSSMeetsWS: a browser peer over wss:// and one over ws:// are in
// one WebSocket swarm: the offer of one reaches the other.
func TestWSSMeetsWS(t *testing.T) {
	d, cert := startHTTPS(t, nil)
	dialer := ws.Dialer{Timeout: 5 * time.Second, TLSConfig: &tls.Config{RootCAs: cert.Pool}}
	conn, _, _, err := dialer.Dial(context.Background(), "wss://"+d.HTTPSAddrs()[0].String()+"/announce")
	if err != nil {
		t.Fatalf("upgrade over TLS: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	secure := &wsClient{t: t, conn: conn}
	plain := dialWS(t, d.HTTPAddrs()[0].String())
	h := tt.Hash("wss-meets-ws")
	hash := string(h[:])
	secure.send(map[string]any{"action": "announce", "info_hash": hash, "peer_id": "-WW0001-secure000001", "numwant": 5, "left": 0, "offers": []any{}})
	if m := secure.recv(); m["complete"] != float64(1) {
		t.Fatalf("wss announce: %v", m)
	}
	offer := map[string]any{"offer_id": "offer000000000000001", "offer": map[string]any{"type": "offer", "sdp": "v=0"}}
	plain.send(map[string]any{"action": "announce", "info_hash": hash, "peer_id": "-WW0001-plain0000001", "numwant": 5, "left": 10, "offers": []any{offer}})
	if m := plain.recv(); m["complete"] != float64(1) || m["incomplete"] != float64(1) {
		t.Fatalf("ws announce: %v", m)
	}
	if m := secure.recv(); m["offer_id"] != "offer000000000000001" || m["peer_id"] != "-WW0001-plain0000001" {
		t.Fatalf("the wss peer got %v, want the ws peer's offer", m)
	}
}

// TestHTTPSReloadSwapsTheCertificate: after SIGHUP's reload, new
// handshakes get the new certificate while a connection open before keeps
// being served; a pair that does not load keeps the old one.
func TestHTTPSReloadSwapsTheCertificate(t *testing.T) {
	dir := t.TempDir()
	first := tt.WriteCertificate(t, dir, "tracker", "first")
	text := baseConfig(t) + "[https]\nlisten = [\"127.0.0.1:0\"]\ncert = \"tracker.crt\"\nkey = \"tracker.key\"\n"
	path := filepath.Join(dir, "trakx.toml")
	os.WriteFile(path, []byte(text), 0o644)
	d := startFromFile(t, path)
	base := d.HTTPSAddrs()[0].String()
	open, err := tls.Dial("tcp", base, &tls.Config{RootCAs: first.Pool})
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	tt.WriteCertificate(t, dir, "tracker", "second") // over the first's files
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	if cn := servedName(t, base); cn != "second" {
		t.Fatalf("a new handshake after the reload got %q, want the second certificate", cn)
	}
	if cn := open.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "first" {
		t.Fatalf("the open connection has %q", cn)
	}
	fmt.Fprintf(open, "GET /scrape?info_hash=%s HTTP/1.1\r\nHost: x\r\n\r\n", urlHash(tt.Hash("x")))
	if resp, err := http.ReadResponse(bufio.NewReader(open), nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("the connection open across the reload: %v %v", resp, err)
	}
	os.WriteFile(filepath.Join(dir, "tracker.key"), first.KeyPEM, 0o600) // not second's key
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	if cn := servedName(t, base); cn != "second" {
		t.Fatalf("after a reload with a mismatched key, handshakes get %q, want the second (kept) certificate", cn)
	}
}

// servedName is the common name of the certificate a new handshake gets.
func servedName(t *testing.T, addr string) string {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
}

// startFromFile runs a tracker from the configuration file at path.
func startFromFile(t *testing.T, path string) *daemon.Daemon {
	t.Helper()
	return startLogged(t, path, io.Discard)
}

// startLogged starts a tracker from the configuration file at path, its
// log to w, stopped when the test ends.
func startLogged(t *testing.T, path string, w io.Writer) *daemon.Daemon {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	log.SetOutput(w)
	d := daemon.New(cfg, path, "test", log)
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Stop() })
	return d
}

// TestWSSRealClient: Node's ws client, as WebTorrent uses it, announces
// over wss:// trusting the test certificate alone
// (test/webtorrent/wss-announce.mjs, which CI also runs through nginx).
func TestWSSRealClient(t *testing.T) {
	d, cert := startHTTPS(t, nil)
	dir, _ := filepath.Abs("../../test/webtorrent")
	node := tt.NeedCommand(t, "node", "nodejs")
	tt.NeedFile(t, filepath.Join(dir, "node_modules", "ws"), "test/webtorrent/node_modules/ws (npm ci in test/webtorrent)")
	cmd := exec.Command(node, filepath.Join(dir, "wss-announce.mjs"), "wss://"+d.HTTPSAddrs()[0].String()+"/announce")
	cmd.Env = append(os.Environ(), "NODE_EXTRA_CA_CERTS="+cert.CertPath)
	if out, err := cmd.CombinedOutput(); err != nil || !bytes.Contains(out, []byte("wss announce answered")) {
		t.Fatalf("node: %v: %s", err, out)
	}
}

// TestHTTPSKeepAlivePipeliningAndCap: pipelined requests on one TLS
// connection are answered in order; http.max_connections counts HTTPS
// connections: at the cap a new one evicts the idle one, and one over it
// when none is idle (WebSockets are never) is answered 503.
func TestHTTPSKeepAlivePipeliningAndCap(t *testing.T) {
	d, cert := startHTTPS(t, func(c *config.Config) { c.HTTP.MaxConnections = 2 })
	base := d.HTTPSAddrs()[0].String()
	dial := func() *tls.Conn {
		conn, err := tls.Dial("tcp", base, &tls.Config{RootCAs: cert.Pool})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	first := dial()
	req := fmt.Sprintf("GET /scrape?info_hash=%s HTTP/1.1\r\nHost: x\r\n\r\n", urlHash(tt.Hash("pipelined")))
	fmt.Fprint(first, req+req+"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n")
	r := bufio.NewReader(first)
	for i, want := range []int{200, 200, 404} {
		resp, err := http.ReadResponse(r, nil)
		if err != nil || resp.StatusCode != want {
			t.Fatalf("pipelined reply %d: %v %v, want %d", i, resp, err, want)
		}
		io.Copy(io.Discard, resp.Body)
	}
	dialer := ws.Dialer{Timeout: 5 * time.Second, TLSConfig: &tls.Config{RootCAs: cert.Pool}}
	for range 2 { // the second takes the idle first's slot
		conn, _, _, err := dialer.Dial(context.Background(), "wss://"+base+"/announce")
		if err != nil {
			t.Fatalf("a WebSocket at the cap: %v", err)
		}
		t.Cleanup(func() { conn.Close() })
	}
	first.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := r.Read(make([]byte, 1)); n != 0 || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the idle connection was not evicted: %d %v", n, err)
	}
	tt.WaitFor(t, "two connections open, one evicted", func() bool {
		vars := tt.Vars(t, d.StatsAddr().String())
		open, _ := tt.Lookup(vars, "trakx.http.connections")
		evicted, _ := tt.Lookup(vars, "trakx.http.connections_evicted")
		return open == 2 && evicted == 1
	})
	third := dial()
	resp, err := http.ReadResponse(bufio.NewReader(third), nil)
	if err != nil || resp.StatusCode != 503 {
		t.Fatalf("a third connection over a cap of 2: %v %v, want 503", resp, err)
	}
}

// TestHTTPSBudgetAndRealIP: the per-IP budget, shared with HTTP, charges
// HTTPS requests, and a trusted proxy's real-IP header names the client
// over HTTPS as over HTTP.
func TestHTTPSBudgetAndRealIP(t *testing.T) {
	d, cert := startHTTPS(t, func(c *config.Config) {
		c.HTTP.RealIPHeader = "X-Forwarded-For"
		c.HTTP.TrustedProxies = []string{"127.0.0.1/32"}
		c.Limits.PerIPRate, c.Limits.PerIPBurst = 0.0001, 3
	})
	base := "https://" + d.HTTPSAddrs()[0].String()
	hash := tt.Hash("https-real-ip")
	client := httpsClient(cert)
	send := func(port int, xff string) (int, map[string]any) {
		req, _ := http.NewRequest("GET", strings.Replace(announceURL(d.HTTPSAddrs()[0].String(), hash, port, 1, "&compact=0"), "http://", "https://", 1), nil)
		req.Header.Set("X-Forwarded-For", xff)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		v, _ := httpproto.Decode(body)
		r, _ := v.(map[string]any)
		return resp.StatusCode, r
	}
	send(1000, "198.51.100.7")
	if _, r := send(2000, "198.51.100.8"); peerPorts(r)["198.51.100.7"] != 1000 {
		t.Fatalf("the proxied client's address is not the header's: %v", r)
	}
	// 198.51.100.7 spent one of its three; the proxy's own address none.
	send(1001, "198.51.100.7")
	send(1002, "198.51.100.7")
	if status, _ := send(1003, "198.51.100.7"); status != 429 {
		t.Fatalf("a fourth request from a source with a burst of 3 got %d, want 429", status)
	}
	if resp, err := client.Get(base + "/scrape?info_hash=" + urlHash(hash)); err != nil || resp.StatusCode != 200 {
		t.Fatalf("the proxy's own request, a source of its own: %v %v", resp, err)
	}
}

// TestHTTPSTimeouts: http.read_timeout bounds the TLS handshake (a client
// that connects and says nothing) and an idle keep-alive connection.
func TestHTTPSTimeouts(t *testing.T) {
	d, cert := startHTTPS(t, func(c *config.Config) { c.HTTP.ReadTimeout = config.Duration{Duration: time.Second} })
	base := d.HTTPSAddrs()[0].String()
	silent, err := net.Dial("tcp", base)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	idle, err := tls.Dial("tcp", base, &tls.Config{RootCAs: cert.Pool})
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	fmt.Fprintf(idle, "GET /scrape?info_hash=%s HTTP/1.1\r\nHost: x\r\n\r\n", urlHash(tt.Hash("idle")))
	r := bufio.NewReader(idle)
	if resp, err := http.ReadResponse(r, nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v", resp, err)
	} else {
		io.Copy(io.Discard, resp.Body)
	}
	start := time.Now()
	for name, conn := range map[string]io.Reader{"a silent connection": silent, "an idle keep-alive connection": r} {
		silent.SetReadDeadline(start.Add(10 * time.Second))
		idle.SetReadDeadline(start.Add(10 * time.Second))
		if _, err := io.Copy(io.Discard, conn); err != nil {
			t.Fatalf("%s was not closed by the tracker: %v", name, err)
		}
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Fatalf("closed after %v, with a read timeout of 1s", waited)
	}
}

// TestStopWithWSSPeers: a wss:// peer that does not answer the tracker's
// goodbye (close frame) does not hold shutdown up for the WebSocket
// linger: it is cut off within HTTPS's shutdown grace, as ws:// peers are.
func TestStopWithWSSPeers(t *testing.T) {
	d, cert := startHTTPS(t, nil)
	dialer := ws.Dialer{Timeout: 5 * time.Second, TLSConfig: &tls.Config{RootCAs: cert.Pool}}
	conn, _, _, err := dialer.Dial(context.Background(), "wss://"+d.HTTPSAddrs()[0].String()+"/announce")
	if err != nil {
		t.Fatalf("upgrade over TLS: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	peer := &wsClient{t: t, conn: conn}
	h := tt.Hash("wss-stop")
	peer.send(map[string]any{"action": "announce", "info_hash": string(h[:]), "peer_id": "-WW0001-stopping0001", "numwant": 5, "left": 0, "offers": []any{}})
	if m := peer.recv(); m["complete"] != float64(1) {
		t.Fatalf("wss announce: %v", m)
	}
	start := time.Now()
	d.Stop() // the peer reads nothing more, and never closes
	if took := time.Since(start); took > 1500*time.Millisecond {
		t.Fatalf("Stop took %v with a silent wss:// peer", took)
	}
}
