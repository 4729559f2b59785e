// Package fullscrape builds the full scrape: the BEP 48 scrape reply of
// every torrent a tracker holds that its access list allows, what an HTTP
// GET /scrape without info_hash asks for when http.full_scrape is on.
//
// The contract:
//   - A Builder builds at most one snapshot per interval (measured between
//     the starts of builds), and only when asked: Get hands out the last
//     snapshot while it is younger than the interval, and otherwise starts
//     a build (one at a time) and tells every caller waiting for it when it
//     is done. A snapshot is never older than the interval when handed out.
//   - A snapshot is the whole reply, bencoded and gzip-compressed, held
//     once and shared by every request: d5:filesd, then each torrent's
//     entry in the order of its info hash (bencode's dictionaries are
//     sorted), as httpproto's scrape encoder writes it, then ee. Its
//     decompressed length is known, so that replies to clients that do not
//     accept gzip can say it (Content-Length) and be decompressed as they
//     stream (Plain).
//   - The store is read through Source.EachTorrent, which copies counts,
//     not peers, and holds no lock while the builder encodes. What a build
//     holds beyond the snapshot is a copy of every allowed torrent's hash
//     and counts (32 bytes a torrent), for the sort, freed after.
//   - At most Options.MaxPlain replies of a builder's snapshots are read
//     decompressed at once (NewPlain, WritePlain): each holds a piece
//     buffer and a gzip reader, about 105 KiB (BenchmarkPlainMemory), so
//     the limit, not the number of connections, bounds what plain replies
//     hold; past it NewPlain says ErrBusy. Gzip replies hold nothing of
//     their own: they share the snapshot. A reader holds its snapshot
//     until its reply is out, so at most 1 + the reply's timeout divided
//     by the interval snapshots live at once.
//   - Close (http.full_scrape turned off) drops the builder's snapshot and
//     has it keep none: the memory goes with the last reply under way.
//
// fullscrape.go is the Builder (Get for an epoll loop, which must not
// block; Wait for a goroutine that may); build.go the encoding of one
// snapshot; plain.go the decompressing reader.
package fullscrape

import (
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
)

// Source is where torrents are counted: *swarm.Store.
type Source interface {
	EachTorrent(f func(h *bittorrent.InfoHash, st bittorrent.ScrapeStats))
}

// Snapshot is one built full scrape, shared by every request: nothing in
// it changes once it is handed out.
type Snapshot struct {
	Gzip     []byte        // the reply, gzip-compressed
	Plain    int64         // the reply's length decompressed
	Torrents int           // the torrents in it
	Built    time.Time     // when its build began
	Took     time.Duration // how long the build took

	// slots are its builder's slots for plain readers, one taken by each
	// reading; nil (a snapshot Build made alone): no limit.
	slots chan struct{}
}

// Waiter is told, on the builder's goroutine, when the snapshot it waits
// for is ready.
type Waiter interface {
	SnapshotReady(*Snapshot)
}

// Options are a Builder's settings.
type Options struct {
	Source Source
	// Allowed reports whether a torrent may be listed (the access list);
	// nil: every torrent.
	Allowed  func(*bittorrent.InfoHash) bool
	Interval time.Duration // the least time between two builds
	// Built, if not nil, is told of each snapshot built (for metrics), on
	// the builder's goroutine, before the waiters.
	Built func(*Snapshot)
	// MaxPlain is the most replies read decompressed at once, over all
	// the builder's snapshots; 0: DefaultMaxPlain.
	MaxPlain int
}

// DefaultMaxPlain is the most replies read decompressed at once unless
// Options say otherwise: a few clients that do not accept gzip (most
// HTTP libraries do) at about 105 KiB each.
const DefaultMaxPlain = 4

// Builder builds snapshots on demand, at most one per interval.
type Builder struct {
	opts     Options
	interval atomic.Int64
	slots    chan struct{} // a plain reader's each

	mu       sync.Mutex
	last     *Snapshot
	building bool
	closed   bool // Close was called: no snapshot is kept
	waiters  []Waiter
}

// New returns a builder that has built nothing yet.
func New(opts Options) *Builder {
	if opts.MaxPlain <= 0 {
		opts.MaxPlain = DefaultMaxPlain
	}
	b := &Builder{opts: opts, slots: make(chan struct{}, opts.MaxPlain)}
	b.interval.Store(int64(opts.Interval))
	return b
}

// Plain is the number of replies of the builder's snapshots being read
// decompressed now.
func (b *Builder) Plain() int { return len(b.slots) }

// Close drops the last snapshot and has the builder keep none from now
// on: a reload turned the full scrape off. A request admitted before
// still gets a snapshot, built for it if need be, which goes with its
// reply; Built is told of no more.
func (b *Builder) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.last, b.closed = nil, true
}

// SetInterval changes the least time between two builds (a reload).
func (b *Builder) SetInterval(d time.Duration) { b.interval.Store(int64(d)) }

// Get returns the last snapshot if it was built less than the interval
// before now. Otherwise it returns nil, starts a build unless one is under
// way, and w is told when that build is done. It never blocks on a build.
func (b *Builder) Get(now time.Time, w Waiter) *Snapshot {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.last != nil && now.Sub(b.last.Built) < time.Duration(b.interval.Load()) {
		return b.last
	}
	b.waiters = append(b.waiters, w)
	if !b.building {
		b.building = true
		go b.build()
	}
	return nil
}

// Wait is Get for a caller that may block, on a goroutine of its own (a
// connection served the standard Go way, as TLS ones are): a snapshot no
// older than the interval, built now if need be.
func (b *Builder) Wait(now time.Time) *Snapshot {
	ch := make(waitChan, 1)
	if s := b.Get(now, ch); s != nil {
		return s
	}
	return <-ch
}

// waitChan is a Waiter that a blocked caller receives from.
type waitChan chan *Snapshot

// SnapshotReady hands the snapshot to the caller.
func (w waitChan) SnapshotReady(s *Snapshot) { w <- s }

// Last is the last snapshot built, however old, or nil.
func (b *Builder) Last() *Snapshot {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last
}

// build builds a snapshot and tells whoever waits for it.
func (b *Builder) build() {
	snap := Build(b.opts.Source, b.opts.Allowed)
	snap.slots = b.slots
	b.mu.Lock()
	b.building = false
	closed := b.closed
	if !closed {
		b.last = snap
	}
	waiters := b.waiters
	b.waiters = nil
	b.mu.Unlock()
	if b.opts.Built != nil && !closed {
		b.opts.Built(snap)
	}
	for _, w := range waiters {
		w.SnapshotReady(snap)
	}
	// A build allocates about four times what it keeps (the copy of every
	// torrent's counts, sorted, and the compressed reply's growth): give
	// that back to the system now, rather than as the runtime's scavenger
	// gets round to it, so that the tracker's RSS holds the snapshot and
	// not the build (at 2M torrents, 160 MB more for minutes otherwise).
	debug.FreeOSMemory()
}
