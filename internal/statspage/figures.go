package statspage

import (
	"time"

	"github.com/trakx/trakx/internal/metrics"
)

// Figures are what /stats.json serves and the page shows: the tracker's
// state now, rates over the last history interval, and the busiest
// torrents. Field names are the JSON contract for scripts: only ever
// added to.
type Figures struct {
	Version       string   `json:"version"`
	UptimeSeconds int64    `json:"uptime_seconds"`
	Swarm         Swarm    `json:"swarm"`
	WebSocket     WSSwarm  `json:"websocket_swarm"`
	Connections   Conns    `json:"connections"`
	Requests      Requests `json:"requests"`
	// Refused are refusals since start by reason: the frontends' (rate,
	// host, client, access_list), the store's and the connection caps'.
	Refused  map[string]uint64 `json:"refused"`
	LastSave Save              `json:"last_save"`
	Busiest  []Torrent         `json:"busiest"`
	// HistoryResolutionSeconds and HistoryHours say what the charts hold.
	HistoryResolutionSeconds int `json:"history_resolution_seconds"`
	HistoryHours             int `json:"history_hours"`
}

// Swarm is the UDP/HTTP store's peers and torrents.
type Swarm struct {
	Torrents int `json:"torrents"`
	Peers    int `json:"peers"`
	// ByFamily has "ipv4" and "ipv6", each with seeders and leechers.
	ByFamily map[string]Roles `json:"by_family"`
}

// Roles are seeders and leechers.
type Roles struct {
	Seeders  int `json:"seeders"`
	Leechers int `json:"leechers"`
}

// WSSwarm is the WebSocket peers' swarms.
type WSSwarm struct {
	Torrents int `json:"torrents"`
	Roles
}

// Conns are the connections open now.
type Conns struct {
	HTTP      int64 `json:"http"`
	WebSocket int64 `json:"websocket"`
}

// Requests are answered requests: per second over the last interval
// (null until two points are in), and totals since start, each by
// protocol and action ("udp" → "announce").
type Requests struct {
	IntervalSeconds float64                       `json:"interval_seconds"`
	PerSecond       map[string]map[string]float64 `json:"per_second"`
	Total           map[string]map[string]uint64  `json:"total"`
}

// Save is the last good database save.
type Save struct {
	Unix    int64   `json:"unix"` // 0: none yet
	Seconds float64 `json:"seconds"`
	Peers   uint64  `json:"peers"`
	Saves   uint64  `json:"saves"`
	Errors  uint64  `json:"errors"`
}

// Torrent is one of the busiest torrents.
type Torrent struct {
	InfoHash  string `json:"info_hash"` // hex
	Seeders   uint32 `json:"seeders"`
	Leechers  uint32 `json:"leechers"`
	Completed uint32 `json:"completed"`
}

// window is the last interval the sampler measured rates over: the
// totals at its two ends.
type window struct {
	from, to *metrics.Totals // nil: fewer than two samples yet
	elapsed  time.Duration
}

// figuresOf turns the counters' totals now into figures, with rates over
// the sampler's last interval.
func figuresOf(t *metrics.Totals, w window) Figures {
	sw := &t.Swarm
	f := Figures{
		UptimeSeconds: int64(t.Uptime / time.Second),
		Swarm:         Swarm{Torrents: sw.Torrents, Peers: sw.Peers(), ByFamily: map[string]Roles{}},
		WebSocket: WSSwarm{Torrents: t.WebSocket.Swarms.Torrents,
			Roles: Roles{Seeders: t.WebSocket.Swarms.Seeders, Leechers: t.WebSocket.Swarms.Leechers}},
		Connections: Conns{HTTP: t.HTTP.Connections, WebSocket: t.WebSocket.Connections},
		Requests:    requestsOf(t, w),
		Refused:     refusedOf(t),
		LastSave: Save{Unix: t.Database.LastSaveUnix, Seconds: t.Database.LastSaveSeconds, Peers: t.Database.LastSavePeers,
			Saves: t.Database.Saves, Errors: t.Database.SaveErrors},
		HistoryResolutionSeconds: int(Resolution / time.Second),
		HistoryHours:             int(HistoryLength / time.Hour),
	}
	for fam, name := range metrics.FamilyNames {
		f.Swarm.ByFamily[name] = Roles{Seeders: sw.Seeders[fam], Leechers: sw.Leechers[fam]}
	}
	return f
}

// requestsOf counts answered requests by protocol and action, for the
// actions each protocol has (metrics' tables): totals now, rates over w.
func requestsOf(t *metrics.Totals, w window) Requests {
	r := Requests{Total: map[string]map[string]uint64{}}
	if w.from != nil && w.elapsed > 0 {
		r.IntervalSeconds = w.elapsed.Seconds()
		r.PerSecond = map[string]map[string]float64{}
	}
	for p, proto := range metrics.ProtocolNames {
		r.Total[proto] = map[string]uint64{}
		if r.PerSecond != nil {
			r.PerSecond[proto] = map[string]float64{}
		}
		for a, action := range metrics.Actions {
			if !action.In.Has(metrics.Protocol(p)) {
				continue
			}
			r.Total[proto][action.Name] = t.Requests[p].Answers(metrics.Action(a))
			if r.PerSecond != nil {
				was, is := w.from.Requests[p].Answers(metrics.Action(a)), w.to.Requests[p].Answers(metrics.Action(a))
				r.PerSecond[proto][action.Name] = float64(is-min(was, is)) / r.IntervalSeconds
			}
		}
	}
	return r
}

// refusedOf is the refusals since start by reason, named as in
// trakx_refused_total.
func refusedOf(t *metrics.Totals) map[string]uint64 {
	out := map[string]uint64{
		"tracker_full_peers":    t.Swarm.RefusedPeers,
		"tracker_full_torrents": t.Swarm.RefusedTorrents,
		"out_of_memory":         t.Swarm.RefusedOutOfMemory,
		"connection_cap":        t.HTTP.ConnectionsRefused,
		"websocket_cap":         t.WebSocket.ConnectionsRefused,
	}
	for why, name := range metrics.RefusalReasons {
		out[name] = t.Refused(metrics.RefusalReason(why))
	}
	return out
}
