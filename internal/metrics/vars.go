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
// a contract: netdata's go_expvar job reads them. Keys are only ever added:
// a new action or refusal reason in names.go adds its own. "cluster" is
// there only when the tracker is in one (cluster.nats_url).
func (m *Metrics) Snapshot() map[string]any {
	t := m.Totals()
	sw, db := &t.Swarm, &t.Database
	seeders, leechers := sw.Seeders[IPv4]+sw.Seeders[IPv6], sw.Leechers[IPv4]+sw.Leechers[IPv6]
	tree := map[string]any{
		"swarm": map[string]any{
			"torrents": sw.Torrents, "peers": seeders + leechers, "seeders": seeders, "leechers": leechers,
			"refused_peers": sw.RefusedPeers, "refused_torrents": sw.RefusedTorrents,
		},
		"refused": refusedVars(&t),
		"database": map[string]any{
			"saves": db.Saves, "save_errors": db.SaveErrors, "last_save_unix": db.LastSaveUnix,
			"last_save_seconds": db.LastSaveSeconds, "last_save_peers": db.LastSavePeers,
		},
		"uptime_seconds": int64(t.Uptime / time.Second),
	}
	own := frontendVars(&t)
	for p, name := range ProtocolNames {
		tree[name] = requestVars(&t.Requests[p], Protocol(p), own[p])
	}
	if t.Cluster != nil {
		tree["cluster"] = clusterVars(t.Cluster)
	}
	return tree
}

// frontendVars are the keys of each frontend's tree for counters of its
// own, beside its requests'.
func frontendVars(t *Totals) [NumProtocols]map[string]any {
	u, h, w := &t.UDP, &t.HTTP, &t.WebSocket
	return [NumProtocols]map[string]any{
		ProtocolUDP: {"bad_connection_id": u.BadConnectionID, "receive_drops": t.UDPReceiveDrops},
		ProtocolHTTP: {
			"descriptor_errors":   t.Requests[ProtocolHTTP].Errors[ReasonDescriptors],
			"connections_refused": h.ConnectionsRefused, "connections_evicted": h.ConnectionsEvicted,
			"connections":       h.Connections,
			"full_scrape_bytes": h.FullScrapeBytes, "full_scrape_build_seconds": h.FullScrapeBuildSeconds,
		},
		ProtocolWebSocket: {
			"connections": w.Connections, "connections_refused": w.ConnectionsRefused,
			"offers": w.Offers, "answers": w.Answers,
			"refused_rate":   t.Requests[ProtocolWebSocket].Refused[RefusalRate],
			"refused_client": t.Requests[ProtocolWebSocket].Refused[RefusalClient],
			"torrents":       w.Swarms.Torrents, "peers": w.Swarms.Seeders + w.Swarms.Leechers,
			"seeders": w.Swarms.Seeders, "leechers": w.Swarms.Leechers,
		},
	}
}

// requestVars adds a frontend's request figures to its tree: one key per
// action it answers, its errors and unreadable requests, and "refused",
// which is the access list's refusals alone (the other reasons are under
// "refused", summed over the frontends).
func requestVars(r *RequestTotals, p Protocol, tree map[string]any) map[string]any {
	if tree == nil {
		tree = map[string]any{}
	}
	for a, action := range Actions {
		if action.In.Has(p) {
			tree[action.Name] = r.Answers(Action(a))
		}
	}
	tree["error"] = r.ErrorTotal()
	tree["bad_request"] = r.BadRequest
	tree["refused"] = r.Refused[RefusalAccessList]
	return tree
}

// refusedVars is the "refused" tree: each refusal reason but the access
// list's summed over the frontends, and the store's lack of memory.
func refusedVars(t *Totals) map[string]any {
	tree := map[string]any{
		// The store could not have the memory for a newcomer.
		"out_of_memory": t.Swarm.RefusedOutOfMemory,
	}
	for why, name := range RefusalReasons {
		if RefusalReason(why) != RefusalAccessList {
			tree[name] = t.Refused(RefusalReason(why))
		}
	}
	return tree
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
