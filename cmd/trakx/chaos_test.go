package main

import (
	"compress/gzip"
	endian "encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/httpproto"
	tt "github.com/trakx/trakx/internal/trackertest"
)

// The chaos test's timing, and why its bounds are honest. The tracker runs
// with tracker.peer_ttl = 3s, which makes its expiry sweep run every
// second (daemon.expiryInterval: max(ttl/16, 1s)). The store stamps a peer
// with the whole second of its last announce, and a sweep drops it when
// the difference of whole seconds exceeds the TTL. For a real age a, that
// difference is more than a-1 and less than a+1. So:
//
//   - Lower bound. A peer whose announce was sent less than chaosFresh
//     (2s) before the scrape's reply arrived is younger than 2s when
//     counted: its whole-second age is at most 2, which neither "> 3" nor
//     ">= 3" drops. Every peer announced in the last 2s (and not stopped
//     since) is counted.
//   - Upper bound. A peer 4s old has a whole-second age of at least 4, so
//     the next sweep drops it. Sweeps come each second, and at worst two
//     seconds apart (the sweeper skips a tick that comes a hair short of
//     its interval), so a peer is gone at most about 6s after the reply
//     to its last announce; chaosStale (7s) leaves a second more for
//     scheduling on a loaded machine. No scrape counts a peer whose last
//     announce was answered more than 7s before the scrape was sent, nor
//     one whose stop was answered.
//
// Delays on the test's side only widen these windows: an announce is
// stamped from before it was sent to after its reply, a scrape likewise.
// The bounds hold whether the store counts wall-clock or monotonic seconds.
const (
	chaosTTL   = 3 * time.Second
	chaosFresh = 2 * time.Second
	chaosStale = 7 * time.Second
	// chaosFullScrapeInterval is http.full_scrape_interval: a third of the
	// HTTP checks read a full scrape, as old as that.
	chaosFullScrapeInterval = time.Second
	// The random phase ends at whichever comes first.
	chaosSteps  = 600
	chaosBudget = 15 * time.Second
	// More than 64 peers of one family in one torrent: the list outgrows
	// the store's 64-peer size class.
	chaosBurst = 65
)

// TestChaos drives the real binary over HTTP and UDP, IPv4 and IPv6, with
// a peer TTL of 3s so that expiry sweeps run between the steps, and proves
// two things the whole way through: the process never dies, and every
// torrent's scrape count is at least the peers that announced in the last
// 2s (and did not stop) and at most those that announced in the last 7s.
//
// Phase 1 is the remote crash of issue 21 (defect 1), deterministically:
// one IPv6 peer keeps a torrent alive, 30 IPv4 peers join and stop, an
// expiry sweep runs, and one more IPv4 peer joins. Phase 2 is seeded
// random chaos: joins, re-announces, completions and stops from many
// source addresses and ports, bursts that grow one family of a torrent
// past 64 peers and then stop them all so that the family empties, a join
// to that family after the next sweep, and quiet spells in which peers
// expire. Phase 3 lets every peer expire, checks that each torrent empties,
// joins each torrent again in both families, and stops the tracker, which
// must exit cleanly. TRAKX_CHAOS_SEED=N replays a seed's choices (not
// its timing).
func TestChaos(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("TRAKX_CHAOS_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("TRAKX_CHAOS_SEED=%q: %v", s, err)
		}
		seed = n
	}
	t.Logf("chaos seed %d (TRAKX_CHAOS_SEED=%d replays it)", seed, seed)
	started := time.Now()
	p := startChaosTracker(t)
	c := newChaos(t, p, seed)

	c.defect1()
	p.checkAlive(t, "after phase 1 (issue 21, defect 1)")
	phase1 := time.Since(started)

	c.random()
	p.checkAlive(t, "after phase 2 (random)")
	phase2 := time.Since(started) - phase1

	c.drainAndRejoin()
	p.checkAlive(t, "after phase 3 (expiry and rejoin)")
	p.stop(t)
	t.Logf("phases took %v, %v and %v: %d announces (%d over UDP), %d scrapes checked (%d full), %d bursts (largest family %d peers counted at once), %d quiet spells",
		phase1.Round(time.Millisecond), phase2.Round(time.Millisecond), (time.Since(started) - phase1 - phase2).Round(time.Millisecond),
		c.announces, c.announcesUDP, c.checks, c.fullScrapes, c.bursts, c.largestBurst, c.quiets)
}

