package cluster

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/trakx/trakx/internal/access"
	"github.com/trakx/trakx/internal/bittorrent"
)

// TestAdmittingListOnly: what arrives from the cluster meets the access
// list, not the client filter (a record carries no peer id, which a
// client_allow filter would refuse).
func TestAdmittingListOnly(t *testing.T) {
	_, url := runServer(t, -1)
	allowed := hash(1)
	path := filepath.Join(t.TempDir(), "list")
	if err := os.WriteFile(path, []byte(allowed.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	list, err := access.Load(access.Allow, path)
	if err != nil {
		t.Fatal(err)
	}
	var gate *access.Gate
	b := startNode(t, url, "b", func(s bittorrent.Tracker) bittorrent.Tracker {
		gate = access.NewGate(s, list)
		gate.SetClients(access.NewClients([]string{"-qB"}, nil))
		return Admitting(gate.AdmitTorrent, s)
	}, nil)
	nc := rawConn(t, url)
	_ = nc.Publish("trakx.x.announce", batchOf("x", 1, record(hash(1), "1.2.3.4", 1), record(hash(2), "1.2.3.4", 1)))
	waitFor(t, "one applied, one refused", func() bool { st := b.Stats(); return st.Applied == 1 && st.Refused == 1 })
	if peers(b.store, hash(1)) != 1 || peers(b.store, hash(2)) != 0 {
		t.Error("the list was not applied")
	}
}
