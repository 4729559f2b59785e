package daemon

import (
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/config"
	tt "github.com/trakx/trakx/internal/trackertest"
)

func startQuiet(t *testing.T, dbPath string) *Daemon {
	t.Helper()
	cfg := config.Default()
	cfg.UDP.Listen = []string{"127.0.0.1:0"}
	cfg.HTTP.Listen = []string{}
	cfg.Stats.Listen = ""
	cfg.Database.Path = dbPath
	log := logrus.New()
	log.SetOutput(io.Discard)
	d := New(cfg, "", "test", log)
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestShutdownWaitsForASaveUnderWay: a stop that arrives while a SIGUSR1
// save runs waits for it, then saves once more, with every peer.
func TestShutdownWaitsForASaveUnderWay(t *testing.T) {
	path := filepath.Join(t.TempDir(), "peers.db")
	d := startQuiet(t, path)
	c := tt.DialUDP(t, d.UDPAddrs()[0].String())
	c.Connect()
	c.Announce(&bittorrent.AnnounceRequest{InfoHash: tt.Hash("wait"), Port: 1, NumWant: -1})
	d.saveMu.Lock() // a save under way
	done := make(chan error, 1)
	go func() { done <- d.shutdown("SIGTERM") }()
	select {
	case err := <-done:
		t.Fatalf("shutdown finished (%v) while a save was under way", err)
	case <-time.After(200 * time.Millisecond):
	}
	d.saveMu.Unlock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		t.Fatalf("no final save: %v", err)
	}
}

// TestShutdownReportsAFailedFinalSave: when the final save fails, the stop
// says so and fails, so that the process exits non-zero.
func TestShutdownReportsAFailedFinalSave(t *testing.T) {
	db := filepath.Join(t.TempDir(), "db")
	os.Mkdir(db, 0o755)
	d := startQuiet(t, filepath.Join(db, "peers.db"))
	os.RemoveAll(db) // the directory goes away under the running tracker
	if err := d.shutdown("SIGTERM"); err == nil {
		t.Fatal("a failed final save went unreported")
	}
}
