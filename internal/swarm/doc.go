// Package swarm is the in-memory swarm database: which peers are in which
// torrent, and the counts a scrape reports. It knows nothing of the wire.
//
// # Contract
//
//   - A peer is identified within a torrent by its address and port. Peer
//     ids are not stored. IPv4 and IPv6 peers are kept apart: a reply lists
//     peers of the requester's family, then, if asked (BothFamilies), of the
//     other one.
//   - A peer is a seeder (left = 0), a partial seed (data left, and the
//     announce says BEP 21's paused) or a downloader (any other). A partial
//     seed counts among the leechers (incomplete) and not among the
//     downloaders (ScrapeStats.Downloaders); an announce without paused
//     makes it a downloader again.
//   - A reply never lists the requester itself. A peer that wants nothing,
//     a seeder or a partial seed, is sent downloaders only: partial seeds
//     are not sent to each other, nor seeders to partial seeds or the
//     other way. BEP 21 leaves it open; libtorrent, which sends paused,
//     closes a connection between two peers that are both upload-only
//     ("upload_upload_connection", peer_connection.cpp and
//     bt_peer_connection.cpp), so such a peer would cost both a connection
//     attempt for nothing, in place of a downloader it could serve. Peers
//     at private, loopback or link-local addresses go only to requesters
//     at such addresses, unless Config.PrivatePeers.
//   - The peers of a reply are a uniformly random choice among those that
//     qualify: every qualifying peer is equally likely to be listed. At most
//     numwant (capped by Config.NumWantMax, Config.NumWantDefault when the
//     client did not say) are listed, and fewer only when fewer qualify.
//   - A stopped event removes the peer and lists no peers. A completed event
//     adds one to the torrent's downloaded count when it makes a peer a
//     seeder (left = 0) that was not one: a repeated completed, one from a
//     known seeder, or one that still has data left counts nothing.
//   - A peer silent for longer than Config.PeerTTL is removed by the next
//     Expire; a torrent without peers is forgotten, its downloaded count
//     with it. Config.PeerTTL may be at most MaxPeerTTL.
//   - Counts (seeders and leechers per family, downloaders, torrents,
//     downloaded) are exact after every sequence of calls. A torrent holds
//     at most 1,753,501 peers of each family (the biggest block a list
//     counts): a newcomer past it is refused with ErrOutOfMemory.
//     Config.MaxPeers and Config.MaxTorrents are never exceeded, even by
//     concurrent announces: a newcomer beyond them is refused with
//     ErrTooManyPeers or ErrTooManyTorrents, and peers already present
//     keep announcing.
//   - Walk copies the store out torrent by torrent; Restore puts torrents
//     back. Walk's copy of each torrent is consistent, taken under the same
//     lock that announces take.
//   - All methods are safe for concurrent use. Announce and Scrape do not
//     allocate once the store has grown to its working size.
//
// # Layout
//
// The store never shows its layout, but it is what makes it small; layout.go
// draws it and defines all of it. Torrents are spread over shards, each
// with its own lock. A shard keeps its torrents in an open-addressed table
// of fixed 52-byte slots (Robin Hood hashing on a keyed hash of the info
// hash) and each family's peers in an arena: one array of fixed-size
// records, 8 bytes for IPv4 (address, port, and the last-seen time as
// seconds modulo 2^16) and 20 for IPv6. A torrent's peers of one family
// are one block of the arena: seeders, then partial seeds, then
// downloaders, where each stands telling what it is, so that the record
// needs no bit for it; the slot's list counts each run. Blocks come in size classes
// about 1.25x apart, a swarm that outgrows its block moves to a bigger one
// at the arena's end, and a block of 48 peers or more carries a hash index
// of positions after its records. The arena is compacted, blocks slid down
// in place and shrunk to fit, when its garbage passes an eighth of what is
// live and by every expiry sweep. Tables and arenas live outside the Go
// heap (package offheap), so the garbage collector never scans or copies
// them and freed memory goes back to the kernel at once.
//
// # Files
//
//   - layout.go: the memory layout (shard, table, slot, list, arena, record,
//     size classes) and what it costs a peer.
//   - store.go: Store, Config, the refusals, the store-wide totals, Stats.
//   - announce.go: Announce and Scrape: the request path, and the random
//     choice of peers for a reply.
//   - view.go: view, one torrent's peers of one family: find, add, remove,
//     reclassify a peer as seeder or leecher, expire.
//   - table.go: the hashing of a shard's torrents (Robin Hood open addressing).
//   - arena.go: the handing out of an arena's blocks, and its compaction.
//   - clock.go: the store's clock and the ages records keep.
//   - expire.go: Expire and RunExpiry, the sweep of silent peers.
//   - peer.go: which addresses are public, and the keyed hash of a peer.
//   - snapshot.go: Walk, the copy of the store out, torrent by torrent.
//   - restore.go: Restore, a torrent's copy put back.
//   - shardload.go: LoadShard, a whole shard put back at once by a load.
//   - stall.go: Stall, for tests of what must notice a stalled request.
package swarm
