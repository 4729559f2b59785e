// Package promexport serves trakx's counters in the Prometheus exposition
// format at /metrics: the text format (version 0.0.4), or OpenMetrics when
// the scraper's Accept header asks for it. Its collector reads the
// counters of package metrics when scraped, through the same Totals that
// /debug/vars shows, so the two views agree and the request path is not
// touched at all. The process_* and go_* families of client_golang's
// standard collectors come with it.
//
// Families (the README lists them with their meaning):
//
//	trakx_requests_total{protocol,action,family}   counter
//	trakx_errors_total{protocol,reason}            counter
//	trakx_bad_requests_total{protocol,reason}      counter
//	trakx_refused_total{reason}                    counter
//	trakx_peers{family,role}                       gauge
//	trakx_torrents                                 gauge
//	trakx_http_connections                         gauge
//	trakx_http_connections_evicted_total           counter
//	trakx_udp_receive_drops_total                  counter
//	trakx_database_saves_total{result}             counter
//	trakx_database_last_save_timestamp_seconds     gauge
//	trakx_database_save_duration_seconds           gauge
//	trakx_database_last_save_peers                 gauge
//	trakx_websocket_connections                    gauge
//	trakx_websocket_relayed_total{kind}            counter
//	trakx_websocket_peers{role}                    gauge
//	trakx_websocket_torrents                       gauge
//	trakx_build_info{version,goversion}            gauge
package promexport

import (
	"net/http"
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/trakx/trakx/internal/metrics"
)

// Handler serves m's counters, and the process's and Go runtime's, for
// Prometheus. version is the tracker's, for trakx_build_info.
func Handler(m *metrics.Metrics, version string) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&collector{m: m, version: version},
	)
	return promhttp.HandlerFor(withoutClash(reg), promhttp.HandlerOpts{EnableOpenMetrics: true, ErrorHandling: promhttp.ContinueOnError})
}

// withoutClash leaves out go_memstats_alloc_bytes_total. In OpenMetrics a
// counter's family drops the _total, so that counter and the gauge
// go_memstats_alloc_bytes are two families of one name, which OpenMetrics
// parsers refuse ("metadata after samples"). What is lost is the bytes
// allocated since start; go_memstats_mallocs_total still counts the
// allocations and go_memstats_heap_alloc_bytes shows the live heap.
func withoutClash(g prometheus.Gatherer) prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		families, err := g.Gather()
		kept := families[:0]
		for _, f := range families {
			if f.GetName() != "go_memstats_alloc_bytes_total" {
				kept = append(kept, f)
			}
		}
		return kept, err
	})
}

var (
	requestsDesc = prometheus.NewDesc("trakx_requests_total",
		"Requests answered, by protocol (udp, http, websocket), action and the client's address family (as /debug/vars counts them).",
		[]string{"protocol", "action", "family"}, nil)
	errorsDesc = prometheus.NewDesc("trakx_errors_total",
		"Requests answered with an error (a BEP 15 error packet, a bencoded failure reason or an error status), by reason.",
		[]string{"protocol", "reason"}, nil)
	badRequestsDesc = prometheus.NewDesc("trakx_bad_requests_total",
		"Requests that could not be read (malformed, answered or not) or whose UDP connection id was invalid (dropped).",
		[]string{"protocol", "reason"}, nil)
	refusedDesc = prometheus.NewDesc("trakx_refused_total",
		"Requests and connections refused, by reason: access_list, tracker_full_peers, tracker_full_torrents, out_of_memory, connection_cap, websocket_cap, rate, host, client.",
		[]string{"reason"}, nil)
	peersDesc = prometheus.NewDesc("trakx_peers",
		"Peers in the swarm store, by address family and role.",
		[]string{"family", "role"}, nil)
	torrentsDesc = prometheus.NewDesc("trakx_torrents",
		"Torrents with at least one peer.", nil, nil)
	httpConnectionsDesc = prometheus.NewDesc("trakx_http_connections",
		"HTTP connections open now.", nil, nil)
	evictedDesc = prometheus.NewDesc("trakx_http_connections_evicted_total",
		"Idle HTTP connections closed at http.max_connections to admit a new one.", nil, nil)
	dropsDesc = prometheus.NewDesc("trakx_udp_receive_drops_total",
		"Datagrams the kernel dropped at trakx's UDP sockets because trakx did not read them fast enough.", nil, nil)
	savesDesc = prometheus.NewDesc("trakx_database_saves_total",
		"Swarm database saves, by result (ok, error).", []string{"result"}, nil)
	lastSaveDesc = prometheus.NewDesc("trakx_database_last_save_timestamp_seconds",
		"When the last good save of the swarm database ended (Unix time; 0 before the first).", nil, nil)
	saveDurationDesc = prometheus.NewDesc("trakx_database_save_duration_seconds",
		"How long the last good save of the swarm database took.", nil, nil)
	savePeersDesc = prometheus.NewDesc("trakx_database_last_save_peers",
		"Peers written by the last good save of the swarm database.", nil, nil)
	wsConnectionsDesc = prometheus.NewDesc("trakx_websocket_connections",
		"WebSocket (WebTorrent) connections open now.", nil, nil)
	wsRelayedDesc = prometheus.NewDesc("trakx_websocket_relayed_total",
		"WebRTC offers and answers handed from one WebSocket peer to another, by kind (offer, answer).", []string{"kind"}, nil)
	wsPeersDesc = prometheus.NewDesc("trakx_websocket_peers",
		"WebSocket peers, in swarms of their own, by role.", []string{"role"}, nil)
	wsTorrentsDesc = prometheus.NewDesc("trakx_websocket_torrents",
		"Torrents with at least one WebSocket peer.", nil, nil)
	buildDesc = prometheus.NewDesc("trakx_build_info",
		"Always 1; its labels say which trakx is running.", []string{"version", "goversion"}, nil)
)

