package daemon_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/config"
	"github.com/trakx/trakx/internal/daemon"
	"github.com/trakx/trakx/internal/httpproto"
	tt "github.com/trakx/trakx/internal/trackertest"
)

// fullScrapeTracker runs a tracker with http.full_scrape on.
func fullScrapeTracker(t *testing.T, edit func(*config.Config)) *daemon.Daemon {
	return startTracker(t, func(c *config.Config) {
		c.HTTP.FullScrape = true
		c.HTTP.FullScrapeInterval = config.Duration{Duration: time.Second}
		if edit != nil {
			edit(c)
		}
	})
}

// swarmOf announces seeders and leechers of one torrent over HTTP, the
// first seeder with event=completed, and returns the counts a scrape must
// show.
func swarmOf(t *testing.T, base string, hash bittorrent.InfoHash, seeders, leechers, port int) bittorrent.ScrapeStats {
	t.Helper()
	client := &http.Client{}
	for i := range seeders + leechers {
		left, extra := 0, "&event=started"
		if i >= seeders {
			left = 100
		} else if i == 0 {
			extra = "&event=completed"
		}
		if status, r := get(t, client, announceURL(base, hash, port+i, left, extra)); status != 200 || r["failure reason"] != nil {
			t.Fatalf("announce: %d %v", status, r)
		}
	}
	st := bittorrent.ScrapeStats{Complete: uint32(seeders), Incomplete: uint32(leechers), Downloaders: uint32(leechers)}
	if seeders > 0 {
		st.Downloaded = 1
	}
	return st
}

// fetchFullScrape asks for the full scrape, with Accept-Encoding: gzip if
// gz, and returns the reply and its body as sent (not decompressed).
func fetchFullScrape(t *testing.T, base string, gz bool) (*http.Response, []byte) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	req, _ := http.NewRequest("GET", "http://"+base+"/scrape", nil)
	if gz {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.ContentLength != int64(len(body)) {
		t.Fatalf("status %d, Content-Length %d for %d bytes", resp.StatusCode, resp.ContentLength, len(body))
	}
	return resp, body
}

// gunzip decompresses with the standard library.
func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return plain
}

// filesOf decodes a scrape reply (httpproto.Decode, the client side's
// decoder) into counts by info hash, checking that its files are in
// bencode's sorted order.
func filesOf(t *testing.T, body []byte) map[bittorrent.InfoHash]bittorrent.ScrapeStats {
	t.Helper()
	v, err := httpproto.Decode(body)
	if err != nil {
		t.Fatalf("not bencode: %v: %.200q", err, body)
	}
	files, ok := v.(map[string]any)["files"].(map[string]any)
	if !ok {
		t.Fatalf("no files: %.200q", body)
	}
	got := map[bittorrent.InfoHash]bittorrent.ScrapeStats{}
	for k, e := range files {
		e := e.(map[string]any)
		got[bittorrent.InfoHash([]byte(k))] = bittorrent.ScrapeStats{
			Complete: uint32(e["complete"].(int64)), Incomplete: uint32(e["incomplete"].(int64)), Downloaded: uint32(e["downloaded"].(int64)),
			Downloaders: uint32(e["downloaders"].(int64)),
		}
	}
	// The keys, in the order sent: each is "20:" and the hash, after the
	// files dictionary's "d" or the previous entry's "e".
	var prev []byte
	walked := 0
	for rest := body[len("d5:filesd"):]; bytes.HasPrefix(rest, []byte("20:")); walked++ {
		key := rest[3:23]
		if prev != nil && bytes.Compare(prev, key) >= 0 {
			t.Fatalf("files out of order: %x after %x", key, prev)
		}
		prev = key
		end := bytes.Index(rest[23:], []byte("ee"))
		rest = rest[23+end+2:]
	}
	if walked != len(got) {
		t.Fatalf("walked %d entries of %d", walked, len(got))
	}
	return got
}

