package metrics

import "testing"

// TestClusterOnlyWhenSet: /debug/vars has no "cluster" tree without a
// cluster, and the node's figures under it with one.
func TestClusterOnlyWhenSet(t *testing.T) {
	m := New(nil)
	if _, ok := m.Snapshot()["cluster"]; ok || m.Totals().Cluster != nil {
		t.Fatal("a cluster shown without one")
	}
	m.SetCluster(func() ClusterStats { return ClusterStats{Connected: true, Nodes: 3, Published: 7} })
	tree, ok := m.Snapshot()["cluster"].(map[string]any)
	if !ok || tree["connected"] != 1 || tree["nodes"] != 3 || tree["published"] != uint64(7) {
		t.Fatalf("cluster tree %v", tree)
	}
}

// TestLagHistogram: each observation lands in the first bucket whose
// bound it does not pass, counts are cumulative, and the sum adds up.
func TestLagHistogram(t *testing.T) {
	var h Histogram
	for _, v := range []float64{0, 0.001, 0.002, 0.3, 20} {
		h.Observe(v)
	}
	got := h.totals()
	if got.Count != 5 || got.Sum != 20.303 {
		t.Fatalf("count %d sum %v", got.Count, got.Sum)
	}
	want := map[float64]uint64{0.001: 2, 0.005: 3, 0.25: 3, 0.5: 4, 10: 4}
	for i, bound := range LagBuckets {
		if w, ok := want[bound]; ok && got.Cumulative[i] != w {
			t.Errorf("le %v: %d, want %d", bound, got.Cumulative[i], w)
		}
	}
}

// TestLagObserveAllocatesNothing: the receiver observes every batch.
func TestLagObserveAllocatesNothing(t *testing.T) {
	var h Histogram
	if n := testing.AllocsPerRun(100, func() { h.Observe(0.02) }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}