// chaosProc is the running tracker, its standard error collected in the
// background so that a crash's panic can be shown.
type chaosProc struct {
	tr                       *tracker
	udp4, udp6, http4, http6 string
	mu                       sync.Mutex
	stderr                   strings.Builder
	dead                     chan struct{} // closed once the process has exited
	exitErr                  error         // set before dead is closed
}

func startChaosTracker(t *testing.T) *chaosProc {
	t.Helper()
	cfg := writeConfig(t, `
[tracker]
announce_interval = "2s"
min_interval = "1s"
peer_ttl = "`+chaosTTL.String()+`"
[udp]
listen = ["127.0.0.1:0", "[::1]:0"]
[http]
listen = ["127.0.0.1:0", "[::1]:0"]
full_scrape = true
full_scrape_interval = "`+chaosFullScrapeInterval.String()+`"
[stats]
listen = ""
[database]
path = "`+t.TempDir()+`/peers.db"
save_interval = "0"
`)
	p := &chaosProc{tr: follow(t, exec.Command(binary, "run", "-config", cfg)), dead: make(chan struct{})}
	addr := func(proto, host string) *regexp.Regexp {
		return regexp.MustCompile(proto + ` (` + regexp.QuoteMeta(host) + `:\d+)`)
	}
	find := map[*string]*regexp.Regexp{
		&p.udp4: addr("udp", "127.0.0.1"), &p.udp6: addr("udp", "[::1]"),
		&p.http4: addr("http", "127.0.0.1"), &p.http6: addr("http", "[::1]"),
	}
	p.tr.waitLog(" serving ", func(line string) {
		for dst, re := range find {
			if m := re.FindStringSubmatch(line); m != nil {
				*dst = m[1]
			}
		}
	})
	if p.udp4 == "" || p.udp6 == "" || p.http4 == "" || p.http6 == "" {
		t.Fatalf("listeners not all found in the log:\n%s", p.tr.log.String())
	}
	p.stderr.WriteString(p.tr.log.String())
	go func() {
		for line := range p.tr.lines {
			p.mu.Lock()
			p.stderr.WriteString(line + "\n")
			p.mu.Unlock()
		}
		p.exitErr = <-p.tr.exited
		close(p.dead)
	}()
	return p
}

func (p *chaosProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stderr.String()
	if len(s) > 16<<10 {
		s = "...\n" + s[len(s)-16<<10:]
	}
	return s
}

func (p *chaosProc) exited() bool {
	select {
	case <-p.dead:
		return true
	default:
		return false
	}
}

// fatalf fails the test. After a failed request it first waits (at most
// five seconds) for the process to exit, since a crash shows first as a
// request that gets no answer; if it has exited, its standard error (the
// panic) is part of the failure.
func (p *chaosProc) fatalf(t *testing.T, requestFailed bool, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if requestFailed {
		select {
		case <-p.dead:
		case <-time.After(5 * time.Second):
		}
	}
	if p.exited() {
		t.Fatalf("%s\ntrakx died (%v); its standard error:\n%s", msg, p.exitErr, p.output())
	}
	t.Fatalf("%s\n(trakx is still running; its standard error:\n%s)", msg, p.output())
}

func (p *chaosProc) checkAlive(t *testing.T, when string) {
	t.Helper()
	if p.exited() {
		p.fatalf(t, false, "trakx is not running %s", when)
	}
}

// stop sends SIGTERM: the tracker must save and exit 0.
func (p *chaosProc) stop(t *testing.T) {
	t.Helper()
	p.checkAlive(t, "before SIGTERM")
	p.tr.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.dead:
	case <-time.After(10 * time.Second):
		p.fatalf(t, false, "still running 10s after SIGTERM")
	}
	if p.exitErr != nil || !strings.Contains(p.output(), "stopped with") {
		p.fatalf(t, false, "exit after SIGTERM: %v", p.exitErr)
	}
}

// chaosUDP is a BEP 15 client on its own socket, written from the BEP
// rather than from the tracker's code.
type chaosUDP struct {
	conn *net.UDPConn
	id   uint64
	tx   uint32
	buf  []byte
}

