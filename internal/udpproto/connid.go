package udpproto

import (
	"crypto/rand"
	"encoding/binary"
	"math/bits"
	"net/netip"
	"time"
)

// ConnectionIDs issues and checks BEP 15 connection ids without keeping any
// per-client state. An id is the second it expires (32 bits) followed by a
// 32-bit SipHash-2-4 MAC of that second and the client's address under a
// secret drawn at start. Only the holder of the secret can make an id that
// checks out, so a spoofed source address never gets one.
type ConnectionIDs struct {
	k0, k1   uint64
	lifetime uint32 // seconds
}

// NewConnectionIDs draws a fresh secret. Ids it issues are accepted for
// lifetime after they are made.
func NewConnectionIDs(lifetime time.Duration) *ConnectionIDs {
	var key [16]byte
	if _, err := rand.Read(key[:]); err != nil {
		panic("udpproto: no randomness for the connection id secret: " + err.Error())
	}
	return &ConnectionIDs{
		k0:       binary.LittleEndian.Uint64(key[:8]),
		k1:       binary.LittleEndian.Uint64(key[8:]),
		lifetime: uint32(max(lifetime/time.Second, 1)),
	}
}

// Issue returns a connection id for addr, made at now (unix seconds).
func (c *ConnectionIDs) Issue(addr netip.Addr, now uint32) uint64 {
	expiry := now + c.lifetime
	return uint64(expiry)<<32 | uint64(c.mac(addr, expiry))
}

// Valid reports whether id was issued to addr and has not expired at now.
func (c *ConnectionIDs) Valid(id uint64, addr netip.Addr, now uint32) bool {
	expiry := uint32(id >> 32)
	if expiry < now || expiry-now > c.lifetime {
		return false
	}
	return uint32(id) == c.mac(addr, expiry)
}

func (c *ConnectionIDs) mac(addr netip.Addr, expiry uint32) uint32 {
	var msg [20]byte
	a := addr.As16()
	copy(msg[:16], a[:])
	binary.LittleEndian.PutUint32(msg[16:], expiry)
	return uint32(sipHash24(c.k0, c.k1, msg[:]))
}

// sipHash24 is SipHash-2-4 (Aumasson and Bernstein), a keyed PRF built for
// short inputs.
func sipHash24(k0, k1 uint64, msg []byte) uint64 {
	v0 := k0 ^ 0x736f6d6570736575
	v1 := k1 ^ 0x646f72616e646f6d
	v2 := k0 ^ 0x6c7967656e657261
	v3 := k1 ^ 0x7465646279746573
	round := func() {
		v0 += v1
		v1 = bits.RotateLeft64(v1, 13)
		v1 ^= v0
		v0 = bits.RotateLeft64(v0, 32)
		v2 += v3
		v3 = bits.RotateLeft64(v3, 16)
		v3 ^= v2
		v0 += v3
		v3 = bits.RotateLeft64(v3, 21)
		v3 ^= v0
		v2 += v1
		v1 = bits.RotateLeft64(v1, 17)
		v1 ^= v2
		v2 = bits.RotateLeft64(v2, 32)
	}
	n := len(msg)
	for len(msg) >= 8 {
		m := binary.LittleEndian.Uint64(msg)
		v3 ^= m
		round()
		round()
		v0 ^= m
		msg = msg[8:]
	}
	last := uint64(n) << 56
	for i, b := range msg {
		last |= uint64(b) << (8 * i)
	}
	v3 ^= last
	round()
	round()
	v0 ^= last
	v2 ^= 0xff
	round()
	round()
	round()
	round()
	return v0 ^ v1 ^ v2 ^ v3
}
