// Package access decides which torrents the tracker serves: all, only those
// listed (allow), or all but those listed (deny); and which clients it
// serves, by the prefix of their peer ids (Clients). Gate applies both in
// front of a tracker.
package access

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	"github.com/trakx/trakx/internal/bittorrent"
)

// Mode is how the list is applied.
type Mode string

const (
	Off   Mode = "off"
	Allow Mode = "allow"
	Deny  Mode = "deny"
)

// maxLineLength bounds what a line of the file may hold.
const maxLineLength = 4096

// List is an access policy: a mode and a set of info hashes.
type List struct {
	mode   Mode
	hashes map[bittorrent.InfoHash]struct{}
}

// Open is the policy that serves every torrent.
var Open = &List{mode: Off}

// Allowed reports whether the torrent may be tracked.
func (l *List) Allowed(h *bittorrent.InfoHash) bool {
	if l.mode == Off {
		return true
	}
	_, listed := l.hashes[*h]
	return listed == (l.mode == Allow)
}

// Len is how many hashes are listed.
func (l *List) Len() int { return len(l.hashes) }

// Mode is the list's mode.
func (l *List) Mode() Mode { return l.mode }

// Load reads the file at path for the given mode; mode off reads nothing.
func Load(mode Mode, path string) (*List, error) {
	if mode == Off {
		return Open, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("access.file: %w", err)
	}
	defer f.Close()
	l, err := parse(f, path)
	if err != nil {
		return nil, err
	}
	l.mode = mode
	return l, nil
}

// parse reads hex info hashes, one per line; '#' starts a comment and
// blank lines are skipped. Errors name the file and line.
func parse(f *os.File, path string) (*List, error) {
	l := &List{hashes: map[bittorrent.InfoHash]struct{}{}}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, maxLineLength), maxLineLength)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		h, err := ParseHash(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, n, err)
		}
		l.hashes[h] = struct{}{}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return l, nil
}

// ParseHash reads an info hash written as 40 hex digits.
func ParseHash(s string) (bittorrent.InfoHash, error) {
	var h bittorrent.InfoHash
	if len(s) != 40 {
		return h, fmt.Errorf("%q is not an info hash (40 hex digits)", s)
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("%q is not an info hash (40 hex digits)", s)
	}
	return h, nil
}
