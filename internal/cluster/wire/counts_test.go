package wire

import (
	"bytes"
	"encoding/binary"
	"math"
	"slices"
	"testing"
)

// countsOf is a list of n counts with hashes and counts made from i.
func countsOf(n int) []Count {
	cs := make([]Count, n)
	for i := range cs {
		cs[i].InfoHash[0], cs[i].InfoHash[19] = byte(i), byte(i>>8)
		cs[i].Downloaded = uint32(i) * 997
	}
	return cs
}

// TestCountsRoundTrip: what AppendCounts writes, ParseCounts reads back,
// extremes included.
func TestCountsRoundTrip(t *testing.T) {
	for _, cs := range [][]Count{nil, countsOf(1), countsOf(300), {{Downloaded: math.MaxUint32}}} {
		b := AppendCounts(nil, cs)
		var got []Count
		if err := ParseCounts(b, func(c Count) { got = append(got, c) }); err != nil {
			t.Fatalf("%d counts: %v", len(cs), err)
		}
		if !slices.Equal(got, cs) && len(cs)+len(got) > 0 {
			t.Fatalf("%d counts: read back %d, differing", len(cs), len(got))
		}
	}
}

// TestCountsRefused: a list that does not parse whole yields nothing.
func TestCountsRefused(t *testing.T) {
	good := AppendCounts(nil, countsOf(3))
	over := append(binary.AppendUvarint(nil, 1), make([]byte, hashSize)...)
	over = binary.AppendUvarint(over, math.MaxUint32+1)
	for name, b := range map[string][]byte{
		"empty":      nil,
		"truncated":  good[:len(good)-1],
		"trailing":   append(slices.Clone(good), 0),
		"huge count": binary.AppendUvarint(nil, 1<<40),
		"over 2^32":  over,
	} {
		called := false
		if err := ParseCounts(b, func(Count) { called = true }); err != ErrCounts || called {
			t.Errorf("%s: err %v, yielded %v; want ErrCounts and nothing", name, err, called)
		}
	}
}

// FuzzParseCounts: ParseCounts never panics; what it accepts, it yields
// as a model reader does, and AppendCounts writes it back to bytes that
// read the same (the encoding may differ: a varint can be overlong).
func FuzzParseCounts(f *testing.F) {
	f.Add(AppendCounts(nil, countsOf(2)))
	f.Add([]byte{1})
	f.Add(binary.AppendUvarint(nil, 1<<40))
	f.Fuzz(func(t *testing.T, b []byte) {
		var got []Count
		err := ParseCounts(b, func(c Count) { got = append(got, c) })
		if err != nil {
			if len(got) != 0 {
				t.Fatal("yielded counts with an error")
			}
			return
		}
		n, k := binary.Uvarint(b)
		if uint64(len(got)) != n {
			t.Fatalf("yielded %d of %d", len(got), n)
		}
		rest := b[k:]
		for _, c := range got { // each entry: its hash, then its count's varint
			v, vk := binary.Uvarint(rest[hashSize:])
			if !bytes.Equal(rest[:hashSize], c.InfoHash[:]) || v != uint64(c.Downloaded) {
				t.Fatalf("entry %x/%d does not match its bytes", c.InfoHash, c.Downloaded)
			}
			rest = rest[hashSize+vk:]
		}
		again := AppendCounts(nil, got)
		var back []Count
		if err := ParseCounts(again, func(c Count) { back = append(back, c) }); err != nil || !slices.Equal(back, got) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
