package wire

import (
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/trakx/trakx/internal/bittorrent"
)

// hashOf is an info hash whose first byte is b.
func hashOf(b byte) (h bittorrent.InfoHash) {
	h[0], h[19] = b, ^b
	return h
}

// rec is a record of the torrent hashOf(b) at the address a.
func rec(b byte, a string, port uint16, ev bittorrent.Event, seeder bool) Record {
	return Record{InfoHash: hashOf(b), Addr: netip.MustParseAddr(a), Port: port, Event: ev, Seeder: seeder}
}

// parseAll parses b and returns what ParseBatch returns, the records in
// a slice.
func parseAll(t testing.TB, b []byte) (Header, Stats, []Record, error) {
	t.Helper()
	var got []Record
	h, st, err := ParseBatch(b, func(r Record) { got = append(got, r) })
	return h, st, got, err
}

// TestRoundTrip appends batches of valid records and reads them back.
func TestRoundTrip(t *testing.T) {
	h := Header{Node: "node-a_1", Seq: 1<<64 - 1, SentNanos: 1<<63 - 1}
	cases := map[string][]Record{
		"empty": nil,
		"every event and kind": {
			rec(1, "1.2.3.4", 6881, bittorrent.EventNone, false),
			rec(1, "1.2.3.5", 1, bittorrent.EventCompleted, true),
			rec(2, "2001:db8::1", 65535, bittorrent.EventStarted, false),
			rec(2, "2001:db8::2", 6881, bittorrent.EventStopped, true),
			rec(3, "8.8.8.8", 6881, bittorrent.EventPaused, false),
			rec(3, "10.0.0.1", 6881, bittorrent.EventPaused, true),
		},
		"a hash back again": {
			rec(1, "1.2.3.4", 1, 0, false), rec(2, "1.2.3.4", 1, 0, false), rec(1, "1.2.3.4", 1, 0, false),
		},
		"one peer started then stopped": {
			rec(9, "1.2.3.4", 1, bittorrent.EventStarted, false), rec(9, "1.2.3.4", 1, bittorrent.EventStopped, false),
		},
	}
	for name, recs := range cases {
		t.Run(name, func(t *testing.T) {
			b := AppendBatch([]byte("prefix"), h, recs)
			if string(b[:6]) != "prefix" {
				t.Fatal("AppendBatch overwrote dst")
			}
			got, st, out, err := parseAll(t, b[6:])
			want := h
			want.Count = len(recs)
			if err != nil || got != want || st != (Stats{Valid: len(recs)}) || !slices.Equal(out, recs) {
				t.Fatalf("got %+v %+v %v %v, want %+v %v", got, st, out, err, want, recs)
			}
		})
	}
}

// TestSizes pins the byte counts the package doc states.
func TestSizes(t *testing.T) {
	h := Header{Node: "n"}
	base := len(AppendBatch(nil, h, nil))
	if base != 1+1+1+8+8+1 {
		t.Errorf("header of a one-byte node, no records: %d bytes", base)
	}
	for _, c := range []struct {
		recs []Record
		want int
	}{
		{[]Record{rec(1, "1.2.3.4", 1, 0, false)}, 27},
		{[]Record{rec(1, "1.2.3.4", 1, 0, false), rec(1, "1.2.3.5", 1, 0, false)}, 27 + 7},
		{[]Record{rec(1, "2001:db8::1", 1, 0, false)}, 39},
		{[]Record{rec(1, "2001:db8::1", 1, 0, false), rec(1, "2001:db8::2", 1, 0, false)}, 39 + 19},
	} {
		if got := len(AppendBatch(nil, h, c.recs)) - base; got != c.want {
			t.Errorf("%v: %d bytes of records, want %d", c.recs, got, c.want)
		}
	}
}

