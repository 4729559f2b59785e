package metrics

import (
	"math"
	"sync/atomic"
)

// ClusterStats are a cluster node's figures at the time of a look (package
// cluster's Stats, which the daemon hands over as these, so that this
// package needs none of NATS).
type ClusterStats struct {
	Connected bool // a NATS connection is up and the node is in the cluster
	Nodes     int  // live nodes, this one included
	// Deltas, in records: published by this node; applied from others;
	// refused by the access list or the store's limits; dropped (outbox
	// full, NATS down, malformed).
	Published, Applied, Refused, Dropped uint64
	BadBatches                           uint64 // batches refused whole
	BytesSent, BytesReceived             uint64 // batch and snapshot payloads
	CatchUps                             uint64 // snapshots received and applied
	SnapshotsServed, SnapshotsRefused    uint64 // refused: answered busy
	ApplyLagSeconds                      float64
}

// LagBuckets are the upper bounds, in seconds, of the apply lag
// histogram's buckets (trakx_cluster_apply_lag_seconds): the contract's
// 500 ms at p99 falls in the middle.
var LagBuckets = [...]float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// Histogram counts observations in LagBuckets' buckets, with atomic
// operations only: Observe is called for every batch applied.
type Histogram struct {
	counts  [len(LagBuckets) + 1]atomic.Uint64 // the last: above every bound
	sumBits atomic.Uint64                      // float64 seconds
}

// Observe counts one observation of v seconds.
func (h *Histogram) Observe(v float64) {
	i := 0
	for i < len(LagBuckets) && v > LagBuckets[i] {
		i++
	}
	h.counts[i].Add(1)
	for {
		old := h.sumBits.Load()
		if h.sumBits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// HistogramTotals is a histogram at one look: Cumulative[i] counts the
// observations at most LagBuckets[i]; Count all of them.
type HistogramTotals struct {
	Cumulative [len(LagBuckets)]uint64
	Count      uint64
	Sum        float64
}

// totals reads the histogram. Its buckets are read one by one while
// observations go on, so Count is taken as their sum, never less than a
// bucket's cumulative count.
func (h *Histogram) totals() HistogramTotals {
	var t HistogramTotals
	for i := range h.counts {
		t.Count += h.counts[i].Load()
		if i < len(LagBuckets) {
			t.Cumulative[i] = t.Count
		}
	}
	t.Sum = math.Float64frombits(h.sumBits.Load())
	return t
}

// ClusterTotals are the cluster's figures in Totals.
type ClusterTotals struct {
	ClusterStats
	ApplyLag HistogramTotals
}

// SetCluster gives the function that reads the cluster node's figures:
// the views show the cluster's only once it is given (cluster.nats_url
// set), so that a tracker alone exposes no series that cannot move.
func (m *Metrics) SetCluster(f func() ClusterStats) { m.cluster.Store(&f) }

// clusterTotals reads the cluster's figures; nil without a cluster.
func (m *Metrics) clusterTotals() *ClusterTotals {
	f := m.cluster.Load()
	if f == nil {
		return nil
	}
	return &ClusterTotals{ClusterStats: (*f)(), ApplyLag: m.ClusterLag.totals()}
}

// clusterVars is the "cluster" tree of /debug/vars.
func clusterVars(c *ClusterTotals) map[string]any {
	connected := 0
	if c.Connected {
		connected = 1
	}
	return map[string]any{
		"connected": connected, "nodes": c.Nodes,
		"published": c.Published, "applied": c.Applied, "refused": c.Refused, "dropped": c.Dropped,
		"bad_batches": c.BadBatches, "bytes_sent": c.BytesSent, "bytes_received": c.BytesReceived,
		"catchups": c.CatchUps, "snapshots_served": c.SnapshotsServed, "snapshots_refused": c.SnapshotsRefused,
		"apply_lag_seconds": c.ApplyLagSeconds, "apply_lag_count": c.ApplyLag.Count, "apply_lag_sum_seconds": c.ApplyLag.Sum,
	}
}
