package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/config"
	tt "github.com/trakx/trakx/internal/trackertest"
)

var binary string

const testVersion = "9.8.7+test1"

// TestMain builds the real binary once; the tests run it as a user would.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "trakx-cmd-test")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "trakx")
	// Stamped as `make build` stamps it, with the package version.
	// Static, without cgo, as `make build` and the package build it: a cgo
	// build makes threads with pthread_create, a runtime of another shape.
	stamp := "-X main.version=" + testVersion + " -X main.commit=abc1234"
	build := exec.Command("go", "build", "-ldflags", stamp, "-o", binary, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
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

// TestVersion: `trakx version` and `trakx --version` print the version
// stamped at build time.
func TestVersion(t *testing.T) {
	for _, arg := range []string{"version", "--version", "-version"} {
		out, _, code := runBinary(t, arg)
		if code != 0 || !strings.HasPrefix(out, "trakx "+testVersion+" (commit abc1234, go1.") {
			t.Fatalf("trakx %s: %d %q", arg, code, out)
		}
	}
}

// TestHelp: -h lists every subcommand and every flag, on standard output,
// and exits 0.
func TestHelp(t *testing.T) {
	for _, arg := range []string{"-h", "--help", "help"} {
		out, _, code := runBinary(t, arg)
		if code != 0 {
			t.Fatalf("trakx %s exited %d", arg, code)
		}
		for _, want := range []string{"run", "check-config", "version", "--version", "bench", "-config PATH",
			"-target", "-protocol", "-fill", "-hashes", "-keepalive", "-popularity", "-connects", "-cpuprofile"} {
			if !strings.Contains(out, want) {
				t.Errorf("trakx %s does not mention %s:\n%s", arg, want, out)
			}
		}
	}
}

// TestBenchAgainstNothing: measuring or filling an address where nothing
// answers ends non-zero with an error naming the address.
func TestBenchAgainstNothing(t *testing.T) {
	// A port that was free a moment ago: nothing listens there.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	for _, args := range [][]string{
		{"bench", "-target", addr, "-duration", "300ms", "-warmup", "0s"},
		{"bench", "-target", addr, "-fill", "100", "-timeout", "50ms"},
	} {
		_, stderr, code := runBinary(t, args...)
		if code != 1 || !strings.Contains(stderr, "no answer from "+addr) {
			t.Fatalf("trakx %v: %d %q", args, code, stderr)
		}
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
	defences := writeConfig(t, "[limits]\nper_ip_rate = 100\n[http]\nallowed_hosts = [\"tracker.example.org\"]\n[access]\nclient_deny = [\"-XL\"]\n")
	out, _, code = runBinary(t, "check-config", "-config", defences)
	if code != 0 || !strings.Contains(out, "per_ip_rate = 100.0") || !strings.Contains(out, `allowed_hosts = ["tracker.example.org"]`) || !strings.Contains(out, `client_deny = ["-XL"]`) {
		t.Fatalf("%d %q", code, out)
	}
	for text, key := range map[string]string{
		"[limits]\nper_ip_burst = 0\n":            "limits.per_ip_burst",
		"[http]\nallowed_hosts = [\"a b\"]\n":     "http.allowed_hosts[0]",
		"[access]\nclient_allow = [\"\"]\n":       "access.client_allow[0]",
		"[limits]\ntracked_ips = 1000000000000\n": "limits.tracked_ips",
	} {
		_, stderr, code := runBinary(t, "check-config", "-config", writeConfig(t, text))
		if code != 1 || !strings.Contains(stderr, key) {
			t.Fatalf("%q: %d %q", text, code, stderr)
		}
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

// tracker is the trakx binary running as a user would run it.
type tracker struct {
	t        *testing.T
	cmd      *exec.Cmd
	udpAddr  string
	httpAddr string
	lines    chan string
	log      strings.Builder // every line read so far
	exited   chan error
}

// follow starts cmd and reads its standard error line by line into the
// tracker's lines, until it exits.
func follow(t *testing.T, cmd *exec.Cmd) *tracker {
	t.Helper()
	tr := &tracker{t: t, cmd: cmd, lines: make(chan string, 1000), exited: make(chan error, 1)}
	stderr, _ := tr.cmd.StderrPipe()
	if err := tr.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.cmd.Process.Kill() })
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			tr.lines <- sc.Text()
		}
		close(tr.lines)
		tr.exited <- tr.cmd.Wait()
	}()
	return tr
}