func TestHTTPFullScrape(t *testing.T) {
	d := fullScrapeTracker(t, nil)
	base := d.HTTPAddrs()[0].String()
	want := map[bittorrent.InfoHash]bittorrent.ScrapeStats{}
	for i := range 12 {
		h := tt.Hash(fmt.Sprintf("full-scrape-%d", i))
		want[h] = swarmOf(t, base, h, i%3, i%4+1, 10000+100*i)
	}
	resp, gz := fetchFullScrape(t, base, true)
	if resp.Header.Get("Content-Encoding") != "gzip" || resp.Header.Get("Content-Type") != "text/plain" {
		t.Fatalf("headers %v", resp.Header)
	}
	plain := gunzip(t, gz)
	if got := filesOf(t, plain); !equalFiles(got, want) {
		t.Fatalf("full scrape %v, want %v", got, want)
	}
	resp, body := fetchFullScrape(t, d.HTTPAddrs()[1].String(), false)
	if resp.Header.Get("Content-Encoding") != "" || !bytes.Equal(body, plain) {
		t.Fatalf("reply without gzip differs from the gzip one's content (%v)", resp.Header)
	}
	// Each torrent's entry is the one a scrape of it has.
	for h := range want {
		_, r := get(t, &http.Client{}, "http://"+base+"/scrape?info_hash="+escape(h))
		entry := httpproto.AppendScrapeResponse(nil, []httpproto.ScrapeKey{httpproto.KeyOf(h)}, []bittorrent.ScrapeStats{want[h]})
		if !bytes.Contains(plain, entry[len("d5:filesd"):len(entry)-2]) || r["files"] == nil {
			t.Fatalf("entry of %x is not a scrape's", h)
		}
	}
	vars := tt.Vars(t, d.StatsAddr().String())
	if n, _ := tt.Lookup(vars, "trakx.http.full_scrape"); n != 2 {
		t.Errorf("trakx.http.full_scrape %v, want 2", n)
	}
	if n, _ := tt.Lookup(vars, "trakx.http.full_scrape_bytes"); n != float64(len(gz)) {
		t.Errorf("trakx.http.full_scrape_bytes %v, want %d", n, len(gz))
	}
	if n, _ := tt.Lookup(vars, "trakx.http.full_scrape_build_seconds"); n != scrapeMetrics(t, d)["trakx_full_scrape_build_seconds"] {
		t.Errorf("trakx.http.full_scrape_build_seconds %v, /metrics disagrees", n)
	}
	if s := scrapeMetrics(t, d); s[`trakx_requests_total{action="full_scrape",family="ipv4",protocol="http"}`] != 1 ||
		s["trakx_full_scrape_bytes"] != float64(len(gz)) || s["trakx_full_scrape_build_seconds"] <= 0 {
		t.Errorf("metrics: requests %v, bytes %v, build %v", s[`trakx_requests_total{action="full_scrape",family="ipv4",protocol="http"}`],
			s["trakx_full_scrape_bytes"], s["trakx_full_scrape_build_seconds"])
	}
}

func escape(h bittorrent.InfoHash) string {
	var b strings.Builder
	for _, c := range h {
		fmt.Fprintf(&b, "%%%02x", c)
	}
	return b.String()
}

func equalFiles(a, b map[bittorrent.InfoHash]bittorrent.ScrapeStats) bool {
	if len(a) != len(b) {
		return false
	}
	for h, st := range a {
		if w, ok := b[h]; !ok || w != st {
			return false
		}
	}
	return true
}

// A full scrape is built at most once per interval: within it, the same
// snapshot; after it, a new one.
func TestHTTPFullScrapeInterval(t *testing.T) {
	d := fullScrapeTracker(t, nil)
	base := d.HTTPAddrs()[0].String()
	first := tt.Hash("interval-first")
	swarmOf(t, base, first, 1, 0, 20000)
	start := time.Now() // the snapshot's build begins after this
	_, before := fetchFullScrape(t, base, true)
	late := tt.Hash("interval-late")
	swarmOf(t, base, late, 0, 1, 20100)
	_, again := fetchFullScrape(t, base, true)
	if time.Since(start) < time.Second && !bytes.Equal(again, before) {
		t.Fatal("a second snapshot within the interval")
	}
	tt.WaitFor(t, "a snapshot with the late torrent", func() bool {
		_, body := fetchFullScrape(t, base, true)
		_, ok := filesOf(t, gunzip(t, body))[late]
		return ok
	})
}

// Pipelined on one keep-alive connection, a scrape, a full scrape and an
// announce are answered in order; so is a full scrape on a connection
// that asks to close, which the fast path hands to the engine.
func TestHTTPFullScrapePipelined(t *testing.T) {
	d := fullScrapeTracker(t, nil)
	base := d.HTTPAddrs()[0].String()
	h := tt.Hash("pipelined")
	swarmOf(t, base, h, 1, 1, 21000)
	conn, err := net.Dial("tcp", base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := "GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n"
	fmt.Fprintf(conn, req+req+req, "/scrape?info_hash="+escape(h), "", "/scrape", "Accept-Encoding: x, gzip;q=0.5\r\n",
		strings.TrimPrefix(announceURL(base, h, 21005, 0, ""), "http://"+base), "Connection: close\r\n")
	br := bufio.NewReader(conn)
	for i, check := range []func([]byte) bool{
		func(b []byte) bool { return bytes.HasPrefix(b, []byte("d5:filesd20:")) },
		func(b []byte) bool {
			return bytes.HasPrefix(b, []byte{0x1f, 0x8b}) && len(filesOf(t, gunzip(t, b))) == 1
		},
		func(b []byte) bool { return bytes.Contains(b, []byte("8:intervali")) },
	} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !check(body) {
			t.Fatalf("reply %d: %d %.100q", i, resp.StatusCode, body)
		}
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("after the last reply: %v, want the end of stream", err)
	}
	fast, err := net.Dial("tcp", base)
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Close()
	fmt.Fprintf(fast, "GET /scrape HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	all, _ := io.ReadAll(fast)
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(all)), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if !resp.Close || len(filesOf(t, body)) != 1 {
		t.Fatalf("fast path: %v %.100q", resp.Header, body)
	}
}

