package database

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/swarm"
)

// ErrCorrupt is wrapped by every error about a file's content, as opposed
// to one about reaching it.
var ErrCorrupt = errors.New("corrupt database")

// corrupt reports a problem with the content of a file.
func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// LoadStats describe a finished load.
type LoadStats struct {
	SavedAt  time.Time
	Torrents int // torrents kept
	Peers    int // peers kept
	Expired  int // peers dropped as older than the peer TTL
}

// peersPerChunk bounds the memory a load uses beyond the store it fills.
const peersPerChunk = 4096

// Load reads the file at path into a new store with the given settings.
// Peers last seen longer than cfg.PeerTTL before now are dropped. A missing
// file gives an error satisfying errors.Is(err, os.ErrNotExist); a damaged
// one, an error wrapping ErrCorrupt. On any error the partly filled store is
// not returned.
func Load(path string, cfg swarm.Config, now time.Time) (*swarm.Store, LoadStats, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, LoadStats{}, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, LoadStats{}, err
	}
	store := swarm.New(cfg)
	st, err := read(f, info.Size(), store, cfg.PeerTTL, now)
	if err != nil {
		return nil, LoadStats{}, err
	}
	return store, st, nil
}

// decoder reads the body of a file, counting what is left of it so that no
// count in the file is trusted beyond the bytes that could back it.
type decoder struct {
	r    *bufio.Reader
	left int64 // bytes of body (everything before the trailer) not yet read
}

func (d *decoder) full(b []byte) error {
	if int64(len(b)) > d.left {
		return corrupt("truncated")
	}
	if _, err := io.ReadFull(d.r, b); err != nil {
		return truncated(err)
	}
	d.left -= int64(len(b))
	return nil
}

func (d *decoder) byte() (byte, error) {
	var b [1]byte
	err := d.full(b[:])
	return b[0], err
}

// uvarint reads a count that must fit 32 bits.
func (d *decoder) uvarint() (uint32, error) {
	var v uint64
	for shift := 0; shift < 35; shift += 7 {
		c, err := d.byte()
		if err != nil {
			return 0, err
		}
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			if v > 1<<32-1 {
				break
			}
			return uint32(v), nil
		}
	}
	return 0, corrupt("a count is out of range")
}

// read decodes a file of the given size into store.
func read(r io.Reader, size int64, store *swarm.Store, ttl time.Duration, now time.Time) (LoadStats, error) {
	var st LoadStats
	if size < headerSize+endSize+trailerSize {
		return st, corrupt("file of %d bytes is too short to be a database", size)
	}
	crc := crc32.New(castagnoli)
	d := &decoder{
		r:    bufio.NewReaderSize(io.TeeReader(io.LimitReader(r, size-trailerSize), crc), 1<<20),
		left: size - trailerSize,
	}
	var header [headerSize]byte
	if err := d.full(header[:]); err != nil {
		return st, err
	}
	if string(header[:8]) != magic {
		return st, corrupt("not a trakx database (bad magic)")
	}
	if v := binary.BigEndian.Uint32(header[8:]); v != formatVersion {
		return st, corrupt("format version %d, but this trakx reads version %d", v, formatVersion)
	}
	savedAt := binary.BigEndian.Uint64(header[12:])
	st.SavedAt = time.Unix(int64(savedAt), 0)
	nowUnix := uint32(now.Unix())
	cutoff := nowUnix - uint32(ttl/time.Second)

	var (
		records, peers uint64
		raw            = make([]byte, peersPerChunk*peer6Size)
		v4             = make([]swarm.Peer4, 0, peersPerChunk)
		v6             = make([]swarm.Peer6, 0, peersPerChunk)
	)
	for {
		tag, err := d.byte()
		if err != nil {
			return st, err
		}
		if tag == tagEnd {
			var end [endSize - 1]byte
			if err := d.full(end[:]); err != nil {
				return st, err
			}
			if t, p := binary.BigEndian.Uint64(end[:8]), binary.BigEndian.Uint64(end[8:]); t != records || p != peers {
				return st, corrupt("end record counts %d torrents and %d peers, but the file holds %d and %d", t, p, records, peers)
			}
			if d.left != 0 {
				return st, corrupt("%d unexpected bytes after the end record", d.left)
			}
			break
		}
		if tag != tagTorrent {
			return st, corrupt("unknown record type %#x at byte %d", tag, size-trailerSize-d.left-1)
		}
		var hash bittorrent.InfoHash
		if err := d.full(hash[:]); err != nil {
			return st, err
		}
		var counts [5]uint32 // downloaded, IPv4 seeders, IPv4 leechers, IPv6 seeders, IPv6 leechers
		for i := range counts {
			if counts[i], err = d.uvarint(); err != nil {
				return st, err
			}
		}
		downloaded := counts[0]
		s4, l4, s6, l6 := int64(counts[1]), int64(counts[2]), int64(counts[3]), int64(counts[4])
		if (s4+l4)*peer4Size+(s6+l6)*peer6Size > d.left-endSize {
			return st, corrupt("torrent %s claims %d peers, more than the %d bytes left hold", hash, s4+l4+s6+l6, d.left)
		}
		records++
		peers += uint64(s4 + l4 + s6 + l6)
		// Peers go to the store a chunk at a time, each chunk of one kind.
		for _, group := range [4]struct {
			n      int64
			ipv6   bool
			seeder bool
		}{{s4, false, true}, {l4, false, false}, {s6, true, true}, {l6, true, false}} {
			size := int64(peer4Size)
			if group.ipv6 {
				size = peer6Size
			}
			for group.n > 0 {
				c := min(group.n, peersPerChunk)
				group.n -= c
				chunk := raw[:c*size]
				if err := d.full(chunk); err != nil {
					return st, err
				}
				v4, v6 = v4[:0], v6[:0]
				for i := range c {
					b := chunk[i*size:]
					if group.ipv6 {
						p := swarm.Peer6{IP: [16]byte(b[:16]), Seeder: group.seeder}
						decodeTail(b[16:], savedAt, &p.Port, &p.LastSeen, &p.ID)
						v6 = append(v6, p)
					} else {
						p := swarm.Peer4{IP: [4]byte(b[:4]), Seeder: group.seeder}
						decodeTail(b[4:], savedAt, &p.Port, &p.LastSeen, &p.ID)
						v4 = append(v4, p)
					}
				}
				k := store.Restore(&hash, downloaded, v4, v6, cutoff, nowUnix)
				st.Peers += k
				st.Expired += len(v4) + len(v6) - k
			}
		}
	}
	var trailer [trailerSize]byte
	if _, err := io.ReadFull(r, trailer[:]); err != nil {
		return st, truncated(err)
	}
	if got, want := crc.Sum32(), binary.BigEndian.Uint32(trailer[:]); got != want {
		return st, corrupt("checksum mismatch (content %08x, trailer %08x)", got, want)
	}
	st.Torrents = store.Stats().Torrents
	return st, nil
}

func truncated(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return corrupt("truncated")
	}
	return err
}

// decodeTail reads what follows a peer's address.
func decodeTail(b []byte, savedAt uint64, port *uint16, lastSeen *uint32, id *bittorrent.PeerID) {
	*port = binary.BigEndian.Uint16(b)
	age := uint64(b[2])<<16 | uint64(b[3])<<8 | uint64(b[4])
	*lastSeen = uint32(max(savedAt, age) - age)
	*id = bittorrent.PeerID(b[5:25])
}