// collector turns one look at the counters into const metrics.
type collector struct {
	m       *metrics.Metrics
	version string
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{requestsDesc, errorsDesc, badRequestsDesc, refusedDesc, peersDesc, torrentsDesc,
		httpConnectionsDesc, evictedDesc, dropsDesc, savesDesc, lastSaveDesc, saveDurationDesc, savePeersDesc,
		wsConnectionsDesc, wsRelayedDesc, wsPeersDesc, wsTorrentsDesc, buildDesc} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	t := c.m.Totals()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	u, h, w := &t.UDP, &t.HTTP, &t.WebSocket
	for f, family := range metrics.FamilyNames {
		counter(requestsDesc, w.Announce[f], "websocket", "announce", family)
		counter(requestsDesc, w.Scrape[f], "websocket", "scrape", family)
		counter(requestsDesc, u.Connect[f], "udp", "connect", family)
		counter(requestsDesc, u.Announce[f], "udp", "announce", family)
		counter(requestsDesc, u.Scrape[f], "udp", "scrape", family)
		counter(requestsDesc, h.Announce[f], "http", "announce", family)
		counter(requestsDesc, h.Scrape[f], "http", "scrape", family)
		gauge(peersDesc, float64(t.Swarm.Seeders[f]), family, "seeder")
		gauge(peersDesc, float64(t.Swarm.Leechers[f]), family, "leecher")
	}
	for r, reason := range metrics.ErrorReasonNames {
		// UDP has no paths and no connections; WebSocket no paths.
		switch metrics.ErrorReason(r) {
		case metrics.ErrNotFound:
		case metrics.ErrDescriptors:
			counter(errorsDesc, w.Errors[r], "websocket", reason)
		default:
			counter(errorsDesc, u.Errors[r], "udp", reason)
			counter(errorsDesc, w.Errors[r], "websocket", reason)
		}
		counter(errorsDesc, h.Errors[r], "http", reason)
	}
	counter(badRequestsDesc, w.BadRequest, "websocket", "malformed")
	counter(badRequestsDesc, u.BadRequest, "udp", "malformed")
	counter(badRequestsDesc, u.BadConnectionID, "udp", "bad_connection_id")
	counter(badRequestsDesc, h.BadRequest, "http", "malformed")
	for reason, v := range map[string]uint64{
		"access_list":           u.Refused + h.Refused + w.Refused,
		"tracker_full_peers":    t.Swarm.RefusedPeers,
		"tracker_full_torrents": t.Swarm.RefusedTorrents,
		"out_of_memory":         t.Swarm.RefusedOutOfMemory,
		"connection_cap":        h.ConnectionsRefused,
		"rate":                  u.RefusedRate + h.RefusedRate + w.RefusedRate,
		"host":                  h.RefusedHost,
		"client":                u.RefusedClient + h.RefusedClient + w.RefusedClient,
		"websocket_cap":         w.ConnectionsRefused,
	} {
		counter(refusedDesc, v, reason)
	}
	gauge(torrentsDesc, float64(t.Swarm.Torrents))
	gauge(httpConnectionsDesc, float64(h.Connections))
	counter(evictedDesc, h.ConnectionsEvicted)
	counter(dropsDesc, t.UDPReceiveDrops)
	counter(savesDesc, t.Database.Saves, "ok")
	counter(savesDesc, t.Database.SaveErrors, "error")
	gauge(lastSaveDesc, float64(t.Database.LastSaveUnix))
	gauge(saveDurationDesc, t.Database.LastSaveSeconds)
	gauge(savePeersDesc, float64(t.Database.LastSavePeers))
	gauge(wsConnectionsDesc, float64(w.Connections))
	counter(wsRelayedDesc, w.Offers, "offer")
	counter(wsRelayedDesc, w.Answers, "answer")
	gauge(wsPeersDesc, float64(w.Swarms.Seeders), "seeder")
	gauge(wsPeersDesc, float64(w.Swarms.Leechers), "leecher")
	gauge(wsTorrentsDesc, float64(w.Swarms.Torrents))
	gauge(buildDesc, 1, c.version, runtime.Version())
}