func dialChaosUDP(t *testing.T, from netip.Addr, to string) *chaosUDP {
	t.Helper()
	raddr, err := net.ResolveUDPAddr("udp", to)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(from, 0)), raddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &chaosUDP{conn: conn, buf: make([]byte, 4096)}
	tx := c.next()
	pkt := endian.BigEndian.AppendUint64(nil, 0x41727101980)
	pkt = endian.BigEndian.AppendUint32(pkt, 0)
	pkt = endian.BigEndian.AppendUint32(pkt, tx)
	reply, err := c.exchange(pkt, tx, 0)
	if err != nil || len(reply) < 16 {
		t.Fatalf("connect from %v: %v %x", from, err, reply)
	}
	c.id = endian.BigEndian.Uint64(reply[8:])
	return c
}

func (c *chaosUDP) next() uint32 { c.tx++; return c.tx }

// exchange sends pkt and returns the reply to it, or an error: none within
// five seconds, a reply to another transaction, or an error reply.
func (c *chaosUDP) exchange(pkt []byte, tx, action uint32) ([]byte, error) {
	if _, err := c.conn.Write(pkt); err != nil {
		return nil, err
	}
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.conn.Read(c.buf)
	if err != nil {
		return nil, err
	}
	reply := c.buf[:n]
	if n < 8 || endian.BigEndian.Uint32(reply[4:]) != tx {
		return nil, fmt.Errorf("reply %x to transaction %d", reply, tx)
	}
	if got := endian.BigEndian.Uint32(reply); got != action {
		return nil, fmt.Errorf("reply action %d (%q), not %d", got, reply[8:], action)
	}
	return reply, nil
}

var udpEvents = map[string]uint32{"": 0, "completed": 1, "started": 2, "stopped": 3}

func (c *chaosUDP) announce(h bittorrent.InfoHash, port uint16, left uint64, event string, numWant int32) error {
	tx := c.next()
	pkt := endian.BigEndian.AppendUint64(nil, c.id)
	pkt = endian.BigEndian.AppendUint32(pkt, 1)
	pkt = endian.BigEndian.AppendUint32(pkt, tx)
	pkt = append(pkt, h[:]...)
	pkt = append(pkt, "-CH0001-chaos-peer-1"...)
	pkt = endian.BigEndian.AppendUint64(pkt, 0) // downloaded
	pkt = endian.BigEndian.AppendUint64(pkt, left)
	pkt = endian.BigEndian.AppendUint64(pkt, 0) // uploaded
	pkt = endian.BigEndian.AppendUint32(pkt, udpEvents[event])
	pkt = endian.BigEndian.AppendUint32(pkt, 0)  // ip: the sender's
	pkt = endian.BigEndian.AppendUint32(pkt, tx) // key
	pkt = endian.BigEndian.AppendUint32(pkt, uint32(numWant))
	pkt = endian.BigEndian.AppendUint16(pkt, port)
	reply, err := c.exchange(pkt, tx, 1)
	if err == nil && len(reply) < 20 {
		err = fmt.Errorf("short announce reply %x", reply)
	}
	return err
}

func (c *chaosUDP) scrape(hashes []bittorrent.InfoHash) ([]bittorrent.ScrapeStats, error) {
	tx := c.next()
	pkt := endian.BigEndian.AppendUint64(nil, c.id)
	pkt = endian.BigEndian.AppendUint32(pkt, 2)
	pkt = endian.BigEndian.AppendUint32(pkt, tx)
	for _, h := range hashes {
		pkt = append(pkt, h[:]...)
	}
	reply, err := c.exchange(pkt, tx, 2)
	if err != nil {
		return nil, err
	}
	if len(reply) != 8+12*len(hashes) {
		return nil, fmt.Errorf("scrape reply of %d bytes for %d hashes", len(reply), len(hashes))
	}
	st := make([]bittorrent.ScrapeStats, len(hashes))
	for i := range st {
		b := reply[8+12*i:]
		st[i] = bittorrent.ScrapeStats{Complete: endian.BigEndian.Uint32(b), Downloaded: endian.BigEndian.Uint32(b[4:]), Incomplete: endian.BigEndian.Uint32(b[8:])}
	}
	return st, nil
}

