package metrics

import (
	"encoding/json"
	"expvar"
	"net/http"
	"os"
	"runtime"
	"time"
)

// Snapshot returns the "trakx" tree of /debug/vars. Its keys and types are
// a contract: netdata's go_expvar job reads them. Keys are only ever added.
func (m *Metrics) Snapshot() map[string]any {
	t := m.Totals()
	u, h, w, sw, db := &t.UDP, &t.HTTP, &t.WebSocket, &t.Swarm, &t.Database
	seeders, leechers := sw.Seeders[IPv4]+sw.Seeders[IPv6], sw.Leechers[IPv4]+sw.Leechers[IPv6]
	return map[string]any{
		"swarm": map[string]any{
			"torrents": sw.Torrents, "peers": seeders + leechers, "seeders": seeders, "leechers": leechers,
			"refused_peers": sw.RefusedPeers, "refused_torrents": sw.RefusedTorrents,
		},
		"udp": map[string]any{
			"connect": sum(u.Connect[:]), "announce": sum(u.Announce[:]), "scrape": sum(u.Scrape[:]), "error": u.ErrorTotal(),
			"bad_connection_id": u.BadConnectionID, "bad_request": u.BadRequest, "refused": u.Refused,
			"receive_drops": t.UDPReceiveDrops,
		},
		"http": map[string]any{
			"announce": sum(h.Announce[:]), "scrape": sum(h.Scrape[:]), "error": h.ErrorTotal(), "bad_request": h.BadRequest,
			"descriptor_errors": h.Errors[ErrDescriptors],
			"refused":           h.Refused, "connections_refused": h.ConnectionsRefused, "connections_evicted": h.ConnectionsEvicted,
			"connections": h.Connections,
		},
		"websocket": map[string]any{
			"connections": w.Connections, "connections_refused": w.ConnectionsRefused,
			"announce": sum(w.Announce[:]), "scrape": sum(w.Scrape[:]), "offers": w.Offers, "answers": w.Answers,
			"error": w.ErrorTotal(), "bad_request": w.BadRequest, "refused": w.Refused,
			"refused_rate": w.RefusedRate, "refused_client": w.RefusedClient,
			"torrents": w.Swarms.Torrents, "peers": w.Swarms.Seeders + w.Swarms.Leechers,
			"seeders": w.Swarms.Seeders, "leechers": w.Swarms.Leechers,
		},
		"refused": map[string]any{
			"rate":   u.RefusedRate + h.RefusedRate + w.RefusedRate,
			"host":   h.RefusedHost,
			"client": u.RefusedClient + h.RefusedClient + w.RefusedClient,
			// The store could not have the memory for a newcomer.
			"out_of_memory": sw.RefusedOutOfMemory,
		},
		"database": map[string]any{
			"saves": db.Saves, "save_errors": db.SaveErrors, "last_save_unix": db.LastSaveUnix,
			"last_save_seconds": db.LastSaveSeconds, "last_save_peers": db.LastSavePeers,
		},
		"uptime_seconds": int64(t.Uptime / time.Second),
	}
}

// Handler serves /debug/vars in expvar's shape: the process's published
// expvars (cmdline, memstats and any others) plus this tracker's "trakx"
// tree. The tree is per tracker rather than a global expvar, so that tests
// can run several trackers in one process. With profiles, it also serves
// Go's profiles under /debug/pprof/ (config key stats.pprof). More views
// (the Prometheus one) are added to the mux it returns.
func (m *Metrics) Handler(profiles bool) *http.ServeMux {
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
