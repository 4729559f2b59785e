package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/trakx/trakx/internal/bittorrent"
	tt "github.com/trakx/trakx/internal/trackertest"
)

// TestAddressSpaceLimit runs the binary under a real kernel limit on its
// address space (RLIMIT_AS, as prlimit or systemd's LimitAS= set it) and
// fills it with peers past that limit. The store's mappings are refused
// there, and the store and the Go runtime draw on one budget: the tracker
// must refuse newcomers ("tracker is full: out of memory") and warn of it,
// go on answering, and still save everything on SIGTERM, rather than die
// in the runtime (fatal error: cannot allocate memory) with nothing saved.
func TestAddressSpaceLimit(t *testing.T) {
	dir := t.TempDir()
	tr := startTracker(t, dir)
	pid := tr.cmd.Process.Pid
	fill := func(peers, torrents, seed int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		out, _ := exec.CommandContext(ctx, binary, "bench", "-target", tr.udpAddr, "-fill", strconv.Itoa(peers),
			"-torrents", strconv.Itoa(torrents), "-seed", strconv.Itoa(seed)).CombinedOutput()
		if ctx.Err() != nil {
			t.Fatalf("the fill did not end: %s", out)
		}
	}
	fill(200_000, 16, 1) // the store has grown
	vm := vmSizeKB(t, pid)
	// 8 MiB more than now for the store, beyond the 192 MiB it leaves to
	// the Go runtime.
	limit := uint64(vm+(192+8)<<10) << 10
	if err := unix.Prlimit(pid, unix.RLIMIT_AS, &unix.Rlimit{Cur: limit, Max: limit}, nil); err != nil {
		t.Skipf("cannot limit the tracker's address space here: %v", err)
	}
	fill(600_000, 40, 2) // 8 MiB hold half a million IPv4 peers at most (8 bytes and, in big swarms, 8 of index)
	tr.waitLog("out of memory:", nil)

	c := tt.DialUDP(t, tr.udpAddr)
	c.Connect()
	req := &bittorrent.AnnounceRequest{InfoHash: tt.Hash("one more"), Port: 6881, Left: 1, NumWant: -1}
	if _, err := c.Announce(req); err == nil || !strings.Contains(err.Error(), "tracker is full") {
		t.Logf("a new torrent past the limit: %v (it may fit in a table's spare room)", err)
	}
	if _, err := c.Scrape(tt.Hash("one more")); err != nil {
		t.Fatalf("the tracker no longer answers: %v", err)
	}
	tr.stop()
	saved := regexp.MustCompile(`saved (\d+) peers`).FindStringSubmatch(tr.log.String())
	if saved == nil {
		t.Fatalf("no save at the stop:\n%s", tr.log.String())
	}
	if n, _ := strconv.Atoi(saved[1]); n < 200_000 {
		t.Fatalf("saved %d peers, fewer than were held before the limit", n)
	}
	t.Logf("limited at %d MiB; %s peers saved", limit>>20, saved[1])
}

func vmSizeKB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	m := regexp.MustCompile(`VmSize:\s+(\d+) kB`).FindSubmatch(b)
	if m == nil {
		t.Fatal("no VmSize in /proc/PID/status")
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}
