package daemon_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/config"
	"github.com/trakx/trakx/internal/daemon"
	tt "github.com/trakx/trakx/internal/trackertest"
)

// runNATS starts an embedded NATS server on loopback and returns its URL.
func runNATS(t *testing.T) string {
	t.Helper()
	return "nats://" + tt.RunNATS(t, nil).Addr().(*net.TCPAddr).String()
}

// clusterConfig puts a tracker in the cluster at natsURL as node, taking
// the client's address from X-Forwarded-For when loopback sends it: a
// loopback peer never travels (the wire refuses it), so the tests'
// clients stand behind a proxy.
func clusterConfig(natsURL, node string) func(*config.Config) {
	return func(c *config.Config) {
		c.Cluster.NATSURL, c.Cluster.Node = natsURL, node
		c.HTTP.RealIPHeader, c.HTTP.TrustedProxies = "X-Forwarded-For", []string{"127.0.0.1/32"}
	}
}

// awaitClusterReady waits for a tracker to have caught up with the
// cluster, or given up waiting, as Run does before READY.
func awaitClusterReady(t *testing.T, d *daemon.Daemon) {
	t.Helper()
	select {
	case <-d.ClusterReady():
	case <-time.After(15 * time.Second):
		t.Fatal("the cluster node never became ready")
	}
}

// announceFrom announces a peer at addr:port to d's first HTTP listener,
// and fails the test on a failure reason.
func announceFrom(t *testing.T, d *daemon.Daemon, hash bittorrent.InfoHash, addr string, port, left int, event string) {
	t.Helper()
	u := announceURL(d.HTTPAddrs()[0].String(), hash, port, left, "&event="+event)
	if r := announceWithHeader(t, u, "X-Forwarded-For", addr); r["failure reason"] != nil {
		t.Fatalf("announce %s:%d %s: %v", addr, port, event, r)
	}
}

// scrapeAt scrapes hash at d over HTTP.
func scrapeAt(t *testing.T, d *daemon.Daemon, hash bittorrent.InfoHash) (complete, incomplete, downloaded int64) {
	t.Helper()
	_, r := get(t, http.DefaultClient, fmt.Sprintf("http://%s/scrape?info_hash=%s", d.HTTPAddrs()[0], url.QueryEscape(string(hash[:]))))
	f, _ := r["files"].(map[string]any)[string(hash[:])].(map[string]any)
	c, _ := f["complete"].(int64)
	i, _ := f["incomplete"].(int64)
	n, _ := f["downloaded"].(int64)
	return c, i, n
}

// waitScrape waits until a scrape of hash at d shows complete seeders,
// incomplete leechers and downloaded completions.
func waitScrape(t *testing.T, what string, d *daemon.Daemon, hash bittorrent.InfoHash, complete, incomplete, downloaded int64) {
	t.Helper()
	tt.WaitFor(t, what, func() bool {
		c, i, n := scrapeAt(t, d, hash)
		return c == complete && i == incomplete && n == downloaded
	})
}

