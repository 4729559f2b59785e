// Package ratelimit keeps a request budget per source address, shared by
// every frontend, so that one noisy address cannot take a tracker's whole
// capacity.
//
// The contract:
//   - Each source has a token bucket of Burst tokens refilled at Rate per
//     second. A request takes one token (one that AllowRest charges, a
//     full scrape, the whole burst); a request that finds none is refused
//     and takes nothing (a refused flood does not dig itself a deeper
//     hole, and is served again as soon as it slows down).
//   - IPv4 sources are tracked one address each; IPv6 sources by /64,
//     because one host commonly holds a whole /64.
//   - At most Tracked sources are remembered at once. They are kept in sets
//     of up to 8; a new source takes the place of the least recently seen
//     (by any request, allowed or refused) of its set. A forgotten source
//     comes back with a full bucket, so forgetting never refuses anyone.
//     The set is chosen by a keyed hash, so that nobody can aim at
//     another address's set.
//   - Allow costs no allocation and takes one short mutex of its set,
//     never any lock of the swarm store. Rate 0 turns the budget off and
//     Allow then touches no memory at all.
//   - Configure changes rate, burst and the number tracked while requests
//     are served, keeping every remembered bucket that still fits. A bucket
//     keeps what it owes in time; under a lower new rate or burst it owes
//     at most a whole new bucket.
package ratelimit

import (
	"hash/maphash"
	"math"
	"math/bits"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Ways is how many sources share a set, the unit of eviction.
const Ways = 8

// Config is a budget.
type Config struct {
	Rate    float64 // tokens per second; 0: no budget
	Burst   int     // a bucket's size
	Tracked int     // most sources remembered at once
}

// Limiter is the per-source budget. Its zero value is not usable; call New.
type Limiter struct {
	params atomic.Pointer[params]
	table  atomic.Pointer[table]
	mu     sync.Mutex // serialises Configure
	epoch  time.Time
}

// params is a Config in the form Allow reads: GCRA's emission interval
// and tolerance, in nanoseconds.
type params struct {
	cfg       Config
	interval  int64 // nanoseconds a token takes to come back
	tolerance int64 // how far ahead of now a bucket's debt may run
}

// New returns a limiter for cfg.
func New(cfg Config) *Limiter {
	l := &Limiter{epoch: time.Now()}
	l.Configure(cfg)
	return l
}

// Configure applies cfg. Buckets are kept; when the number tracked changes,
// they move to a table of the new size, the most recently seen first, as
// many as fit.
func (l *Limiter) Configure(cfg Config) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := &params{cfg: cfg}
	if cfg.Rate > 0 {
		p.interval = max(int64(float64(time.Second)/cfg.Rate), 1)
		p.tolerance = p.interval * int64(max(cfg.Burst, 1))
		if old := l.table.Load(); old == nil || old.capacity() != capacityFor(cfg.Tracked) {
			t := newTable(cfg.Tracked)
			if old != nil {
				t.takeFrom(old)
			}
			l.table.Store(t)
		}
	}
	l.params.Store(p)
}

// Config is the budget in force.
func (l *Limiter) Config() Config { return l.params.Load().cfg }

// Tracked is how many sources are remembered now.
func (l *Limiter) Tracked() int {
	t := l.table.Load()
	if t == nil {
		return 0
	}
	return t.count()
}

// Allow charges one request to addr's budget, at now (time.Now(), which
// the caller usually has at hand), and reports whether it is within it.
func (l *Limiter) Allow(addr netip.Addr, now time.Time) bool {
	if l == nil {
		return true
	}
	p := l.params.Load()
	if p.interval == 0 {
		return true
	}
	t := l.table.Load()
	return t.allow(sourceKey(addr), int64(now.Sub(l.epoch))+1, p, 1)
}

// AllowRest charges what is left of a whole burst to addr's budget, beyond
// the one token its request took already (Allow): a request as costly as
// a whole burst (a full scrape) is within the budget only from a source
// whose bucket was full. Refused, it takes nothing more. now is as for
// Allow.
func (l *Limiter) AllowRest(addr netip.Addr, now time.Time) bool {
	if l == nil {
		return true
	}
	p := l.params.Load()
	if p.interval == 0 || p.cfg.Burst <= 1 {
		return true
	}
	return l.table.Load().allow(sourceKey(addr), int64(now.Sub(l.epoch))+1, p, int64(p.cfg.Burst-1))
}