// TestMalformedRecords puts one bad record between good ones: it is
// counted, and the records around it still arrive.
func TestMalformedRecords(t *testing.T) {
	good1, good2 := rec(1, "1.2.3.4", 1, 0, false), rec(1, "2001:db8::9", 2, 0, true)
	bad := map[string]Record{
		"port 0":          rec(1, "1.2.3.4", 0, 0, false),
		"0.0.0.0":         rec(1, "0.0.0.0", 1, 0, false),
		"::":              rec(1, "::", 1, 0, false),
		"loopback v4":     rec(1, "127.0.0.2", 1, 0, false),
		"loopback v6":     rec(1, "::1", 1, 0, false),
		"multicast v4":    rec(1, "224.0.0.1", 1, 0, false),
		"multicast v6":    rec(1, "ff02::1", 1, 0, false),
		"broadcast":       rec(1, "255.255.255.255", 1, 0, false),
		"mapped":          rec(1, "::ffff:1.2.3.4", 1, 0, false),
		"event 5":         rec(1, "1.2.3.4", 1, 5, false),
		"event 200":       rec(1, "1.2.3.4", 1, 200, false),
		"no address":      {InfoHash: hashOf(1), Port: 1},
		"other hash too":  rec(2, "0.0.0.0", 1, 0, false),
		"v6, other hash":  rec(2, "::1", 1, 0, false),
		"zoned (as ::1)":  rec(1, "::1%eth0", 1, 0, false),
		"event 7, seeder": rec(1, "1.2.3.4", 1, 7, true),
	}
	for name, r := range bad {
		t.Run(name, func(t *testing.T) {
			if r.Valid() {
				t.Fatal("Valid() says true")
			}
			b := AppendBatch(nil, Header{Node: "a"}, []Record{good1, r, good2})
			_, st, out, err := parseAll(t, b)
			if err != nil || st != (Stats{Valid: 2, Malformed: 1}) || !slices.Equal(out, []Record{good1, good2}) {
				t.Fatalf("got %+v %v %v", st, out, err)
			}
		})
	}
}

// TestMalformedTags sets what AppendBatch never writes in a tag: a
// reserved bit, or "same hash" on the first record.
func TestMalformedTags(t *testing.T) {
	good := rec(1, "1.2.3.4", 1, 0, false)
	b := AppendBatch(nil, Header{Node: "a"}, []Record{good, good, good})
	first, second := len(b)-27-7-7, len(b)-7-7
	for name, mutate := range map[string]func(b []byte) []byte{
		"reserved bit 4": func(b []byte) []byte { b[second] |= 0x10; return b },
		"reserved bit 5": func(b []byte) []byte { b[second] |= 0x20; return b },
		"first, same hash": func(b []byte) []byte {
			b[first] |= tagSameHash
			return append(b[:first+1], b[first+21:]...)
		},
	} {
		t.Run(name, func(t *testing.T) {
			c := mutate(slices.Clone(b))
			_, st, out, err := parseAll(t, c)
			want := Stats{Valid: 2, Malformed: 1}
			if name == "first, same hash" {
				want = Stats{Malformed: 3} // no hash to share at all
			}
			if err != nil || st != want || len(out) != want.Valid {
				t.Fatalf("got %+v %v %v, want %+v", st, out, err, want)
			}
		})
	}
}

// TestMalformedHeaders refuses whole batches, yielding nothing.
func TestMalformedHeaders(t *testing.T) {
	one := []Record{rec(1, "1.2.3.4", 1, 0, false)}
	valid := AppendBatch(nil, Header{Node: "a"}, one)
	cases := map[string][]byte{
		"empty":            nil,
		"format only":      {Format},
		"node 0 bytes":     AppendBatch(nil, Header{}, one),
		"node with a dot":  AppendBatch(nil, Header{Node: "a.b"}, one),
		"node with a star": AppendBatch(nil, Header{Node: "*"}, one),
		"node 65 bytes":    AppendBatch(nil, Header{Node: strings.Repeat("a", 65)}, one),
		"negative sent":    AppendBatch(nil, Header{Node: "a", SentNanos: -1}, one),
		"header cut":       valid[:1+1+1+8+8],
		"count too big":    append(slices.Clone(valid[:1+1+1+8+8]), 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
		"count overflows":  append(slices.Clone(valid[:1+1+1+8+8]), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			h, st, out, err := parseAll(t, b)
			if !errors.Is(err, ErrHeader) || h != (Header{}) || st != (Stats{}) || out != nil {
				t.Fatalf("got %+v %+v %v %v", h, st, out, err)
			}
		})
	}
	future := slices.Clone(valid)
	future[0] = 2
	var fe FormatError
	if _, _, out, err := parseAll(t, future); !errors.As(err, &fe) || fe != 2 || out != nil {
		t.Fatalf("format 2: %v %v", out, err)
	}
	if want := "cluster batch: format 2, this node reads format 1"; fe.Error() != want {
		t.Errorf("%q, want %q", fe.Error(), want)
	}
}

