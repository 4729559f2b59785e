// Package database saves the swarm store to a file and loads it back, so
// that a restart loses no swarm.
//
// The file is explicit binary, the same on every architecture and Go
// version. Fixed-size integers are big-endian; counts are unsigned varints
// (encoding/binary's Uvarint).
//
//	header   magic "TRAKXDB\n" (8) | version uint32 | saved at, unix seconds int64 | reserved uint32
//	torrent  'T' | info hash (20) | downloaded | IPv4 seeders | IPv4 leechers | IPv6 seeders | IPv6 leechers
//	         | the peers, in that order: IPv4 29 bytes each, IPv6 41 bytes each
//	...      one record per torrent
//	end      'E' | torrents uint64 | peers uint64
//	trailer  CRC-32C (Castagnoli) of everything before it, uint32
//
// A peer is its address, port (uint16), age (uint24: seconds it was last
// seen before the save, at most 2^24-1, about 194 days) and peer id (20).
package database

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/swarm"
)

const (
	magic         = "TRAKXDB\n"
	formatVersion = 1
	headerSize    = 8 + 4 + 8 + 4
	endSize       = 1 + 8 + 8
	trailerSize   = 4
	peerTailSize  = 2 + 3 + 20 // port, age, peer id
	peer4Size     = 4 + peerTailSize
	peer6Size     = 16 + peerTailSize
	maxAge        = 1<<24 - 1

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

// write encodes the store to w.
func write(w io.Writer, store *swarm.Store, now time.Time) (SaveStats, error) {
	var st SaveStats
	crc := crc32.New(castagnoli)
	bw := bufio.NewWriterSize(io.MultiWriter(w, crc), 1<<20)
	var header [headerSize]byte
	copy(header[:], magic)
	binary.BigEndian.PutUint32(header[8:], formatVersion)
	binary.BigEndian.PutUint64(header[12:], uint64(now.Unix()))
	bw.Write(header[:])
	st.Bytes = headerSize + endSize + trailerSize
	savedAt := uint32(now.Unix())

	// Each shard's torrents are copied out under its lock, which is all
	// the lock is held for, then encoded and written after it is released:
	// neither encoding nor disk speed ever holds up a request.
	type torrentCopy struct {
		hash       bittorrent.InfoHash
		downloaded uint32
		n4, n6     int
	}
	var (
		torrents []torrentCopy
		v4s      []swarm.Peer4
		v6s      []swarm.Peer6
		buf      []byte
	)
	for shard := range swarm.Shards {
		torrents, v4s, v6s = torrents[:0], v4s[:0], v6s[:0]
		locked := time.Now()
		store.ForEachTorrent(shard, func(h bittorrent.InfoHash, downloaded uint32, v4 []swarm.Peer4, v6 []swarm.Peer6) {
			torrents = append(torrents, torrentCopy{h, downloaded, len(v4), len(v6)})
			v4s = append(v4s, v4...)
			v6s = append(v6s, v6...)
		})
		st.LongestLock = max(st.LongestLock, time.Since(locked))

		buf = buf[:0]
		rest4, rest6 := v4s, v6s
		for _, t := range torrents {
			v4, v6 := rest4[:t.n4], rest6[:t.n6]
			rest4, rest6 = rest4[t.n4:], rest6[t.n6:]
			buf = append(buf, tagTorrent)
			buf = append(buf, t.hash[:]...)
			buf = binary.AppendUvarint(buf, uint64(t.downloaded))
			s4, s6 := seeders(v4), seeders(v6)
			buf = binary.AppendUvarint(buf, uint64(s4))
			buf = binary.AppendUvarint(buf, uint64(len(v4)-s4))
			buf = binary.AppendUvarint(buf, uint64(s6))
			buf = binary.AppendUvarint(buf, uint64(len(v6)-s6))
			for _, seeder := range []bool{true, false} {
				for i := range v4 {
					if p := &v4[i]; p.Seeder == seeder {
						buf = appendPeerTail(append(buf, p.IP[:]...), p.Port, p.LastSeen, savedAt, &p.ID)
					}
				}
			}
			for _, seeder := range []bool{true, false} {
				for i := range v6 {
					if p := &v6[i]; p.Seeder == seeder {
						buf = appendPeerTail(append(buf, p.IP[:]...), p.Port, p.LastSeen, savedAt, &p.ID)
					}
				}
			}
			st.Torrents++
			st.Peers += len(v4) + len(v6)
		}
		st.Bytes += int64(len(buf))
		if _, err := bw.Write(buf); err != nil {
			return st, err
		}
	}
	var end [endSize]byte
	end[0] = tagEnd
	binary.BigEndian.PutUint64(end[1:], uint64(st.Torrents))
	binary.BigEndian.PutUint64(end[9:], uint64(st.Peers))
	bw.Write(end[:])
	if err := bw.Flush(); err != nil {
		return st, err
	}
	_, err := w.Write(crc.Sum(nil))
	return st, err
}

func seeders[A [4]byte | [16]byte](peers []swarm.Peer[A]) (n int) {
	for i := range peers {
		if peers[i].Seeder {
			n++
		}
	}
	return n
}

// appendPeerTail writes what follows a peer's address.
func appendPeerTail(buf []byte, port uint16, lastSeen, savedAt uint32, id *bittorrent.PeerID) []byte {
	buf = binary.BigEndian.AppendUint16(buf, port)
	age := uint32(0)
	if savedAt > lastSeen {
		age = min(savedAt-lastSeen, maxAge)
	}
	buf = append(buf, byte(age>>16), byte(age>>8), byte(age))
	return append(buf, id[:]...)
}
