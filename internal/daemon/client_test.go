package daemon_test

import (
	"bufio"
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
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
// writes as event 4 over UDP. The tracker tracks it (BEP 21): no error;
// in its reply the downloader the test announces and not the seeder (the
// script checks that it was sent one peer); in the swarm as a leecher (it
// has data left) but not a downloader (an HTTP scrape's downloaders, which
// an independent decoder, libtorrent's, reads too); in the announce
// counter.
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
				if h, ok := strings.CutPrefix(lines.Text(), "seeded "); ok {
					hash = hexHash(t, h)
					announceDownloader(t, d.UDPAddrs()[0].String(), hash)
					io.WriteString(stdin, "go on\n")
				}
				if h, ok := strings.CutPrefix(lines.Text(), "served "); ok {
					hash = hexHash(t, h)
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
			if st[0].Complete != 1 || st[0].Incomplete != 2 {
				t.Errorf("scrape: %d seeders, %d leechers; want the seeder, and the partial seed and the downloader (leechers)", st[0].Complete, st[0].Incomplete)
			}
			checkDownloaders(t, python, d.HTTPAddrs()[0].String(), hash)
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

func hexHash(t *testing.T, h string) (hash bittorrent.InfoHash) {
	t.Helper()
	if n, err := hex.Decode(hash[:], []byte(h)); err != nil || n != len(hash) {
		t.Fatalf("info hash %q: %v", h, err)
	}
	return hash
}

// announceDownloader announces a downloader of hash over UDP, at a port
// nothing listens on.
func announceDownloader(t *testing.T, addr string, hash bittorrent.InfoHash) {
	t.Helper()
	c := tt.DialUDP(t, addr)
	c.Connect()
	req := bittorrent.AnnounceRequest{InfoHash: hash, Port: 9, Left: 1, Event: bittorrent.EventStarted, NumWant: -1}
	copy(req.PeerID[:], "-TT0001-downloader00")
	if _, err := c.Announce(&req); err != nil {
		t.Fatal(err)
	}
}

// checkDownloaders scrapes hash over HTTP and reads the reply with
// libtorrent's bencode decoder: the partial seed is a leecher, not a
// downloader (BEP 21).
func checkDownloaders(t *testing.T, python, addr string, hash bittorrent.InfoHash) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/scrape?info_hash=" + url.QueryEscape(string(hash[:])))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	const decode = `import libtorrent as lt, sys
f = lt.bdecode(sys.stdin.buffer.read())[b"files"]
for k, v in f.items():
    print(k.hex(), v[b"complete"], v[b"incomplete"], v[b"downloaders"], v[b"downloaded"])`
	cmd := exec.Command(python, "-c", decode)
	cmd.Stdin = strings.NewReader(string(body))
	out, err := cmd.CombinedOutput()
	if want := hex.EncodeToString(hash[:]) + " 1 2 1 0\n"; err != nil || string(out) != want {
		t.Errorf("HTTP scrape %q, read by libtorrent as %q (%v); want %q: hash, complete, incomplete, downloaders, downloaded", body, out, err, want)
	}
}
