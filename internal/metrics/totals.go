package metrics

import (
	"math"
	"sync/atomic"
	"time"
)

// UDPTotals are the UDP counters of every worker added up.
type UDPTotals struct {
	Connect, Announce, Scrape [NumFamilies]uint64
	Errors                    [NumErrorReasons]uint64
	BadConnectionID           uint64
	BadRequest                uint64
	Refused                   uint64
	RefusedRate               uint64
	RefusedClient             uint64
}

// HTTPTotals are the HTTP counters of every server added up.
type HTTPTotals struct {
	Announce, Scrape   [NumFamilies]uint64
	Errors             [NumErrorReasons]uint64
	BadRequest         uint64
	Refused            uint64
	ConnectionsRefused uint64
	ConnectionsEvicted uint64
	RefusedRate        uint64
	RefusedHost        uint64
	RefusedClient      uint64
	Connections        int64 // open now
}

// WebSocketTotals are the WebSocket frontend's counters and swarms.
type WebSocketTotals struct {
	Connections        int64
	ConnectionsRefused uint64
	Announce, Scrape   [NumFamilies]uint64
	Offers, Answers    uint64
	Errors             [NumErrorReasons]uint64
	BadRequest         uint64
	Refused            uint64
	RefusedRate        uint64
	RefusedClient      uint64
	Swarms             WebSocketSwarms
}

// ErrorTotal is the number of failure replies, of every reason.
func (t *WebSocketTotals) ErrorTotal() uint64 { return sum(t.Errors[:]) }

// DatabaseTotals are the database's figures.
type DatabaseTotals struct {
	Saves, SaveErrors uint64
	LastSaveUnix      int64   // 0: none yet
	LastSaveSeconds   float64 // how long the last good save took
	LastSavePeers     uint64
}

// Totals are every counter at one moment: what both views show.
type Totals struct {
	UDP       UDPTotals
	HTTP      HTTPTotals
	WebSocket WebSocketTotals
	Swarm     SwarmStats
	Database  DatabaseTotals
	// UDPReceiveDrops are datagrams the kernel dropped at the tracker's
	// UDP sockets because they were not read fast enough.
	UDPReceiveDrops uint64
	Uptime          time.Duration
}

// sum adds up counters kept per family or per reason.
func sum(v []uint64) (n uint64) {
	for _, x := range v {
		n += x
	}
	return n
}

// ErrorTotal is the number of error replies, of every reason.
func (t *UDPTotals) ErrorTotal() uint64 { return sum(t.Errors[:]) }

// ErrorTotal is the number of error replies, of every reason.
func (t *HTTPTotals) ErrorTotal() uint64 { return sum(t.Errors[:]) }

// Peers is the number of peers of both families.
func (s *SwarmStats) Peers() int {
	return s.Seeders[IPv4] + s.Seeders[IPv6] + s.Leechers[IPv4] + s.Leechers[IPv6]
}

func addAll(dst []uint64, src []atomic.Uint64) {
	for i := range src {
		dst[i] += src[i].Load()
	}
}

// Totals adds up every counter.
func (m *Metrics) Totals() Totals {
	var t Totals
	m.mu.Lock()
	for _, c := range m.udp {
		u := &t.UDP
		addAll(u.Connect[:], c.Connect[:])
		addAll(u.Announce[:], c.Announce[:])
		addAll(u.Scrape[:], c.Scrape[:])
		addAll(u.Errors[:], c.Errors[:])
		u.BadConnectionID += c.BadConnectionID.Load()
		u.BadRequest += c.BadRequest.Load()
		u.Refused += c.Refused.Load()
		u.RefusedRate += c.RefusedRate.Load()
		u.RefusedClient += c.RefusedClient.Load()
	}
	for _, c := range m.http {
		h := &t.HTTP
		addAll(h.Announce[:], c.Announce[:])
		addAll(h.Scrape[:], c.Scrape[:])
		addAll(h.Errors[:], c.Errors[:])
		h.BadRequest += c.BadRequest.Load()
		h.Refused += c.Refused.Load()
		h.ConnectionsRefused += c.ConnectionsRefused.Load()
		h.ConnectionsEvicted += c.ConnectionsEvicted.Load()
		h.RefusedRate += c.RefusedRate.Load()
		h.RefusedHost += c.RefusedHost.Load()
		h.RefusedClient += c.RefusedClient.Load()
	}
	m.mu.Unlock()
	t.HTTP.Connections = m.HTTPConnections.Load()
	t.Swarm = m.swarm()
	db := &m.Database
	t.Database = DatabaseTotals{
		Saves: db.Saves.Load(), SaveErrors: db.SaveErrors.Load(), LastSaveUnix: db.LastSaveUnix.Load(),
		LastSaveSeconds: math.Float64frombits(db.LastSaveSeconds.Load()), LastSavePeers: db.LastSavePeers.Load(),
	}
	if f := m.drops.Load(); f != nil {
		t.UDPReceiveDrops = (*f)()
	}
	t.WebSocket = m.webSocketTotals()
	t.Uptime = time.Since(m.start)
	return t
}

func (m *Metrics) webSocketTotals() WebSocketTotals {
	c := &m.WebSocket
	t := WebSocketTotals{
		Connections: c.Connections.Load(), ConnectionsRefused: c.ConnectionsRefused.Load(),
		Offers: c.Offers.Load(), Answers: c.Answers.Load(), BadRequest: c.BadRequest.Load(),
		Refused: c.Refused.Load(), RefusedRate: c.RefusedRate.Load(), RefusedClient: c.RefusedClient.Load(),
	}
	addAll(t.Announce[:], c.Announce[:])
	addAll(t.Scrape[:], c.Scrape[:])
	addAll(t.Errors[:], c.Errors[:])
	if f := m.ws.Load(); f != nil {
		t.Swarms = (*f)()
	}
	return t
}
