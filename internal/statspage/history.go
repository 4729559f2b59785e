package statspage

import (
	"sync"
	"time"

	"github.com/trakx/trakx/internal/metrics"
)

// Resolution is how often the history takes a point, and HistoryLength
// how much of it is kept: a day at 10 s is 8,640 points of 80 bytes
// (TestHistoryIsBounded), 0.7 MB, allocated once.
const (
	Resolution    = 10 * time.Second
	HistoryLength = 24 * time.Hour
	historyPoints = int(HistoryLength / Resolution)
)

// point is the history's reading at one time: gauges as they were, and
// counters as totals since start, from which the page derives rates.
type point struct {
	At                       int64 // unix seconds
	Torrents                 uint32
	Seeders, Leechers        [metrics.NumFamilies]uint32
	HTTPConns, WebSocketConn uint32
	Requests                 [metrics.NumProtocols]uint64 // answered, every action and family
	Errors                   uint64                       // error replies, every protocol
	Refused                  uint64                       // refusals, every reason
}

// pointOf reads a point from the counters' totals.
func pointOf(t *metrics.Totals, at time.Time) point {
	p := point{At: at.Unix(), Torrents: uint32(t.Swarm.Torrents),
		HTTPConns: uint32(max(t.HTTP.Connections, 0)), WebSocketConn: uint32(max(t.WebSocket.Connections, 0))}
	for f := range p.Seeders {
		p.Seeders[f], p.Leechers[f] = uint32(t.Swarm.Seeders[f]), uint32(t.Swarm.Leechers[f])
	}
	for proto := range t.Requests {
		r := &t.Requests[proto]
		for a := range r.Answered {
			p.Requests[proto] += r.Answers(metrics.Action(a))
		}
		p.Errors += r.ErrorTotal()
	}
	for why := range metrics.NumRefusalReasons {
		p.Refused += t.Refused(why)
	}
	p.Refused += t.Swarm.RefusedPeers + t.Swarm.RefusedTorrents + t.Swarm.RefusedOutOfMemory +
		t.HTTP.ConnectionsRefused + t.WebSocket.ConnectionsRefused
	return p
}

// history is a ring of the last historyPoints points.
type history struct {
	mu     sync.Mutex
	points []point // historyPoints long once full
	next   int     // where the next point goes once full
}

// add keeps p, dropping the oldest point once the ring is full.
func (h *history) add(p point) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.points) < historyPoints {
		if h.points == nil {
			h.points = make([]point, 0, historyPoints)
		}
		h.points = append(h.points, p)
		return
	}
	h.points[h.next] = p
	h.next = (h.next + 1) % historyPoints
}

// since copies the points after unix time t, oldest first, and the point
// before the first of them (base: the first rate's start), if kept.
func (h *history) since(t int64) (base *point, points []point) {
	h.mu.Lock()
	defer h.mu.Unlock()
	points = make([]point, 0, len(h.points))
	for i := range h.points {
		p := h.points[(h.next+i)%len(h.points)]
		if p.At > t {
			points = append(points, p)
		} else {
			base = &p
		}
	}
	return base, points
}

// History is the charts' points as /stats.json?history=1 serves them: one
// array a series, oldest first. Gauges are as they were at each point;
// rates are per second since the point before (0 at the first, and where
// a gap or a restart of the counters leaves none).
type History struct {
	ResolutionSeconds int                  `json:"resolution_seconds"`
	Time              []int64              `json:"time"` // unix seconds
	Torrents          []uint32             `json:"torrents"`
	Seeders           []uint32             `json:"seeders"`
	Leechers          []uint32             `json:"leechers"`
	HTTPConnections   []uint32             `json:"http_connections"`
	WebSocketConns    []uint32             `json:"websocket_connections"`
	RequestsPerSecond map[string][]float64 `json:"requests_per_second"` // by protocol
	ErrorsPerSecond   []float64            `json:"errors_per_second"`
	RefusedPerSecond  []float64            `json:"refused_per_second"`
}

// historyOf lays points out as series; base is the point before them,
// for the first rate (nil: none).
func historyOf(base *point, points []point) *History {
	n := len(points)
	h := &History{ResolutionSeconds: int(Resolution / time.Second), Time: make([]int64, 0, n),
		Torrents: make([]uint32, 0, n), Seeders: make([]uint32, 0, n), Leechers: make([]uint32, 0, n),
		HTTPConnections: make([]uint32, 0, n), WebSocketConns: make([]uint32, 0, n), RequestsPerSecond: map[string][]float64{},
		ErrorsPerSecond: make([]float64, 0, n), RefusedPerSecond: make([]float64, 0, n)}
	for _, name := range metrics.ProtocolNames {
		h.RequestsPerSecond[name] = make([]float64, 0, n)
	}
	for i := range points {
		p := &points[i]
		h.Time = append(h.Time, p.At)
		h.Torrents = append(h.Torrents, p.Torrents)
		h.Seeders = append(h.Seeders, p.Seeders[metrics.IPv4]+p.Seeders[metrics.IPv6])
		h.Leechers = append(h.Leechers, p.Leechers[metrics.IPv4]+p.Leechers[metrics.IPv6])
		h.HTTPConnections = append(h.HTTPConnections, p.HTTPConns)
		h.WebSocketConns = append(h.WebSocketConns, p.WebSocketConn)
		prev := base
		if i > 0 {
			prev = &points[i-1]
		}
		for proto, name := range metrics.ProtocolNames {
			h.RequestsPerSecond[name] = append(h.RequestsPerSecond[name], rate(prev, p, func(q *point) uint64 { return q.Requests[proto] }))
		}
		h.ErrorsPerSecond = append(h.ErrorsPerSecond, rate(prev, p, func(q *point) uint64 { return q.Errors }))
		h.RefusedPerSecond = append(h.RefusedPerSecond, rate(prev, p, func(q *point) uint64 { return q.Refused }))
	}
	return h
}

// rate is a counter's increase per second from prev to p.
func rate(prev, p *point, counter func(*point) uint64) float64 {
	if prev == nil || p.At <= prev.At || counter(p) < counter(prev) {
		return 0
	}
	return float64(counter(p)-counter(prev)) / float64(p.At-prev.At)
}