// TestTruncatedAndTrailing: records that stop before the count are
// counted malformed; bytes after the last one are reported. The records
// read stand either way.
func TestTruncatedAndTrailing(t *testing.T) {
	recs := []Record{rec(1, "1.2.3.4", 1, 0, false), rec(1, "1.2.3.5", 1, 0, false), rec(1, "1.2.3.6", 1, 0, false)}
	b := AppendBatch(nil, Header{Node: "a"}, recs)
	// Cut into the last record: 35 bytes of records can hold the 3 the
	// header counts, so the header stands and the third is missing.
	_, st, out, err := parseAll(t, b[:len(b)-6])
	if !errors.Is(err, ErrTruncated) || st != (Stats{Valid: 2, Malformed: 1}) || !slices.Equal(out, recs[:2]) {
		t.Fatalf("cut: %+v %v %v", st, out, err)
	}
	_, st, out, err = parseAll(t, append(slices.Clone(b), 0))
	if !errors.Is(err, ErrTrailingBytes) || st != (Stats{Valid: 3}) || !slices.Equal(out, recs) {
		t.Fatalf("trailing: %+v %v %v", st, out, err)
	}
}

// randomRecord is a valid record of one of torrents torrents.
func randomRecord(r *rand.Rand, torrents int) Record {
	rc := Record{InfoHash: hashOf(byte(r.IntN(torrents))), Port: uint16(1 + r.IntN(65535)),
		Event: bittorrent.Event(r.IntN(5)), Seeder: r.IntN(2) == 0}
	rc.InfoHash[1] = byte(r.IntN(4)) // hashes that share a first byte
	if r.IntN(4) == 0 {
		rc.Addr = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(r.Uint32()), 14: byte(r.Uint32())})
	} else {
		rc.Addr = netip.AddrFrom4([4]byte{byte(1 + r.IntN(100)), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())})
	}
	return rc
}

// TestRoundTripRandom is a property test: any valid records, in any
// order, sorted or not, read back as written.
func TestRoundTripRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var b []byte
	for i := range 2000 {
		recs := make([]Record, r.IntN(300))
		for j := range recs {
			recs[j] = randomRecord(r, 1+r.IntN(50))
		}
		if i%2 == 0 {
			sortByHash(recs)
		}
		h := Header{Node: "n" + strings.Repeat("x", r.IntN(MaxNodeLen)), Seq: r.Uint64(), SentNanos: r.Int64(), Count: len(recs)}
		b = AppendBatch(b[:0], h, recs)
		got, st, out, err := parseAll(t, b)
		if err != nil || got != h || st.Valid != len(recs) || st.Malformed != 0 || !slices.Equal(out, recs) {
			t.Fatalf("batch %d: %+v %+v %v", i, got, st, err)
		}
	}
}

// TestLayout pins format 1 byte for byte, as the package doc states it,
// so that a change to it is a change to the doc and the format byte.
func TestLayout(t *testing.T) {
	h := Header{Node: "n1", Seq: 0x0102030405060708, SentNanos: 0x1112131415161718}
	recs := []Record{
		rec(0xaa, "1.2.3.4", 0x1ae1, bittorrent.EventCompleted, true),
		rec(0xaa, "2001:db8::1", 0x0102, bittorrent.EventPaused, false),
	}
	hash := "aa000000000000000000000000000000000000" + "55"
	want := "01" + "02" + "6e31" + "0102030405060708" + "1112131415161718" + "02" +
		"09" + hash + "01020304" + "1ae1" +
		"c4" + "20010db8000000000000000000000001" + "0102"
	if got := hex.EncodeToString(AppendBatch(nil, h, recs)); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
