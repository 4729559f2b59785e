package wire

import (
	"bytes"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/swarm"
)

// TestAllocations: appending into a buffer with room, gathering into a
// reused Batch, and parsing batches of nodes the Parser knows allocate
// nothing.
func TestAllocations(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	recs := make([]Record, 1000)
	for i := range recs {
		recs[i] = randomRecord(r, 200)
	}
	h := Header{Node: "node-a", Seq: 7, SentNanos: 1e9}
	buf := AppendBatch(nil, h, recs)
	if n := testing.AllocsPerRun(100, func() { buf = AppendBatch(buf[:0], h, recs) }); n != 0 {
		t.Errorf("AppendBatch: %v allocations", n)
	}
	var batch Batch
	fill := func() {
		batch.Reset()
		for i := range recs {
			batch.Add(recs[i])
		}
		buf = batch.AppendTo(buf[:0], h)
	}
	fill()
	if n := testing.AllocsPerRun(100, fill); n != 0 {
		t.Errorf("Batch: %v allocations", n)
	}
	other := AppendBatch(nil, Header{Node: "node-b"}, recs)
	var p Parser
	valid := 0
	count := func(Record) { valid++ }
	p.Parse(buf, count)
	p.Parse(other, count)
	if n := testing.AllocsPerRun(100, func() { p.Parse(buf, count); p.Parse(other, count) }); n != 0 {
		t.Errorf("Parser.Parse: %v allocations", n)
	}
}

// TestBatchSortsAndBounds: a Batch sends each torrent's announces
// together, a peer's in the order they came, and never more bytes than
// Bound said.
func TestBatchSortsAndBounds(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	var batch Batch
	var buf []byte
	for range 200 {
		batch.Reset()
		var added []Record
		for range r.IntN(500) {
			rc := randomRecord(r, 1+r.IntN(30))
			batch.Add(rc)
			added = append(added, rc)
		}
		bound := batch.Bound()
		buf = batch.AppendTo(buf[:0], Header{Node: strings.Repeat("x", MaxNodeLen)})
		if len(buf) > bound {
			t.Fatalf("%d bytes, bound %d", len(buf), bound)
		}
		_, _, out, err := parseAll(t, buf)
		sortByHash(added)
		if err != nil || !slices.Equal(out, added) || batch.Len() != len(added) {
			t.Fatalf("got %d records, %v", len(out), err)
		}
		for i := 1; i < len(out); i++ {
			if string(out[i-1].InfoHash[:]) > string(out[i].InfoHash[:]) {
				t.Fatal("not sorted")
			}
		}
	}
}

// TestRequest: an accepted announce's record applies as the same
// announce as far as the store reads it (hash, address, port, event, and
// whether left is 0).
func TestRequest(t *testing.T) {
	for _, in := range []bittorrent.AnnounceRequest{
		{InfoHash: hashOf(1), Addr: netip.MustParseAddr("1.2.3.4"), Port: 1, Left: 0, Event: bittorrent.EventCompleted},
		{InfoHash: hashOf(2), Addr: netip.MustParseAddr("2001:db8::1"), Port: 2, Left: 99, Event: bittorrent.EventPaused, NumWant: 50},
	} {
		r := RecordOf(&in)
		var out bittorrent.AnnounceRequest
		r.Request(&out)
		if out.InfoHash != in.InfoHash || out.Addr != in.Addr || out.Port != in.Port || out.Event != in.Event ||
			(out.Left == 0) != (in.Left == 0) || out.NumWant != 0 {
			t.Errorf("%+v became %+v", in, out)
		}
	}
}

// TestIsPrivate checks each range the doc names, and that no private
// address counts as public to the store.
func TestIsPrivate(t *testing.T) {
	private := []string{"10.0.0.1", "10.255.255.255", "172.16.0.1", "172.31.255.255", "192.168.1.1",
		"169.254.0.1", "100.64.0.1", "100.127.255.255", "fc00::1", "fdff::1", "fe80::1", "::ffff:10.1.2.3"}
	public := []string{"1.2.3.4", "172.32.0.1", "172.15.255.255", "100.63.255.255", "100.128.0.1",
		"192.169.0.1", "2001:db8::1", "2a00::1", "fe00::1", "127.0.0.1", "::1"}
	for _, s := range private {
		a := netip.MustParseAddr(s)
		if !IsPrivate(a) || swarm.IsPublic(a.Unmap()) {
			t.Errorf("%s: IsPrivate %v, swarm.IsPublic %v", s, IsPrivate(a), swarm.IsPublic(a.Unmap()))
		}
	}
	for _, s := range public {
		if IsPrivate(netip.MustParseAddr(s)) {
			t.Errorf("%s: private", s)
		}
	}
}

// TestValidNode checks the subject token rule.
func TestValidNode(t *testing.T) {
	for name, want := range map[string]bool{
		"a": true, "node-1": true, "Node_A": true, "0123456789012345678901234567890123456789012345678901234567890123": true,
		"": false, "a.b": false, "*": false, ">": false, "a b": false, "é": false, "a\x00": false,
		"01234567890123456789012345678901234567890123456789012345678901234": false,
	} {
		if ValidNode(name) != want {
			t.Errorf("ValidNode(%q) = %v", name, !want)
		}
	}
}

// sortByHash is the model of Batch's order: by whole info hash, stably.
// (The tests' hashes differ within their first 5 bytes.)
func sortByHash(recs []Record) {
	slices.SortStableFunc(recs, func(a, b Record) int { return bytes.Compare(a.InfoHash[:], b.InfoHash[:]) })
}
