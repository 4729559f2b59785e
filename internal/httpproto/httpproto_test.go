package httpproto

import (
	"bytes"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
)

const (
	rawHash   = "\x01\x02\x03%&=+ \xff\xfeabcdefghij"
	rawPeerID = "-qB4500-0123456789ab"
)

func announceQuery(extra string) string {
	return "info_hash=" + url.QueryEscape(rawHash) + "&peer_id=" + url.QueryEscape(rawPeerID) +
		"&port=6881&uploaded=10&downloaded=20&left=30" + extra
}

func TestParseAnnounce(t *testing.T) {
	var req bittorrent.AnnounceRequest
	var opts AnnounceOptions
	err := ParseAnnounce([]byte(announceQuery("&event=started&numwant=12&compact=1&key=abc&ip=1.2.3.4&supportcrypto=1")), &req, &opts)
	if err != nil {
		t.Fatal(err)
	}
	if string(req.InfoHash[:]) != rawHash || string(req.PeerID[:]) != rawPeerID {
		t.Fatalf("hash %q peer id %q", req.InfoHash[:], req.PeerID[:])
	}
	if req.Port != 6881 || req.Uploaded != 10 || req.Downloaded != 20 || req.Left != 30 ||
		req.Event != bittorrent.EventStarted || req.NumWant != 12 || !opts.Compact {
		t.Fatalf("parsed %+v %+v", req, opts)
	}
	if err := ParseAnnounce([]byte(announceQuery("&compact=0&no_peer_id=1&numwant=99999999999")), &req, &opts); err != nil {
		t.Fatal(err)
	}
	if opts.Compact || req.NumWant != 1<<31-1 || req.Event != bittorrent.EventNone {
		t.Fatalf("parsed %+v %+v", req, opts)
	}
	for _, numwant := range []string{"-1", "-200"} {
		if err := ParseAnnounce([]byte(announceQuery("&numwant="+numwant)), &req, &opts); err != nil || req.NumWant != -1 {
			t.Fatalf("numwant=%s: %v %d, want the default (-1)", numwant, err, req.NumWant)
		}
	}
	// BEP 21's paused, as libtorrent's partial seeds send it: the same
	// event as UDP's 4.
	if err := ParseAnnounce([]byte(announceQuery("&event=paused")), &req, &opts); err != nil || req.Event != bittorrent.EventPaused {
		t.Fatalf("event=paused: %v %d", err, req.Event)
	}
	if err := ParseAnnounce([]byte(announceQuery("&numwant=-")), &req, &opts); err == nil {
		t.Fatal("numwant=- accepted")
	}
	if err := ParseAnnounce([]byte(announceQuery("")), &req, &opts); err != nil || req.NumWant != -1 || !opts.Compact {
		t.Fatalf("defaults: %v %+v %+v", err, req, opts)
	}
}

// TestParseAnnounceNumwant: a numwant beyond any integer type is capped,
// not refused (the store caps it again at tracker.numwant_max); a negative
// one of any size asks for the default; what is not a decimal number is
// still refused.
func TestParseAnnounceNumwant(t *testing.T) {
	for numwant, want := range map[string]int32{
		"0":                             0,
		"42":                            42,
		"2147483647":                    1<<31 - 1,
		"2147483648":                    1<<31 - 1,
		"99999999999999999999":          1<<31 - 1,
		"100000000000000000000000000":   1<<31 - 1,
		"1" + strings.Repeat("0", 4000): 1<<31 - 1,
		strings.Repeat("0", 40) + "42":  42,
		"-1":                            -1,
		"-100000000000000000000000000":  -1,
	} {
		var req bittorrent.AnnounceRequest
		var opts AnnounceOptions
		if err := ParseAnnounce([]byte(announceQuery("&numwant="+numwant)), &req, &opts); err != nil || req.NumWant != want {
			t.Errorf("numwant=%.40s: %v, %d; want %d", numwant, err, req.NumWant, want)
		}
	}
	for _, numwant := range []string{"", "-", "--1", "12x", "-12x", "x", "1+2", "1%20", "0x10", "1e9",
		"100000000000000000000000000x"} {
		var req bittorrent.AnnounceRequest
		var opts AnnounceOptions
		if err := ParseAnnounce([]byte(announceQuery("&numwant="+numwant)), &req, &opts); !errors.Is(err, ErrBadNumber) {
			t.Errorf("numwant=%s: %v, want %v", numwant, err, ErrBadNumber)
		}
	}
}

