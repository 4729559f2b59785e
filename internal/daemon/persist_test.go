package daemon_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/config"
	tt "github.com/trakx/trakx/internal/trackertest"
)

func TestSaveMetrics(t *testing.T) {
	var dbPath string
	d := startTracker(t, func(c *config.Config) { dbPath = c.Database.Path })
	c := tt.DialUDP(t, d.UDPAddrs()[0].String())
	c.Connect()
	for p := range 4 {
		c.Announce(&bittorrent.AnnounceRequest{InfoHash: tt.Hash("metrics"), Port: uint16(10 + p), NumWant: -1})
	}
	if err := d.Save(); err != nil {
		t.Fatal(err)
	}
	vars := tt.Vars(t, d.StatsAddr().String())
	for path, ok := range map[string]func(float64) bool{
		"trakx.database.saves":             func(v float64) bool { return v == 1 },
		"trakx.database.save_errors":       func(v float64) bool { return v == 0 },
		"trakx.database.last_save_peers":   func(v float64) bool { return v == 4 },
		"trakx.database.last_save_unix":    func(v float64) bool { return v > 1.7e9 },
		"trakx.database.last_save_seconds": func(v float64) bool { return v > 0 && v < 10 },
	} {
		if v, found := tt.Lookup(vars, path); !found || !ok(v) {
			t.Errorf("%s = %v (found %v)", path, v, found)
		}
	}
	// A save that cannot be written is counted.
	if err := os.RemoveAll(filepath.Dir(dbPath)); err != nil {
		t.Fatal(err)
	}
	if err := d.Save(); err == nil {
		t.Fatal("save into a missing directory succeeded")
	}
	if v, _ := tt.Lookup(tt.Vars(t, d.StatsAddr().String()), "trakx.database.save_errors"); v != 1 {
		t.Fatalf("save_errors = %v", v)
	}
}
