package wire

import (
	"encoding/binary"
	"slices"
	"testing"
)

// TestSeqsRoundTrip: what AppendSeqs writes, ParseSeqs reads back.
func TestSeqsRoundTrip(t *testing.T) {
	for _, seqs := range [][]Seq{nil, {{"a", 1}}, {{"node-1", 0}, {string(make([]byte, 0)) + "x_Y-9", 1<<64 - 1}}} {
		var got []Seq
		if err := ParseSeqs(AppendSeqs(nil, seqs), func(n []byte, s uint64) { got = append(got, Seq{string(n), s}) }); err != nil {
			t.Fatalf("%v: %v", seqs, err)
		}
		if !slices.Equal(got, seqs) {
			t.Fatalf("read back %v, want %v", got, seqs)
		}
	}
}

// TestSeqsRefused: a list that does not parse whole yields nothing.
func TestSeqsRefused(t *testing.T) {
	good := AppendSeqs(nil, []Seq{{"a", 1}, {"b", 2}})
	for name, b := range map[string][]byte{
		"empty":      nil,
		"truncated":  good[:len(good)-1],
		"trailing":   append(slices.Clone(good), 0),
		"bad name":   AppendSeqs(nil, []Seq{{"a.b", 1}}),
		"no name":    append(binary.AppendUvarint(nil, 1), make([]byte, 9)...),
		"huge count": binary.AppendUvarint(nil, 1<<40),
	} {
		called := false
		if err := ParseSeqs(b, func([]byte, uint64) { called = true }); err != ErrSeqs || called {
			t.Errorf("%s: err %v, yielded %v; want ErrSeqs and nothing", name, err, called)
		}
	}
}

// TestSeqOf: SeqOf reads the Seq ParseBatch reads, and refuses what is
// too short or of another format.
func TestSeqOf(t *testing.T) {
	b := AppendBatch(nil, Header{Node: "node", Seq: 77, SentNanos: 5}, nil)
	if seq, ok := SeqOf(b); !ok || seq != 77 {
		t.Fatalf("SeqOf: %d %v", seq, ok)
	}
	for _, bad := range [][]byte{nil, {Format}, b[:len(b)-10], append([]byte{9}, b[1:]...)} {
		if _, ok := SeqOf(bad); ok {
			t.Errorf("SeqOf(%x) ok", bad)
		}
	}
}

// FuzzParseSeqs: ParseSeqs never panics; what it accepts, AppendSeqs
// writes back to bytes that read the same, and SeqOf never panics on any bytes and
// agrees with ParseBatch on every batch that parses.
func FuzzParseSeqs(f *testing.F) {
	f.Add(AppendSeqs(nil, []Seq{{"a", 1}, {"bb", 2}}))
	f.Add(AppendBatch(nil, Header{Node: "n", Seq: 3}, nil))
	f.Add([]byte{1, 1, 'a'})
	f.Fuzz(func(t *testing.T, b []byte) {
		var got []Seq
		if err := ParseSeqs(b, func(n []byte, s uint64) { got = append(got, Seq{string(n), s}) }); err == nil {
			var back []Seq
			again := AppendSeqs(nil, got)
			if err := ParseSeqs(again, func(n []byte, s uint64) { back = append(back, Seq{string(n), s}) }); err != nil || !slices.Equal(back, got) {
				t.Fatalf("accepted %x, written back as %x: %v", b, again, err)
			}
			if len(again) > len(b) { // the count's varint may be overlong in b, never shorter
				t.Fatalf("accepted %x, written back longer: %x", b, again)
			}
		} else if len(got) != 0 {
			t.Fatal("yielded entries with an error")
		}
		seq, ok := SeqOf(b)
		if h, _, err := ParseBatch(b, func(Record) {}); err == nil && (!ok || seq != h.Seq) {
			t.Fatalf("SeqOf %d %v, ParseBatch's Seq %d", seq, ok, h.Seq)
		}
	})
}