// chaosHTTP is an HTTP tracker client whose connections come from one
// source address.
type chaosHTTP struct {
	client *http.Client
	base   string
}

func newChaosHTTP(t *testing.T, from netip.Addr, to string) *chaosHTTP {
	dialer := &net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(from, 0)), Timeout: 5 * time.Second}
	transport := &http.Transport{DialContext: dialer.DialContext, MaxIdleConnsPerHost: 1, DisableCompression: true}
	t.Cleanup(transport.CloseIdleConnections)
	return &chaosHTTP{client: &http.Client{Transport: transport, Timeout: 5 * time.Second}, base: "http://" + to}
}

// escape percent-encodes every byte, as BitTorrent clients do.
func escape(b []byte) string {
	var s strings.Builder
	for _, c := range b {
		fmt.Fprintf(&s, "%%%02X", c)
	}
	return s.String()
}

func (c *chaosHTTP) get(path string) (map[string]any, error) {
	resp, err := c.client.Get(c.base + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	v, err := httpproto.Decode(body)
	m, ok := v.(map[string]any)
	if err != nil || !ok {
		return nil, fmt.Errorf("%s: status %d, body %q is not a bencoded dictionary", path, resp.StatusCode, body)
	}
	if reason, failed := m["failure reason"]; failed || resp.StatusCode != 200 {
		return nil, fmt.Errorf("%s: status %d, failure %q", path, resp.StatusCode, reason)
	}
	return m, nil
}

func (c *chaosHTTP) announce(h bittorrent.InfoHash, port uint16, left uint64, event string, numWant int32) error {
	q := fmt.Sprintf("/announce?info_hash=%s&peer_id=-CH0001-chaos-peer-1&port=%d&uploaded=0&downloaded=0&left=%d&compact=1", escape(h[:]), port, left)
	if event != "" {
		q += "&event=" + event
	}
	if numWant >= 0 {
		q += fmt.Sprintf("&numwant=%d", numWant)
	}
	_, err := c.get(q)
	return err
}

func (c *chaosHTTP) scrape(hashes []bittorrent.InfoHash) ([]bittorrent.ScrapeStats, error) {
	q := "/scrape?"
	for i, h := range hashes {
		if i > 0 {
			q += "&"
		}
		q += "info_hash=" + escape(h[:])
	}
	m, err := c.get(q)
	if err != nil {
		return nil, err
	}
	return statsOf(m, hashes), nil
}

// fullScrape asks for every torrent (GET /scrape, gzip-compressed if gz)
// and returns the counts of hashes.
func (c *chaosHTTP) fullScrape(hashes []bittorrent.InfoHash, gz bool) ([]bittorrent.ScrapeStats, error) {
	req, _ := http.NewRequest("GET", c.base+"/scrape", nil)
	if gz {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body io.Reader = resp.Body
	if gz {
		zr, err := gzip.NewReader(resp.Body)
		if err != nil || resp.Header.Get("Content-Encoding") != "gzip" {
			return nil, fmt.Errorf("full scrape: status %d, %q, not gzip: %v", resp.StatusCode, resp.Header.Get("Content-Encoding"), err)
		}
		body = zr
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		return nil, err
	}
	v, err := httpproto.Decode(raw)
	m, ok := v.(map[string]any)
	if err != nil || !ok || resp.StatusCode != 200 || m["failure reason"] != nil {
		return nil, fmt.Errorf("full scrape: status %d, %d bytes not a bencoded dictionary of files (%v)", resp.StatusCode, len(raw), err)
	}
	return statsOf(m, hashes), nil
}

// statsOf reads the counts of hashes from a scrape reply's files.
func statsOf(m map[string]any, hashes []bittorrent.InfoHash) []bittorrent.ScrapeStats {
	files, _ := m["files"].(map[string]any)
	st := make([]bittorrent.ScrapeStats, len(hashes))
	for i, h := range hashes {
		f, ok := files[string(h[:])].(map[string]any)
		if !ok {
			continue // an unknown torrent may be left out: no peers
		}
		n := func(key string) uint32 { v, _ := f[key].(int64); return uint32(v) }
		st[i] = bittorrent.ScrapeStats{Complete: n("complete"), Downloaded: n("downloaded"), Incomplete: n("incomplete")}
	}
	return st
}

// endpoint is a peer as the tracker tells peers apart: a torrent, an
// address and a port.
type endpoint struct {
	torrent int
	ip      netip.Addr
	port    uint16
}

// peerLog is what the test knows of an endpoint: its last announce, with
// the wall-clock times the request was sent and its reply received.
type peerLog struct {
	sent, done time.Time
	stopped    bool // the last announce was a stop
	seeder     bool
}

type chaos struct {
	t   *testing.T
	p   *chaosProc
	rng *rand.Rand

	hashes []bittorrent.InfoHash
	v4     []netip.Addr // source addresses of IPv4 peers; v4[0] is 127.0.0.1
	v6     netip.Addr
	udp    map[netip.Addr]*chaosUDP
	http   map[netip.Addr]*chaosHTTP
	log    []map[endpoint]*peerLog // per torrent
	known  [][]endpoint            // per torrent, every endpoint announced, for picking
	rejoin []pendingRejoin

	lastCheck time.Time // when the last check's scrape was answered

	announces, announcesUDP, checks, fullScrapes, bursts, largestBurst, quiets int
	// fullScrapesAllowed lets check read a full scrape (phase 2 only: the
	// other phases want exact counts, which a snapshot cannot promise).
	fullScrapesAllowed bool
}

// pendingRejoin is a join due to one family of a torrent after a burst
// emptied it, once a sweep has had time to run.
type pendingRejoin struct {
	torrent int
	v6      bool
	keeper  endpoint // a peer of the other family that keeps the torrent alive
	after   time.Time
}

func newChaos(t *testing.T, p *chaosProc, seed uint64) *chaos {
	c := &chaos{t: t, p: p, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		v6: netip.IPv6Loopback(), udp: map[netip.Addr]*chaosUDP{}, http: map[netip.Addr]*chaosHTTP{}}
	// Torrent 0 is phase 1's, torrent 1 its canary's; all take part in
	// phase 2.
	for i := range 8 {
		c.hashes = append(c.hashes, tt.Hash(fmt.Sprintf("chaos-%d", i)))
		c.log = append(c.log, map[endpoint]*peerLog{})
		c.known = append(c.known, nil)
	}
	for i := range 8 {
		c.v4 = append(c.v4, netip.AddrFrom4([4]byte{127, 0, 0, byte(1 + i)}))
	}
	for _, ip := range append([]netip.Addr{c.v6}, c.v4...) {
		udpTo, httpTo := p.udp4, p.http4
		if ip.Is6() {
			udpTo, httpTo = p.udp6, p.http6
		}
		c.udp[ip] = dialChaosUDP(t, ip, udpTo)
		c.http[ip] = newChaosHTTP(t, ip, httpTo)
	}
	return c
}

// announce sends one announce over UDP or HTTP from the endpoint's
// address and logs it; a failure fails the test.
func (c *chaos) announce(e endpoint, left uint64, event string, overUDP bool) {
	c.t.Helper()
	numWant := []int32{-1, 0, 5, 50, 200}[c.rng.IntN(5)]
	pl := c.log[e.torrent][e]
	if pl == nil {
		pl = &peerLog{}
		c.log[e.torrent][e] = pl
		c.known[e.torrent] = append(c.known[e.torrent], e)
	}
	sent := time.Now()
	var err error
	if overUDP {
		err = c.udp[e.ip].announce(c.hashes[e.torrent], e.port, left, event, numWant)
		c.announcesUDP++
	} else {
		err = c.http[e.ip].announce(c.hashes[e.torrent], e.port, left, event, numWant)
	}
	c.announces++
	if err != nil {
		c.p.fatalf(c.t, true, "announce %q of torrent %d from %v port %d over %s: %v", event, e.torrent, e.ip, e.port, proto(overUDP), err)
	}
	*pl = peerLog{sent: sent, done: time.Now(), stopped: event == "stopped", seeder: left == 0}
}

func proto(udp bool) string {
	if udp {
		return "UDP"
	}
	return "HTTP"
}

// check scrapes every torrent, over UDP or HTTP from a random address, and
// holds each count between the bounds the log gives (see chaosFresh and
// chaosStale). It returns the counts.
func (c *chaos) check(where string) []bittorrent.ScrapeStats {
	c.t.Helper()
	c.p.checkAlive(c.t, where)
	ip := c.v6
	if c.rng.IntN(3) > 0 {
		ip = c.v4[c.rng.IntN(len(c.v4))]
	}
	overUDP := c.rng.IntN(2) == 0
	full := c.fullScrapesAllowed && !overUDP && c.rng.IntN(3) == 0
	before := time.Now()
	var got []bittorrent.ScrapeStats
	var err error
	switch {
	case overUDP:
		got, err = c.udp[ip].scrape(c.hashes)
	case full:
		got, err = c.http[ip].fullScrape(c.hashes, c.rng.IntN(2) == 0)
		c.fullScrapes++
	default:
		got, err = c.http[ip].scrape(c.hashes)
	}
	after := time.Now()
	if full {
		// The snapshot was built at most an interval before it was asked for.
		before = before.Add(-chaosFullScrapeInterval)
	}
	c.lastCheck = after
	if err != nil {
		c.p.fatalf(c.t, true, "%s: scrape from %v over %s: %v", where, ip, proto(overUDP), err)
	}
	c.checks++
	for i := range c.hashes {
		var lo, hi [2]uint32 // seeders, leechers
		for _, pl := range c.log[i] {
			if full && pl.sent.After(before) {
				// The snapshot may predate this announce: the peer may be
				// counted as it was before it, either kind, or stopped.
				hi[0]++
				hi[1]++
				continue
			}
			if pl.stopped {
				continue
			}
			k := 1
			if pl.seeder {
				k = 0
			}
			if pl.sent.After(after.Add(-chaosFresh)) && pl.done.Before(before) {
				lo[k]++
			}
			if !pl.done.Before(before.Add(-chaosStale)) {
				hi[k]++
			}
		}
		s, l := got[i].Complete, got[i].Incomplete
		if s < lo[0] || s > hi[0] || l < lo[1] || l > hi[1] || s+l < lo[0]+lo[1] || s+l > hi[0]+hi[1] {
			c.p.fatalf(c.t, false, "%s: torrent %d scrapes %d seeders and %d leechers over %s; the peers announced in the last %v are %d and %d, in the last %v %d and %d\n%s",
				where, i, s, l, proto(overUDP), chaosFresh, lo[0], lo[1], chaosStale, hi[0], hi[1], c.describe(i, after))
		}
	}
	return got
}

// describe lists a torrent's endpoints that have not stopped, with their
// age, for a failure.
func (c *chaos) describe(torrent int, now time.Time) string {
	var lines []string
	for _, e := range c.known[torrent] {
		pl := c.log[torrent][e]
		if pl.stopped || now.Sub(pl.done) > 2*chaosStale {
			continue
		}
		lines = append(lines, fmt.Sprintf("  %v port %d seeder %v: sent %v ago, answered %v ago",
			e.ip, e.port, pl.seeder, now.Sub(pl.sent).Round(time.Millisecond), now.Sub(pl.done).Round(time.Millisecond)))
	}
	return strings.Join(lines, "\n")
}

// defect1 is issue 21's remote crash, step by step over HTTP.
func (c *chaos) defect1() {
	c.t.Helper()
	const torrent, canaryTorrent = 0, 1
	keeper := endpoint{torrent, c.v6, 6881}
	c.announce(keeper, 100, "started", false)
	var v4 []endpoint
	for i := range 30 {
		v4 = append(v4, endpoint{torrent, c.v4[0], uint16(7000 + i)})
		c.announce(v4[i], 100, "started", false)
	}
	if got := c.check("phase 1, 1 IPv6 and 30 IPv4 peers"); got[torrent].Incomplete != 31 {
		c.p.fatalf(c.t, false, "phase 1: %d leechers, not 31", got[torrent].Incomplete)
	}
	for _, e := range v4 {
		c.announce(e, 100, "stopped", false)
	}
	// A canary peer (IPv6, so that it leaves the IPv4 arena alone)
	// announced after the stops: once a scrape no longer counts it, a
	// sweep has run since the stops. The keeper announces meanwhile so
	// that the torrent stays.
	canary := endpoint{canaryTorrent, c.v6, 6999}
	c.announce(canary, 100, "started", true)
	deadline := time.Now().Add(chaosStale + 5*time.Second)
	for c.check("phase 1, waiting for a sweep")[canaryTorrent].Incomplete != 0 {
		if time.Now().After(deadline) {
			c.p.fatalf(c.t, false, "phase 1: the canary peer is still there %v after it announced", time.Since(c.log[canaryTorrent][canary].done))
		}
		c.announce(keeper, 100, "", false)
		time.Sleep(200 * time.Millisecond) // the poll's period
	}
	c.announce(keeper, 100, "", false)
	c.announce(endpoint{torrent, c.v4[0], 7030}, 100, "started", false)
	if got := c.check("phase 1, one more IPv4 peer after the sweep"); got[torrent].Incomplete != 2 {
		c.p.fatalf(c.t, false, "phase 1: %d leechers, not 2", got[torrent].Incomplete)
	}
}

// newEndpoint picks an address of the family and a port that the torrent
// has not seen from it.
func (c *chaos) newEndpoint(torrent int, v6 bool) endpoint {
	for {
		e := endpoint{torrent, c.v6, uint16(1024 + c.rng.IntN(64512))}
		if !v6 {
			e.ip = c.v4[c.rng.IntN(len(c.v4))]
		}
		if c.log[torrent][e] == nil {
			return e
		}
	}
}

// pick returns a random endpoint of the torrent that is (as far as the
// test knows) not stopped, or false.
func (c *chaos) pick(torrent int, leecherOnly bool) (endpoint, bool) {
	var live []endpoint
	for _, e := range c.known[torrent] {
		if pl := c.log[torrent][e]; !pl.stopped && !(leecherOnly && pl.seeder) {
			live = append(live, e)
		}
	}
	if len(live) == 0 {
		return endpoint{}, false
	}
	return live[c.rng.IntN(len(live))], true
}

func (c *chaos) left() uint64 {
	if c.rng.IntN(3) == 0 {
		return 0
	}
	return uint64(1 + c.rng.IntN(1<<20))
}

// random is phase 2.
func (c *chaos) random() {
	c.t.Helper()
	c.fullScrapesAllowed = true // bounds, not exact counts: a snapshot may lag
	defer func() { c.fullScrapesAllowed = false }()
	end := time.Now().Add(chaosBudget)
	for step := 0; step < chaosSteps && time.Now().Before(end); step++ {
		where := fmt.Sprintf("phase 2, step %d", step)
		torrent := c.rng.IntN(len(c.hashes))
		v6 := c.rng.IntN(5) < 2
		udp := c.rng.IntN(2) == 0
		c.keepAlive()
		if c.pending(torrent, v6) {
			v6 = !v6 // leave that family empty until its join
		}
		switch r := c.rng.IntN(100); {
		case step == 2 || step == 12:
			// At least one burst of each family.
			c.burst(torrent, step == 12)
		case len(c.rejoin) > 0 && time.Now().After(c.rejoin[0].after):
			j := c.rejoin[0]
			c.rejoin = c.rejoin[1:]
			c.announce(c.newEndpoint(j.torrent, j.v6), c.left(), "started", c.rng.IntN(2) == 0)
		case r < 30:
			c.announce(c.newEndpoint(torrent, v6), c.left(), "started", udp)
		case r < 60:
			if e, ok := c.pick(torrent, false); ok {
				left := uint64(0)
				if !c.log[torrent][e].seeder || c.rng.IntN(10) == 0 {
					left = c.left()
				}
				c.announce(e, left, "", udp)
			}
		case r < 70:
			if e, ok := c.pick(torrent, true); ok {
				c.announce(e, 0, "completed", udp)
			}
		case r < 85:
			if e, ok := c.pick(torrent, false); ok {
				c.announce(e, c.left(), "stopped", udp)
			}
		case r < 88:
			c.burst(torrent, v6)
		case r < 92:
			// A quiet spell of 1 to 2.5s: peers expire while scrapes
			// watch.
			c.quiets++
			for range 4 + c.rng.IntN(7) {
				time.Sleep(250 * time.Millisecond) // the poll's period
				c.keepAlive()
				c.check(where + ", quiet")
			}
		}
		c.check(where)
		// The workload's pace, not a wait for anything: steps spread
		// over the budget, so that sweeps run between them.
		time.Sleep(time.Duration(c.rng.IntN(40)) * time.Millisecond)
	}
}

// keepAlive re-announces, once a second, the peers that keep a torrent
// alive while one of its families waits, empty, for its join.
func (c *chaos) keepAlive() {
	c.t.Helper()
	for _, j := range c.rejoin {
		if pl := c.log[j.torrent][j.keeper]; time.Since(pl.done) > time.Second {
			left := uint64(1)
			if pl.seeder {
				left = 0
			}
			c.announce(j.keeper, left, "", c.rng.IntN(2) == 0)
		}
	}
}

// pending reports whether a family of a torrent waits for its join.
func (c *chaos) pending(torrent int, v6 bool) bool {
	for _, j := range c.rejoin {
		if j.torrent == torrent && j.v6 == v6 {
			return true
		}
	}
	return false
}

// burst grows one family of a torrent past 64 peers, checks, then stops
// every peer of that family there so that the family empties, and plans
// a join to it once a sweep has had time to run.
func (c *chaos) burst(torrent int, v6 bool) {
	c.t.Helper()
	c.bursts++
	n := chaosBurst + c.rng.IntN(30)
	var added []endpoint
	for range n {
		e := c.newEndpoint(torrent, v6)
		added = append(added, e)
		c.announce(e, c.left(), "started", c.rng.IntN(2) == 0)
	}
	for range c.rng.IntN(20) {
		e := added[c.rng.IntN(len(added))]
		c.announce(e, c.left(), "", c.rng.IntN(2) == 0)
	}
	c.check(fmt.Sprintf("burst of %d into torrent %d (IPv6 %v)", n, torrent, v6))
	// How many of the burst's peers the check had to count: the family
	// is past 64 peers when this is.
	counted := 0
	for _, e := range added {
		if c.lastCheck.Sub(c.log[torrent][e].sent) < chaosFresh {
			counted++
		}
	}
	c.largestBurst = max(c.largestBurst, counted)
	// A peer of the other family keeps the torrent (and with it the
	// emptied list) in the store.
	keeper := c.newEndpoint(torrent, !v6)
	for _, e := range c.known[torrent] {
		if e.ip.Is6() != v6 && !c.log[torrent][e].stopped {
			keeper = e
			break
		}
	}
	c.announce(keeper, c.left(), "", c.rng.IntN(2) == 0)
	for _, e := range c.known[torrent] {
		if pl := c.log[torrent][e]; e.ip.Is6() == v6 && !pl.stopped {
			c.announce(e, c.left(), "stopped", c.rng.IntN(2) == 0)
		}
	}
	c.check(fmt.Sprintf("burst into torrent %d (IPv6 %v) stopped", torrent, v6))
	c.rejoin = append(c.rejoin, pendingRejoin{torrent, v6, keeper, time.Now().Add(2200 * time.Millisecond)})
}

// drainAndRejoin is phase 3: with no more announces, every torrent
// empties; then each is joined again in both families.
func (c *chaos) drainAndRejoin() {
	c.t.Helper()
	deadline := time.Now().Add(chaosStale + 5*time.Second)
	for {
		got := c.check("phase 3, waiting for every peer to expire")
		empty := true
		for _, st := range got {
			empty = empty && st.Complete+st.Incomplete == 0
		}
		if empty {
			break
		}
		if time.Now().After(deadline) {
			c.p.fatalf(c.t, false, "phase 3: peers still counted %v after the last announce: %+v", chaosStale+5*time.Second, got)
		}
		time.Sleep(250 * time.Millisecond) // the poll's period
	}
	for i := range c.hashes {
		c.announce(c.newEndpoint(i, false), 0, "started", c.rng.IntN(2) == 0)
		c.announce(c.newEndpoint(i, true), 1, "started", c.rng.IntN(2) == 0)
	}
	for i, st := range c.check("phase 3, one peer of each family in each torrent") {
		if st.Complete != 1 || st.Incomplete != 1 {
			c.p.fatalf(c.t, false, "phase 3: torrent %d has %d seeders and %d leechers, not 1 and 1", i, st.Complete, st.Incomplete)
		}
	}
	if c.largestBurst < chaosBurst {
		c.t.Errorf("no burst had %d peers of one family counted at once (largest %d): the machine is too slow for this test to prove it", chaosBurst, c.largestBurst)
	}
}
