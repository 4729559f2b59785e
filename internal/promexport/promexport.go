// Package promexport serves trakx's counters in the Prometheus exposition
// format at /metrics: the text format (version 0.0.4), or OpenMetrics when
// the scraper's Accept header asks for it. Its collector reads the
// counters of package metrics when scraped, through the same Totals that
// /debug/vars shows, so the two views agree and the request path is not
// touched at all. The requests, errors, bad requests and refusals are
// sent for every protocol, action and reason metrics declares (its
// names.go), so a new one appears here without an edit. The process_* and
// go_* families of client_golang's standard collectors come with it.
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
//	trakx_full_scrape_bytes                        gauge
//	trakx_full_scrape_build_seconds                gauge
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
//
// and, only in a cluster (cluster.nats_url; cluster.go):
//
//	trakx_cluster_connected                        gauge
//	trakx_cluster_nodes                            gauge
//	trakx_cluster_deltas_total{direction}          counter
//	trakx_cluster_bytes_total{direction}           counter
//	trakx_cluster_catchups_total                   counter
//	trakx_cluster_apply_lag_seconds                histogram
package promexport

import (
	"net/http"
	"runtime"
	"strings"

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
		"Requests and connections refused, by reason: "+strings.Join(append(metrics.RefusalReasons[:], storeAndCapRefusals...), ", ")+".",
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
	fullScrapeBytesDesc = prometheus.NewDesc("trakx_full_scrape_bytes",
		"Size of the last full scrape built, gzip-compressed (0 before the first).", nil, nil)
	fullScrapeBuildDesc = prometheus.NewDesc("trakx_full_scrape_build_seconds",
		"How long the build of the last full scrape took.", nil, nil)
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

// Describe sends the descriptions of every trakx family, for the
// registry's checks of names and labels.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{requestsDesc, errorsDesc, badRequestsDesc, refusedDesc, peersDesc, torrentsDesc,
		httpConnectionsDesc, evictedDesc, fullScrapeBytesDesc, fullScrapeBuildDesc, dropsDesc, savesDesc, lastSaveDesc, saveDurationDesc, savePeersDesc,
		wsConnectionsDesc, wsRelayedDesc, wsPeersDesc, wsTorrentsDesc, buildDesc} {
		ch <- d
	}
	for _, d := range clusterDescs {
		ch <- d
	}
}

// Collect takes one look at the counters (metrics.Totals) and sends each
// family's series from it.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	t := c.m.Totals()
	e := emitter(ch)
	e.requests(&t)
	e.refused(&t)
	e.swarm(&t)
	e.database(&t.Database)
	e.webSocket(&t.WebSocket)
	e.gauge(httpConnectionsDesc, float64(t.HTTP.Connections))
	e.counter(evictedDesc, t.HTTP.ConnectionsEvicted)
	e.gauge(fullScrapeBytesDesc, float64(t.HTTP.FullScrapeBytes))
	e.gauge(fullScrapeBuildDesc, t.HTTP.FullScrapeBuildSeconds)
	e.counter(dropsDesc, t.UDPReceiveDrops)
	e.cluster(t.Cluster)
	e.gauge(buildDesc, 1, c.version, runtime.Version())
}

// emitter sends const metrics to a collection.
type emitter chan<- prometheus.Metric

func (e emitter) counter(d *prometheus.Desc, v uint64, labels ...string) {
	e <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
}

func (e emitter) gauge(d *prometheus.Desc, v float64, labels ...string) {
	e <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

// requests sends every frontend's requests, errors and unreadable
// requests, for the actions and error reasons that frontend has (names.go
// in package metrics says which).
func (e emitter) requests(t *metrics.Totals) {
	for p := range t.Requests {
		r := &t.Requests[p]
		protocol := metrics.Protocol(p)
		name := metrics.ProtocolNames[p]
		for a, action := range metrics.Actions {
			if action.In.Has(protocol) {
				for f, family := range metrics.FamilyNames {
					e.counter(requestsDesc, r.Answered[a][f], name, action.Name, family)
				}
			}
		}
		for why, reason := range metrics.ErrorReasons {
			if reason.In.Has(protocol) {
				e.counter(errorsDesc, r.Errors[why], name, reason.Name)
			}
		}
		e.counter(badRequestsDesc, r.BadRequest, name, "malformed")
	}
	e.counter(badRequestsDesc, t.UDP.BadConnectionID, "udp", "bad_connection_id")
}

// refused sends the refusals of every reason: the frontends' (summed over
// them), the store's and the connection caps'.
func (e emitter) refused(t *metrics.Totals) {
	for why, reason := range metrics.RefusalReasons {
		e.counter(refusedDesc, t.Refused(metrics.RefusalReason(why)), reason)
	}
	for i, n := range [...]uint64{t.Swarm.RefusedPeers, t.Swarm.RefusedTorrents, t.Swarm.RefusedOutOfMemory,
		t.HTTP.ConnectionsRefused, t.WebSocket.ConnectionsRefused} {
		e.counter(refusedDesc, n, storeAndCapRefusals[i])
	}
}

// storeAndCapRefusals name the refusals counted outside the frontends'
// tables, in refused's order: the store's and the connection caps'.
var storeAndCapRefusals = []string{"tracker_full_peers", "tracker_full_torrents", "out_of_memory", "connection_cap", "websocket_cap"}

func (e emitter) swarm(t *metrics.Totals) {
	for f, family := range metrics.FamilyNames {
		e.gauge(peersDesc, float64(t.Swarm.Seeders[f]), family, "seeder")
		e.gauge(peersDesc, float64(t.Swarm.Leechers[f]), family, "leecher")
	}
	e.gauge(torrentsDesc, float64(t.Swarm.Torrents))
}

func (e emitter) database(db *metrics.DatabaseTotals) {
	e.counter(savesDesc, db.Saves, "ok")
	e.counter(savesDesc, db.SaveErrors, "error")
	e.gauge(lastSaveDesc, float64(db.LastSaveUnix))
	e.gauge(saveDurationDesc, db.LastSaveSeconds)
	e.gauge(savePeersDesc, float64(db.LastSavePeers))
}

func (e emitter) webSocket(w *metrics.WebSocketTotals) {
	e.gauge(wsConnectionsDesc, float64(w.Connections))
	e.counter(wsRelayedDesc, w.Offers, "offer")
	e.counter(wsRelayedDesc, w.Answers, "answer")
	e.gauge(wsPeersDesc, float64(w.Swarms.Seeders), "seeder")
	e.gauge(wsPeersDesc, float64(w.Swarms.Leechers), "leecher")
	e.gauge(wsTorrentsDesc, float64(w.Swarms.Torrents))
}
