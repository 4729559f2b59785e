package daemon

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/sirupsen/logrus"
	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/cluster/wire"
	"github.com/trakx/trakx/internal/config"
	tt "github.com/trakx/trakx/internal/trackertest"
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
	d.Stop()
	// NATS being down, the records wait in the outage's buffer (counted
	// published) or, at the last flush, are dropped.
	if st := d.node.Stats(); st.Published+st.Dropped == 0 {
		t.Error("nothing reached the node's outbox: the gate does not pass announces to it")
	}
}

// TestClusterReadyAfterCatchUp: in a cluster, Run says it is catching up
// before READY=1, which comes once the node has caught up or given up
// (here, alone on its NATS server, when no node answers).
func TestClusterReadyAfterCatchUp(t *testing.T) {
	srv := tt.RunNATS(t, nil)
	notify := listenNotify(t)
	cfg := config.Default()
	cfg.UDP.Listen, cfg.HTTP.Listen, cfg.Stats.Listen = []string{"127.0.0.1:0"}, nil, ""
	cfg.Database.Path = filepath.Join(t.TempDir(), "peers.db")
	cfg.Cluster.NATSURL, cfg.Cluster.Node = "nats://"+srv.Addr().String(), "a"
	log := logrus.New()
	log.SetOutput(io.Discard)
	d := New(cfg, "", "test", log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var got []string
	buf := make([]byte, 512)
	notify.SetReadDeadline(time.Now().Add(15 * time.Second))
	for len(got) == 0 || !strings.HasPrefix(got[len(got)-1], "READY=1") {
		n, err := notify.Read(buf)
		if err != nil {
			t.Fatalf("notifications %q, then %v", got, err)
		}
		got = append(got, string(buf[:n]))
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != "STATUS=catching up with the cluster trakx" {
		t.Fatalf("notifications before READY: %q", got)
	}
}

// TestSIGTERMEndsTheCatchUpWait: a catch-up that never ends (a node that
// answers a snapshot request with a chunk now and then, never the end)
// holds READY back, but not a SIGTERM; a SIGHUP meanwhile is kept for
// after READY.
func TestSIGTERMEndsTheCatchUpWait(t *testing.T) {
	srv := tt.RunNATS(t, nil)
	url := "nats://" + srv.Addr().String()
	drip, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(drip.Close)
	asked := make(chan struct{}, 1)
	drip.QueueSubscribe("trakx.*.snapshot", "snapshot", func(m *nats.Msg) {
		id, _ := binary.Uvarint(m.Data)
		stream := fmt.Sprintf("trakx.x.snapshot.%s.%d", strings.Split(m.Subject, ".")[1], id)
		go func() {
			for range 100 { // an empty chunk every 100 ms: never the end
				drip.Publish(stream, wire.AppendBatch([]byte{'C'}, wire.Header{Node: "x"}, nil))
				time.Sleep(100 * time.Millisecond)
			}
		}()
		select {
		case asked <- struct{}{}:
		default:
		}
	})
	drip.Flush()
	cfg := config.Default()
	cfg.UDP.Listen, cfg.HTTP.Listen, cfg.Stats.Listen = []string{"127.0.0.1:0"}, nil, ""
	cfg.Database.Path = filepath.Join(t.TempDir(), "peers.db")
	cfg.Cluster.NATSURL, cfg.Cluster.Node = url, "a"
	log := logrus.New()
	log.SetOutput(io.Discard)
	d := New(cfg, "", "test", log)
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Stop() })
	<-asked
	signals := make(chan os.Signal, 2)
	signals <- syscall.SIGHUP
	signals <- syscall.SIGTERM
	stop, held := d.awaitCluster(context.Background(), signals)
	if stop != syscall.SIGTERM || len(held) != 1 || held[0] != syscall.SIGHUP {
		t.Fatalf("awaitCluster returned %v, held %v; want SIGTERM, [SIGHUP]", stop, held)
	}
}
