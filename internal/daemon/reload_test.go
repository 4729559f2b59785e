package daemon_test

import (
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sirupsen/logrus"
	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/config"
	"github.com/trakx/trakx/internal/daemon"
	tt "github.com/trakx/trakx/internal/trackertest"
)

// fileTracker runs a tracker from a configuration file, so that Reload
// reads it again.
func fileTracker(t *testing.T, text string) (*daemon.Daemon, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "trakx.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	d := daemon.New(cfg, path, "test", log)
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Stop() })
	return d, path
}

func baseConfig(t *testing.T) string {
	return fmt.Sprintf(`
[udp]
listen = ["127.0.0.1:0"]
[http]
listen = ["127.0.0.1:0"]
[stats]
listen = "127.0.0.1:0"
[database]
path = %q
`, filepath.Join(t.TempDir(), "peers.db"))
}

func TestAccessListsAndReload(t *testing.T) {
	allowed, other := tt.Hash("allowed"), tt.Hash("other")
	listPath := filepath.Join(t.TempDir(), "access.txt")
	os.WriteFile(listPath, []byte("# test list\n"+hex.EncodeToString(allowed[:])+"\n"), 0o644)
	base := baseConfig(t)
	d, cfgPath := fileTracker(t, base+fmt.Sprintf("[access]\nmode = \"allow\"\nfile = %q\n", listPath))
	c := tt.DialUDP(t, d.UDPAddrs()[0].String())
	c.Connect()
	httpBase := d.HTTPAddrs()[0].String()

	if _, err := c.Announce(peerReq(allowed, 1, 0, 0)); err != nil {
		t.Fatalf("listed torrent refused: %v", err)
	}
	if _, err := c.Announce(peerReq(other, 1, 0, 0)); err == nil || err.Error() != "torrent not allowed on this tracker" {
		t.Fatalf("unlisted torrent over UDP: %v", err)
	}
	if _, err := c.Scrape(allowed, other); err == nil || !strings.Contains(err.Error(), "not allowed") {
		t.Fatalf("scrape of an unlisted torrent over UDP: %v", err)
	}
	_, r := get(t, http.DefaultClient, announceURL(httpBase, other, 2, 0, ""))
	if r["failure reason"] != "torrent not allowed on this tracker" {
		t.Fatalf("unlisted torrent over HTTP: %v", r)
	}
	vars := tt.Vars(t, d.StatsAddr().String())
	if u, _ := tt.Lookup(vars, "trakx.udp.refused"); u != 2 {
		t.Errorf("udp.refused = %v", u)
	}
	if h, _ := tt.Lookup(vars, "trakx.http.refused"); h != 1 {
		t.Errorf("http.refused = %v", h)
	}

	// Switch to a deny list of the first torrent, and a new interval.
	os.WriteFile(cfgPath, []byte(base+fmt.Sprintf("[tracker]\nannounce_interval = \"10m\"\npeer_ttl = \"20m\"\n[access]\nmode = \"deny\"\nfile = %q\n", listPath)), 0o644)
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Announce(peerReq(allowed, 2, 0, 0)); err == nil {
		t.Fatal("denied torrent announced after reload")
	}
	resp, err := c.Announce(peerReq(other, 1, 0, 0))
	if err != nil || resp.Interval.Minutes() < 10 || resp.Interval.Minutes() > 11 {
		t.Fatalf("after reload: %+v %v", resp, err)
	}
	// No peer was dropped: the first torrent's peer is still counted.
	if st := scrapeOpen(t, d, allowed); st.Complete != 1 {
		t.Fatalf("reload dropped a peer: %+v", st)
	}

	// A broken file keeps everything as it was.
	os.WriteFile(cfgPath, []byte(base+"[tracker]\nannounce_interval = \"soon\"\n"), 0o644)
	if err := d.Reload(); err == nil || !strings.Contains(err.Error(), "announce_interval") {
		t.Fatalf("bad config reload: %v", err)
	}
	if _, err := c.Announce(peerReq(allowed, 2, 0, 0)); err == nil {
		t.Fatal("a failed reload changed the access list")
	}
	// So does a broken access list.
	os.WriteFile(cfgPath, []byte(base+fmt.Sprintf("[access]\nmode = \"allow\"\nfile = %q\n", listPath+".missing")), 0o644)
	if err := d.Reload(); err == nil || !strings.Contains(err.Error(), "access.file") {
		t.Fatalf("missing list reload: %v", err)
	}
	if _, err := c.Announce(peerReq(other, 1, 0, 0)); err != nil {
		t.Fatalf("a failed reload changed the access list: %v", err)
	}
}

// scrapeOpen reads a torrent's figures past the access list: the swarm, as
// a save would see it.
func scrapeOpen(t *testing.T, d *daemon.Daemon, h bittorrent.InfoHash) bittorrent.ScrapeStats {
	t.Helper()
	if err := d.Save(); err != nil {
		t.Fatal(err)
	}
	vars := tt.Vars(t, d.StatsAddr().String())
	peers, _ := tt.Lookup(vars, "trakx.swarm.seeders")
	return bittorrent.ScrapeStats{Complete: uint32(peers) - 1} // minus the other torrent's seeder
}

