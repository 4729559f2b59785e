package database

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/offheap"
	"github.com/trakx/trakx/internal/swarm"
)

var testConfig = swarm.Config{
	AnnounceInterval: 30 * time.Minute,
	MinInterval:      5 * time.Minute,
	PeerTTL:          45 * time.Minute,
	NumWantDefault:   50,
	NumWantMax:       200,
	MaxPeers:         1 << 40,
	MaxTorrents:      1 << 40,
}

func hashOf(n int) bittorrent.InfoHash {
	var h bittorrent.InfoHash
	binary.BigEndian.PutUint64(h[:], uint64(n)*0x9E3779B97F4A7C15)
	binary.BigEndian.PutUint64(h[8:], uint64(n))
	return h
}

// fill announces peers into torrents: torrent t gets 1 + t%size peers,
// alternately seeders and leechers, every other leecher a partial seed
// (BEP 21's paused), every ipv6Every-th one (if not 0) over IPv6.
func fill(s *swarm.Store, torrents, size, ipv6Every int) (peers int) {
	var resp bittorrent.AnnounceResponse
	for t := range torrents {
		h := hashOf(t)
		for p := range 1 + t%size {
			req := bittorrent.AnnounceRequest{InfoHash: h, Port: uint16(1000 + p), Left: uint64(p % 2), NumWant: 0}
			if ipv6Every > 0 && p%ipv6Every == ipv6Every-1 {
				req.Addr = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(t), 15: byte(p)})
			} else {
				req.Addr = netip.AddrFrom4([4]byte{10, byte(t >> 16), byte(t >> 8), byte(t)})
			}
			copy(req.PeerID[:], fmt.Sprintf("-TT0001-%06d%06d", t%1e6, p))
			if p == 1 {
				req.Event = bittorrent.EventCompleted
			}
			if p%4 == 3 {
				req.Event = bittorrent.EventPaused
			}
			s.Announce(&req, &resp)
			peers++
		}
	}
	return peers
}

// partial marks a partial seed in contents' lines.
func partial(is bool) string {
	if is {
		return " partial"
	}
	return ""
}

// contents lists every torrent's state in a comparable form.
func contents(s *swarm.Store) map[bittorrent.InfoHash]string {
	out := map[bittorrent.InfoHash]string{}
	s.Walk(func(t *swarm.Torrent) error {
		var lines []string
		for _, p := range t.Peers4 {
			lines = append(lines, fmt.Sprintf("%v:%d seeder=%v%s seen=%d", p.IP, p.Port, p.Seeder, partial(p.Partial), p.LastSeen))
		}
		for _, p := range t.Peers6 {
			lines = append(lines, fmt.Sprintf("%v:%d seeder=%v%s seen=%d", p.IP, p.Port, p.Seeder, partial(p.Partial), p.LastSeen))
		}
		slices.Sort(lines)
		out[t.Hash] = fmt.Sprintf("downloaded=%d\n%s", t.Downloaded, strings.Join(lines, "\n"))
		return nil
	})
	return out
}

