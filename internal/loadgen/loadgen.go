// Package loadgen is trakx's load generator: it plays many BitTorrent
// clients against a tracker, over UDP (BEP 15), HTTP or WebSocket
// (WebTorrent announces), with a skewed torrent popularity (a few torrents
// very popular, most quiet, as real trackers see), fixed random seeds, and
// batched sends and receives so that it costs little next to the tracker
// it measures.
//
// loadgen.go is the configuration and the two ways to run: Run (a closed
// loop, each worker waiting for its answers, or paced: open loop at a fixed
// rate) and Fill (a store of known size). generator.go draws the requests;
// stats.go counts them; result.go reports. Each protocol's worker is its
// own file: udp.go, http.go and ws.go for the closed loop, paced.go with
// paced_udp.go and paced_http.go for the paced run, flood.go for floods from
// many source addresses. The bytes on the wire are the protocol packages'
// client sides (udpproto, httpproto, wsproto), tested there against the
// tracker's own parsers.
package loadgen

import (
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
)

// Config describes a load.
type Config struct {
	Target string // host:port of the tracker
	// Protocol is "udp", "http", "https" (HTTP over TLS: see tlsConfig)
	// or "ws" (WebTorrent announces, without offers).
	Protocol string
	Duration time.Duration // how long to send
	Warmup   time.Duration // sent but not counted
	Workers  int           // sockets (UDP) or connections (HTTP)
	InFlight int           // requests outstanding per UDP socket
	Torrents int
	Skew     float64 // Zipf exponent of torrent popularity (> 1)
	// Popularity is how torrents are drawn: "zipf" (by Skew), or
	// "square", torrent N*u^2 for u uniform in [0, 1): a flatter head
	// and a long tail, so that most of the swarm is touched.
	Popularity   string
	ConnectRatio float64 // UDP: fraction of requests that are connects
	NumWant      int
	ScrapeRatio  float64 // fraction of requests that are scrapes
	ScrapeSize   int     // info hashes per scrape
	SeederRatio  float64 // fraction of announces with left=0
	KeepAlive    bool    // HTTP: reuse connections
	Seed         int64
	Timeout      time.Duration // a request unanswered this long is a timeout
	// Rate, if above 0, paces the load (open loop): Rate requests a second
	// in all, spread evenly over the workers, each sent at its scheduled
	// time whether or not earlier ones were answered, with latency
	// measured from that time. UDP, and HTTP with KeepAlive (pipelined);
	// InFlight does not apply. See paced.go.
	Rate int
}

// Defaults are the settings of a plain `trakx bench`.
func Defaults() Config {
	return Config{
		Protocol: "udp", Duration: 10 * time.Second, Warmup: time.Second, Workers: 4, InFlight: 16,
		Torrents: 10_000, Skew: 1.1, Popularity: "zipf", NumWant: 50, ScrapeRatio: 0.1, ScrapeSize: 5,
		SeederRatio: 0.3, KeepAlive: false, Seed: 1, Timeout: time.Second,
	}
}

// InfoHash is the hash of torrent i for a seed: the same in every run, so
// that a whitelist can be written beforehand.
func InfoHash(seed int64, i int) bittorrent.InfoHash {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(seed))
	binary.BigEndian.PutUint64(b[8:], uint64(i))
	return sha1.Sum(b[:])
}

// WriteHashes writes the info hashes of torrents 0..n-1 in hex, one per
// line: an access list, or an opentracker whitelist.
func WriteHashes(w io.Writer, seed int64, n int) error {
	for i := range n {
		h := InfoHash(seed, i)
		if _, err := fmt.Fprintf(w, "%x\n", h[:]); err != nil {
			return err
		}
	}
	return nil
}

// Run plays the load and returns what it measured.
func Run(cfg Config) (*Result, error) {
	if cfg.Popularity != "zipf" && cfg.Popularity != "square" {
		return nil, fmt.Errorf("popularity %q: want zipf or square", cfg.Popularity)
	}
	if cfg.Workers < 1 || cfg.InFlight < 1 || cfg.Torrents < 1 || cfg.Skew <= 1 {
		return nil, fmt.Errorf("workers, in-flight and torrents must be at least 1, and skew above 1")
	}
	if cfg.Rate != 0 {
		return runPaced(cfg)
	}
	var counting atomic.Bool
	stop := make(chan struct{})
	results := make([]*stats, cfg.Workers)
	errs := make([]error, cfg.Workers)
	var wg sync.WaitGroup
	for w := range cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			gen := newGenerator(&cfg, w)
			st := &stats{}
			results[w] = st
			switch cfg.Protocol {
			case "udp":
				errs[w] = runUDP(&cfg, gen, st, &counting, stop)
			case "http", "https":
				errs[w] = runHTTP(&cfg, gen, st, &counting, stop)
			case "ws":
				errs[w] = runWS(&cfg, gen, st, &counting, stop)
			default:
				errs[w] = fmt.Errorf("protocol %q is none of udp, http, https, ws", cfg.Protocol)
			}
		}()
	}
	time.Sleep(cfg.Warmup)
	counting.Store(true)
	started := time.Now()
	time.Sleep(cfg.Duration)
	counting.Store(false)
	elapsed := time.Since(started)
	close(stop)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	r := &Result{Config: cfg, Elapsed: elapsed}
	for _, st := range results {
		r.merge(st)
	}
	return r, nil
}

// FillResult is a finished fill.
type FillResult struct {
	Peers    int64
	Timeouts uint64
	Errors   uint64
	Elapsed  time.Duration
}

// Fill announces n distinct peers over UDP, spread evenly over
// cfg.Torrents torrents (at most 65535 peers each, as they share one
// address), asking for no peers back: a store of known size for memory
// measurements.
func Fill(cfg Config, n int64) (*FillResult, error) {
	if n > int64(cfg.Torrents)*65535 {
		return nil, fmt.Errorf("%d peers need at least %d torrents (65535 peers each from one address)", n, (n+65534)/65535)
	}
	cfg.Protocol, cfg.NumWant, cfg.ScrapeRatio = "udp", 0, 0
	var next atomic.Int64
	var counting atomic.Bool
	counting.Store(true)
	stop := make(chan struct{})
	results := make([]*stats, cfg.Workers)
	errs := make([]error, cfg.Workers)
	started := time.Now()
	var wg sync.WaitGroup
	for w := range cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := newGenerator(&cfg, w)
			g.fill, g.fillTotal = &next, n
			results[w] = &stats{}
			errs[w] = runUDP(&cfg, g, results[w], &counting, stop)
		}()
	}
	wg.Wait()
	r := &FillResult{Peers: n, Elapsed: time.Since(started)}
	for w, st := range results {
		if errs[w] != nil {
			return nil, errs[w]
		}
		r.Timeouts += st.timeouts
		r.Errors += st.errors
	}
	return r, nil
}
