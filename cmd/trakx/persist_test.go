package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/trakx/trakx/internal/bittorrent"
	tt "github.com/trakx/trakx/internal/trackertest"
)

// swarmView is what clients can see of a set of torrents: scrape figures,
// and the peers a fresh leecher is sent.
func swarmView(t *testing.T, udpAddr string, hashes []bittorrent.InfoHash) string {
	c := tt.DialUDP(t, udpAddr)
	c.Connect()
	st, err := c.Scrape(hashes...)
	if err != nil {
		t.Fatal(err)
	}
	var view []string
	for i, h := range hashes {
		// Port 1 is never announced by the peers below, so the observer
		// sees every one of them; it stops again so as not to count itself.
		req := &bittorrent.AnnounceRequest{InfoHash: h, Port: 1, Left: 1, NumWant: 200}
		resp, err := c.Announce(req)
		if err != nil {
			t.Fatal(err)
		}
		var peers []string
		for _, p := range resp.Peers4 {
			peers = append(peers, fmt.Sprintf("%v:%d", p.IP, p.Port))
		}
		slices.Sort(peers)
		view = append(view, fmt.Sprintf("%x %+v %v", h[:4], st[i], peers))
		req.Event = bittorrent.EventStopped
		c.Announce(req)
	}
	return strings.Join(view, "\n")
}

// TestRestartKeepsSwarms: peers announced before a SIGTERM are there after
// a restart, with the same scrape figures.
func TestRestartKeepsSwarms(t *testing.T) {
	dir := t.TempDir()
	tr := startTracker(t, dir)
	if !strings.Contains(tr.log.String(), "no database at "+dir+"/peers.db yet") {
		t.Fatalf("first start did not say it starts empty:\n%s", tr.log.String())
	}
	var hashes []bittorrent.InfoHash
	c := tt.DialUDP(t, tr.udpAddr)
	c.Connect()
	for i := range 5 {
		h := tt.Hash(fmt.Sprintf("restart-%d", i))
		hashes = append(hashes, h)
		for p := range 3 + i {
			req := &bittorrent.AnnounceRequest{InfoHash: h, Port: uint16(2000 + p), Left: uint64(p % 2), NumWant: -1}
			if p == 2 {
				req.Event = bittorrent.EventCompleted
			}
			if _, err := c.Announce(req); err != nil {
				t.Fatal(err)
			}
		}
	}
	before := swarmView(t, tr.udpAddr, hashes)
	tr.stop()
	if _, err := os.Stat(filepath.Join(dir, "peers.db")); err != nil {
		t.Fatalf("no database after SIGTERM: %v", err)
	}

	tr = startTracker(t, dir)
	if !strings.Contains(tr.log.String(), "loaded 25 peers in 5 torrents") {
		t.Fatalf("restart log:\n%s", tr.log.String())
	}
	if after := swarmView(t, tr.udpAddr, hashes); after != before {
		t.Fatalf("swarms changed across a restart:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	tr.stop()
}

func TestSIGUSR1Saves(t *testing.T) {
	dir := t.TempDir()
	tr := startTracker(t, dir)
	c := tt.DialUDP(t, tr.udpAddr)
	c.Connect()
	c.Announce(&bittorrent.AnnounceRequest{InfoHash: tt.Hash("usr1"), Port: 5, NumWant: -1})
	tr.cmd.Process.Signal(syscall.SIGUSR1)
	line := tr.waitLog("saved ", nil)
	if !strings.Contains(line, "saved 1 peers in 1 torrents to "+dir+"/peers.db") {
		t.Fatalf("save line %q", line)
	}
	if _, err := os.Stat(filepath.Join(dir, "peers.db")); err != nil {
		t.Fatal(err)
	}
	tr.stop()
}

// TestDamagedDatabaseIsMovedAside: the tracker says what is wrong in one
// line naming the file, keeps the file under another name, and serves.
func TestDamagedDatabaseIsMovedAside(t *testing.T) {
	// A valid file to damage, made by the tracker itself.
	src := t.TempDir()
	tr := startTracker(t, src)
	c := tt.DialUDP(t, tr.udpAddr)
	c.Connect()
	c.Announce(&bittorrent.AnnounceRequest{InfoHash: tt.Hash("damaged"), Port: 5, NumWant: -1})
	tr.stop()
	good, err := os.ReadFile(filepath.Join(src, "peers.db"))
	if err != nil {
		t.Fatal(err)
	}
	flipped := slices.Clone(good)
	flipped[len(flipped)/2] ^= 1
	for name, c := range map[string]struct {
		content []byte
		says    string
	}{
		"garbage":   {[]byte("this is not a database at all, not even close"), "bad magic"},
		"truncated": {good[:len(good)-7], "truncated"},
		"flipped":   {flipped, "checksum mismatch"},
		"version":   {append([]byte("TRAKXDB\n\x00\x00\x00\x09"), good[12:]...), "format version 9"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "peers.db")
			os.WriteFile(path, c.content, 0o644)
			tr := startTracker(t, dir)
			var complaint string
			for _, line := range strings.Split(tr.log.String(), "\n") {
				if strings.Contains(line, "cannot load database") {
					complaint = line
				}
			}
			if !strings.Contains(complaint, path) || !strings.Contains(complaint, c.says) || !strings.Contains(complaint, "level=error") {
				t.Fatalf("complaint %q should name %s and say %q", complaint, path, c.says)
			}
			aside, _ := filepath.Glob(path + ".corrupt-*")
			if len(aside) != 1 {
				t.Fatalf("moved-aside files: %v", aside)
			}
			if kept, _ := os.ReadFile(aside[0]); string(kept) != string(c.content) {
				t.Fatal("the damaged file was not kept as it was")
			}
			cl := tt.DialUDP(t, tr.udpAddr)
			cl.Connect()
			if st, err := cl.Scrape(tt.Hash("damaged")); err != nil || st[0].Complete+st[0].Incomplete != 0 {
				t.Fatalf("started from a damaged file with %+v %v", st, err)
			}
			tr.stop()
		})
	}
}
