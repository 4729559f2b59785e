package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	tt "github.com/trakx/trakx/internal/trackertest"
)

// The processes of the black-box cluster test (cluster_test.go): Debian's
// nats-server and trakx nodes, each a real process on loopback. They
// outlive the subtest that starts or restarts them, so they are killed by
// the top-level test's cleanup, and each subtest hands them its own
// *testing.T before waiting on them (a subtest may not fail its parent).

// clusterWait bounds every wait of the cluster test: it bounds only a
// failing wait, and the machines that run CI are shared.
const clusterWait = 15 * time.Second

// natsServer is a nats-server process on a loopback port that stays the
// same across restarts, as the nodes' nats_url names it.
type natsServer struct {
	top    *testing.T
	path   string // the nats-server binary
	addr   string // 127.0.0.1:PORT
	logs   string // its log file, kept across restarts
	cmd    *exec.Cmd
	exited chan error
	// config, when set, is the configuration file for a server on addr:
	// the server runs with -c and a file of it, not -a and -p.
	config func(addr string) string
}

// needNATSServer finds nats-server: in PATH, or where Debian's package
// puts it (/usr/sbin is not in every user's PATH). It skips the test when
// there is none, or fails it when TRAKX_REQUIRE_CLIENTS is set.
func needNATSServer(t *testing.T) string {
	t.Helper()
	if path, err := exec.LookPath("nats-server"); err == nil {
		return path
	}
	const debian = "/usr/sbin/nats-server"
	if _, err := os.Stat(debian); err != nil {
		tt.Unavailable(t, "nats-server (Debian package nats-server)", err)
	}
	return debian
}

// startNATS runs a nats-server on a free loopback port. A port found free
// can be taken by another process before nats-server binds it, so a
// failed start is tried again on another port.
func startNATS(t *testing.T, dir string) *natsServer {
	t.Helper()
	return startNATSConfig(t, dir, nil)
}

// startNATSConfig is startNATS with a configuration file: config(addr)
// is its text for a server listening on addr (nil: none, -a and -p).
func startNATSConfig(t *testing.T, dir string, config func(addr string) string) *natsServer {
	t.Helper()
	s := &natsServer{top: t, path: needNATSServer(t), logs: filepath.Join(dir, "nats-server.log"), config: config}
	var err error
	for range 3 {
		if s.addr, err = freeTCPAddr(); err != nil {
			break
		}
		if err = s.start(); err == nil {
			return s
		}
	}
	t.Fatalf("starting nats-server: %v", err)
	return nil
}

// freeTCPAddr is a loopback address that no process listened on a moment
// ago.
func freeTCPAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// url is the nodes' cluster.nats_url.
func (s *natsServer) url() string { return "nats://" + s.addr }

// start runs nats-server on s.addr, logging to s.logs, and waits until it
// accepts connections.
func (s *natsServer) start() error {
	logs, err := os.OpenFile(s.logs, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer logs.Close() // the child has its own descriptor
	args, err := s.args()
	if err != nil {
		return err
	}
	cmd := exec.Command(s.path, args...)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	s.top.Cleanup(func() { cmd.Process.Kill() })
	s.cmd, s.exited = cmd, exited
	return s.awaitListening()
}

// args are nats-server's arguments for a server on s.addr: -a and -p, or
// -c and s.config's file, written beside the log.
func (s *natsServer) args() ([]string, error) {
	host, port, _ := net.SplitHostPort(s.addr)
	if s.config == nil {
		return []string{"-a", host, "-p", port}, nil
	}
	path := filepath.Join(filepath.Dir(s.logs), "nats-server.conf")
	if err := os.WriteFile(path, []byte(s.config(s.addr)), 0o600); err != nil {
		return nil, err
	}
	return []string{"-c", path}, nil
}

// awaitListening polls s.addr with a TCP connection until nats-server
// takes it, and fails at once if the server exits (its port taken, say).
func (s *natsServer) awaitListening() error {
	for deadline := time.Now().Add(clusterWait); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case err := <-s.exited:
			return fmt.Errorf("nats-server on %s exited (%v):\n%s", s.addr, err, s.log())
		default:
		}
		if conn, err := net.DialTimeout("tcp", s.addr, time.Second); err == nil {
			conn.Close()
			return nil
		}
	}
	return fmt.Errorf("nats-server does not listen on %s after %v:\n%s", s.addr, clusterWait, s.log())
}

// stop sends SIGTERM, nats-server's clean shutdown, and waits for the
// process to exit: then every client connection is closed.
func (s *natsServer) stop() error {
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-s.exited:
		return nil
	case <-time.After(clusterWait):
		return fmt.Errorf("nats-server still running %v after SIGTERM:\n%s", clusterWait, s.log())
	}
}