// startTracker runs the binary with a configuration using dir for its
// database, and waits until it says it is ready.
func startTracker(t *testing.T, dir string) *tracker {
	t.Helper()
	cfg := writeConfig(t, `
[udp]
listen = ["127.0.0.1:0"]
[http]
listen = ["127.0.0.1:0"]
[stats]
listen = ""
[database]
path = "`+dir+`/peers.db"
save_interval = "0"
`)
	tr := follow(t, exec.Command(binary, "run", "-config", cfg))
	udp := regexp.MustCompile(`udp (\S+?)[ ,;]`)
	web := regexp.MustCompile(`http (\S+?)[ ,;]`)
	tr.waitLog(" serving ", func(line string) {
		if m := udp.FindStringSubmatch(line); m != nil {
			tr.udpAddr = m[1]
		}
		if m := web.FindStringSubmatch(line); m != nil {
			tr.httpAddr = m[1]
		}
	})
	return tr
}

// waitLog reads log lines until one contains want, for at most ten seconds,
// passing each to seen if it is not nil. It returns the matching line.
func (tr *tracker) waitLog(want string, seen func(string)) string {
	tr.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case line, ok := <-tr.lines:
			if !ok {
				tr.t.Fatalf("tracker exited before logging %q:\n%s", want, tr.log.String())
			}
			tr.log.WriteString(line + "\n")
			if seen != nil {
				seen(line)
			}
			if strings.Contains(line, want) {
				return line
			}
		case <-timeout:
			tr.t.Fatalf("no log line %q within 10s:\n%s", want, tr.log.String())
		}
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (tr *tracker) stop() {
	tr.t.Helper()
	tr.cmd.Process.Signal(syscall.SIGTERM)
	tr.waitLog("stopped with", nil)
	for range tr.lines {
	}
	select {
	case err := <-tr.exited:
		if err != nil {
			tr.t.Fatalf("exit after SIGTERM: %v\n%s", err, tr.log.String())
		}
	case <-time.After(10 * time.Second):
		tr.t.Fatalf("still running 10s after SIGTERM")
	}
}

// TestRunAndStop starts the binary, announces to it, and stops it with
// SIGTERM: it must exit 0.
func TestRunAndStop(t *testing.T) {
	tr := startTracker(t, t.TempDir())
	c := tt.DialUDP(t, tr.udpAddr)
	c.Connect()
	req := &bittorrent.AnnounceRequest{InfoHash: tt.Hash("cmd"), Port: 1, Left: 0, NumWant: -1}
	if resp, err := c.Announce(req); err != nil || resp.Complete != 1 {
		t.Fatalf("announce: %+v %v", resp, err)
	}
	tr.stop()
	if !strings.Contains(tr.log.String(), "stopped with 1 peers in 1 torrents") {
		t.Fatalf("log: %s", tr.log.String())
	}
}

func getBencoded(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	return tt.GetBencoded(t, http.DefaultClient, url)
}

// TestCheckConfigAgreesWithStart: every configuration start refuses,
// check-config refuses too, with the same message and a non-zero exit.
func TestCheckConfigAgreesWithStart(t *testing.T) {
	dir := t.TempDir()
	badList := filepath.Join(dir, "bad.txt")
	os.WriteFile(badList, []byte("0123456789abcdef0123456789abcdef01234567\nnot a hash\n"), 0o644)
	unreadable := filepath.Join(dir, "unreadable.txt")
	os.Mkdir(unreadable, 0o755) // a directory: reading it fails, even as root
	listen := "[udp]\nlisten = [\"127.0.0.1:0\"]\n[http]\nlisten = []\n[stats]\nlisten = \"\"\n"
	db := func(path string) string { return fmt.Sprintf("[database]\npath = %q\n", path) }
	good := db(filepath.Join(dir, "peers.db"))
	for name, c := range map[string]struct{ config, says string }{
		"allow with no file":                  {listen + good + "[access]\nmode = \"allow\"\nfile = \"\"\n", "access.file: must be set"},
		"deny with a missing file":            {listen + good + fmt.Sprintf("[access]\nmode = \"deny\"\nfile = %q\n", filepath.Join(dir, "none.txt")), "no such file"},
		"allow with a bad line":               {listen + good + fmt.Sprintf("[access]\nmode = \"allow\"\nfile = %q\n", badList), "bad.txt:2: \"not a hash\" is not an info hash"},
		"an unreadable access file":           {listen + good + fmt.Sprintf("[access]\nmode = \"allow\"\nfile = %q\n", unreadable), "unreadable.txt: is a directory"},
		"no listeners":                        {"[udp]\nlisten = []\n[http]\nlisten = []\n" + good, "nothing to serve"},
		"a missing database dir":              {listen + db(filepath.Join(dir, "missing", "peers.db")), "does not exist"},
		"an unwritable database dir":          {listen + db("/proc/peers.db"), "cannot write in /proc"},
		"a database path that is a directory": {listen + db(dir), "is a directory, not a file"},
		"stats on the HTTP port":              {"[http]\nlisten = [\"127.0.0.1:7777\"]\n[stats]\nlisten = \"127.0.0.1:7777\"\n" + good, "clashes with http.listen"},
		"a repeated listen address":           {"[udp]\nlisten = [\"127.0.0.1:7777\", \"127.0.0.1:7777\"]\n" + good, "clashes with"},
	} {
		path := writeConfig(t, c.config)
		_, checkErr, checkCode := runBinary(t, "check-config", "-config", path)
		_, runErr, runCode := runBinary(t, "run", "-config", path)
		msg := strings.TrimSpace(checkErr[strings.LastIndex(checkErr, ": ")+2:])
		if checkCode == 0 || runCode == 0 || !strings.Contains(checkErr, c.says) {
			t.Errorf("%s: check-config exit %d %q, run exit %d", name, checkCode, checkErr, runCode)
			continue
		}
		if !strings.Contains(strings.ReplaceAll(runErr, `\"`, `"`), msg) {
			t.Errorf("%s: check-config says %q, start says %q", name, checkErr, runErr)
		}
	}
	if moved, _ := filepath.Glob(dir + ".corrupt-*"); len(moved) > 0 {
		t.Fatalf("a start moved the directory given as database.path aside: %v", moved)
	}
}

