// Package trackertest has small tracker clients for black-box tests: they
// speak BEP 15 over a real UDP socket and read the stats endpoint.
package trackertest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/httpproto"
	"github.com/trakx/trakx/internal/udpproto"
)

// UDPClient is one BEP 15 client on its own socket.
type UDPClient struct {
	t    testing.TB
	Conn *net.UDPConn
	tx   uint32
	ID   uint64 // connection id from the last Connect
}

// DialUDP opens a client socket to addr.
func DialUDP(t testing.TB, addr string) *UDPClient {
	t.Helper()
	return DialUDPFrom(t, "", addr)
}

// DialUDPFrom opens a client socket to addr from the local address from
// ("" for any): 127.0.0.2, 127.0.0.3, ... act as distinct clients, since
// all of 127.0.0.0/8 is local on Linux.
func DialUDPFrom(t testing.TB, from, addr string) *UDPClient {
	t.Helper()
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	var laddr *net.UDPAddr
	if from != "" {
		laddr = &net.UDPAddr{IP: net.ParseIP(from)}
	}
	c, err := net.DialUDP("udp", laddr, raddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &UDPClient{t: t, Conn: c, tx: 1000}
}

// IPv6 reports whether the client talks over IPv6.
func (c *UDPClient) IPv6() bool {
	return c.Conn.LocalAddr().(*net.UDPAddr).IP.To4() == nil
}

// Exchange sends pkt (whose transaction id is tx) and returns the reply
// carrying tx. A reply with another transaction id fails the test: nothing
// else should be in flight.
func (c *UDPClient) Exchange(pkt []byte, tx uint32) []byte {
	c.t.Helper()
	if _, err := c.Conn.Write(pkt); err != nil {
		c.t.Fatal(err)
	}
	buf := make([]byte, 4096)
	c.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Conn.Read(buf)
	if err != nil {
		c.t.Fatalf("no reply to action %x: %v", pkt[8:12], err)
	}
	h, err := udpproto.ParseResponseHeader(buf[:n])
	if err != nil || h.TransactionID != tx {
		c.t.Fatalf("unexpected reply %x (want transaction %d)", buf[:n], tx)
	}
	return buf[:n]
}

// NextTx returns a fresh transaction id.
func (c *UDPClient) NextTx() uint32 { c.tx++; return c.tx }

// Connect gets a connection id.
func (c *UDPClient) Connect() uint64 {
	c.t.Helper()
	tx := c.NextTx()
	reply := c.Exchange(udpproto.AppendConnectRequest(nil, tx), tx)
	if h, _ := udpproto.ParseResponseHeader(reply); h.Action != udpproto.ActionConnect {
		c.t.Fatalf("connect answered with %x", reply)
	}
	id, err := udpproto.ParseConnectResponse(reply)
	if err != nil {
		c.t.Fatal(err)
	}
	c.ID = id
	return id
}

// Announce sends an announce and returns the reply, or the text of an
// error reply as an error.
func (c *UDPClient) Announce(req *bittorrent.AnnounceRequest) (*bittorrent.AnnounceResponse, error) {
	c.t.Helper()
	tx := c.NextTx()
	reply := c.Exchange(udpproto.AppendAnnounceRequest(nil, c.ID, tx, req), tx)
	if err := asError(reply); err != nil {
		return nil, err
	}
	var resp bittorrent.AnnounceResponse
	if err := udpproto.ParseAnnounceResponse(reply, &resp, c.IPv6()); err != nil {
		c.t.Fatalf("announce reply %x: %v", reply, err)
	}
	return &resp, nil
}

// Scrape sends a scrape and returns the figures, or an error reply's text.
func (c *UDPClient) Scrape(hashes ...bittorrent.InfoHash) ([]bittorrent.ScrapeStats, error) {
	c.t.Helper()
	tx := c.NextTx()
	reply := c.Exchange(udpproto.AppendScrapeRequest(nil, c.ID, tx, hashes), tx)
	if err := asError(reply); err != nil {
		return nil, err
	}
	st, err := udpproto.ParseScrapeResponse(reply, nil)
	if err != nil {
		c.t.Fatalf("scrape reply %x: %v", reply, err)
	}
	return st, nil
}

func asError(reply []byte) error {
	if h, _ := udpproto.ParseResponseHeader(reply); h.Action == udpproto.ActionError {
		msg, _ := udpproto.ParseErrorResponse(reply)
		return errors.New(msg)
	}
	return nil
}

// Vars fetches /debug/vars from a stats address.
func Vars(t testing.TB, statsAddr string) map[string]any {
	t.Helper()
	resp, err := http.Get("http://" + statsAddr + "/debug/vars")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var vars map[string]any
	if err := json.Unmarshal(body, &vars); err != nil {
		t.Fatalf("stats are not JSON: %v\n%s", err, body)
	}
	return vars
}

// Lookup follows a dotted path such as "trakx.udp.connect" into the vars.
func Lookup(vars map[string]any, path string) (float64, bool) {
	var v any = vars
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return 0, false
		}
		v = m[k]
	}
	f, ok := v.(float64)
	return f, ok
}

// WaitForVar polls the stats until the number at path satisfies ok, for at
// most five seconds.
func WaitForVar(t testing.TB, statsAddr, path string, ok func(float64) bool) float64 {
	t.Helper()
	// Generous: it bounds only a failing wait, and CI machines are shared.
	deadline := time.Now().Add(15 * time.Second)
	for {
		v, found := Lookup(Vars(t, statsAddr), path)
		if found && ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is %v (found %v), still not as expected after 15s", path, v, found)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Hash makes a distinct info hash from a name.
func Hash(name string) bittorrent.InfoHash {
	var h bittorrent.InfoHash
	copy(h[:], fmt.Sprintf("%-20s", name))
	return h
}

// GetBencoded fetches a URL from a tracker and decodes its bencoded body,
// checking the headers every reply must carry.
func GetBencoded(t testing.TB, client *http.Client, u string) (int, map[string]any) {
	t.Helper()
	resp, err := client.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain" {
		t.Errorf("Content-Type %q", ct)
	}
	if resp.ContentLength != int64(len(body)) {
		t.Errorf("Content-Length %d for %d bytes", resp.ContentLength, len(body))
	}
	v, err := httpproto.Decode(body)
	if err != nil {
		t.Fatalf("body %q is not bencode: %v", body, err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("body %q is not a dictionary", body)
	}
	return resp.StatusCode, m
}

// ReadWSFrame reads one WebSocket frame from a server (unmasked), its
// payload whole, up to 1 MiB.
func ReadWSFrame(r io.Reader) (ws.Frame, error) {
	h, err := ws.ReadHeader(r)
	if err != nil {
		return ws.Frame{}, err
	}
	if h.Length > 1<<20 {
		return ws.Frame{}, fmt.Errorf("a frame of %d bytes", h.Length)
	}
	f := ws.Frame{Header: h, Payload: make([]byte, h.Length)}
	_, err = io.ReadFull(r, f.Payload)
	return f, err
}
