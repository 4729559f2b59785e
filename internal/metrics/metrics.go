// Package metrics keeps trakx's counters and serves them, with Go's memory
// statistics, as expvar-style JSON at /debug/vars for netdata's go_expvar
// module.
package metrics

import (
	"encoding/json"
	"expvar"
	"math"
	"net/http"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// UDP counts one UDP worker's requests. Each worker has its own, so that the
// request path never contends on a shared cache line; a scrape adds them up.
type UDP struct {
	Connect         atomic.Uint64
	Announce        atomic.Uint64
	Scrape          atomic.Uint64
	Error           atomic.Uint64 // error packets sent
	BadConnectionID atomic.Uint64 // announces and scrapes dropped unanswered
	BadRequest      atomic.Uint64 // malformed packets, answered or not
	Refused         atomic.Uint64 // torrents the access list excludes
	RefusedRate     atomic.Uint64 // datagrams over their source's budget, dropped
	RefusedClient   atomic.Uint64 // announces from clients the filter excludes
	_               [64]byte
}

// HTTP counts requests of a group of HTTP connections.
type HTTP struct {
	Announce   atomic.Uint64
	Scrape     atomic.Uint64
	Error      atomic.Uint64 // failure replies and error statuses sent
	BadRequest atomic.Uint64 // malformed requests
	Refused    atomic.Uint64 // torrents the access list excludes
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

// Database counts snapshot saves.
type Database struct {
	Saves           atomic.Uint64
	SaveErrors      atomic.Uint64
	LastSaveUnix    atomic.Int64
	LastSaveSeconds atomic.Uint64 // float64 bits
	LastSavePeers   atomic.Uint64
}

// SwarmStats are the store's totals at the time of a scrape.
type SwarmStats struct {
	Torrents, Peers, Seeders, Leechers int
	// Announces refused because tracker.max_peers or max_torrents was
	// reached.
	RefusedPeers, RefusedTorrents uint64
}

// Metrics is the set of counters of one tracker.
type Metrics struct {
	Database Database
	// HTTPConnections is the number of HTTP connections open now, kept by
	// the HTTP servers.
	HTTPConnections atomic.Int64

	start time.Time
	swarm func() SwarmStats

	mu   sync.Mutex
	udp  []*UDP
	http []*HTTP
}

// New returns an empty set. swarm is called at each scrape for the store's
// totals.
func New(swarm func() SwarmStats) *Metrics {
	return &Metrics{start: time.Now(), swarm: swarm}
}

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

// Snapshot returns the "trakx" tree of /debug/vars.
func (m *Metrics) Snapshot() map[string]any {
	m.mu.Lock()
	var udp [9]uint64
	for _, c := range m.udp {
		for i, v := range []*atomic.Uint64{&c.Connect, &c.Announce, &c.Scrape, &c.Error, &c.BadConnectionID, &c.BadRequest, &c.Refused,
			&c.RefusedRate, &c.RefusedClient} {
			udp[i] += v.Load()
		}
	}
	var ht [10]uint64
	for _, c := range m.http {
		for i, v := range []*atomic.Uint64{&c.Announce, &c.Scrape, &c.Error, &c.BadRequest, &c.Refused, &c.ConnectionsRefused, &c.ConnectionsEvicted,
			&c.RefusedRate, &c.RefusedHost, &c.RefusedClient} {
			ht[i] += v.Load()
		}
	}
	m.mu.Unlock()
	sw := m.swarm()
	db := &m.Database
	return map[string]any{
		"swarm": map[string]any{
			"torrents": sw.Torrents, "peers": sw.Peers, "seeders": sw.Seeders, "leechers": sw.Leechers,
			"refused_peers": sw.RefusedPeers, "refused_torrents": sw.RefusedTorrents,
		},
		"udp": map[string]any{
			"connect": udp[0], "announce": udp[1], "scrape": udp[2], "error": udp[3],
			"bad_connection_id": udp[4], "bad_request": udp[5], "refused": udp[6],
		},
		"http": map[string]any{
			"announce": ht[0], "scrape": ht[1], "error": ht[2], "bad_request": ht[3], "refused": ht[4],
			"connections_refused": ht[5], "connections_evicted": ht[6], "connections": m.HTTPConnections.Load(),
		},
		"refused": map[string]any{
			"rate": udp[7] + ht[7], "host": ht[8], "client": udp[8] + ht[9],
		},
		"database": map[string]any{
			"saves":             db.Saves.Load(),
			"save_errors":       db.SaveErrors.Load(),
			"last_save_unix":    db.LastSaveUnix.Load(),
			"last_save_seconds": math.Float64frombits(db.LastSaveSeconds.Load()),
			"last_save_peers":   db.LastSavePeers.Load(),
		},
		"uptime_seconds": int64(time.Since(m.start) / time.Second),
	}
}

// Handler serves /debug/vars in expvar's shape: the process's published
// expvars (cmdline, memstats and any others) plus this tracker's "trakx"
// tree. The tree is per tracker rather than a global expvar, so that tests
// can run several trackers in one process. With profiles, it also serves
// Go's profiles under /debug/pprof/ (config key stats.pprof).
func (m *Metrics) Handler(profiles bool) http.Handler {
	mux := http.NewServeMux()
	if profiles {
		servePprof(mux)
	}
	mux.HandleFunc("GET /debug/vars", func(w http.ResponseWriter, r *http.Request) {
		vars := map[string]any{}
		expvar.Do(func(kv expvar.KeyValue) {
			vars[kv.Key] = json.RawMessage(kv.Value.String())
		})
		if _, ok := vars["cmdline"]; !ok {
			vars["cmdline"] = os.Args
		}
		if _, ok := vars["memstats"]; !ok {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			vars["memstats"] = ms
		}
		vars["trakx"] = m.Snapshot()
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		enc := json.NewEncoder(w)
		enc.SetIndent("", " ")
		enc.Encode(vars)
	})
	return mux
}
