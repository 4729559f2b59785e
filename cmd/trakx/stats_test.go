package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
	tt "github.com/trakx/trakx/internal/trackertest"
	"golang.org/x/sys/unix"
)

// startWithStats runs the binary with a stats listener and returns it and
// the listener's address.
func startWithStats(t *testing.T) (*tracker, string) {
	t.Helper()
	cfg := writeConfig(t, `
[udp]
listen = ["127.0.0.1:0", "[::1]:0"]
[http]
listen = []
[stats]
listen = "127.0.0.1:0"
[database]
path = "`+t.TempDir()+`/peers.db"
save_interval = "0"
`)
	tr := follow(t, exec.Command(binary, "run", "-config", cfg))
	var stats string
	statsRE := regexp.MustCompile(`stats http://(\S+?)/debug/vars`)
	udp := regexp.MustCompile(`udp (127\.0\.0\.1:\d+)`)
	tr.waitLog(" serving ", func(line string) {
		if m := statsRE.FindStringSubmatch(line); m != nil {
			stats = m[1]
		}
		if m := udp.FindStringSubmatch(line); m != nil {
			tr.udpAddr = m[1]
		}
	})
	return tr, stats
}

// TestStatsCommand: figures next to their words, agreeing with what was
// sent; the address from -addr or from a configuration file.
func TestStatsCommand(t *testing.T) {
	tr, stats := startWithStats(t)
	c := tt.DialUDP(t, tr.udpAddr)
	c.Connect()
	for p := range 3 {
		c.Announce(&bittorrent.AnnounceRequest{InfoHash: tt.Hash("stats-cmd"), Port: uint16(10 + p), Left: uint64(p), NumWant: -1})
	}
	cfg := writeConfig(t, "[stats]\nlisten = \""+stats+"\"\n")
	for _, args := range [][]string{{"stats", "-addr", stats, "-interval", "100ms"}, {"stats", "-config", cfg, "-interval", "100ms"}} {
		out, stderr, code := runBinary(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
		for _, want := range []string{"trakx " + testVersion + " at " + stats, "peers: 3 (seeders 1, leechers 2; ipv4 3, ipv6 0)",
			"torrents: 1", "requests: udp 0/s, http 0/s, websocket 0/s (over 100ms)", "refused: 0/s (since start: rate 0, host 0",
			"udp receive drops: 0", "last save: none yet"} {
			if !strings.Contains(out, want) {
				t.Errorf("%v: no %q in:\n%s", args, want, out)
			}
		}
	}
	tr.stop()
}

func TestStatsAgainstNothing(t *testing.T) {
	_, stderr, code := runBinary(t, "stats", "-addr", "127.0.0.1:1")
	if code == 0 || !strings.Contains(stderr, "nothing answers at 127.0.0.1:1") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	cfg := writeConfig(t, "[stats]\nlisten = \"\"\n")
	if _, stderr, code := runBinary(t, "stats", "-config", cfg); code == 0 || !strings.Contains(stderr, "stats.listen") {
		t.Fatalf("stats listener off: exit %d, stderr %q", code, stderr)
	}
}

// openPTY opens a pseudo-terminal pair: the side a program reads and
// writes as its terminal, and the side that plays the person at it.
func openPTY(t *testing.T) (controller, terminal *os.File) {
	t.Helper()
	controller, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		tt.Unavailable(t, "a pseudo-terminal (/dev/ptmx: devpts mounted)", err)
	}
	if err := unix.IoctlSetPointerInt(int(controller.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(controller.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	terminal, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { controller.Close(); terminal.Close() })
	return controller, terminal
}

// TestStatsWatchOnATerminal: -watch redraws in place on a terminal, and
// Ctrl-C, typed at it, ends it at once with status 0.
func TestStatsWatchOnATerminal(t *testing.T) {
	tr, stats := startWithStats(t)
	controller, terminal := openPTY(t)
	cmd := exec.Command(binary, "stats", "-addr", stats, "-watch", "-interval", "100ms")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = terminal, terminal, terminal
	// Its own session, with the terminal as the controlling one: Ctrl-C
	// reaches it as it would at a shell.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	screen := make(chan []byte, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := controller.Read(buf)
			if err != nil {
				close(screen)
				return
			}
			screen <- bytes.Clone(buf[:n])
		}
	}()
	var seen []byte
	deadline := time.After(10 * time.Second)
	for bytes.Count(seen, []byte("\x1b[H\x1b[2J")) < 3 || !bytes.Contains(seen[bytes.LastIndex(seen, []byte("\x1b[2J")):], []byte("last save:")) {
		select {
		case b, ok := <-screen:
			if !ok {
				t.Fatalf("the terminal closed: %q", seen)
			}
			seen = append(seen, b...)
		case <-deadline:
			t.Fatalf("no three redraws within 10s: %q", seen)
		}
	}
	if !bytes.Contains(seen, []byte("peers: 0 (seeders 0")) {
		t.Fatalf("screen %q", seen)
	}
	typed := time.Now()
	controller.Write([]byte{0x03}) // Ctrl-C
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("after Ctrl-C: %v", err)
		}
		t.Logf("exited %v after Ctrl-C", time.Since(typed).Round(time.Millisecond))
	case <-time.After(2 * time.Second):
		cmd.Process.Kill()
		t.Fatal("still running 2s after Ctrl-C")
	}
	go io.Copy(io.Discard, controller)
	tr.stop()
}
