package metrics

import (
	"math"
	"time"
)

// UDPTotals are the UDP frontend's own counters (beside its requests') of
// every worker added up.
type UDPTotals struct {
	BadConnectionID uint64
}

// HTTPTotals are the HTTP frontend's own counters (beside its requests')
// of every server added up.
type HTTPTotals struct {
	ConnectionsRefused uint64
	ConnectionsEvicted uint64
	Connections        int64 // open now
	// The last full scrape built: its gzip size, how long it took (0s
	// before the first).
	FullScrapeBytes        uint64
	FullScrapeBuildSeconds float64
}

// WebSocketTotals are the WebSocket frontend's own counters (beside its
// requests') and swarms.
type WebSocketTotals struct {
	Connections        int64
	ConnectionsRefused uint64
	Offers, Answers    uint64
	Swarms             WebSocketSwarms
}

// DatabaseTotals are the database's figures.
type DatabaseTotals struct {
	Saves, SaveErrors uint64
	LastSaveUnix      int64   // 0: none yet
	LastSaveSeconds   float64 // how long the last good save took
	LastSavePeers     uint64
}

// Totals are every counter at one moment: what every view shows.
type Totals struct {
	// Requests are each frontend's request figures, by protocol, for the
	// views that show every frontend alike.
	Requests  [NumProtocols]RequestTotals
	UDP       UDPTotals
	HTTP      HTTPTotals
	WebSocket WebSocketTotals
	Swarm     SwarmStats
	Database  DatabaseTotals
	// UDPReceiveDrops are datagrams the kernel dropped at the tracker's
	// UDP sockets because they were not read fast enough.
	UDPReceiveDrops uint64
	Uptime          time.Duration
	// Cluster is the cluster node's figures; nil without a cluster.
	Cluster *ClusterTotals
}

// Refused is the number of requests refused for why, by every frontend.
func (t *Totals) Refused(why RefusalReason) (n uint64) {
	for p := range t.Requests {
		n += t.Requests[p].Refused[why]
	}
	return n
}

// Peers is the number of peers of both families.
func (s *SwarmStats) Peers() int {
	return s.Seeders[IPv4] + s.Seeders[IPv6] + s.Leechers[IPv4] + s.Leechers[IPv6]
}

// Totals adds up every counter.
func (m *Metrics) Totals() Totals {
	var t Totals
	m.mu.Lock()
	for p, blocks := range m.requests {
		for _, c := range blocks {
			t.Requests[p].add(c)
		}
	}
	for _, c := range m.udp {
		t.UDP.add(c)
	}
	for _, c := range m.http {
		t.HTTP.add(c)
	}
	m.mu.Unlock()
	t.HTTP.Connections = m.HTTPConnections.Load()
	t.HTTP.FullScrapeBytes = m.FullScrape.Bytes.Load()
	t.HTTP.FullScrapeBuildSeconds = math.Float64frombits(m.FullScrape.BuildSeconds.Load())
	t.WebSocket.add(&m.WebSocket)
	if f := m.ws.Load(); f != nil {
		t.WebSocket.Swarms = (*f)()
	}
	t.Swarm = m.swarm()
	t.Database = m.Database.totals()
	if f := m.drops.Load(); f != nil {
		t.UDPReceiveDrops = (*f)()
	}
	t.Uptime = time.Since(m.start)
	t.Cluster = m.clusterTotals()
	return t
}

func (t *UDPTotals) add(c *UDP) {
	t.BadConnectionID += c.BadConnectionID.Load()
}

func (t *HTTPTotals) add(c *HTTP) {
	t.ConnectionsRefused += c.ConnectionsRefused.Load()
	t.ConnectionsEvicted += c.ConnectionsEvicted.Load()
}

func (t *WebSocketTotals) add(c *WebSocket) {
	t.Connections += c.Connections.Load()
	t.ConnectionsRefused += c.ConnectionsRefused.Load()
	t.Offers += c.Offers.Load()
	t.Answers += c.Answers.Load()
}

func (db *Database) totals() DatabaseTotals {
	return DatabaseTotals{
		Saves: db.Saves.Load(), SaveErrors: db.SaveErrors.Load(), LastSaveUnix: db.LastSaveUnix.Load(),
		LastSaveSeconds: math.Float64frombits(db.LastSaveSeconds.Load()), LastSavePeers: db.LastSavePeers.Load(),
	}
}
