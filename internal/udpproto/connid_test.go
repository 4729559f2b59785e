package udpproto

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"
)

func TestSipHashVectors(t *testing.T) {
	// From the SipHash paper's reference vectors: key 00..0f, message 00..n-1.
	var key [16]byte
	msg := make([]byte, 15)
	for i := range key {
		key[i] = byte(i)
	}
	for i := range msg {
		msg[i] = byte(i)
	}
	k0, k1 := binary.LittleEndian.Uint64(key[:8]), binary.LittleEndian.Uint64(key[8:])
	for _, v := range []struct {
		n    int
		want uint64
	}{{0, 0x726fdb47dd0e0e31}, {1, 0x74f839c593dc67fd}, {15, 0xa129ca6149be45e5}} {
		if got := sipHash24(k0, k1, msg[:v.n]); got != v.want {
			t.Errorf("siphash of %d bytes = %#x, want %#x", v.n, got, v.want)
		}
	}
}

func TestConnectionIDs(t *testing.T) {
	ids := NewConnectionIDs(5 * time.Minute)
	a := netip.MustParseAddr("192.0.2.7")
	b := netip.MustParseAddr("192.0.2.8")
	now := uint32(1_800_000_000)
	id := ids.Issue(a, now)
	if !ids.Valid(id, a, now) || !ids.Valid(id, a, now+300) {
		t.Fatal("fresh id refused")
	}
	if ids.Valid(id, a, now+301) {
		t.Fatal("id accepted after its lifetime")
	}
	if ids.Valid(id, b, now) {
		t.Fatal("id accepted from another address")
	}
	if ids.Valid(id^1, a, now) || ids.Valid(id+1<<32, a, now) {
		t.Fatal("altered id accepted")
	}
	// An expiry far in the future is forged, however it was made.
	if ids.Valid(ids.Issue(a, now+10_000), a, now) {
		t.Fatal("id from the future accepted")
	}
	if other := NewConnectionIDs(5 * time.Minute); other.Valid(id, a, now) {
		t.Fatal("id accepted under another secret")
	}
}