// AllowNow is Allow at the present time; it reads no clock when the budget
// is off. A nil Limiter allows everything.
func (l *Limiter) AllowNow(addr netip.Addr) bool {
	if l == nil || l.params.Load().interval == 0 {
		return true
	}
	return l.Allow(addr, time.Now())
}

// sourceKey folds a source into 64 bits: an IPv6 address's /64, or an
// IPv4 address in ffff:ffff::/32, a block no IPv6 source comes from.
func sourceKey(a netip.Addr) uint64 {
	if a.Is4() || a.Is4In6() {
		v4 := a.Unmap().As4()
		return 0xffff_ffff_0000_0000 | uint64(v4[0])<<24 | uint64(v4[1])<<16 | uint64(v4[2])<<8 | uint64(v4[3])
	}
	b := a.As16()
	var k uint64
	for _, c := range b[:8] {
		k = k<<8 | uint64(c)
	}
	return k
}

// slot is one remembered source. at is the bucket's theoretical arrival
// time (GCRA): the moment, in nanoseconds since the limiter's epoch, at
// which its bucket is full again; 0 marks an empty slot.
type slot struct {
	key uint64
	at  int64
}

// set is Ways slots, the most recently seen first.
type set struct {
	mu    sync.Mutex
	slots [Ways]slot
}

type table struct {
	seed maphash.Seed
	ways int
	sets []set
}

// capacityFor is how many sources a table for tracked remembers: no more
// than tracked.
func capacityFor(tracked int) int {
	ways := min(max(tracked, 1), Ways)
	return max(tracked/ways, 1) * ways
}

func newTable(tracked int) *table {
	ways := min(max(tracked, 1), Ways)
	return &table{seed: maphash.MakeSeed(), ways: ways, sets: make([]set, max(tracked/ways, 1))}
}

func (t *table) capacity() int { return len(t.sets) * t.ways }

func (t *table) setOf(key uint64) *set {
	hi, _ := bits.Mul64(maphash.Comparable(t.seed, key), uint64(len(t.sets)))
	return &t.sets[hi]
}

// allow is GCRA: a request of cost tokens at now is allowed when the
// bucket's debt after it, max(at, now) + cost*interval - now, stays within
// the tolerance.
func (t *table) allow(key uint64, now int64, p *params, cost int64) bool {
	s := t.setOf(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	i := 0
	for i < t.ways-1 && s.slots[i].at != 0 && s.slots[i].key != key {
		i++
	}
	found := s.slots[i]
	if found.key != key || found.at == 0 {
		found = slot{key: key, at: now} // new, in the place of the least recently seen
	}
	copy(s.slots[1:i+1], s.slots[:i]) // move to the front: seen now
	// A bucket can owe no more than the tolerance; more is only possible
	// after a reload lowered the rate or burst, and is forgiven.
	found.at = min(max(found.at, now), now+p.tolerance)
	next := found.at + cost*p.interval
	ok := next-now <= p.tolerance
	if ok {
		found.at = next
	}
	s.slots[0] = found
	return ok
}

// takeFrom copies old's sources in, the least recently seen of each set
// first, so that where a set overflows the most recent stay.
func (t *table) takeFrom(old *table) {
	for i := range old.sets {
		s := &old.sets[i]
		s.mu.Lock()
		slots := s.slots
		s.mu.Unlock()
		for w := Ways - 1; w >= 0; w-- {
			if slots[w].at != 0 {
				t.insert(slots[w])
			}
		}
	}
}

func (t *table) insert(e slot) {
	s := t.setOf(e.key)
	s.mu.Lock()
	defer s.mu.Unlock()
	copy(s.slots[1:t.ways], s.slots[:t.ways-1])
	s.slots[0] = e
}

func (t *table) count() int {
	n := 0
	for i := range t.sets {
		s := &t.sets[i]
		s.mu.Lock()
		for _, e := range s.slots[:t.ways] {
			if e.at != 0 {
				n++
			}
		}
		s.mu.Unlock()
	}
	return n
}

// RetryAfter is how long a refused source should wait before its next
// request is allowed, rounded up to whole seconds, at least 1: the value
// for an HTTP Retry-After header.
func (l *Limiter) RetryAfter() int {
	if l == nil {
		return 1
	}
	p := l.params.Load()
	if p.interval == 0 {
		return 1
	}
	return max(int(math.Ceil(float64(p.interval)/float64(time.Second))), 1)
}
