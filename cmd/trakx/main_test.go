package main

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
	tt "github.com/trakx/trakx/internal/trackertest"
)

var binary string

// TestMain builds the real binary once; the tests run it as a user would.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "trakx-cmd-test")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "trakx")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		panic("building trakx: " + err.Error() + "\n" + string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func runBinary(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "trakx.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestVersion(t *testing.T) {
	out, _, code := runBinary(t, "version")
	if code != 0 || !strings.HasPrefix(out, "trakx dev (commit unknown, go1.") {
		t.Fatalf("%d %q", code, out)
	}
}

func TestUnknownCommand(t *testing.T) {
	if _, stderr, code := runBinary(t, "serve"); code != 2 || !strings.Contains(stderr, `unknown command "serve"`) {
		t.Fatalf("%d %q", code, stderr)
	}
}

func TestCheckConfig(t *testing.T) {
	good := writeConfig(t, "[tracker]\nannounce_interval = \"20m\"\n")
	out, _, code := runBinary(t, "check-config", "-config", good)
	if code != 0 || !strings.Contains(out, `announce_interval = "20m"`) || !strings.Contains(out, `peer_ttl = "45m"`) {
		t.Fatalf("%d %q", code, out)
	}
	bad := writeConfig(t, "[tracker]\nannounce_interval = \"20m\"\npeer_tll = \"1h\"\n")
	_, stderr, code := runBinary(t, "check-config", "-config", bad)
	if code != 1 || !strings.Contains(stderr, bad) || !strings.Contains(stderr, "unknown key tracker.peer_tll") {
		t.Fatalf("%d %q", code, stderr)
	}
}

// TestBrokenConfigIsOneFatalLine: the tracker refuses to start on a bad
// file, saying why in one line.
func TestBrokenConfigIsOneFatalLine(t *testing.T) {
	for _, path := range []string{
		writeConfig(t, "[udp]\nlisten = \"[::]:6969\"\n"),
		filepath.Join(t.TempDir(), "missing.toml"),
	} {
		_, stderr, code := runBinary(t, "-config", path)
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if code != 1 || len(lines) != 1 || !strings.Contains(lines[0], path) || !strings.Contains(lines[0], "level=error") {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
	}
}

// TestRunAndStop starts the binary, announces to it, and stops it with
// SIGTERM: it must exit 0.
func TestRunAndStop(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, `
[udp]
listen = ["127.0.0.1:0"]
[http]
listen = ["127.0.0.1:0"]
[stats]
listen = ""
[database]
path = "`+dir+`/peers.db"
`)
	cmd := exec.Command(binary, "run", "-config", cfg)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := bufio.NewScanner(stderr)
	udpAddr := ""
	listening := regexp.MustCompile(`udp tracker on (\S+?)"`)
	for udpAddr == "" && lines.Scan() {
		if m := listening.FindStringSubmatch(lines.Text()); m != nil {
			udpAddr = m[1]
		}
	}
	if udpAddr == "" {
		t.Fatal("the tracker never said where it listens")
	}
	c := tt.DialUDP(t, udpAddr)
	c.Connect()
	req := &bittorrent.AnnounceRequest{InfoHash: tt.Hash("cmd"), Port: 1, Left: 0, NumWant: -1}
	if resp, err := c.Announce(req); err != nil || resp.Complete != 1 {
		t.Fatalf("announce: %+v %v", resp, err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	rest, _ := io.ReadAll(stderr)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, rest)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("still running 10s after SIGTERM\n%s", rest)
	}
	if !strings.Contains(string(rest), "stopped with 1 peers in 1 torrents") {
		t.Fatalf("log after SIGTERM: %s", rest)
	}
}
