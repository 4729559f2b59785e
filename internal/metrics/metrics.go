// Package metrics keeps trakx's counters. The request path adds to them
// with single atomic operations on counters of its own (one set per UDP
// worker, a few per HTTP server), so that it never contends and never
// allocates; Totals adds them up when someone looks. Two views are fed
// from Totals: expvar-style JSON at /debug/vars (vars.go, for netdata's
// go_expvar module) and the Prometheus exposition (package promexport).
package metrics

import (
	"errors"
	"math"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
)

// Family indexes counters kept per address family: the client's, as the
// tracker resolves it.
type Family uint8

const (
	IPv4 Family = iota
	IPv6
	NumFamilies
)

// FamilyNames are the families' names in the views.
var FamilyNames = [NumFamilies]string{"ipv4", "ipv6"}

// FamilyOf is the family of a client address (IPv4-mapped is IPv4).
func FamilyOf(a netip.Addr) Family {
	if a.Is4() || a.Is4In6() {
		return IPv4
	}
	return IPv6
}

// ErrorReason is why a request was answered with an error.
type ErrorReason uint8

const (
	// ErrMalformed: the request could not be read, or asked for something
	// no tracker serves (a BEP 15 packet, HTTP framing, a query string, a
	// method other than GET).
	ErrMalformed ErrorReason = iota
	// ErrNotFound: an HTTP path other than the announce and scrape ones.
	ErrNotFound
	ErrTorrentNotAllowed // the access list
	ErrClientNotAllowed  // the client filter
	ErrTrackerFull       // tracker.max_peers or max_torrents
	ErrInternal          // a fault of the tracker's own
	// ErrDescriptors: an HTTP connection the tracker had no descriptor to
	// serve with (the open files limit); closed unanswered.
	ErrDescriptors
	NumErrorReasons
)

// ErrorReasonNames are the reasons' names in the views.
var ErrorReasonNames = [NumErrorReasons]string{"malformed", "not_found", "torrent_not_allowed", "client_not_allowed", "tracker_full", "internal", "descriptors"}

// ReasonOf classifies an error the tracker or a parser returned.
func ReasonOf(err error) ErrorReason {
	var ce *bittorrent.ClientError
	if !errors.As(err, &ce) {
		return ErrInternal
	}
	switch ce.Kind {
	case bittorrent.KindTorrentNotAllowed:
		return ErrTorrentNotAllowed
	case bittorrent.KindClientNotAllowed:
		return ErrClientNotAllowed
	case bittorrent.KindTrackerFull:
		return ErrTrackerFull
	}
	return ErrMalformed
}

// UDP counts one UDP worker's requests. Each worker has its own, so that the
// request path never contends on a shared cache line.
type UDP struct {
	Connect, Announce, Scrape [NumFamilies]atomic.Uint64     // answered
	Errors                    [NumErrorReasons]atomic.Uint64 // error packets sent
	BadConnectionID           atomic.Uint64                  // announces and scrapes dropped unanswered
	BadRequest                atomic.Uint64                  // malformed packets, answered or not
	Refused                   atomic.Uint64                  // torrents the access list excludes
	RefusedRate               atomic.Uint64                  // datagrams over their source's budget, dropped
	RefusedClient             atomic.Uint64                  // announces from clients the filter excludes
	_                         [64]byte
}

// HTTP counts requests of a group of HTTP connections.
type HTTP struct {
	Announce, Scrape [NumFamilies]atomic.Uint64     // answered
	Errors           [NumErrorReasons]atomic.Uint64 // failure replies and error statuses sent
	BadRequest       atomic.Uint64                  // malformed requests
	Refused          atomic.Uint64                  // torrents the access list excludes
	// ConnectionsRefused counts connections closed at http.max_connections.
	ConnectionsRefused atomic.Uint64
	// ConnectionsEvicted counts idle connections closed at
	// http.max_connections to admit a new one.
	ConnectionsEvicted atomic.Uint64
	RefusedRate        atomic.Uint64 // requests over their source's budget (429)
	RefusedHost        atomic.Uint64 // requests for a host not served (421)
	RefusedClient      atomic.Uint64 // announces from clients the filter excludes
	_                  [64]byte
}

// WebSocket counts the WebTorrent frontend's work.
type WebSocket struct {
	Connections        atomic.Int64                   // open now
	ConnectionsRefused atomic.Uint64                  // upgrades refused at websocket.max_connections
	Announce, Scrape   [NumFamilies]atomic.Uint64     // answered
	Offers             atomic.Uint64                  // offers handed to another peer
	Answers            atomic.Uint64                  // answers handed to the offering peer
	Errors             [NumErrorReasons]atomic.Uint64 // failure replies
	BadRequest         atomic.Uint64                  // messages and frames that could not be read
	Refused            atomic.Uint64                  // torrents the access list excludes
	RefusedRate        atomic.Uint64                  // messages over their source's budget
	RefusedClient      atomic.Uint64                  // announces from clients the filter excludes
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
	Database  Database
	WebSocket WebSocket
	// HTTPConnections is the number of HTTP connections open now, kept by
	// the HTTP servers.
	HTTPConnections atomic.Int64

	start time.Time
	swarm func() SwarmStats
	drops atomic.Pointer[func() uint64]
	ws    atomic.Pointer[func() WebSocketSwarms]

	mu   sync.Mutex
	udp  []*UDP
	http []*HTTP
}

// New returns an empty set. swarm is called at each look for the store's
// figures; nil stands for an empty store.
func New(swarm func() SwarmStats) *Metrics {
	if swarm == nil {
		swarm = func() SwarmStats { return SwarmStats{} }
	}
	return &Metrics{start: time.Now(), swarm: swarm}
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
	return c
}

// NewHTTP returns counters for one more group of HTTP connections.
func (m *Metrics) NewHTTP() *HTTP {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := &HTTP{}
	m.http = append(m.http, c)
	return c
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
