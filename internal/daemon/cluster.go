package daemon

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/cluster"
	"github.com/trakx/trakx/internal/config"
	"github.com/trakx/trakx/internal/metrics"
)

// The cluster (cluster.nats_url, package cluster), wired in here alone.
// With nats_url "" none of it runs: d.node stays nil, the access gate
// passes announces to the store itself, and no goroutine is started.
// With it, the frontends' gate passes them to the node's publishing
// decorator (Wrap) in front of the store, so that only announces the
// access list, the client filter and the store accepted are published;
// what arrives from the cluster goes through the access list
// (Admitting) to the store, never back through the decorator.

// newCluster makes the cluster node when cluster.nats_url is set (not yet
// started), and returns the tracker the access gate is to pass announces
// to: the store without a cluster, the node's decorator in front of it
// with one.
func (d *Daemon) newCluster() (bittorrent.Tracker, error) {
	c := &d.cfg.Cluster
	if c.NATSURL == "" {
		return d.store, nil
	}
	node, err := nodeName(c)
	if err != nil {
		return nil, err
	}
	creds, data, err := clusterCredentials(c, d.configPath)
	if err != nil {
		return nil, err
	}
	d.clusterCreds = data
	d.replicatePrivate.Store(c.ReplicatePrivate)
	d.node, err = cluster.New(cluster.Options{
		URL: c.NATSURL, CredsFile: creds, Name: c.Name, Node: node,
		ReplicatePrivate: d.replicatePrivate.Load, // a reload sets it
		Apply:            cluster.Admitting(d.admitTorrent, d.store),
		Snapshot:         cluster.StoreSnapshot(d.store),
		Counts:           cluster.StoreCounts(d.store),
		ApplyTorrent:     cluster.StoreApplyTorrent(d.store, d.admitTorrent),
		Downloaded:       cluster.StoreDownloaded(d.store),
		Log:              d.log,
		ObserveLag:       d.metrics.ClusterLag.Observe,
	})
	if err != nil {
		return nil, err
	}
	d.metrics.SetCluster(d.clusterStats)
	return d.node.Wrap(d.store), nil
}

// admitTorrent is the access list's verdict on a torrent arriving from
// the cluster: the gate is made after the node, and read when a record
// arrives.
func (d *Daemon) admitTorrent(h *bittorrent.InfoHash) error { return d.gate.AdmitTorrent(h) }

// startCluster connects the node, if any: it then applies what the other
// nodes publish and catches up with them (ClusterReady). NATS being down
// is no error: the node serves alone and reconnects in the background.
func (d *Daemon) startCluster() error {
	if d.node == nil {
		return nil
	}
	if err := d.node.Start(); err != nil {
		return fmt.Errorf("cluster.nats_url %s: %w", config.RedactURLs(d.cfg.Cluster.NATSURL), err)
	}
	return nil
}

// closeCluster flushes what the node holds to NATS and leaves the
// cluster; Stop calls it once the frontends are done.
func (d *Daemon) closeCluster() {
	if d.node != nil {
		d.node.Close()
	}
}

// ClusterReady is closed once the cluster node has caught up with the
// cluster or given up waiting (at once when NATS is unreachable); at once
// without a cluster. Run tells systemd READY only then.
func (d *Daemon) ClusterReady() <-chan struct{} {
	if d.node == nil {
		done := make(chan struct{})
		close(done)
		return done
	}
	return d.node.Ready()
}

// readyWait is the longest READY waits for the catch-up: the node
// serves meanwhile, and systemd gives a start 90 s by default.
const readyWait = 60 * time.Second

// awaitCluster waits for ClusterReady before READY, saying so in the
// STATUS line, unless ctx ends first or readyWait passes (logged: the
// catch-up goes on). A SIGTERM or SIGINT meanwhile ends the wait and is
// returned, to stop; other signals are returned in held, to be handled
// once READY is said.
func (d *Daemon) awaitCluster(ctx context.Context, signals <-chan os.Signal) (stop os.Signal, held []os.Signal) {
	if d.node == nil {
		return nil, nil
	}
	d.notify("STATUS=catching up with the cluster " + d.cfg.Cluster.Name)
	limit := time.NewTimer(readyWait)
	defer limit.Stop()
	for {
		select {
		case <-d.node.Ready():
			return nil, held
		case <-ctx.Done():
			return nil, held
		case <-limit.C:
			d.log.Warnf("cluster: still catching up after %v; ready meanwhile", readyWait)
			return nil, held
		case sig := <-signals:
			if sig == syscall.SIGTERM || sig == syscall.SIGINT {
				return sig, held
			}
			held = append(held, sig)
		}
	}
}

