package swarm

import "time"

// instant is a reading of the store's clock. Last-seen times are kept on
// mono, whole seconds of the monotonic clock since the store was made,
// which a stepped wall clock cannot move; unix is read only to hand
// last-seen times out as unix times (Walk) and take them in (Restore).
// Announces and sweeps read the clock while they hold the shard's lock,
// so that a sweep never sees a peer stamped later than its own reading.
type instant struct{ mono, unix uint32 }

// tick is the reading of mono that records are stamped with.
func (in instant) tick() uint16 { return tickOf(in.mono) }

// realClock starts mono at the wall clock's second boundaries, so that
// unix - mono stays the same from reading to reading (until the wall clock
// is stepped) and a peer's last-seen unix time reads the same in every
// Walk.
func realClock() func() instant {
	start := time.Now()
	phase := start.Sub(start.Truncate(time.Second)) // into the wall clock's second
	return func() instant {
		t := time.Now()
		return instant{mono: uint32((t.Sub(start) + phase) / time.Second), unix: uint32(t.Unix())}
	}
}

// tickOf is a reading in seconds as a record keeps it (record.seen):
// modulo 2^16, which ages tell apart for 18 hours.
func tickOf(secs uint32) uint16 { return uint16(secs) }

// age is how many seconds before now a peer was last seen, provided that
// it was less than 2^16 seconds ago, which the expiry sweep ensures.
func age(now, seen uint16) uint32 { return uint32(now - seen) }
