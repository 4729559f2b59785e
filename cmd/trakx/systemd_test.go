package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	gows "github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/trakx/trakx/internal/bittorrent"
	tt "github.com/trakx/trakx/internal/trackertest"
)

// notifySocket listens where the tracker sends sd_notify messages.
type notifySocket struct {
	t    *testing.T
	conn *net.UnixConn
	path string
	seen []string
}

func listenNotify(t *testing.T) *notifySocket {
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &notifySocket{t: t, conn: conn, path: path}
}

// waitFor reads messages until one contains every line in want, for at
// most ten seconds, and returns it.
func (n *notifySocket) waitFor(want ...string) string {
	n.t.Helper()
	buf := make([]byte, 4096)
	n.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		k, err := n.conn.Read(buf)
		if err != nil {
			n.t.Fatalf("no notify message with %q (got %q): %v", want, n.seen, err)
		}
		msg := string(buf[:k])
		n.seen = append(n.seen, msg)
		lines := strings.Split(msg, "\n")
		all := true
		for _, w := range want {
			found := false
			for _, l := range lines {
				found = found || strings.HasPrefix(l, w)
			}
			all = all && found
		}
		if all {
			return msg
		}
	}
}

// startWithEnv runs the binary with extra environment and inherited files,
// through sh so that LISTEN_PID can be the tracker's own pid.
func startWithEnv(t *testing.T, cfg string, env []string, files []*os.File) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command("sh", "-c", `LISTEN_PID=$$ exec "$0" run -config "$1"`, binary, cfg)
	cmd.Env = append(os.Environ(), env...)
	cmd.ExtraFiles = files
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, bufio.NewScanner(stderr)
}

func minimalConfig(t *testing.T, extra string) string {
	return writeConfig(t, `
[udp]
listen = ["127.0.0.1:0"]
[http]
listen = ["127.0.0.1:0"]
[stats]
listen = ""
[database]
path = "`+t.TempDir()+`/peers.db"
`+extra)
}

// TestSocketActivation hands the tracker a UDP and a TCP socket, as systemd
// does, and announces through both. The config's own listeners must not be
// bound.
func TestSocketActivation(t *testing.T) {
	udpConn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Fatal(err)
	}
	tcpLn, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	udpFile, _ := udpConn.File()
	tcpFile, _ := tcpLn.File()
	udpAddr, tcpAddr := udpConn.LocalAddr().String(), tcpLn.Addr().String()
	udpConn.Close()
	tcpLn.Close()

	// The configured port is taken by this test: binding it would fail.
	blocker, _ := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	defer blocker.Close()
	cfg := writeConfig(t, `
[udp]
listen = ["`+blocker.LocalAddr().String()+`"]
[stats]
listen = ""
[database]
path = "`+t.TempDir()+`/peers.db"
`)
	_, lines := startWithEnv(t, cfg, []string{"LISTEN_FDS=2", "LISTEN_FDNAMES=trakx.socket:trakx.socket"}, []*os.File{udpFile, tcpFile})
	udpFile.Close()
	tcpFile.Close()
	serving := ""
	for lines.Scan() {
		if strings.Contains(lines.Text(), " serving ") {
			serving = lines.Text()
			break
		}
	}
	if !strings.Contains(serving, "udp "+udpAddr+" (inherited)") || !strings.Contains(serving, "http "+tcpAddr+" (inherited)") {
		t.Fatalf("start-up line %q", serving)
	}
	c := tt.DialUDP(t, udpAddr)
	c.Connect()
	hash := tt.Hash("activation")
	if _, err := c.Announce(&bittorrent.AnnounceRequest{InfoHash: hash, Port: 7, NumWant: -1}); err != nil {
		t.Fatal(err)
	}
	status, r := getBencoded(t, "http://"+tcpAddr+"/scrape?info_hash="+url.QueryEscape(string(hash[:])))
	files, _ := r["files"].(map[string]any)
	if status != 200 || files[string(hash[:])].(map[string]any)["complete"] != int64(1) {
		t.Fatalf("scrape over the inherited TCP socket: %d %v", status, r)
	}
	// WebTorrent clients get their WebSocket on the inherited socket too.
	ws, _, _, err := gows.Dial(context.Background(), "ws://"+tcpAddr+"/announce")
	if err != nil {
		t.Fatalf("WebSocket upgrade on the inherited TCP socket: %v", err)
	}
	defer ws.Close()
	wsutil.WriteClientText(ws, []byte(`{"action":"scrape","info_hash":[]}`))
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if reply, err := wsutil.ReadServerText(ws); err != nil || !strings.Contains(string(reply), `"action":"scrape"`) {
		t.Fatalf("WebSocket scrape over the inherited socket: %q %v", reply, err)
	}
}

