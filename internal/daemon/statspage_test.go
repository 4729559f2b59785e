package daemon_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/statspage"
	tt "github.com/trakx/trakx/internal/trackertest"
)

// statsJSON reads the stats listener's /stats.json.
func statsJSON(t *testing.T, addr, query string) statspage.Snapshot {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/stats.json" + query)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s statspage.Snapshot
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/stats.json: %s, %v", resp.Status, err)
	}
	return s
}

// fillForThePage announces peers over UDP: a busy torrent of 3 (one
// seeder), and a quiet one of 1.
func fillForThePage(t *testing.T, udpAddr string) (busy, quiet bittorrent.InfoHash) {
	t.Helper()
	c := tt.DialUDP(t, udpAddr)
	c.Connect()
	busy, quiet = tt.Hash("page busy"), tt.Hash("page quiet")
	for i, left := range []uint64{0, 10, 10} {
		if _, err := c.Announce(peerReq(busy, uint16(7000+i), left, bittorrent.EventStarted)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Announce(peerReq(quiet, 7100, 10, bittorrent.EventStarted)); err != nil {
		t.Fatal(err)
	}
	return busy, quiet
}

// TestStatsJSONFigures: /stats.json counts what was announced, lists the
// busiest torrent first with its counts, and counts the announces by
// protocol and action.
func TestStatsJSONFigures(t *testing.T) {
	d := startTracker(t, nil)
	busy, quiet := fillForThePage(t, d.UDPAddrs()[0].String())
	s := statsJSON(t, d.StatsAddr().String(), "")
	if s.Swarm.Peers != 4 || s.Swarm.Torrents != 2 || s.Swarm.ByFamily["ipv4"] != (statspage.Roles{Seeders: 1, Leechers: 3}) {
		t.Errorf("swarm %+v", s.Swarm)
	}
	if got := s.Requests.Total["udp"]; got["announce"] != 4 || got["connect"] != 1 {
		t.Errorf("udp requests %v", got)
	}
	want := []statspage.Torrent{
		{InfoHash: hex.EncodeToString(busy[:]), Seeders: 1, Leechers: 2},
		{InfoHash: hex.EncodeToString(quiet[:]), Leechers: 1},
	}
	if len(s.Busiest) != 2 || s.Busiest[0] != want[0] || s.Busiest[1] != want[1] {
		t.Errorf("busiest %+v, want %+v", s.Busiest, want)
	}
	if s.Version != "test" || s.HistoryResolutionSeconds != 10 || s.HistoryHours != 24 {
		t.Errorf("version %q, history %ds for %dh", s.Version, s.HistoryResolutionSeconds, s.HistoryHours)
	}
	if h := statsJSON(t, d.StatsAddr().String(), "?history=1").History; h == nil || len(h.Time) != 1 || h.Seeders[0]+h.Leechers[0] > 4 {
		t.Errorf("history %+v, want the one point taken at start", h)
	}
}

// TestStatsPageIsSelfContained: the page is HTML that names no other
// host, and says so to the browser (Content-Security-Policy).
func TestStatsPageIsSelfContained(t *testing.T) {
	d := startTracker(t, nil)
	resp, err := http.Get("http://" + d.StatsAddr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "connect-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "script-src 'sha256-") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	if m := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]|\b(src|href)\s*=`).Find(body); m != nil {
		t.Errorf("the page refers elsewhere: %q", m)
	}
	if resp, err := http.Get("http://" + d.StatsAddr().String() + "/nothing"); err != nil || resp.StatusCode != 404 {
		t.Errorf("GET /nothing: %v %v, want 404", resp.Status, err)
	}
}

// TestStatsPageInChromium: a real browser renders the page with its
// figures: the JavaScript ran, read /stats.json and filled the page.
func TestStatsPageInChromium(t *testing.T) {
	chromium := tt.NeedCommand(t, "chromium", "chromium")
	d := startTracker(t, nil)
	busy, _ := fillForThePage(t, d.UDPAddrs()[0].String())
	var dom []byte
	tt.WaitFor(t, "chromium to render the page", func() bool {
		out, err := exec.Command(chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
			"--user-data-dir="+t.TempDir(), "--virtual-time-budget=5000", "--dump-dom", "http://"+d.StatsAddr().String()+"/").Output()
		dom = out
		return err == nil && bytes.Contains(out, []byte(`data-loaded="yes"`))
	})
	for _, want := range []string{`id="peers">4<`, `id="torrents">2<`, `id="seeders-ipv4">1<`, `id="leechers-ipv4">3<`,
		hex.EncodeToString(busy[:]), `id="version">test<`} {
		if !bytes.Contains(dom, []byte(want)) {
			t.Errorf("the rendered page has no %s", want)
		}
	}
	if t.Failed() {
		t.Logf("rendered:\n%s", dom)
	}
}