// Only the torrents the access list allows are listed, as it is when the
// snapshot is built: a reload's list applies from the next build.
func TestHTTPFullScrapeAccessList(t *testing.T) {
	kept, denied := tt.Hash("fs-kept"), tt.Hash("fs-denied")
	list := filepath.Join(t.TempDir(), "access.txt")
	os.WriteFile(list, []byte("# none yet\n"), 0o644)
	text := strings.Replace(baseConfig(t), "[http]\n", "[http]\nfull_scrape = true\nfull_scrape_interval = \"1s\"\n", 1) +
		fmt.Sprintf("[access]\nmode = \"deny\"\nfile = %q\n", list)
	d, _ := fileTracker(t, text)
	base := d.HTTPAddrs()[0].String()
	swarmOf(t, base, kept, 1, 0, 22000)
	swarmOf(t, base, denied, 1, 0, 22100)
	if got := filesOf(t, gunzip(t, second(fetchFullScrape(t, base, true)))); len(got) != 2 {
		t.Fatalf("before the list: %v", got)
	}
	os.WriteFile(list, []byte(hex.EncodeToString(denied[:])+"\n"), 0o644)
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	tt.WaitFor(t, "a full scrape without the denied torrent", func() bool {
		got := filesOf(t, gunzip(t, second(fetchFullScrape(t, base, true))))
		_, ok := got[kept]
		return ok && len(got) == 1
	})
}

func second[A, B any](_ A, b B) B { return b }

func TestHTTPFullScrapeRefusals(t *testing.T) {
	off := startTracker(t, nil)
	_, r := get(t, &http.Client{}, "http://"+off.HTTPAddrs()[0].String()+"/scrape")
	if r["failure reason"] != "full scrape is disabled" {
		t.Errorf("off: %v", r)
	}
	far := fullScrapeTracker(t, func(c *config.Config) { c.HTTP.FullScrapeFrom = []string{"192.0.2.0/24", "::1"} })
	_, r = get(t, &http.Client{}, "http://"+far.HTTPAddrs()[0].String()+"/scrape")
	if r["failure reason"] != "full scrape not allowed" {
		t.Errorf("from outside full_scrape_from: %v", r)
	}
	fetchFullScrape(t, far.HTTPAddrs()[1].String(), true) // ::1 is in it
	// With the per-IP budget on, a full scrape takes the whole burst.
	budget := fullScrapeTracker(t, func(c *config.Config) { c.Limits.PerIPRate, c.Limits.PerIPBurst = 0.01, 5 })
	base := budget.HTTPAddrs()[0].String()
	fetchFullScrape(t, base, true)
	status, r := get(t, &http.Client{}, announceURL(base, tt.Hash("after"), 23000, 0, ""))
	if status != 429 {
		t.Errorf("an announce after a full scrape: %d %v, want 429", status, r)
	}
	other := budget.HTTPAddrs()[1].String() // ::1, a budget of its own
	get(t, &http.Client{}, announceURL(other, tt.Hash("before"), 23001, 0, ""))
	if status, r := get(t, &http.Client{}, "http://"+other+"/scrape"); status != 429 {
		t.Errorf("a full scrape from a source with less than its whole burst: %d %v, want 429", status, r)
	}
}

// The full scrape's keys are reloaded: off to on, its sources narrowed,
// with no warning that they take a restart, and the reload line says so.
func TestHTTPFullScrapeReload(t *testing.T) {
	base := baseConfig(t)
	d, path, logged := startFromText(t, base)
	addr := "http://" + d.HTTPAddrs()[0].String() + "/scrape"
	if _, r := get(t, &http.Client{}, addr); r["failure reason"] != "full scrape is disabled" {
		t.Fatalf("before: %v", r)
	}
	on := strings.Replace(base, "[http]\n", "[http]\nfull_scrape = true\nfull_scrape_interval = \"2s\"\n", 1)
	os.WriteFile(path, []byte(on), 0o644)
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, body := fetchFullScrape(t, d.HTTPAddrs()[0].String(), true); len(filesOf(t, gunzip(t, body))) != 0 {
		t.Fatal("an empty tracker's full scrape lists torrents")
	}
	narrowed := strings.Replace(on, "full_scrape = true\n", "full_scrape = true\nfull_scrape_from = [\"192.0.2.0/24\"]\n", 1)
	os.WriteFile(path, []byte(narrowed), 0o644)
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, r := get(t, &http.Client{}, addr); r["failure reason"] != "full scrape not allowed" {
		t.Fatalf("narrowed: %v", r)
	}
	if out := logged.String(); strings.Contains(out, "takes a restart") || !strings.Contains(out, "full scrape at most every 2s to 192.0.2.0/24") {
		t.Fatalf("log:\n%s", out)
	}
}

