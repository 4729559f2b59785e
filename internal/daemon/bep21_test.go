package daemon_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/trakx/trakx/internal/bittorrent"
	tt "github.com/trakx/trakx/internal/trackertest"
)

// scrapeFiles scrapes keys (raw info_hash values) over HTTP and returns
// the reply's files.
func scrapeFiles(t *testing.T, base string, keys ...string) map[string]any {
	t.Helper()
	var q []string
	for _, k := range keys {
		q = append(q, "info_hash="+url.QueryEscape(k))
	}
	status, r := tt.GetBencoded(t, http.DefaultClient, "http://"+base+"/scrape?"+strings.Join(q, "&"))
	files, ok := r["files"].(map[string]any)
	if status != 200 || !ok {
		t.Fatalf("scrape: %d %v", status, r)
	}
	return files
}

// figures reads an HTTP scrape entry: complete, incomplete, downloaders.
func figures(t *testing.T, files map[string]any, key string) [3]int64 {
	t.Helper()
	f, ok := files[key].(map[string]any)
	if !ok {
		t.Fatalf("no entry %x in %v", key, files)
	}
	return [3]int64{f["complete"].(int64), f["incomplete"].(int64), f["downloaders"].(int64)}
}

// TestPartialSeedsOverHTTPAndUDP: a partial seed announcing paused, over
// HTTP or UDP (event 4), is counted in incomplete and not in an HTTP
// scrape's downloaders, is sent downloaders only, and becomes a
// downloader again when it announces without paused.
func TestPartialSeedsOverHTTPAndUDP(t *testing.T) {
	d := startTracker(t, nil)
	families(t, func(t *testing.T, i int) {
		base, udp := d.HTTPAddrs()[i].String(), d.UDPAddrs()[i].String()
		hash := tt.Hash(fmt.Sprintf("bep21-%d", i))
		client := &http.Client{}
		tt.GetBencoded(t, client, announceURL(base, hash, 1001, 0, "&event=started"))   // a seeder
		tt.GetBencoded(t, client, announceURL(base, hash, 1002, 100, "&event=started")) // a downloader
		_, r := tt.GetBencoded(t, client, announceURL(base, hash, 1003, 100, "&event=paused"))
		if peers, _ := r["peers"].(string); i == 0 && (len(peers) != 6 || peers[4:] != "\x03\xea") {
			t.Fatalf("the HTTP partial seed was sent %q, want the downloader at port 1002 alone", peers)
		}
		if peers, _ := r["peers6"].(string); i == 1 && (len(peers) != 18 || peers[16:] != "\x03\xea") {
			t.Fatalf("the HTTP partial seed was sent %q, want the downloader at port 1002 alone", peers)
		}
		c := tt.DialUDP(t, udp)
		c.Connect()
		resp, err := c.Announce(peerReq(hash, 1004, 100, bittorrent.EventPaused))
		if err != nil {
			t.Fatal(err)
		}
		if n := len(resp.Peers4) + len(resp.Peers6); n != 1 || resp.Complete != 1 || resp.Incomplete != 3 {
			t.Fatalf("the UDP partial seed was sent %d peers, counts %d/%d; want the downloader alone, 1/3", n, resp.Complete, resp.Incomplete)
		}
		if got := figures(t, scrapeFiles(t, base, string(hash[:])), string(hash[:])); got != [3]int64{1, 3, 1} {
			t.Fatalf("scrape: complete, incomplete, downloaders %v; want 1, 3, 1", got)
		}
		// Resumed without paused: a downloader again.
		if _, err := c.Announce(peerReq(hash, 1004, 100, bittorrent.EventNone)); err != nil {
			t.Fatal(err)
		}
		if got := figures(t, scrapeFiles(t, base, string(hash[:])), string(hash[:])); got != [3]int64{1, 3, 2} {
			t.Fatalf("scrape after a resume: %v; want 1, 3, 2", got)
		}
		st, err := c.Scrape(hash)
		if err != nil || st[0] != (bittorrent.ScrapeStats{Complete: 1, Incomplete: 3}) {
			t.Fatalf("UDP scrape %+v %v: no downloaders, as BEP 15 has no room for them", st, err)
		}
	})
}

// TestV2InfoHashOverHTTP: an HTTP announce with a 32-byte info_hash (a
// v2 hash) joins the swarm of its first 20 bytes (BEP 52), as a UDP
// client's truncated hash does; a scrape keys each entry by the
// info_hash as sent, the 32-byte one and the 20-byte one alike.
func TestV2InfoHashOverHTTP(t *testing.T) {
	d := startTracker(t, nil)
	base := d.HTTPAddrs()[0].String()
	v1 := tt.Hash("bep52")
	v2 := string(v1[:]) + "the 12 bytes"
	u := fmt.Sprintf("http://%s/announce?info_hash=%s&peer_id=-TT0001-000000005252&port=5252&left=0", base, url.QueryEscape(v2))
	if status, r := tt.GetBencoded(t, http.DefaultClient, u); status != 200 || r["complete"] != int64(1) {
		t.Fatalf("v2 announce: %d %v", status, r)
	}
	c := tt.DialUDP(t, d.UDPAddrs()[0].String())
	c.Connect()
	resp, err := c.Announce(peerReq(v1, 5253, 10, bittorrent.EventStarted))
	if err != nil || resp.Complete != 1 || len(resp.Peers4) != 1 || resp.Peers4[0].Port != 5252 {
		t.Fatalf("UDP announce of the truncated hash: %+v %v", resp, err)
	}
	files := scrapeFiles(t, base, v2, string(v1[:]))
	if len(files) != 2 {
		t.Fatalf("scrape files %v, want one entry per key sent", files)
	}
	for _, k := range []string{v2, string(v1[:])} {
		if got := figures(t, files, k); got != [3]int64{1, 1, 1} {
			t.Fatalf("scrape entry %x: %v, want 1, 1, 1", k, got)
		}
	}
	u = fmt.Sprintf("http://%s/announce?info_hash=%s&peer_id=-TT0001-000000005254&port=5254&left=0", base, strings.Repeat("x", 31))
	if _, r := tt.GetBencoded(t, http.DefaultClient, u); !strings.Contains(fmt.Sprint(r["failure reason"]), "info_hash must be 20 bytes, or 32") {
		t.Fatalf("31-byte info_hash: %v", r)
	}
}
