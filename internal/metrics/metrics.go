// Package metrics keeps trakx's counters. Every frontend counts its
// requests in one block, Requests (requests.go: answered by action and
// family, errors by reason, refusals by reason, unreadable requests),
// embedded in its own counters (UDP, HTTP, WebSocket) beside what only it
// has; names.go declares the actions and reasons with their names in the
// views, and Requests.Fail is the one place an error becomes counters. The
// request path adds with single atomic operations on counters of its own
// (one set per UDP worker, a few per HTTP server), so that it never
// contends and never allocates; Totals (totals.go) adds them up when
// someone looks, and every view reads Totals: expvar-style JSON at
// /debug/vars (vars.go, for netdata's go_expvar module), the Prometheus
// exposition (package promexport) and, through that, `trakx stats`. It
// also serves Go's profiles on the stats listener when asked (pprof.go).
package metrics

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// UDP counts one UDP worker's requests. Each worker has its own, so that the
// request path never contends on a shared cache line.
type UDP struct {
	Requests
	BadConnectionID atomic.Uint64 // announces and scrapes dropped unanswered
	_               [64]byte
}

// HTTP counts requests of a group of HTTP connections.
type HTTP struct {
	Requests
	// ConnectionsRefused counts connections closed at http.max_connections.
	ConnectionsRefused atomic.Uint64
	// ConnectionsEvicted counts idle connections closed at
	// http.max_connections to admit a new one.
	ConnectionsEvicted atomic.Uint64
	_                  [64]byte
}

// WebSocket counts the WebTorrent frontend's work.
type WebSocket struct {
	Requests
	Connections        atomic.Int64  // open now
	ConnectionsRefused atomic.Uint64 // upgrades refused at websocket.max_connections
	Offers             atomic.Uint64 // offers handed to another peer
	Answers            atomic.Uint64 // answers handed to the offering peer
}

// WebSocketSwarms are the WebSocket peers' figures at the time of a look.
type WebSocketSwarms struct {
	Torrents, Seeders, Leechers int
}

// Database counts snapshot saves.
type Database struct {
	Saves           atomic.Uint64
	SaveErrors      atomic.Uint64
	LastSaveUnix    atomic.Int64
	LastSaveSeconds atomic.Uint64 // float64 bits
	LastSavePeers   atomic.Uint64
}

// FullScrape describes the last full scrape built (http.full_scrape).
type FullScrape struct {
	Bytes        atomic.Uint64 // its size gzip-compressed
	BuildSeconds atomic.Uint64 // how long its build took, float64 bits
}

// SwarmStats are the store's figures at the time of a look.
type SwarmStats struct {
	Torrents int
	// Seeders and Leechers per family.
	Seeders, Leechers [NumFamilies]int
	// Announces refused because tracker.max_peers or max_torrents was
	// reached, or because the store could not have the memory for them.
	RefusedPeers, RefusedTorrents, RefusedOutOfMemory uint64
}

// Metrics is the set of counters of one tracker.
type Metrics struct {
	Database   Database
	WebSocket  WebSocket
	FullScrape FullScrape
	// HTTPConnections is the number of HTTP connections open now, kept by
	// the HTTP servers.
	HTTPConnections atomic.Int64
	// ClusterLag is the cluster's apply lag, each batch's (cluster.go).
	ClusterLag Histogram

	start time.Time
	swarm func() SwarmStats
	drops atomic.Pointer[func() uint64]
	ws    atomic.Pointer[func() WebSocketSwarms]
	// cluster reads the cluster node's figures; nil: no cluster.
	cluster atomic.Pointer[func() ClusterStats]

	mu sync.Mutex
	// requests are every frontend's request counters, by protocol: what
	// Totals adds up for every view. udp and http are the same workers'
	// counters of their own.
	requests [NumProtocols][]*Requests
	udp      []*UDP
	http     []*HTTP
}

// New returns an empty set. swarm is called at each look for the store's
// figures; nil stands for an empty store.
func New(swarm func() SwarmStats) *Metrics {
	if swarm == nil {
		swarm = func() SwarmStats { return SwarmStats{} }
	}
	m := &Metrics{start: time.Now(), swarm: swarm}
	m.requests[ProtocolWebSocket] = []*Requests{&m.WebSocket.Requests}
	return m
}

// NewRequests returns request counters for one more worker of protocol p,
// padded against false sharing and added up in every view: all that a
// frontend without counters of its own needs.
func (m *Metrics) NewRequests(p Protocol) *Requests {
	c := &struct {
		Requests
		_ [64]byte
	}{}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests[p] = append(m.requests[p], &c.Requests)
	return &c.Requests
}

// SetUDPDrops gives the function that reads how many datagrams the kernel
// dropped at the tracker's UDP sockets.
func (m *Metrics) SetUDPDrops(f func() uint64) { m.drops.Store(&f) }

// SetWebSocketSwarms gives the function that reads the WebSocket peers'
// figures.
func (m *Metrics) SetWebSocketSwarms(f func() WebSocketSwarms) { m.ws.Store(&f) }

// NewUDP returns counters for one more UDP worker.
func (m *Metrics) NewUDP() *UDP {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := &UDP{}
	m.udp = append(m.udp, c)
	m.requests[ProtocolUDP] = append(m.requests[ProtocolUDP], &c.Requests)
	return c
}

// NewHTTP returns counters for one more group of HTTP connections.
func (m *Metrics) NewHTTP() *HTTP {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := &HTTP{}
	m.http = append(m.http, c)
	m.requests[ProtocolHTTP] = append(m.requests[ProtocolHTTP], &c.Requests)
	return c
}

// RecordFullScrape notes a full scrape built: its gzip size and how long
// the build took.
func (m *Metrics) RecordFullScrape(gzipBytes int, took time.Duration) {
	m.FullScrape.Bytes.Store(uint64(gzipBytes))
	m.FullScrape.BuildSeconds.Store(math.Float64bits(took.Seconds()))
}

// RecordSave notes a finished snapshot save.
func (m *Metrics) RecordSave(at time.Time, took time.Duration, peers int, err error) {
	if err != nil {
		m.Database.SaveErrors.Add(1)
		return
	}
	m.Database.Saves.Add(1)
	m.Database.LastSaveUnix.Store(at.Unix())
	m.Database.LastSaveSeconds.Store(math.Float64bits(took.Seconds()))
	m.Database.LastSavePeers.Store(uint64(peers))
}
