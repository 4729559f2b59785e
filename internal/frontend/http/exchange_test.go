package http

import (
	"bytes"
	"io"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/fullscrape"
	"github.com/trakx/trakx/internal/httpproto"
	"github.com/trakx/trakx/internal/metrics"
	"github.com/trakx/trakx/internal/ratelimit"
	"github.com/trakx/trakx/internal/swarm"
)

// TestExchangeAllocatesNothing: an announce answered through an Exchange
// (HTTPS's path, once its TLS connection has read the request) allocates
// nothing, into a reply buffer of the caller's; a scrape neither.
func TestExchangeAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector drops sync.Pool items at random; make test runs this without it")
	}
	store := swarm.New(swarm.Config{AnnounceInterval: 30 * time.Minute, MinInterval: 5 * time.Minute,
		PeerTTL: 45 * time.Minute, NumWantDefault: 50, NumWantMax: 200, MaxPeers: 1 << 40, MaxTorrents: 1 << 40})
	defer store.Close()
	var hash bittorrent.InfoHash
	copy(hash[:], "exchange-allocations")
	for i := range 100 {
		req := bittorrent.AnnounceRequest{InfoHash: hash, Addr: netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}), Port: 6881, Left: 1}
		store.Announce(&req, &bittorrent.AnnounceResponse{})
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	budget := ratelimit.New(ratelimit.Config{Rate: 1e9, Burst: 1e6, Tracked: 1000}) // on, never exceeded
	ex := NewExchange(store, Options{MaxConnections: 100, Open: new(atomic.Int64), Budget: budget, MaxRequests: 1000}, metrics.New(nil), log)
	ex.s.SetHosts(NewHosts([]string{"t"}))
	peer := netip.MustParseAddr("192.0.2.1")
	out := make([]byte, 0, 8192)
	for name, raw := range map[string][]byte{
		"announce": []byte("GET /announce?info_hash=exchange-allocations&peer_id=-qB4500-012345678901&port=7000&left=1&numwant=50 HTTP/1.1\r\nHost: t\r\n\r\n"),
		"scrape":   []byte("GET /scrape?info_hash=exchange-allocations HTTP/1.1\r\nHost: t\r\n\r\n"),
	} {
		var answered Answered
		answer := func() { out, answered = ex.Answer(out[:0], raw, peer, 0, false) }
		answer() // warm the pools
		if n := testing.AllocsPerRun(200, answer); n > 0 {
			t.Errorf("%s: %v allocations", name, n)
		}
		if answered.Outcome != KeepAlive || !bytes.HasPrefix(out, []byte("HTTP/1.1 200 OK")) {
			t.Errorf("%s: %v %q", name, answered.Outcome, out)
		}
	}
}

// TestExchangeFullScrapeSurvivesAReload: a full scrape Answer admitted is
// written by WriteFullScrape as admitted, even if a reload turned the full
// scrape off in between: the client gets its reply, not a closed
// connection.
func TestExchangeFullScrapeSurvivesAReload(t *testing.T) {
	store := swarm.New(swarm.Config{AnnounceInterval: 30 * time.Minute, MinInterval: 5 * time.Minute,
		PeerTTL: 45 * time.Minute, NumWantDefault: 50, NumWantMax: 200, MaxPeers: 1 << 40, MaxTorrents: 1 << 40})
	defer store.Close()
	var hash bittorrent.InfoHash
	copy(hash[:], "exchange-full-scrape")
	store.Announce(&bittorrent.AnnounceRequest{InfoHash: hash, Addr: netip.MustParseAddr("203.0.113.1"), Port: 6881, Left: 1}, &bittorrent.AnnounceResponse{})
	log := logrus.New()
	log.SetOutput(io.Discard)
	var settings atomic.Pointer[FullScrape]
	settings.Store(&FullScrape{Builder: fullscrape.New(fullscrape.Options{Source: store, Interval: time.Minute})})
	ex := NewExchange(store, Options{MaxConnections: 100, Open: new(atomic.Int64), MaxRequests: 1000, FullScrape: &settings}, metrics.New(nil), log)
	raw := []byte("GET /scrape HTTP/1.1\r\nHost: t\r\n\r\n")
	out, answered := ex.Answer(nil, raw, netip.MustParseAddr("192.0.2.1"), 0, false)
	if answered.Outcome != WriteFull || len(out) != 0 {
		t.Fatalf("a full scrape: %v %q", answered.Outcome, out)
	}
	settings.Store(nil) // SIGHUP with http.full_scrape = false
	var w bytes.Buffer
	keep, err := ex.WriteFullScrape(&w, func(time.Time) error { return nil }, answered.Full)
	if err != nil || !keep || !bytes.HasPrefix(w.Bytes(), []byte("HTTP/1.1 200 OK")) || !bytes.Contains(w.Bytes(), hash[:]) {
		t.Fatalf("the full scrape after a reload: keep-alive %v, %v, %q", keep, err, w.Bytes())
	}
}

// TestExchangePlainFullScrapeBusy: over TLS too, a full scrape that would
// go out decompressed while the builder has no reader free is answered
// with the whole refusal (503, Retry-After), counted, and the connection
// serves on; never a 200 head cut off before its body.
func TestExchangePlainFullScrapeBusy(t *testing.T) {
	store := swarm.New(swarm.Config{AnnounceInterval: 30 * time.Minute, MinInterval: 5 * time.Minute,
		PeerTTL: 45 * time.Minute, NumWantDefault: 50, NumWantMax: 200, MaxPeers: 1 << 40, MaxTorrents: 1 << 40})
	defer store.Close()
	log := logrus.New()
	log.SetOutput(io.Discard)
	b := fullscrape.New(fullscrape.Options{Source: store, Interval: time.Minute, MaxPlain: 1})
	var settings atomic.Pointer[FullScrape]
	settings.Store(&FullScrape{Builder: b})
	m := metrics.New(nil)
	ex := NewExchange(store, Options{MaxConnections: 100, Open: new(atomic.Int64), MaxRequests: 1000, FullScrape: &settings}, m, log)
	held, err := b.Wait(time.Now()).NewPlain() // the one reader, taken
	if err != nil {
		t.Fatal(err)
	}
	_, answered := ex.Answer(nil, []byte("GET /scrape HTTP/1.1\r\nHost: t\r\n\r\n"), netip.MustParseAddr("192.0.2.1"), 0, false)
	var w bytes.Buffer
	keep, err := ex.WriteFullScrape(&w, func(time.Time) error { return nil }, answered.Full)
	busy := m.Totals().Requests[metrics.ProtocolHTTP].Refused[metrics.RefusalFullScrapeBusy]
	if err != nil || !keep || !bytes.HasPrefix(w.Bytes(), []byte("HTTP/1.1 503 ")) || !bytes.Contains(w.Bytes(), []byte("Retry-After: 10\r\n")) ||
		!bytes.HasSuffix(w.Bytes(), httpproto.AppendFailure(nil, fullScrapeBusy)) || busy != 1 {
		t.Fatalf("with no reader free: keep-alive %v, %v, %d refused, %q", keep, err, busy, w.Bytes())
	}
	held.Close()
	w.Reset()
	if _, err := ex.WriteFullScrape(&w, func(time.Time) error { return nil }, answered.Full); err != nil || !bytes.HasPrefix(w.Bytes(), []byte("HTTP/1.1 200 OK")) {
		t.Fatalf("with the reader back: %v %q", err, w.Bytes())
	}
}
