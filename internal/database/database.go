// Package database saves the swarm store to a file and loads it back, so
// that a restart loses no swarm.
//
// The file is explicit binary, the same on every architecture and Go
// version. Fixed-size integers are big-endian; counts are unsigned varints
// (encoding/binary's Uvarint).
//
//	header   magic "TRAKXDB\n" (8) | version uint32 | saved at, unix seconds int64 | reserved uint32
//	torrent  'T' | info hash (20) | downloaded
//	         | IPv4 seeders | IPv4 partial seeds | IPv4 downloaders | IPv6 seeders | IPv6 partial seeds | IPv6 downloaders
//	         | the peers, in that order: IPv4 9 bytes each, IPv6 21 bytes each
//	...      one record per torrent
//	end      'E' | torrents uint64 | peers uint64
//	trailer  CRC-32C (Castagnoli) of everything before it, uint32
//
// A peer is its address, port (uint16) and age (uint24: seconds it was last
// seen before the save, at most 2^24-1, about 194 days). That is format
// version 3, which Save writes. Load also reads versions 1 and 2, which
// knew no partial seeds (BEP 21): their torrents count seeders and
// leechers of each family, and their leechers load as downloaders.
// Version 1's peers carried their 20-byte peer id after the age; the ids
// are skipped.
//
// # Files
//
//   - database.go: the format's constants, and Save, which writes a copy
//     of the store (swarm.Store.Walk) in it.
//   - load.go: Load, the header, and the read of a whole file into memory.
//   - index.go: the check of a file's records, noting where each shard's
//     torrents are (shardIndex), and the cursor that reads them.
//   - fill.go: the fill of a store from a checked file, shard by shard on
//     every core (swarm.Store.LoadShard).
//   - load_stream.go: the load of a file too big for the memory to hold it
//     whole, record by record.
package database

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/trakx/trakx/internal/swarm"
)

const (
	magic         = "TRAKXDB\n"
	formatVersion = 3
	headerSize    = 8 + 4 + 8 + 4
	endSize       = 1 + 8 + 8
	trailerSize   = 4
	peerTailSize  = 2 + 3 // port, age
	peerIDSize    = 20    // after the tail, in version 1 only
	maxAge        = 1<<24 - 1
	// flushAt is how much encoded data is gathered before a write.
	flushAt = 256 << 10

	tagTorrent = 'T'
	tagEnd     = 'E'
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// SaveStats describe a finished save.
type SaveStats struct {
	Torrents int
	Peers    int
	Bytes    int64
	// LongestLock is the longest a shard was locked while being copied:
	// the most any request could have waited on the save.
	LongestLock time.Duration
}

// Save writes the store to path atomically: to a temporary file in the same
// directory, synced, renamed over the old file, and the directory synced, so
// that a crash at any moment leaves the old file or the new one, whole. The
// store keeps serving meanwhile; only one shard at a time is locked, while
// its torrents are copied into a buffer.
func Save(path string, store *swarm.Store, now time.Time) (SaveStats, error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return SaveStats{}, fmt.Errorf("save %s: %w", path, err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	st, err := write(tmp, store, now)
	if err != nil {
		return st, fmt.Errorf("save %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return st, fmt.Errorf("save %s: sync: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return st, fmt.Errorf("save %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return st, fmt.Errorf("save %s: %w", path, err)
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return st, fmt.Errorf("save %s: sync directory: %w", path, err)
		}
	}
	return st, nil
}

// write encodes the store to w. The store copies each shard out under its
// lock and hands the torrents over after releasing it: neither encoding
// nor disk speed ever holds up a request.
func write(w io.Writer, store *swarm.Store, now time.Time) (SaveStats, error) {
	var st SaveStats
	crc := crc32.New(castagnoli)
	out := io.MultiWriter(w, crc)
	var header [headerSize]byte
	copy(header[:], magic)
	binary.BigEndian.PutUint32(header[8:], formatVersion)
	binary.BigEndian.PutUint64(header[12:], uint64(now.Unix()))
	buf := append(make([]byte, 0, flushAt+64<<10), header[:]...)
	savedAt := uint32(now.Unix())

	walked, err := store.Walk(func(t *swarm.Torrent) error {
		buf = appendTorrent(buf, t, savedAt)
		st.Torrents++
		st.Peers += len(t.Peers4) + len(t.Peers6)
		if len(buf) < flushAt {
			return nil
		}
		st.Bytes += int64(len(buf))
		_, err := out.Write(buf)
		buf = buf[:0]
		return err
	})
	st.LongestLock = walked.LongestLock
	if err != nil {
		return st, err
	}
	buf = append(buf, tagEnd)
	buf = binary.BigEndian.AppendUint64(buf, uint64(st.Torrents))
	buf = binary.BigEndian.AppendUint64(buf, uint64(st.Peers))
	st.Bytes += int64(len(buf)) + trailerSize
	if _, err := out.Write(buf); err != nil {
		return st, err
	}
	_, err = w.Write(crc.Sum(nil))
	return st, err
}

// appendTorrent encodes one torrent record. The store lists seeders
// first, then partial seeds, then downloaders.
func appendTorrent(buf []byte, t *swarm.Torrent, savedAt uint32) []byte {
	buf = append(buf, tagTorrent)
	buf = append(buf, t.Hash[:]...)
	buf = binary.AppendUvarint(buf, uint64(t.Downloaded))
	for _, n := range kinds(t.Peers4) {
		buf = binary.AppendUvarint(buf, uint64(n))
	}
	for _, n := range kinds(t.Peers6) {
		buf = binary.AppendUvarint(buf, uint64(n))
	}
	for _, p := range t.Peers4 {
		buf = appendPeerTail(append(buf, p.IP[:]...), p.Port, p.LastSeen, savedAt)
	}
	for _, p := range t.Peers6 {
		buf = appendPeerTail(append(buf, p.IP[:]...), p.Port, p.LastSeen, savedAt)
	}
	return buf
}

// kinds counts the seeders, partial seeds and downloaders of peers.
func kinds[A [4]byte | [16]byte](peers []swarm.SnapshotPeer[A]) (n [3]int) {
	for i := range peers {
		switch p := &peers[i]; {
		case p.Seeder:
			n[0]++
		case p.Partial:
			n[1]++
		default:
			n[2]++
		}
	}
	return n
}

// appendPeerTail writes what follows a peer's address.
func appendPeerTail(buf []byte, port uint16, lastSeen, savedAt uint32) []byte {
	buf = binary.BigEndian.AppendUint16(buf, port)
	age := uint32(0)
	if savedAt > lastSeen {
		age = min(savedAt-lastSeen, maxAge)
	}
	return append(buf, byte(age>>16), byte(age>>8), byte(age))
}