// clusterStats are the node's figures for the metrics.
func (d *Daemon) clusterStats() metrics.ClusterStats {
	s := d.node.Stats()
	return metrics.ClusterStats{
		Connected: s.Connected, Nodes: s.Nodes,
		Published: s.Published, Applied: s.Applied, Refused: s.Refused, Dropped: s.Dropped, BadBatches: s.BadBatches,
		BytesSent: s.BytesOut, BytesReceived: s.BytesIn, CatchUps: s.CatchUps,
		SnapshotsServed: s.SnapshotsServed, SnapshotsRefused: s.SnapshotsRefused, ApplyLagSeconds: s.ApplyLagSeconds,
	}
}

// describeCluster is the start-up line's part for the cluster ("" without
// one). The servers are counted, not named: a URL may carry a password.
func (d *Daemon) describeCluster() string {
	if d.node == nil {
		return ""
	}
	c := &d.cfg.Cluster
	node, _ := nodeName(c)
	private := "public peers"
	if c.ReplicatePrivate {
		private = "private peers too"
	}
	return fmt.Sprintf("cluster %s as node %s through %d NATS server(s), replicating %s", c.Name, node,
		len(strings.Split(c.NATSURL, ",")), private)
}

// nodeName is cluster.node, else the host name made a token.
func nodeName(c *config.Cluster) (string, error) {
	host, err := os.Hostname()
	if name := c.NodeName(host); name != "" {
		return name, nil
	}
	if err != nil {
		return "", fmt.Errorf("cluster.node is not set and the host name is unknown (%v): set cluster.node", err)
	}
	return "", fmt.Errorf("cluster.node is not set and the host name %q makes no node name: set cluster.node", host)
}

// clusterCredentials is the path cluster.credentials is read from
// (config.CredentialPath) and what it holds, once it has been read and
// found to be a NATS .creds file; "" without credentials. NATS reads it
// again at each (re)connection.
func clusterCredentials(c *config.Cluster, configPath string) (string, []byte, error) {
	if c.Credentials == "" {
		return "", nil, nil
	}
	path, _ := config.CredentialPath(c.Credentials, configPath)
	data, err := readCredential("cluster.credentials", c.Credentials, path)
	if err != nil {
		return "", nil, err
	}
	if !bytes.Contains(data, []byte("-----BEGIN NATS USER JWT-----")) {
		return "", nil, fmt.Errorf("cluster.credentials %s: not a NATS .creds file (no -----BEGIN NATS USER JWT----- in it)", path)
	}
	if err := cluster.CheckCredentials(data); err != nil {
		return "", nil, fmt.Errorf("cluster.credentials %s: not a usable NATS .creds file: %v", path, err)
	}
	return path, data, nil
}

// reloadClusterCredentials applies a reload's cluster.credentials: a new
// path, or new contents at the old one, make the node reconnect with
// them (and catch up). Credentials that do not load are logged and the
// running ones kept; going from none to some, or back, takes a restart.
func (d *Daemon) reloadClusterCredentials(cfg *config.Config) {
	old, c := &d.cfg.Cluster, &cfg.Cluster
	if d.node == nil || (old.Credentials == c.Credentials && c.Credentials == "") {
		return
	}
	if (old.Credentials == "") != (c.Credentials == "") {
		d.log.Warnf("cluster.credentials changed from %q to %q: adding or removing credentials takes a restart (systemctl restart trakx); keeping the running ones", old.Credentials, c.Credentials)
		return
	}
	path, data, err := clusterCredentials(c, d.configPath)
	if err != nil {
		d.log.Errorf("cluster: the credentials did not load, keeping the running ones: %v", err)
		return
	}
	if c.Credentials == old.Credentials && bytes.Equal(data, d.clusterCreds) {
		return
	}
	if err := d.node.SetCredentials(path); err != nil {
		d.log.Errorf("cluster: %v", err)
		return
	}
	d.clusterCreds, old.Credentials = data, c.Credentials
}

// CheckCluster checks [cluster] as start would, for `trakx check-config`:
// the node's name and the credentials. A credentials file this user
// cannot see, where the service may, is not refused: note says so.
func CheckCluster(cfg *config.Config, configPath string) (note string, err error) {
	c := &cfg.Cluster
	if c.NATSURL == "" {
		return "", nil
	}
	if _, err := nodeName(c); err != nil {
		return "", err
	}
	_, _, err = clusterCredentials(c, configPath)
	if why := invisible(err); why != "" {
		return fmt.Sprintf("%v: not visible here: %s; the rest of [cluster] was checked", err, why), nil
	}
	return "", err
}
