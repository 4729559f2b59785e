package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"slices"
	"testing"

	"github.com/trakx/trakx/internal/bittorrent"
)

// seedBatches are FuzzParseBatch's starting inputs: batches as AppendBatch
// writes them, and a few broken ones.
func seedBatches() [][]byte {
	recs := []Record{
		rec(1, "1.2.3.4", 6881, bittorrent.EventStarted, false), rec(1, "1.2.3.5", 1, bittorrent.EventCompleted, true),
		rec(2, "2001:db8::1", 2, bittorrent.EventPaused, false), rec(2, "2001:db8::1", 2, bittorrent.EventStopped, false),
		rec(3, "0.0.0.0", 1, 0, false), rec(3, "1.2.3.4", 0, 6, true),
	}
	good := AppendBatch(nil, Header{Node: "node-a", Seq: 3, SentNanos: 99}, recs)
	return [][]byte{good, AppendBatch(nil, Header{Node: "b"}, nil), good[:len(good)-3], append(slices.Clone(good), 1, 2)}
}

// FuzzParseBatch: any bytes parse without a panic; a refused header
// yields nothing; otherwise the counts add up to the header's, and each
// record yielded re-encodes to the bytes it was read from.
func FuzzParseBatch(f *testing.F) {
	for _, b := range seedBatches() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, st, out, err := parseAll(t, b)
		var fe FormatError
		if errors.Is(err, ErrHeader) || errors.As(err, &fe) {
			if h != (Header{}) || st != (Stats{}) || out != nil {
				t.Fatalf("refused header, yet %+v %+v %d records", h, st, len(out))
			}
			return
		}
		if err != nil && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrTrailingBytes) {
			t.Fatalf("unexpected error %v", err)
		}
		if st.Valid != len(out) || st.Valid+st.Malformed != h.Count || !ValidNode(h.Node) || h.SentNanos < 0 {
			t.Fatalf("%+v %+v, %d records", h, st, len(out))
		}
		matchRaw(t, b[1+1+len(h.Node)+16+uvarintLen(uint64(h.Count)):], h.Count, out)
		again, st2, out2, err := parseAll(t, AppendBatch(nil, h, out))
		if err != nil || again != (Header{Node: h.Node, Seq: h.Seq, SentNanos: h.SentNanos, Count: len(out)}) ||
			st2 != (Stats{Valid: len(out)}) || !slices.Equal(out, out2) {
			t.Fatalf("re-encoded: %+v %+v %v", again, st2, err)
		}
	})
}

// uvarintLen is the bytes binary.AppendUvarint writes for v.
func uvarintLen(v uint64) int { return len(binary.AppendUvarint(nil, v)) }

// matchRaw walks the records' bytes by the layout the package doc states
// and checks that out are the valid ones among them, in order, each
// re-encoding to the bytes it came from with the hash then in effect.
func matchRaw(t *testing.T, body []byte, count int, out []Record) {
	var hash []byte
	for k := 0; k < count && len(body) > 0; k++ {
		tag := body[0]
		n := 1 + 4 + 2
		if tag&0x80 != 0 {
			n += 12
		}
		if tag&0x40 == 0 {
			n += 20
		}
		if n > len(body) {
			break
		}
		raw := body[:n]
		body = body[n:]
		if tag&0x40 == 0 {
			hash = raw[1:21]
		}
		if len(out) == 0 || hash == nil || !bytes.Equal(out[0].InfoHash[:], hash) {
			continue
		}
		if bytes.Equal(appendRecord(nil, &out[0], tag&0x40 != 0), raw) {
			out = out[1:]
		}
	}
	if len(out) != 0 {
		t.Fatalf("%d records yielded match no bytes of the batch", len(out))
	}
}

// modelAddrs are the addresses FuzzAppendParse draws from, and whether
// a receiver accepts each.
var modelAddrs = []struct {
	addr  netip.Addr
	valid bool
}{
	{netip.MustParseAddr("1.2.3.4"), true}, {netip.MustParseAddr("10.0.0.1"), true},
	{netip.MustParseAddr("2001:db8::1"), true}, {netip.MustParseAddr("fe80::1"), true},
	{netip.MustParseAddr("0.0.0.0"), false}, {netip.MustParseAddr("127.0.0.1"), false},
	{netip.MustParseAddr("239.1.1.1"), false}, {netip.MustParseAddr("::"), false},
	{netip.MustParseAddr("::1"), false}, {netip.MustParseAddr("ff05::2"), false},
	{netip.MustParseAddr("::ffff:1.2.3.4"), false}, {netip.MustParseAddr("255.255.255.255"), false},
	{netip.Addr{}, false}, {netip.MustParseAddr("1.2.3.4"), true},
	{netip.MustParseAddr("2a01::7"), true}, {netip.MustParseAddr("100.64.1.1"), true},
}

// modelRecord is the record three input bytes describe, and whether a
// receiver accepts it by the model's rules (event 0-4, port not 0, an
// address marked valid).
func modelRecord(a, b, c byte) (Record, bool) {
	ports := [4]uint16{0, 1, 6881, 65535}
	addr := modelAddrs[a&15]
	r := Record{InfoHash: hashOf(a >> 4), Addr: addr.addr, Port: ports[b&3], Event: bittorrent.Event(b >> 2 & 7), Seeder: b&0x20 != 0}
	r.InfoHash[2] = c
	return r, addr.valid && r.Port != 0 && r.Event <= 4
}

// FuzzAppendParse runs sequences of batches, each appended (as given, or
// through a Batch) and parsed by one Parser, against a model: the
// receiver gets the valid records, in order (stably by hash through a
// Batch), and counts the rest; headers arrive as sent.
func FuzzAppendParse(f *testing.F) {
	f.Add([]byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0xff, 0x81, 0x01, 0x02, 0x03})
	f.Add([]byte{0xfe, 0xe0, 0x05, 0x10, 0x31, 0x06, 0x02, 0xff, 0x41, 0x22, 0x3f, 0x49})
	f.Fuzz(func(t *testing.T, ops []byte) {
		nodes := [3]string{"a", "node-b", "node_c-0123456789"}
		var p Parser
		var batch Batch
		var buf []byte
		var want []Record
		malformed, seq := 0, uint64(0)
		for len(ops) >= 3 {
			a, b, c := ops[0], ops[1], ops[2]
			ops = ops[3:]
			if a == 0xff { // send: b picks the node, c whether through Batch
				seq++
				h := Header{Node: nodes[b%3], Seq: seq, SentNanos: int64(c) << 40, Count: batch.Len()}
				if c&1 == 0 {
					buf = AppendBatch(buf[:0], h, batch.Records)
				} else {
					buf = batch.AppendTo(buf[:0], h)
					sortByHash(want)
				}
				var got []Record
				gh, st, err := p.Parse(buf, func(r Record) { got = append(got, r) })
				if err != nil || gh != h || st != (Stats{Valid: len(want), Malformed: malformed}) || !slices.Equal(got, want) {
					t.Fatalf("batch %d: %+v %+v %v, %d records; want %+v, %d and %d malformed", seq, gh, st, err, len(got), h, len(want), malformed)
				}
				batch.Reset()
				want, malformed = want[:0], 0
				continue
			}
			r, valid := modelRecord(a, b, c)
			batch.Add(r)
			if valid {
				want = append(want, r)
			} else {
				malformed++
			}
		}
	})
}