func TestStartRefusesMissingAccessList(t *testing.T) {
	cfg := config.Default()
	cfg.UDP.Listen, cfg.HTTP.Listen, cfg.Stats.Listen = []string{"127.0.0.1:0"}, nil, ""
	cfg.Database.Path = filepath.Join(t.TempDir(), "peers.db")
	cfg.Access.Mode, cfg.Access.File = "allow", filepath.Join(t.TempDir(), "none.txt")
	d := daemon.New(cfg, "", "test", logrus.New())
	if err := d.Start(); err == nil || !strings.Contains(err.Error(), "access.file") {
		t.Fatalf("start with a missing list: %v", err)
	}
}

// TestFullTrackerRefusesNewcomers floods the tracker with announces for
// random torrents: past tracker.max_torrents and max_peers they are refused
// with a clear reason, while a swarm already tracked keeps working.
func TestFullTrackerRefusesNewcomers(t *testing.T) {
	d := startTracker(t, func(c *config.Config) { c.Tracker.MaxPeers, c.Tracker.MaxTorrents = 40, 20 })
	c := tt.DialUDP(t, d.UDPAddrs()[0].String())
	c.Connect()
	kept := tt.Hash("kept")
	if _, err := c.Announce(peerReq(kept, 1, 0, 0)); err != nil {
		t.Fatal(err)
	}
	refusedTorrents := 0
	for i := range 200 {
		_, err := c.Announce(peerReq(tt.Hash(fmt.Sprintf("flood-%d", i)), 2, 1, 0))
		if err != nil {
			if err.Error() != "tracker is full: no new torrents accepted now, try again later" {
				t.Fatalf("flood announce %d: %v", i, err)
			}
			refusedTorrents++
		}
	}
	if refusedTorrents != 181 {
		t.Fatalf("%d of 200 new torrents refused, want 181 (room for 19 beside the kept one)", refusedTorrents)
	}
	for p := range 30 { // 20 peers so far; room for 20 more
		_, err := c.Announce(peerReq(kept, uint16(100+p), 1, 0))
		if (err != nil) != (p >= 20) {
			t.Fatalf("peer %d: %v", p, err)
		}
	}
	_, r := get(t, http.DefaultClient, announceURL(d.HTTPAddrs()[0].String(), kept, 999, 1, ""))
	if r["failure reason"] != "tracker is full: no new peers accepted now, try again later" {
		t.Fatalf("HTTP newcomer: %v", r)
	}
	if resp, err := c.Announce(peerReq(kept, 1, 0, 0)); err != nil || resp.Complete != 1 {
		t.Fatalf("a known peer re-announcing when full: %+v %v", resp, err)
	}
	vars := tt.Vars(t, d.StatsAddr().String())
	for path, want := range map[string]float64{"trakx.swarm.peers": 40, "trakx.swarm.torrents": 20, "trakx.swarm.refused_torrents": 181, "trakx.swarm.refused_peers": 11} {
		if got, _ := tt.Lookup(vars, path); got != want {
			t.Errorf("%s = %v, want %v", path, got, want)
		}
	}
}

// TestReloadWarnsAndAppliesTheSweep: a reload warns, by name, of each
// changed key that takes a restart, and applies the rest, the expiry sweep
// included: peers expire by the new peer_ttl without a restart.
func TestReloadWarnsAndAppliesTheSweep(t *testing.T) {
	base := baseConfig(t)
	d, path, logged := startFromText(t, base)
	c := tt.DialUDP(t, d.UDPAddrs()[0].String())
	c.Connect()
	c.Announce(&bittorrent.AnnounceRequest{InfoHash: tt.Hash("sweep"), Port: 1, NumWant: -1})

	changed := strings.Replace(base, `listen = ["127.0.0.1:0"]`, `listen = ["127.0.0.1:1"]`, 1) +
		"[tracker]\nannounce_interval = \"1s\"\nmin_interval = \"1s\"\npeer_ttl = \"2s\"\n"
	changed = strings.Replace(changed, "[database]\npath = ", "[database]\nsave_interval = \"1h\"\npath = ", 1)
	os.WriteFile(path, []byte(changed), 0o644)
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"udp.listen", "database.save_interval"} {
		if !strings.Contains(logged.String(), key+" changed, but takes a restart") {
			t.Errorf("no warning naming %s:\n%s", key, logged.String())
		}
	}
	if strings.Contains(logged.String(), "tracker.peer_ttl changed") {
		t.Errorf("a reloadable key was called restart-only:\n%s", logged.String())
	}
	// The peer was announced under a 45m TTL; under the new 2s one, the
	// sweep (now every second) drops it.
	tt.WaitForVar(t, d.StatsAddr().String(), "trakx.swarm.peers", func(v float64) bool { return v == 0 })
}

// startFromText writes text to a configuration file, starts a tracker
// from it (so that Reload reads it again), stopped when the test ends,
// and returns it, the file's path and its log.
func startFromText(t *testing.T, text string) (*daemon.Daemon, string, *lockedBuffer) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "trakx.toml")
	os.WriteFile(path, []byte(text), 0o644)
	logged := &lockedBuffer{}
	return startLogged(t, path, logged), path, logged
}

// lockedBuffer collects log output that other goroutines may write while
// the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
