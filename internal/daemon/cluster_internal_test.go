package daemon

import (
	"io"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/sirupsen/logrus"
	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/config"
)

// TestClusterAnnounceAllocatesNothing: in a cluster, the frontends' whole
// chain (access gate, the node's publishing decorator, the store) takes an
// announce without allocating. NATS is unreachable here: the node serves
// alone, and publishing still queues each record.
func TestClusterAnnounceAllocatesNothing(t *testing.T) {
	cfg := config.Default()
	cfg.UDP.Listen, cfg.HTTP.Listen, cfg.Stats.Listen = []string{"127.0.0.1:0"}, nil, ""
	cfg.Database.Path = filepath.Join(t.TempDir(), "peers.db")
	cfg.Cluster.NATSURL, cfg.Cluster.Node = "nats://127.0.0.1:1", "a"
	log := logrus.New()
	log.SetOutput(io.Discard)
	d := New(cfg, "", "test", log)
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Stop() })
	if d.node == nil {
		t.Fatal("no cluster node with cluster.nats_url set")
	}
	req := bittorrent.AnnounceRequest{Addr: netip.MustParseAddr("198.51.100.7"), Port: 6881, Left: 1, NumWant: -1}
	copy(req.InfoHash[:], "cluster-allocs")
	var resp bittorrent.AnnounceResponse
	_ = d.gate.Announce(&req, &resp)
	allocs := testing.AllocsPerRun(1000, func() {
		resp.Reset()
		if err := d.gate.Announce(&req, &resp); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations an announce, want 0", allocs)
	}
	d.Stop() // the node's last flush: NATS being down, its records are dropped
	if d.node.Stats().Dropped == 0 {
		t.Error("nothing reached the node's outbox: the gate does not pass announces to it")
	}
}
