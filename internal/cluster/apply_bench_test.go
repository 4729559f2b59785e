package cluster

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/trakx/trakx/internal/cluster/wire"
	"github.com/trakx/trakx/internal/swarm"
)

// BenchmarkApplyBatch measures what a receiver spends on one record of
// another node's batch (parsing it and applying it to the store), for
// batches of 1000 announces over 100k torrents drawn Zipf(1.1), peers
// re-announcing: the cost a cluster adds to a node for each announce the
// others take.
func BenchmarkApplyBatch(b *testing.B) {
	store := swarm.New(storeConfig)
	defer store.Close()
	n, err := New(Options{URL: "nats://127.0.0.1:1", Name: "trakx", Node: "me", Apply: store, Snapshot: StoreSnapshot(store), Log: logrus.New()})
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	zipf := rand.NewZipf(rng, 1.1, 1, 100_000-1)
	var batches [][]byte
	for s := range 64 {
		var batch wire.Batch
		for range 1000 {
			t, p := zipf.Uint64(), rng.IntN(50_000)
			batch.Add(wire.Record{InfoHash: hash(int(t)), Addr: netip.AddrFrom4([4]byte{20, byte(p >> 16), byte(p >> 8), byte(p)}), Port: 6881})
		}
		batches = append(batches, batch.AppendTo(nil, wire.Header{Node: "other", Seq: uint64(s + 1), SentNanos: int64(s)}))
	}
	for _, data := range batches { // the peers are known: re-announces
		n.rx.apply("other", data, false)
	}
	b.ResetTimer()
	for i := range b.N {
		n.rx.apply("other", batches[i%len(batches)], false)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/record")
}