// TestClusterTwoDaemons: two trackers in one cluster on loopback. What is
// announced at A shows in scrapes at B (join, completed, stopped), and
// both show the cluster in /metrics and /debug/vars.
func TestClusterTwoDaemons(t *testing.T) {
	nats := runNATS(t)
	a := startTracker(t, clusterConfig(nats, "a"))
	b := startTracker(t, clusterConfig(nats, "b"))
	awaitClusterReady(t, a)
	awaitClusterReady(t, b)
	hash := tt.Hash("cluster-two")
	announceFrom(t, a, hash, "198.51.100.7", 6881, 0, "started")
	announceFrom(t, a, hash, "198.51.100.8", 6882, 5, "started")
	waitScrape(t, "A's seeder and leecher in a scrape at B", b, hash, 1, 1, 0)
	announceFrom(t, a, hash, "198.51.100.8", 6882, 0, "completed")
	waitScrape(t, "A's completion at B", b, hash, 2, 0, 1)
	announceFrom(t, a, hash, "198.51.100.7", 6881, 0, "stopped")
	waitScrape(t, "A's stopped peer gone at B", b, hash, 1, 0, 1)
	if c, i, n := scrapeAt(t, a, hash); c != 1 || i != 0 || n != 1 {
		t.Fatalf("A itself: %d seeders, %d leechers, %d downloaded", c, i, n)
	}

	tt.WaitFor(t, "A hears B", func() bool { return scrapeMetrics(t, a).Sum("trakx_cluster_nodes") == 2 })
	m := scrapeMetrics(t, a)
	if m.Sum("trakx_cluster_connected") != 1 || m.Sum("trakx_cluster_deltas_total", "direction", "published") != 4 ||
		m.Sum("trakx_cluster_bytes_total", "direction", "sent") == 0 {
		t.Fatalf("A's /metrics: connected %v, published %v, bytes sent %v", m.Sum("trakx_cluster_connected"),
			m.Sum("trakx_cluster_deltas_total", "direction", "published"), m.Sum("trakx_cluster_bytes_total", "direction", "sent"))
	}
	mb := scrapeMetrics(t, b)
	if mb.Sum("trakx_cluster_deltas_total", "direction", "applied") != 4 || mb.Sum("trakx_cluster_deltas_total", "direction", "published") != 0 ||
		mb.Sum("trakx_cluster_apply_lag_seconds_count") == 0 {
		t.Fatalf("B's /metrics: applied %v, published %v (it must not republish), lag observations %v",
			mb.Sum("trakx_cluster_deltas_total", "direction", "applied"), mb.Sum("trakx_cluster_deltas_total", "direction", "published"),
			mb.Sum("trakx_cluster_apply_lag_seconds_count"))
	}
	vars := tt.Vars(t, a.StatsAddr().String())
	for key, want := range map[string]float64{"trakx.cluster.connected": 1, "trakx.cluster.published": 4, "trakx.cluster.nodes": 2} {
		if got, ok := tt.Lookup(vars, key); !ok || got != want {
			t.Errorf("/debug/vars %s = %v (present %v), want %v", key, got, ok, want)
		}
	}
	t.Run("promtool", func(t *testing.T) { // the histogram among them
		promtool := tt.NeedCommand(t, "promtool", "prometheus")
		resp, err := http.Get("http://" + b.StatsAddr().String() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = resp.Body
		if out, err := cmd.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "" {
			t.Fatalf("promtool check metrics: %v\n%s", err, out)
		}
	})
}

// TestClusterOffShowsNothing: without cluster.nats_url no cluster series
// is served, and /debug/vars has no cluster tree.
func TestClusterOffShowsNothing(t *testing.T) {
	d := startTracker(t, nil)
	for series := range scrapeMetrics(t, d) {
		if strings.HasPrefix(series, "trakx_cluster_") {
			t.Fatalf("%s served without a cluster", series)
		}
	}
	if _, ok := tt.Vars(t, d.StatsAddr().String())["trakx"].(map[string]any)["cluster"]; ok {
		t.Fatal("a cluster tree in /debug/vars without a cluster")
	}
	select {
	case <-d.ClusterReady():
	default:
		t.Fatal("ClusterReady is not closed without a cluster")
	}
}

// TestClusterReloadReplicatePrivate: cluster.replicate_private reloads
// (private peers travel from the next announce), a changed cluster.name
// is logged as taking a restart.
func TestClusterReloadReplicatePrivate(t *testing.T) {
	nats := runNATS(t)
	b := startTracker(t, clusterConfig(nats, "b"))
	text := withHTTP(t, "real_ip_header = \"X-Forwarded-For\"\ntrusted_proxies = [\"127.0.0.1\"]\n") +
		"[cluster]\nnats_url = \"" + nats + "\"\nnode = \"a\"\n"
	a, path, logged := startFromText(t, text)
	awaitClusterReady(t, a)
	awaitClusterReady(t, b)

	private, marker := tt.Hash("cluster-private"), tt.Hash("cluster-marker")
	announceFrom(t, a, private, "10.0.0.7", 6881, 0, "started")
	announceFrom(t, a, marker, "198.51.100.7", 6881, 0, "started")
	waitScrape(t, "the public marker at B", b, marker, 1, 0, 0)
	if c, _, _ := scrapeAt(t, b, private); c != 0 { // one publisher's records arrive in order
		t.Fatal("a private peer travelled with replicate_private off")
	}
	os.WriteFile(path, []byte(text+"replicate_private = true\nname = \"other\"\n"), 0o644)
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logged.String(), "cluster.name changed, but takes a restart") || strings.Contains(logged.String(), "cluster.replicate_private changed") {
		t.Fatalf("reload log:\n%s", logged.String())
	}
	announceFrom(t, a, private, "10.0.0.7", 6881, 0, "")
	waitScrape(t, "the private peer at B once replicate_private is on", b, private, 1, 0, 0)
}

// TestClusterCredentialsChecked: check-config and start refuse
// cluster.credentials that are missing, not a .creds file or one without
// a seed, naming the
// key; a relative path check-config cannot see (no
// $CREDENTIALS_DIRECTORY) is a note, not a refusal.
func TestClusterCredentialsChecked(t *testing.T) {
	t.Setenv(config.CredentialsDirectoryEnv, "")
	dir := t.TempDir()
	notCreds, noSeed := filepath.Join(dir, "not.creds"), filepath.Join(dir, "noseed.creds")
	os.WriteFile(notCreds, []byte("hello\n"), 0o644)
	jwtOnly, _, _ := strings.Cut(string(userCreds(t)), "-----BEGIN USER NKEY SEED-----")
	os.WriteFile(noSeed, []byte(jwtOnly), 0o600)
	for creds, want := range map[string]string{
		filepath.Join(dir, "missing.creds"): "cluster.credentials " + filepath.Join(dir, "missing.creds") + ": no such file",
		notCreds:                            "not a NATS .creds file",
		noSeed:                              "not a usable NATS .creds file",
	} {
		cfg := config.Default()
		cfg.Cluster.NATSURL, cfg.Cluster.Node, cfg.Cluster.Credentials = "nats://127.0.0.1:1", "a", creds
		if _, err := daemon.CheckCluster(&cfg, ""); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("check-config, credentials %s: %v, want %q", creds, err, want)
		}
		cfg.UDP.Listen, cfg.HTTP.Listen, cfg.Stats.Listen = []string{"127.0.0.1:0"}, nil, ""
		cfg.Database.Path = filepath.Join(dir, "peers.db")
		log := logrus.New()
		log.SetOutput(io.Discard)
		d := daemon.New(cfg, "", "test", log)
		if err := d.Start(); err == nil || !strings.Contains(err.Error(), want) {
			if err == nil {
				d.Stop()
			}
			t.Errorf("start, credentials %s: %v, want %q", creds, err, want)
		}
	}
	cfg := config.Default()
	cfg.Cluster.NATSURL, cfg.Cluster.Credentials = "nats://127.0.0.1:1", "trakx.creds"
	note, err := daemon.CheckCluster(&cfg, filepath.Join(dir, "trakx.toml"))
	if err != nil || !strings.Contains(note, "not visible here") {
		t.Fatalf("a relative path not visible to check-config: note %q, error %v", note, err)
	}
}