// TestCheckConfigPrintsDatabasePath: check-config says where the database
// file lands, resolved as start resolves it.
func TestCheckConfigPrintsDatabasePath(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, "[database]\npath = \"peers.db\"\n")
	cmd := exec.Command(binary, "check-config", "-config", path)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil || !strings.Contains(string(out), "# The database file, as start uses it: "+filepath.Join(dir, "peers.db")) {
		t.Fatalf("%v %s", err, out)
	}
}

// TestFailedFinalSaveExitsNonZero: when the database directory is gone at
// shutdown, the final save fails, an error says so, and the exit code is
// not 0, so that systemd shows the failure.
func TestFailedFinalSaveExitsNonZero(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	os.Mkdir(dir, 0o755)
	tr := startTracker(t, dir)
	os.RemoveAll(dir)
	tr.cmd.Process.Signal(syscall.SIGTERM)
	tr.waitLog("the final save failed", nil)
	for range tr.lines {
	}
	select {
	case err := <-tr.exited:
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Fatalf("exit after a failed final save: %v\n%s", err, tr.log.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still running 10s after SIGTERM")
	}
}

// TestGoRunStopsOnSIGTERM: the README's `go run ./cmd/trakx`, sent SIGTERM
// (go run's own process, as a service manager or kill would), stops the
// tracker too instead of leaving it running with its ports.
func TestGoRunStopsOnSIGTERM(t *testing.T) {
	cfg := writeConfig(t, "[udp]\nlisten = [\"127.0.0.1:0\"]\n[http]\nlisten = []\n[stats]\nlisten = \"\"\n[database]\npath = \""+t.TempDir()+"/peers.db\"\n")
	tr := follow(t, exec.Command("go", "run", ".", "-config", cfg))
	tr.waitLog(" serving ", nil)
	tr.cmd.Process.Signal(syscall.SIGTERM) // go run's process, not the tracker's
	tr.waitLog("stopped with", nil)
}

// TestManPageListsEverything: trakx(8) names every command and every
// configuration key with its default, as the code has them.
func TestManPageListsEverything(t *testing.T) {
	page, err := os.ReadFile("../../packaging/trakx.8")
	if err != nil {
		t.Fatal(err)
	}
	man := string(page)
	for _, command := range []string{"check\\-config", "version", "\\-\\-version", "bench", "stats", "help", "\\-h"} {
		if !strings.Contains(man, ".B trakx "+command) && !strings.Contains(man, ".B "+command) {
			t.Errorf("trakx(8) has no command %s", command)
		}
	}
	t.Setenv("STATE_DIRECTORY", "")
	defaults := config.Default()
	defaults.Database.Path = "/var/lib/trakx/peers.db" // as the package ships it
	section := ""
	for _, line := range strings.Split(defaults.TOML(), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			section = strings.Trim(line, "[]")
			continue
		}
		key, value, ok := strings.Cut(line, " = ")
		if !ok {
			continue
		}
		want := ".B " + section + "." + key + "\nDefault \\fB" + strings.ReplaceAll(value, "-", "\\-") + "\\fR."
		if !strings.Contains(man, want) {
			t.Errorf("trakx(8) lacks %s.%s with its default %s", section, key, value)
		}
	}
}