func TestParseAnnounceErrors(t *testing.T) {
	full := announceQuery("")
	cases := map[string]error{
		strings.Replace(full, "info_hash=", "x=", 1):                     ErrMissingInfoHash,
		strings.Replace(full, "peer_id=", "x=", 1):                       ErrMissingPeerID,
		strings.Replace(full, "port=6881", "x=1", 1):                     ErrMissingPort,
		strings.Replace(full, "left=30", "x=1", 1):                       ErrMissingLeft,
		strings.Replace(full, "port=6881", "port=0", 1):                  ErrBadPort,
		strings.Replace(full, "port=6881", "port=65536", 1):              ErrBadPort,
		strings.Replace(full, "port=6881", "port=-1", 1):                 ErrBadPort,
		strings.Replace(full, "left=30", "left=-5", 1):                   ErrBadNumber,
		strings.Replace(full, "left=30", "left=99999999999999999999", 1): ErrBadNumber,
		full + "&event=bogus":                                            ErrBadEvent,
		full + "&info_hash=" + url.QueryEscape(rawHash):                  ErrRepeatedInfoHash,
		"info_hash=abc&" + full[strings.Index(full, "&")+1:]:             ErrBadInfoHash,
		full + "&peer_id=%zz":                                            ErrBadEscape,
		full + "&peer_id=%4":                                             ErrBadEscape,
		"":                                                               ErrMissingInfoHash,
	}
	for q, want := range cases {
		var req bittorrent.AnnounceRequest
		var opts AnnounceOptions
		if err := ParseAnnounce([]byte(q), &req, &opts); !errors.Is(err, want) {
			t.Errorf("%q: got %v, want %v", q, err, want)
		}
	}
}

func TestParseScrape(t *testing.T) {
	a, b := strings.Repeat("b", 20), strings.Repeat("a", 20)
	q := "info_hash=" + a + "&info_hash=" + b + "&info_hash=" + a + "&other=1"
	hashes, err := ParseScrape([]byte(q), nil)
	if err != nil || len(hashes) != 2 || string(hashes[0].Bytes()) != b || string(hashes[1].Bytes()) != a {
		t.Fatalf("%v %v", hashes, err)
	}
	if _, err := ParseScrape([]byte("x=1"), nil); !errors.Is(err, ErrMissingInfoHash) {
		t.Errorf("no hash: %v", err)
	}
	if _, err := ParseScrape([]byte(strings.Repeat("info_hash="+a+"&", MaxScrapeHashes+1)), nil); !errors.Is(err, ErrTooManyHashes) {
		t.Errorf("too many: %v", err)
	}
}