// TestSocketActivationRejectsOtherSockets: a unix socket is not something
// trakx can serve, and it says so.
func TestSocketActivationRejectsOtherSockets(t *testing.T) {
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(t.TempDir(), "s"), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	f, _ := ln.File()
	ln.Close()
	cmd, lines := startWithEnv(t, minimalConfig(t, ""), []string{"LISTEN_FDS=1", "LISTEN_FDNAMES=odd.socket"}, []*os.File{f})
	var all []string
	for lines.Scan() {
		all = append(all, lines.Text())
	}
	err = cmd.Wait()
	if err == nil || len(all) != 1 || !strings.Contains(all[0], "odd.socket is not an IP socket") {
		t.Fatalf("exit %v, log %q", err, all)
	}
}

// TestNotify follows the sd_notify conversation through start, status,
// reload, watchdog and stop.
func TestNotify(t *testing.T) {
	n := listenNotify(t)
	cfgPath := minimalConfig(t, "")
	cmd, lines := startWithEnv(t, cfgPath, []string{"NOTIFY_SOCKET=" + n.path, "WATCHDOG_USEC=400000"}, nil)
	go func() {
		for lines.Scan() {
		}
	}()
	ready := n.waitFor("READY=1", "STATUS=")
	if !regexp.MustCompile(`STATUS=0 peers in 0 torrents`).MatchString(ready) {
		t.Fatalf("ready message %q", ready)
	}
	n.waitFor("WATCHDOG=1")
	n.waitFor("WATCHDOG=1")

	cmd.Process.Signal(syscall.SIGHUP)
	reloading := n.waitFor("RELOADING=1", "MONOTONIC_USEC=")
	if !regexp.MustCompile(`MONOTONIC_USEC=\d+`).MatchString(reloading) {
		t.Fatalf("reloading message %q", reloading)
	}
	n.waitFor("READY=1")

	cmd.Process.Signal(syscall.SIGTERM)
	n.waitFor("STOPPING=1")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v", err)
	}
}

// TestSocketActivateScript runs test/socket-activation.sh, which starts the
// binary under nested systemd-socket-activate and announces over both
// sockets.
func TestSocketActivateScript(t *testing.T) {
	// What the script runs, by the names it runs them (python3 for its
	// standard library only).
	tt.NeedCommand(t, "systemd-socket-activate", "systemd")
	tt.NeedCommand(t, "curl", "curl")
	tt.NeedCommand(t, "python3", "python3")
	out, err := exec.Command("bash", "../../test/socket-activation.sh", binary).CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatal(err)
	}
}

// TestJournalPriorities: with standard error going to the journal (as
// JOURNAL_STREAM says), every line starts with its syslog priority and has
// no timestamp of its own.
func TestJournalPriorities(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "journal")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(logFile.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	dbDir := t.TempDir()
	os.WriteFile(filepath.Join(dbDir, "peers.db"), []byte("garbage"), 0o644)
	cfg := writeConfig(t, `
[udp]
listen = ["127.0.0.1:0"]
[http]
listen = []
[stats]
listen = ""
[database]
path = "`+dbDir+`/peers.db"
`)
	cmd := exec.Command(binary, "-config", cfg)
	cmd.Env = append(os.Environ(), fmt.Sprintf("JOURNAL_STREAM=%d:%d", st.Dev, st.Ino))
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _ := os.ReadFile(logPath)
		if strings.Contains(string(out), " serving ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never served:\n%s", out)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	out, _ := os.ReadFile(logPath)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	want := []string{"<3>cannot load database", "<6>trakx " + testVersion + " serving udp 127.0.0.1:", "<6>stopping", "<6>saved 0 peers", "<6>stopped with 0 peers"}
	if len(lines) != len(want) {
		t.Fatalf("log lines:\n%s", out)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) || strings.Contains(lines[i], "time=") {
			t.Errorf("line %d is %q, want it to start %q", i, lines[i], w)
		}
	}
}
