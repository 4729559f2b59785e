package promexport

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/trakx/trakx/internal/metrics"
)

// The cluster's families, sent only when the tracker is in a cluster
// (cluster.nats_url): a tracker alone exposes none of them.
var (
	clusterConnectedDesc = prometheus.NewDesc("trakx_cluster_connected",
		"1 while this node is connected to NATS and in its cluster, else 0.", nil, nil)
	clusterNodesDesc = prometheus.NewDesc("trakx_cluster_nodes",
		"Live nodes of the cluster (heard from in the last 3 s), this one included.", nil, nil)
	clusterDeltasDesc = prometheus.NewDesc("trakx_cluster_deltas_total",
		"Announces (records) by direction: published by this node; applied from others; refused by the access list or the store's limits; dropped (outbox full, NATS down, malformed).",
		[]string{"direction"}, nil)
	clusterBytesDesc = prometheus.NewDesc("trakx_cluster_bytes_total",
		"Bytes of batch and snapshot payloads, by direction (sent, received).", []string{"direction"}, nil)
	clusterCatchUpsDesc = prometheus.NewDesc("trakx_cluster_catchups_total",
		"Snapshots received from another node and applied (at start and after each reconnection).", nil, nil)
	clusterLagDesc = prometheus.NewDesc("trakx_cluster_apply_lag_seconds",
		"Time from a batch's send to its application here, less the least ever seen from its sender (queueing, not the network's fixed latency; no clocks compared).",
		nil, nil)
)

// clusterDescs are the cluster's families, for Describe.
var clusterDescs = []*prometheus.Desc{clusterConnectedDesc, clusterNodesDesc, clusterDeltasDesc, clusterBytesDesc, clusterCatchUpsDesc, clusterLagDesc}

// cluster sends the cluster's families; nothing without a cluster.
func (e emitter) cluster(c *metrics.ClusterTotals) {
	if c == nil {
		return
	}
	connected := 0.0
	if c.Connected {
		connected = 1
	}
	e.gauge(clusterConnectedDesc, connected)
	e.gauge(clusterNodesDesc, float64(c.Nodes))
	e.counter(clusterDeltasDesc, c.Published, "published")
	e.counter(clusterDeltasDesc, c.Applied, "applied")
	e.counter(clusterDeltasDesc, c.Refused, "refused")
	e.counter(clusterDeltasDesc, c.Dropped, "dropped")
	e.counter(clusterBytesDesc, c.BytesSent, "sent")
	e.counter(clusterBytesDesc, c.BytesReceived, "received")
	e.counter(clusterCatchUpsDesc, c.CatchUps)
	buckets := make(map[float64]uint64, len(metrics.LagBuckets))
	for i, bound := range metrics.LagBuckets {
		buckets[bound] = c.ApplyLag.Cumulative[i]
	}
	e <- prometheus.MustNewConstHistogram(clusterLagDesc, c.ApplyLag.Count, c.ApplyLag.Sum, buckets)
}