func TestUnescape(t *testing.T) {
	dst := make([]byte, 8)
	for in, want := range map[string]string{"a%20b+c": "a b c", "%41%6a": "Aj", "": ""} {
		n, err := Unescape([]byte(in), dst)
		if err != nil || string(dst[:n]) != want {
			t.Errorf("%q: %q %v", in, dst[:n], err)
		}
	}
	if n, _ := Unescape([]byte("123456789"), dst); n != len(dst)+1 {
		t.Errorf("overlong value reported %d", n)
	}
	for _, bad := range []string{"%", "%4", "%g0", "a%0"} {
		if _, err := Unescape([]byte(bad), dst); !errors.Is(err, ErrBadEscape) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func sampleResponse() *bittorrent.AnnounceResponse {
	resp := &bittorrent.AnnounceResponse{Interval: 1800 * time.Second, MinInterval: 300 * time.Second, Complete: 2, Incomplete: 5}
	resp.Peers4 = []bittorrent.Peer4{{IP: [4]byte{192, 0, 2, 1}, Port: 6881}}
	resp.Peers6 = []bittorrent.Peer6{{IP: [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}, Port: 51413}}
	return resp
}

func TestAnnounceResponseCompact(t *testing.T) {
	out := AppendAnnounceResponse(nil, sampleResponse(), AnnounceOptions{Compact: true})
	v, err := Decode(out)
	if err != nil {
		t.Fatalf("%q: %v", out, err)
	}
	d := v.(map[string]any)
	if d["complete"] != int64(2) || d["incomplete"] != int64(5) || d["interval"] != int64(1800) || d["min interval"] != int64(300) {
		t.Fatalf("figures %v", d)
	}
	if d["peers"] != "\xc0\x00\x02\x01\x1a\xe1" {
		t.Fatalf("peers %q", d["peers"])
	}
	if p6 := d["peers6"].(string); len(p6) != 18 || p6[16:] != "\xc8\xd5" {
		t.Fatalf("peers6 %q", p6)
	}
	want := "d8:completei2e10:incompletei5e8:intervali1800e12:min intervali300e5:peers6:"
	if !bytes.HasPrefix(out, []byte(want)) {
		t.Fatalf("keys not in order: %q", out)
	}
}

func TestAnnounceResponseDictionaries(t *testing.T) {
	// no_peer_id=1 or not, the dictionaries carry ip and port only.
	for _, query := range []string{"&compact=0", "&compact=0&no_peer_id=1"} {
		var req bittorrent.AnnounceRequest
		var opts AnnounceOptions
		if err := ParseAnnounce([]byte(announceQuery(query)), &req, &opts); err != nil {
			t.Fatal(err)
		}
		out := AppendAnnounceResponse(nil, sampleResponse(), opts)
		v, err := Decode(out)
		if err != nil {
			t.Fatalf("%q: %v", out, err)
		}
		peers := v.(map[string]any)["peers"].([]any)
		if len(peers) != 2 {
			t.Fatalf("peers %v", peers)
		}
		p0, p1 := peers[0].(map[string]any), peers[1].(map[string]any)
		if p0["ip"] != "192.0.2.1" || p0["port"] != int64(6881) || p1["ip"] != "2001:db8::1" || p1["port"] != int64(51413) {
			t.Fatalf("peers %v", peers)
		}
		if len(p0) != 2 || len(p1) != 2 {
			t.Fatalf("%s: peers carry more than ip and port: %v", query, peers)
		}
	}
}

// TestV2InfoHashes: an info_hash of 32 bytes (a v2 hash) is taken by its
// first 20, as BEP 52 has trackers do; a scrape reply keys the entry by
// all 32, as sent, among 20-byte keys in byte order; any other length is
// refused.
func TestV2InfoHashes(t *testing.T) {
	v2 := strings.Repeat("\x07", 20) + "twelve bytes"
	q := "info_hash=" + url.QueryEscape(v2) + "&peer_id=" + url.QueryEscape(rawPeerID) + "&port=1&left=0"
	var req bittorrent.AnnounceRequest
	var opts AnnounceOptions
	if err := ParseAnnounce([]byte(q), &req, &opts); err != nil || string(req.InfoHash[:]) != v2[:20] {
		t.Fatalf("announce of a v2 hash: %x, %v", req.InfoHash, err)
	}
	for _, n := range []int{19, 21, 31, 33, 64} {
		q := "info_hash=" + strings.Repeat("a", n) + "&peer_id=" + url.QueryEscape(rawPeerID) + "&port=1&left=0"
		if err := ParseAnnounce([]byte(q), &req, &opts); !errors.Is(err, ErrBadInfoHash) {
			t.Errorf("announce of a %d-byte hash: %v", n, err)
		}
		if _, err := ParseScrape([]byte("info_hash="+strings.Repeat("a", n)), nil); !errors.Is(err, ErrBadInfoHash) {
			t.Errorf("scrape of a %d-byte hash: %v", n, err)
		}
	}
	v1 := strings.Repeat("\x07", 20)
	keys, err := ParseScrape([]byte("info_hash="+url.QueryEscape(v2)+"&info_hash="+url.QueryEscape(v1)+"&info_hash="+url.QueryEscape(v2)), nil)
	if err != nil || len(keys) != 2 || string(keys[0].Bytes()) != v1 || string(keys[1].Bytes()) != v2 || *keys[1].InfoHash() != *keys[0].InfoHash() {
		t.Fatalf("scrape keys %v, %v", keys, err)
	}
	out := AppendScrapeResponse(nil, keys, []bittorrent.ScrapeStats{{Complete: 1}, {Complete: 1}})
	v, err := Decode(out)
	if err != nil {
		t.Fatal(err)
	}
	files := v.(map[string]any)["files"].(map[string]any)
	if len(files) != 2 || files[v1] == nil || files[v2] == nil {
		t.Fatalf("files %q", out)
	}
}

func TestScrapeAndFailure(t *testing.T) {
	hashes := []ScrapeKey{KeyOf(bittorrent.InfoHash{1}), KeyOf(bittorrent.InfoHash{2})}
	out := AppendScrapeResponse(nil, hashes, []bittorrent.ScrapeStats{{Complete: 3, Downloaded: 4, Incomplete: 5, Downloaders: 1}, {Complete: 6, Downloaded: 7, Incomplete: 8, Downloaders: 2}})
	v, err := Decode(out)
	if err != nil {
		t.Fatal(err)
	}
	files := v.(map[string]any)["files"].(map[string]any)
	f := files[string(hashes[1].Bytes())].(map[string]any)
	if len(files) != 2 || f["complete"] != int64(6) || f["downloaded"] != int64(7) || f["incomplete"] != int64(8) || f["downloaders"] != int64(2) || len(f) != 4 {
		t.Fatalf("files %v", files)
	}
	if !strings.Contains(string(out), "8:completei6e10:downloadedi7e11:downloadersi2e10:incompletei8e") {
		t.Fatalf("keys out of order: %q", out)
	}
	v, err = Decode(AppendFailure(nil, "invalid event"))
	if err != nil || v.(map[string]any)["failure reason"] != "invalid event" {
		t.Fatalf("failure %v %v", v, err)
	}
}

func BenchmarkParseAnnounce(b *testing.B) {
	q := []byte(announceQuery("&event=started&numwant=50&compact=1&key=1a2b3c4d&supportcrypto=1&corrupt=0"))
	var req bittorrent.AnnounceRequest
	var opts AnnounceOptions
	b.ReportAllocs()
	for b.Loop() {
		if err := ParseAnnounce(q, &req, &opts); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeAnnounce(b *testing.B) {
	resp := sampleResponse()
	for range 49 {
		resp.Peers4 = append(resp.Peers4, resp.Peers4[0])
	}
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendAnnounceResponse(buf[:0], resp, AnnounceOptions{Compact: true})
	}
}

func FuzzParseAnnounce(f *testing.F) {
	f.Add(announceQuery("&event=started&numwant=12"))
	f.Add(announceQuery("&compact=0&no_peer_id=1"))
	f.Add(announceQuery("&numwant=100000000000000000000000000"))
	f.Add("info_hash=%zz&port=")
	f.Add("info_hash=" + strings.Repeat("%07", 32) + "&info_hash=" + strings.Repeat("%07", 20) + "&peer_id=" + strings.Repeat("p", 20) + "&port=1&left=0")
	f.Add("&&==&")
	f.Fuzz(func(t *testing.T, q string) {
		var req bittorrent.AnnounceRequest
		var opts AnnounceOptions
		if ParseAnnounce([]byte(q), &req, &opts) == nil && (req.Port == 0 || req.NumWant < -1) {
			t.Fatalf("accepted port %d, numwant %d", req.Port, req.NumWant)
		}
		hashes, err := ParseScrape([]byte(q), nil)
		if err == nil {
			for i := range hashes {
				if n := len(hashes[i].Bytes()); n != 20 && n != 32 || !bytes.Equal(hashes[i].InfoHash()[:], hashes[i].Bytes()[:20]) {
					t.Fatalf("scrape key %x", hashes[i].Bytes())
				}
				if i > 0 && bytes.Compare(hashes[i-1].Bytes(), hashes[i].Bytes()) >= 0 {
					t.Fatal("scrape hashes not sorted and unique")
				}
			}
		}
	})
}

// FuzzUnescape checks the decoder against the standard library's.
func FuzzUnescape(f *testing.F) {
	f.Add("a%20b+c")
	f.Add("%")
	f.Add("%F0%9F%98%80")
	f.Fuzz(func(t *testing.T, s string) {
		dst := make([]byte, 64)
		n, err := Unescape([]byte(s), dst)
		if n > len(dst) {
			return // too long to matter: decoding stopped early
		}
		want, stdErr := url.QueryUnescape(s)
		if (err == nil) != (stdErr == nil) {
			t.Fatalf("%q: ours %v, standard library %v", s, err, stdErr)
		}
		if err == nil && string(dst[:n]) != want {
			t.Fatalf("%q: %q, want %q", s, dst[:n], want)
		}
	})
}

// FuzzDecode checks that the bencode decoder never panics and that what the
// encoders write always decodes.
func FuzzDecode(f *testing.F) {
	f.Add([]byte("d8:completei2e5:peersld2:ip3:abceee"))
	f.Add([]byte("l"))
	f.Add([]byte("i-0e"))
	f.Fuzz(func(t *testing.T, b []byte) {
		Decode(b)
		if _, err := Decode(AppendFailure(nil, string(b))); err != nil {
			t.Fatalf("own failure reason does not decode: %v", err)
		}
	})
}

// TestV2AndPausedAllocateNothing: the request path of issue 25's
// additions, a paused announce with a v2 hash and a scrape keyed by 32
// and 20 bytes, encoded with downloaders, allocates nothing.
func TestV2AndPausedAllocateNothing(t *testing.T) {
	v2 := strings.Repeat("%07", 32)
	announce := []byte("info_hash=" + v2 + "&peer_id=" + url.QueryEscape(rawPeerID) + "&port=1&left=5&event=paused")
	scrape := []byte("info_hash=" + v2 + "&info_hash=" + strings.Repeat("%07", 20))
	var req bittorrent.AnnounceRequest
	var opts AnnounceOptions
	keys := make([]ScrapeKey, 0, 8)
	stats := []bittorrent.ScrapeStats{{Complete: 1, Incomplete: 3, Downloaders: 2}, {Complete: 1, Incomplete: 3, Downloaders: 2}}
	out := make([]byte, 0, 1024)
	run := func() {
		if err := ParseAnnounce(announce, &req, &opts); err != nil || req.Event != bittorrent.EventPaused {
			t.Fatalf("announce: %v", err)
		}
		var err error
		if keys, err = ParseScrape(scrape, keys[:0]); err != nil || len(keys) != 2 {
			t.Fatalf("scrape: %v", err)
		}
		out = AppendScrapeResponse(out[:0], keys, stats)
	}
	if n := testing.AllocsPerRun(1000, run); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}
