package daemon_test

import (
	"bufio"
	"context"
	"encoding/hex"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
	tt "github.com/trakx/trakx/internal/trackertest"
)

// requireLibtorrent returns the Python that imports libtorrent (Debian's
// python3-libtorrent), or skips the test without it (fails it with
// TRAKX_REQUIRE_CLIENTS set, as CI sets it).
func requireLibtorrent(t *testing.T) string {
	t.Helper()
	return tt.NeedPython(t, "libtorrent", "python3-libtorrent")
}

// TestRealClientSwarm has libtorrent (Debian's python3-libtorrent), a
// client written independently of trakx, share a torrent through the
// tracker over UDP and over HTTP.
func TestRealClientSwarm(t *testing.T) {
	python := requireLibtorrent(t)
	d := startTracker(t, nil)
	for name, url := range map[string]string{
		"udp":  "udp://" + d.UDPAddrs()[0].String() + "/announce",
		"http": "http://" + d.HTTPAddrs()[0].String() + "/announce",
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 70*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, python, "testdata/libtorrent_swarm.py", url).CombinedOutput()
			t.Logf("%s", out)
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestRealClientPartialSeed: a libtorrent partial seed (a multi-file
// torrent with a file deselected, finished but not a seed, common in
// qBittorrent and Deluge) announces BEP 21's paused, which libtorrent
// writes as event 4 over UDP. The tracker must serve it like any announce:
// no error, the seeder in its reply, the peer in the swarm as a leecher
// (it has data left) and in the announce counter.
func TestRealClientPartialSeed(t *testing.T) {
	python := requireLibtorrent(t)
	for _, proto := range []string{"udp", "http"} {
		t.Run(proto, func(t *testing.T) {
			d := startTracker(t, nil)
			url := "udp://" + d.UDPAddrs()[0].String() + "/announce"
			if proto == "http" {
				url = "http://" + d.HTTPAddrs()[0].String() + "/announce"
			}
			ctx, cancel := context.WithTimeout(context.Background(), 70*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, python, "testdata/libtorrent_partial_seed.py", url)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			stdin, _ := cmd.StdinPipe()
			stdout, _ := cmd.StdoutPipe()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// The script holds both peers in the swarm until its stdin
			// closes; on any failure below, closing it lets it exit.
			defer func() {
				stdin.Close()
				io.Copy(io.Discard, stdout)
				cmd.Wait()
			}()
			var hash bittorrent.InfoHash
			served := false
			for lines := bufio.NewScanner(stdout); lines.Scan(); {
				t.Log(lines.Text())
				if h, ok := strings.CutPrefix(lines.Text(), "served "); ok {
					if n, err := hex.Decode(hash[:], []byte(h)); err != nil || n != len(hash) {
						t.Fatalf("info hash %q: %v", h, err)
					}
					served = true
					break
				}
			}
			if !served {
				stdin.Close()
				err := cmd.Wait()
				t.Fatalf("the partial seed was not served: %v\n%s", err, stderr.String())
			}

			c := tt.DialUDP(t, d.UDPAddrs()[0].String())
			c.Connect()
			st, err := c.Scrape(hash)
			if err != nil {
				t.Fatal(err)
			}
			if st[0].Complete != 1 || st[0].Incomplete != 1 {
				t.Errorf("scrape: %d seeders, %d leechers; want the seeder and the partial seed (a leecher)", st[0].Complete, st[0].Incomplete)
			}
			vars := tt.Vars(t, d.StatsAddr().String())
			if n, _ := tt.Lookup(vars, "trakx."+proto+".announce"); n < 2 {
				t.Errorf("trakx.%s.announce = %v; want the seeder's and the partial seed's", proto, n)
			}
			for _, key := range []string{"error", "bad_request"} {
				if n, ok := tt.Lookup(vars, "trakx."+proto+"."+key); !ok || n != 0 {
					t.Errorf("trakx.%s.%s = %v (present %v), want 0", proto, key, n, ok)
				}
			}
		})
	}
}
