package cluster

import (
	"net/netip"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
)

// TestLargeSnapshot times a catch-up of TRAKX_CLUSTER_PEERS peers (unset:
// skipped), 10 a torrent, against issue 26's 10 s for 10M. Run it without
// -race: go test -run LargeSnapshot ./internal/cluster/.
func TestLargeSnapshot(t *testing.T) {
	total, _ := strconv.Atoi(os.Getenv("TRAKX_CLUSTER_PEERS"))
	if total == 0 {
		t.Skip("TRAKX_CLUSTER_PEERS unset")
	}
	_, url := runServer(t, -1)
	a := startNode(t, url, "a", nil, nil)
	req := bittorrent.AnnounceRequest{Left: 1}
	var resp bittorrent.AnnounceResponse
	for i := range total {
		req.InfoHash = hash(i / 10)
		req.Addr = netip.AddrFrom4([4]byte{1, byte(i >> 16), byte(i >> 8), byte(i)})
		req.Port = uint16(1 + i%10)
		if err := a.store.Announce(&req, &resp); err != nil {
			t.Fatal(err)
		}
	}
	began := time.Now()
	b := startNode(t, url, "b", nil, nil)
	took := time.Since(began)
	st := b.Stats()
	t.Logf("%d peers caught up in %v (%d bytes)", st.SnapshotPeers, took, st.BytesIn)
	if int(st.SnapshotPeers) != total {
		t.Errorf("caught up %d peers of %d", st.SnapshotPeers, total)
	}
}