// TestHTTPSFullScrape: over TLS the full scrape is the same snapshot, gzip
// or plain as asked, and requests pipelined after it are answered in turn
// on the same connection.
func TestHTTPSFullScrape(t *testing.T) {
	d, cert := startHTTPS(t, func(c *config.Config) {
		c.HTTP.FullScrape = true
		c.HTTP.FullScrapeInterval = config.Duration{Duration: time.Second}
	})
	base := d.HTTPAddrs()[0].String()
	h := tt.Hash("over tls")
	want := map[bittorrent.InfoHash]bittorrent.ScrapeStats{h: swarmOf(t, base, h, 1, 2, 22000)}
	conn, err := tls.Dial("tcp", d.HTTPSAddrs()[0].String(), &tls.Config{RootCAs: cert.Pool})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := "GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n"
	fmt.Fprintf(conn, req+req+req, "/scrape", "Accept-Encoding: gzip\r\n", "/scrape", "",
		"/scrape?info_hash="+escape(h), "Connection: close\r\n")
	br := bufio.NewReader(conn)
	for i, gz := range []bool{true, false} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if gz != (resp.Header.Get("Content-Encoding") == "gzip") {
			t.Fatalf("reply %d: Content-Encoding %q", i, resp.Header.Get("Content-Encoding"))
		}
		if gz {
			body = gunzip(t, body)
		}
		if got := filesOf(t, body); resp.StatusCode != 200 || !equalFiles(got, want) {
			t.Fatalf("reply %d: %d %v, want %v", i, resp.StatusCode, got, want)
		}
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("the scrape after the full scrapes: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if got := filesOf(t, body); !equalFiles(got, want) {
		t.Fatalf("the scrape after the full scrapes: %v", got)
	}
}

// A reload that turns the full scrape off drops its snapshot:
// trakx_full_scrape_bytes (and the build's seconds) go to 0; turned on
// again, the full scrape is built anew.
func TestHTTPFullScrapeReloadOffDropsTheSnapshot(t *testing.T) {
	on := strings.Replace(baseConfig(t), "[http]\n", "[http]\nfull_scrape = true\nfull_scrape_interval = \"1h\"\n", 1)
	d, path := fileTracker(t, on)
	base := d.HTTPAddrs()[0].String()
	h := tt.Hash("dropped")
	swarmOf(t, base, h, 1, 0, 24000)
	_, gz := fetchFullScrape(t, base, true)
	if s := scrapeMetrics(t, d); s["trakx_full_scrape_bytes"] != float64(len(gz)) {
		t.Fatalf("trakx_full_scrape_bytes %v, want %d", s["trakx_full_scrape_bytes"], len(gz))
	}
	os.WriteFile(path, []byte(strings.Replace(on, "full_scrape = true", "full_scrape = false", 1)), 0o644)
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	if s := scrapeMetrics(t, d); s["trakx_full_scrape_bytes"] != 0 || s["trakx_full_scrape_build_seconds"] != 0 {
		t.Fatalf("off: trakx_full_scrape_bytes %v, build seconds %v", s["trakx_full_scrape_bytes"], s["trakx_full_scrape_build_seconds"])
	}
	if _, r := get(t, &http.Client{}, "http://"+base+"/scrape"); r["failure reason"] != "full scrape is disabled" {
		t.Fatalf("off: %v", r)
	}
	later := tt.Hash("after the reload")
	swarmOf(t, base, later, 1, 0, 24100)
	os.WriteFile(path, []byte(on), 0o644)
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	_, gz = fetchFullScrape(t, base, true) // within the hour: a snapshot kept would lack the later torrent
	if got := filesOf(t, gunzip(t, gz)); len(got) != 2 || scrapeMetrics(t, d)["trakx_full_scrape_bytes"] != float64(len(gz)) {
		t.Fatalf("on again: %d torrents, %v bytes", len(got), scrapeMetrics(t, d)["trakx_full_scrape_bytes"])
	}
}