// log is what nats-server has logged so far, for failure messages.
func (s *natsServer) log() string {
	b, _ := os.ReadFile(s.logs)
	return string(b)
}

// clusterNode is one trakx process of the test's cluster: a cluster name,
// a node name, and a database of its own. Its process can be killed and
// run again on the same configuration.
type clusterNode struct {
	cluster, node string // cluster.name, cluster.node
	config, db    string // its files
	tr            *tracker
	notify        *notifySocket
	http, stats   string // the addresses it serves on (new at each run)
	dead          bool   // its process was killed and is gone
}

// clusterNodeConfig is a node's configuration: HTTP only, on a port of its
// own, behind a trusted proxy (the test's announces name their client in
// X-Forwarded-For: a loopback peer never travels through the cluster),
// stats on a port of its own, and a database saved only on SIGTERM.
const clusterNodeConfig = `[udp]
listen = []
[http]
listen = ["127.0.0.1:0"]
real_ip_header = "X-Forwarded-For"
trusted_proxies = ["127.0.0.1/32"]
[stats]
listen = "127.0.0.1:0"
[database]
path = %q
save_interval = "0"
[cluster]
nats_url = %q
name = %q
node = %q
`

// newClusterNode writes the files of node in cluster under dir, without
// running it.
func newClusterNode(t *testing.T, dir, natsURL, cluster, node string) *clusterNode {
	t.Helper()
	// A directory of its own, even for a second node of the same name.
	dir, err := os.MkdirTemp(dir, cluster+"-"+node+"-")
	if err != nil {
		t.Fatal(err)
	}
	n := &clusterNode{cluster: cluster, node: node, config: filepath.Join(dir, "trakx.toml"), db: filepath.Join(dir, "peers.db")}
	text := fmt.Sprintf(clusterNodeConfig, n.db, natsURL, cluster, node)
	if err := os.WriteFile(n.config, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return n
}

// String names the node in failure messages.
func (n *clusterNode) String() string { return n.cluster + "." + n.node }

// run starts n's process, killed by top's cleanup, and waits until it
// says READY=1 (after its catch-up with the cluster) on the notify
// socket, as it tells systemd.
func (n *clusterNode) run(top, t *testing.T) {
	t.Helper()
	n.notify, n.dead = listenNotify(top), false
	cmd := exec.Command(binary, "run", "-config", n.config)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+n.notify.path)
	n.tr = follow(top, cmd)
	n.bind(t)
	web := regexp.MustCompile(`serving http (\S+?)[ ,;]`)
	stats := regexp.MustCompile(`stats http://(\S+?)/`)
	// Not " serving ": the cluster's "no other node answers; serving with
	// what this node holds" may come first.
	n.tr.waitLog("trakx "+testVersion+" serving ", func(line string) {
		if m := web.FindStringSubmatch(line); m != nil {
			n.http = m[1]
		}
		if m := stats.FindStringSubmatch(line); m != nil {
			n.stats = m[1]
		}
	})
	if n.http == "" || n.stats == "" {
		t.Fatalf("%s: no HTTP or stats address in its start-up line:\n%s", n, n.tr.log.String())
	}
	n.notify.waitFor("READY=1")
}

// bind makes t the test that n's helpers fail (waitLog, waitFor, stop).
func (n *clusterNode) bind(t *testing.T) {
	n.tr.t = t
	n.notify.t = t
}

// logLine returns n's log line that contains want: one read already (it
// may come before the start-up line), or the next one logged with it.
func (n *clusterNode) logLine(want string) string {
	n.tr.t.Helper()
	for _, line := range strings.Split(n.tr.log.String(), "\n") {
		if strings.Contains(line, want) {
			return line
		}
	}
	return n.tr.waitLog(want, nil)
}

// kill9 kills n's process with SIGKILL, as a crash would, and waits
// until it is gone.
func (n *clusterNode) kill9(t *testing.T) {
	t.Helper()
	if err := n.tr.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-n.tr.exited:
		var exit *exec.ExitError
		if !errors.As(err, &exit) || !strings.Contains(exit.String(), "killed") {
			t.Fatalf("%s after SIGKILL: %v", n, err)
		}
		n.dead = true
	case <-time.After(clusterWait):
		t.Fatalf("%s still running %v after SIGKILL", n, clusterWait)
	}
}

// stop stops n with SIGTERM and waits for its clean exit.
func (n *clusterNode) stop(t *testing.T) {
	t.Helper()
	n.bind(t)
	n.tr.stop()
}
