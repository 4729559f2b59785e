package access

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trakx/trakx/internal/bittorrent"
)

const (
	hashA = "0123456789abcdef0123456789abcdef01234567"
	hashB = "89ABCDEF0123456789ABCDEF0123456789ABCDEF"
)

func write(t *testing.T, text string) string {
	path := filepath.Join(t.TempDir(), "access.txt")
	os.WriteFile(path, []byte(text), 0o644)
	return path
}

func TestModes(t *testing.T) {
	path := write(t, "# torrents\n"+hashA+"  # the first\n\n   "+hashB+"\n")
	a, _ := ParseHash(hashA)
	b, _ := ParseHash(strings.ToLower(hashB))
	other := bittorrent.InfoHash{1}
	allow, err := Load(Allow, path)
	if err != nil {
		t.Fatal(err)
	}
	if allow.Len() != 2 || !allow.Allowed(&a) || !allow.Allowed(&b) || allow.Allowed(&other) {
		t.Fatal("allow list wrong")
	}
	deny, _ := Load(Deny, path)
	if deny.Allowed(&a) || deny.Allowed(&b) || !deny.Allowed(&other) {
		t.Fatal("deny list wrong")
	}
	off, err := Load(Off, "/nonexistent")
	if err != nil || !off.Allowed(&a) {
		t.Fatal("off refuses")
	}
}

func TestErrorsNameFileAndLine(t *testing.T) {
	path := write(t, hashA+"\nnot-a-hash\n")
	if _, err := Load(Allow, path); err == nil || !strings.Contains(err.Error(), path+":2:") {
		t.Fatalf("%v", err)
	}
	if _, err := Load(Deny, filepath.Join(t.TempDir(), "missing")); err == nil || !strings.Contains(err.Error(), "access.file") {
		t.Fatalf("%v", err)
	}
	if _, err := Load(Allow, write(t, strings.Repeat("a", 5000))); err == nil {
		t.Fatal("overlong line accepted")
	}
}

type nullTracker struct{}

func (nullTracker) Announce(*bittorrent.AnnounceRequest, *bittorrent.AnnounceResponse) error {
	return nil
}
func (nullTracker) Scrape(*bittorrent.InfoHash) (bittorrent.ScrapeStats, error) {
	return bittorrent.ScrapeStats{Complete: 1}, nil
}

func TestGate(t *testing.T) {
	a, _ := ParseHash(hashA)
	list, _ := Load(Allow, write(t, hashA))
	g := NewGate(nullTracker{}, list)
	other := bittorrent.InfoHash{2}
	if g.Announce(&bittorrent.AnnounceRequest{InfoHash: a}, nil) != nil {
		t.Fatal("listed torrent refused")
	}
	if g.Announce(&bittorrent.AnnounceRequest{InfoHash: other}, nil) != bittorrent.ErrNotAllowed {
		t.Fatal("unlisted torrent announced")
	}
	if _, err := g.Scrape(&other); err != bittorrent.ErrNotAllowed {
		t.Fatal("unlisted torrent scraped")
	}
	g.SetList(Open)
	if _, err := g.Scrape(&other); err != nil {
		t.Fatal("open list refuses")
	}
}

func FuzzLoad(f *testing.F) {
	f.Add(hashA + "\n# c\n" + hashB)
	f.Add("zz")
	f.Fuzz(func(t *testing.T, text string) {
		path := filepath.Join(t.TempDir(), "a.txt")
		os.WriteFile(path, []byte(text), 0o644)
		l, err := Load(Deny, path)
		if err == nil && l.Len() > strings.Count(text, "\n")+1 {
			t.Fatalf("%d hashes from %d lines", l.Len(), strings.Count(text, "\n")+1)
		}
	})
}