func TestRoundTrip(t *testing.T) {
	s := swarm.New(testConfig)
	peers := fill(s, 500, 30, 5)
	path := filepath.Join(t.TempDir(), "peers.db")
	saved, err := Save(path, s, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if saved.Peers != peers || saved.Torrents != 500 {
		t.Fatalf("saved %+v, want %d peers", saved, peers)
	}
	if fi, _ := os.Stat(path); fi.Size() != saved.Bytes {
		t.Fatalf("file is %d bytes, save said %d", fi.Size(), saved.Bytes)
	}
	loaded, st, err := Load(path, testConfig, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if st.Peers != peers || st.Torrents != 500 || st.Expired != 0 {
		t.Fatalf("loaded %+v", st)
	}
	if want, got := contents(s), contents(loaded); !mapsEqual(want, got) {
		t.Fatal("loaded store differs from the saved one")
	}
	if a, b := s.Stats(), loaded.Stats(); a != b {
		t.Fatalf("stats %+v, loaded %+v", a, b)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
}

func mapsEqual(a, b map[bittorrent.InfoHash]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestLoadDropsExpiredPeers(t *testing.T) {
	s := swarm.New(testConfig)
	peers := fill(s, 100, 5, 5)
	path := filepath.Join(t.TempDir(), "peers.db")
	if _, err := Save(path, s, time.Now()); err != nil {
		t.Fatal(err)
	}
	loaded, st, err := Load(path, testConfig, time.Now().Add(46*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if st.Peers != 0 || st.Expired != peers || loaded.Stats().Torrents != 0 {
		t.Fatalf("after the TTL: %+v %+v", st, loaded.Stats())
	}
}

func TestMissingFile(t *testing.T) {
	_, _, err := Load(filepath.Join(t.TempDir(), "none.db"), testConfig, time.Now())
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestSaveFailureLeavesOldFile(t *testing.T) {
	if _, err := Save(filepath.Join(t.TempDir(), "no-such-dir", "peers.db"), swarm.New(testConfig), time.Now()); err == nil {
		t.Fatal("save into a missing directory succeeded")
	}
}

func savedFile(t testing.TB) []byte {
	s := swarm.New(testConfig)
	fill(s, 20, 6, 3)
	var buf bytes.Buffer
	if _, err := write(&buf, s, time.Now()); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func loadBytes(b []byte) (*swarm.Store, LoadStats, error) {
	s := swarm.New(testConfig)
	st, err := read(bytes.NewReader(b), int64(len(b)), s, testConfig.PeerTTL, time.Now())
	return s, st, err
}

func TestDamagedFiles(t *testing.T) {
	good := savedFile(t)
	if _, _, err := loadBytes(good); err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"empty":        {},
		"garbage":      []byte(strings.Repeat("not a database ", 10)),
		"bad magic":    append([]byte("TRAKXDC\n"), good[8:]...),
		"version 4":    slices.Concat(good[:8], []byte{0, 0, 0, 4}, good[12:]),
		"trailing":     append(slices.Clone(good), 0),
		"huge count":   hugeCount(good),
		"flipped body": flip(good, headerSize+40),
		"flipped crc":  flip(good, len(good)-1),
	}
	want := map[string]string{
		"bad magic": "bad magic", "version 4": "format version 4", "huge count": "claims",
		"flipped crc": "checksum mismatch", "empty": "too short", "garbage": "bad magic",
	}
	// Every truncation must be caught too.
	for n := 0; n < len(good); n += max(1, len(good)/97) {
		cases[fmt.Sprintf("truncated to %d", n)] = good[:n]
	}
	for name, b := range cases {
		_, _, err := loadBytes(b)
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: got %v, want a corruption error", name, err)
		} else if w := want[name]; w != "" && !strings.Contains(err.Error(), w) {
			t.Errorf("%s: %v does not say %q", name, err, w)
		}
	}
}

// hugeCount claims four billion IPv4 seeders in the first torrent.
func hugeCount(good []byte) []byte {
	b := slices.Clone(good)
	copy(b[headerSize+21:], []byte{0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	return b
}

func flip(good []byte, at int) []byte {
	b := slices.Clone(good)
	b[at] ^= 0x40
	return b
}

// TestSaveWhileAnnouncing saves repeatedly while announces pour in; under
// -race it checks the snapshot's locking, and every file must load.
func TestSaveWhileAnnouncing(t *testing.T) {
	s := swarm.New(testConfig)
	fill(s, 200, 10, 5)
	path := filepath.Join(t.TempDir(), "peers.db")
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var resp bittorrent.AnnounceResponse
			for i := 0; !stop.Load() && i < 1_000_000; i++ {
				req := bittorrent.AnnounceRequest{InfoHash: hashOf(rand.IntN(300)), Addr: netip.AddrFrom4([4]byte{192, 0, byte(w), byte(i)}), Port: 7000, Left: uint64(i % 2), NumWant: 5}
				if i%7 == 0 {
					req.Event = bittorrent.EventStopped
				}
				s.Announce(&req, &resp)
			}
		}()
	}
	for range 10 {
		if _, err := Save(path, s, time.Now()); err != nil {
			t.Fatal(err)
		}
		if _, _, err := Load(path, testConfig, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
}

// loadWays loads b each way a load can go: read whole by one goroutine
// or several, or streamed (when memory is short).
func loadWays(t testing.TB, b []byte, fn func(way string, s *swarm.Store, st LoadStats, err error)) {
	for _, way := range []string{"whole", "parallel", "stream"} {
		func() {
			defer func(w func(int64) int) { workers, forceStream = w, false }(workers)
			switch way {
			case "whole":
				workers = func(int64) int { return 1 }
			case "parallel":
				workers = func(int64) int { return 3 }
			case "stream":
				forceStream = true
			}
			s, st, err := loadBytes(b)
			fn(way, s, st, err)
			s.Close()
		}()
	}
}

func FuzzLoad(f *testing.F) {
	good := savedFile(f)
	f.Add(good)
	f.Add(good[:headerSize+30])
	f.Add(hugeCount(good))
	f.Fuzz(func(t *testing.T, b []byte) {
		var first string
		var firstErr error
		var firstStats LoadStats
		var firstContents map[bittorrent.InfoHash]string
		loadWays(t, b, func(way string, s *swarm.Store, st LoadStats, err error) {
			if err != nil && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%s: error that is not a corruption: %v", way, err)
			}
			if err == nil {
				if got := s.Stats(); got.Peers() != st.Peers || got.Torrents != st.Torrents {
					t.Fatalf("%s: load says %+v, store has %+v", way, st, got)
				}
			}
			// Every way finds the same fault, or loads the same store.
			if first == "" {
				first, firstErr, firstStats = way, err, st
				if err == nil {
					firstContents = contents(s)
				}
				return
			}
			if fmt.Sprint(err) != fmt.Sprint(firstErr) {
				t.Fatalf("%s: %v, but %s: %v", way, err, first, firstErr)
			}
			if err == nil && (st != firstStats || !mapsEqual(contents(s), firstContents)) {
				t.Fatalf("%s loaded %+v, %s %+v, or other peers", way, st, first, firstStats)
			}
		})
	})
}

// TestLoadWays: a file of many torrents, big swarms and small, both
// families, some peers expired, loads the same store every way.
func TestLoadWays(t *testing.T) {
	s := swarm.New(testConfig)
	defer s.Close()
	fill(s, 3000, 40, 4)
	now := time.Now()
	big := swarm.Torrent{Hash: hashOf(1 << 30)}
	for i := range 5000 { // past a chunk, with an index
		big.Peers4 = append(big.Peers4, swarm.SnapshotPeer4{IP: [4]byte{198, 51, byte(i >> 8), byte(i)}, Port: 6881, Seeder: i%3 == 0, LastSeen: uint32(now.Unix()) - uint32(i%2)*3600})
	}
	if _, err := s.Restore(&big, 0, uint32(now.Unix())); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := write(&buf, s, now); err != nil {
		t.Fatal(err)
	}
	// Peers seen an hour before the save expire at the load (a 45-minute
	// TTL).
	b := buf.Bytes()
	want := -1
	loadWays(t, b, func(way string, loaded *swarm.Store, st LoadStats, err error) {
		if err != nil {
			t.Fatalf("%s: %v", way, err)
		}
		if st.Expired != 2500 || st.Peers+st.Expired != s.Stats().Peers() {
			t.Fatalf("%s: loaded %+v of %+v", way, st, s.Stats())
		}
		if want < 0 {
			want = st.Peers
		}
		if st.Peers != want {
			t.Fatalf("%s: %d peers, another way %d", way, st.Peers, want)
		}
	})
}

// TestLoadsVersion1 loads a file written by the version before peer ids
// were dropped (testdata/v1.db: three torrents, nine peers, each torrent
// with one completed download, every peer seen at the save). The store
// keeps time by the clock, so the test moves the save to a minute ago,
// mending the checksum.
func TestLoadsVersion1(t *testing.T) {
	v1, err := os.ReadFile("testdata/v1.db")
	if err != nil {
		t.Fatal(err)
	}
	savedAt := time.Unix(time.Now().Unix()-60, 0)
	binary.BigEndian.PutUint64(v1[12:], uint64(savedAt.Unix()))
	binary.BigEndian.PutUint32(v1[len(v1)-4:], crc32.Checksum(v1[:len(v1)-4], castagnoli))
	path := filepath.Join(t.TempDir(), "v1.db")
	os.WriteFile(path, v1, 0o644)
	s, st, err := Load(path, testConfig, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if st.Torrents != 3 || st.Peers != 9 || st.Expired != 0 || !st.SavedAt.Equal(savedAt) {
		t.Fatalf("loaded %+v", st)
	}
	// Every peer was seen at the save, so a minute before the load.
	loadedAt := time.Now()
	s.Walk(func(tr *swarm.Torrent) error {
		for _, p := range tr.Peers4 {
			if a := loadedAt.Unix() - int64(p.LastSeen); a < 60 || a > 62 {
				t.Errorf("%v seen %d s before the load", p, a)
			}
		}
		return nil
	})
	got := contents(s)
	seen := got[hashOf(0)][strings.LastIndex(got[hashOf(0)], "seen=")+5:]
	want := map[bittorrent.InfoHash]string{
		hashOf(0): "downloaded=1\n[203 0 113 0]:6881 seeder=true seen=S\n[203 0 113 1]:6882 seeder=false seen=S",
		hashOf(1): "downloaded=1\n[203 0 113 10]:6881 seeder=true seen=S\n[203 0 113 11]:6882 seeder=false seen=S\n" +
			"[32 1 13 184 0 0 0 0 0 0 0 0 0 0 0 1]:6883 seeder=true seen=S",
		hashOf(2): "downloaded=1\n[203 0 113 20]:6881 seeder=true seen=S\n[203 0 113 21]:6882 seeder=false seen=S\n" +
			"[203 0 113 23]:6884 seeder=false seen=S\n[32 1 13 184 0 0 0 0 0 0 0 0 0 0 0 2]:6883 seeder=true seen=S",
	}
	for h, w := range want {
		want[h] = strings.ReplaceAll(w, "seen=S", "seen="+seen)
	}
	if !mapsEqual(got, want) {
		t.Fatalf("loaded\n%v\nwant\n%v", got, want)
	}
	// Saved again, it is a file of the current version of the same peers.
	var buf bytes.Buffer
	if _, err := write(&buf, s, time.Now()); err != nil {
		t.Fatal(err)
	}
	if v := binary.BigEndian.Uint32(buf.Bytes()[8:]); v != formatVersion {
		t.Fatalf("saved as version %d", v)
	}
	again := swarm.New(testConfig)
	if _, err := read(bytes.NewReader(buf.Bytes()), int64(buf.Len()), again, testConfig.PeerTTL, time.Now()); err != nil {
		t.Fatal(err)
	}
	if !mapsEqual(contents(again), want) {
		t.Fatalf("saved again and loaded: %v", contents(again))
	}
}

// TestLoadsVersion2 loads a file written by the version before partial
// seeds (testdata/v2.db, written by commit 9f6134c's Save: two torrents,
// five peers, one of them announced paused, which that version counted
// as a plain leecher). Its leechers load as downloaders: no partial seeds.
func TestLoadsVersion2(t *testing.T) {
	v2, err := os.ReadFile("testdata/v2.db")
	if err != nil {
		t.Fatal(err)
	}
	if v := binary.BigEndian.Uint32(v2[8:]); v != 2 {
		t.Fatalf("testdata/v2.db is of version %d", v)
	}
	binary.BigEndian.PutUint64(v2[12:], uint64(time.Now().Unix()-60))
	binary.BigEndian.PutUint32(v2[len(v2)-4:], crc32.Checksum(v2[:len(v2)-4], castagnoli))
	loadWays(t, v2, func(way string, s *swarm.Store, st LoadStats, err error) {
		if err != nil {
			t.Fatalf("%s: %v", way, err)
		}
		if st.Torrents != 2 || st.Peers != 5 || st.Expired != 0 {
			t.Fatalf("%s: loaded %+v", way, st)
		}
		got := contents(s)
		seen := got[hashOf(0)][strings.LastIndex(got[hashOf(0)], "seen=")+5:]
		want := map[bittorrent.InfoHash]string{
			hashOf(0): "downloaded=1\n[203 0 113 0]:6881 seeder=true seen=S\n[203 0 113 1]:6882 seeder=false seen=S",
			hashOf(1): "downloaded=0\n[203 0 113 11]:6884 seeder=false seen=S\n[203 0 113 12]:6885 seeder=false seen=S\n" +
				"[32 1 13 184 0 0 0 0 0 0 0 0 0 0 0 1]:6883 seeder=true seen=S",
		}
		for h, w := range want {
			want[h] = strings.ReplaceAll(w, "seen=S", "seen="+seen)
		}
		if !mapsEqual(got, want) {
			t.Fatalf("%s: loaded\n%v\nwant\n%v", way, got, want)
		}
		h := hashOf(1)
		if sc, _ := s.Scrape(&h); sc != (bittorrent.ScrapeStats{Complete: 1, Incomplete: 2, Downloaders: 2}) {
			t.Fatalf("%s: scrape %+v", way, sc)
		}
	})
}

// TestPartialSeedsRoundTrip: partial seeds are saved as such, and load
// as such, every way; the file says how many of each kind a torrent has.
func TestPartialSeedsRoundTrip(t *testing.T) {
	s := swarm.New(testConfig)
	defer s.Close()
	fill(s, 200, 12, 3)
	h := hashOf(11) // 12 peers: 6 seeders, 3 partial seeds, 3 downloaders, every third over IPv6
	want, _ := s.Scrape(&h)
	if want.Complete != 6 || want.Incomplete != 6 || want.Downloaders != 3 {
		t.Fatalf("filled: scrape %+v", want)
	}
	var buf bytes.Buffer
	if _, err := write(&buf, s, time.Now()); err != nil {
		t.Fatal(err)
	}
	loadWays(t, buf.Bytes(), func(way string, loaded *swarm.Store, st LoadStats, err error) {
		if err != nil {
			t.Fatalf("%s: %v", way, err)
		}
		if got, _ := loaded.Scrape(&h); got != want {
			t.Fatalf("%s: scrape %+v, saved %+v", way, got, want)
		}
		if !mapsEqual(contents(s), contents(loaded)) {
			t.Fatalf("%s: loaded store differs from the saved one", way)
		}
	})
}

// TestLoadKeepsWhatFits: a load whose store the kernel will not let grow
// past a size keeps the peers that fit, counts the rest, and is no error.
func TestLoadKeepsWhatFits(t *testing.T) {
	s := swarm.New(testConfig)
	peers := fill(s, 400, 400, 5) // swarms of 1 to 400 peers
	path := filepath.Join(t.TempDir(), "peers.db")
	if _, err := Save(path, s, time.Now()); err != nil {
		t.Fatal(err)
	}
	// Room for small swarms, not for big ones; in the first case, room
	// to read the file whole too, and in the second not (the load then
	// reads it as it goes).
	for _, fail := range []func(int) bool{
		func(bytes int) bool { return bytes > 4<<10 && bytes < 200<<10 },
		func(bytes int) bool { return bytes > 4<<10 },
	} {
		undo := offheap.InjectFaults(fail)
		loaded, st, err := Load(path, testConfig, time.Now())
		undo()
		if err != nil {
			t.Fatal(err)
		}
		if st.Peers == 0 || st.NoMemory == 0 || st.Peers+st.NoMemory != peers || st.Expired != 0 {
			t.Fatalf("loaded %+v of %d peers", st, peers)
		}
		if got := loaded.Stats(); got.Peers() != st.Peers || got.Torrents != st.Torrents {
			t.Fatalf("the store holds %+v, the load says %+v", got, st)
		}
		loaded.Close()
	}
}
