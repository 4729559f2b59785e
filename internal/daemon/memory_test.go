package daemon_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/trakx/trakx/internal/config"
	"github.com/trakx/trakx/internal/daemon"
	"github.com/trakx/trakx/internal/offheap"
	tt "github.com/trakx/trakx/internal/trackertest"
)

// TestOutOfMemoryRefusesOverTheWire: when the kernel refuses the store
// memory, a newcomer is refused over UDP (a BEP 15 error) and HTTP (a
// failure reason) with "tracker is full", the refusals are counted in
// /debug/vars and /metrics and warned of in the log, and once memory can
// be had again the same announces are served.
func TestOutOfMemoryRefusesOverTheWire(t *testing.T) {
	var logged lockedBuffer
	cfg := config.Default()
	cfg.UDP.Listen = []string{"127.0.0.1:0"}
	cfg.HTTP.Listen = []string{"127.0.0.1:0"}
	cfg.Stats.Listen = "127.0.0.1:0"
	cfg.Database.Path = t.TempDir() + "/peers.db"
	log := logrus.New()
	log.SetOutput(&logged)
	d := daemon.New(cfg, "", "test", log)
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Stop() })

	undo := offheap.InjectFaults(func(int) bool { return true })
	defer func() { undo() }()
	udp := tt.DialUDP(t, d.UDPAddrs()[0].String())
	udp.Connect()
	hash := tt.Hash("no room")
	if _, err := udp.Announce(peerReq(hash, 6881, 1, 0)); err == nil || !strings.Contains(err.Error(), "tracker is full") {
		t.Fatalf("UDP announce without memory: %v", err)
	}
	base := d.HTTPAddrs()[0].String()
	if _, r := get(t, http.DefaultClient, announceURL(base, hash, 6882, 1, "")); !strings.Contains(r["failure reason"].(string), "tracker is full: out of memory") {
		t.Fatalf("HTTP announce without memory: %v", r)
	}
	stats := d.StatsAddr().String()
	tt.WaitForVar(t, stats, "trakx.refused.out_of_memory", func(v float64) bool { return v == 2 })
	if got := scrapeMetrics(t, d).Sum("trakx_refused_total", "reason", "out_of_memory"); got != 2 {
		t.Fatalf("trakx_refused_total{reason=\"out_of_memory\"} = %v, want 2", got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logged.String(), "level=warning msg=\"out of memory: 2 new peers or torrents refused") {
		if time.Now().After(deadline) {
			t.Fatalf("no warning in the log:\n%s", logged.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	undo()
	if r, err := udp.Announce(peerReq(hash, 6881, 1, 0)); err != nil || r.Incomplete != 1 {
		t.Fatalf("UDP announce with memory again: %+v, %v", r, err)
	}
	if _, r := get(t, http.DefaultClient, announceURL(base, hash, 6882, 1, "")); r["incomplete"] != int64(2) {
		t.Fatalf("HTTP announce with memory again: %v", r)
	}
}
