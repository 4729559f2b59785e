// Package daemon wires trakx together: configuration, the swarm store and
// its database, the access list and the per-source budget, the frontends
// (UDP, HTTP, and WebSocket on the HTTP listeners, in one list behind
// package frontend's interface), the stats listener (/debug/vars,
// /metrics, profiles), systemd (socket activation, sd_notify, the
// watchdog) and the process's signals. It is the one place that knows
// about all of them.
//
// daemon.go is the tracker's life: New, Run, Stop. start.go takes the
// sockets and starts everything; cluster.go wires in the cluster node
// (cluster.nats_url), if any; frontends.go makes each frontend from its
// configuration section (a new protocol is one function there); reload.go
// applies SIGHUP; persist.go loads and saves the database; systemd.go and
// check.go are the edges to systemd and to `trakx check-config`.
package daemon

import (
	"context"
	"fmt"
	"net"
	nethttp "net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
	"github.com/sirupsen/logrus"
	"github.com/trakx/trakx/internal/access"
	"github.com/trakx/trakx/internal/cluster"
	"github.com/trakx/trakx/internal/config"
	"github.com/trakx/trakx/internal/frontend"
	"github.com/trakx/trakx/internal/frontend/engine"
	"github.com/trakx/trakx/internal/frontend/http"
	"github.com/trakx/trakx/internal/frontend/https"
	"github.com/trakx/trakx/internal/frontend/udp"
	"github.com/trakx/trakx/internal/frontend/websocket"
	"github.com/trakx/trakx/internal/fullscrape"
	"github.com/trakx/trakx/internal/metrics"
	"github.com/trakx/trakx/internal/ratelimit"
	"github.com/trakx/trakx/internal/swarm"
)

// statusEvery is how often the STATUS= line is refreshed.
const statusEvery = 5 * time.Second

// Daemon is one running tracker.
type Daemon struct {
	log        *logrus.Logger
	configPath string
	version    string
	cfg        config.Config

	store   *swarm.Store
	gate    *access.Gate
	budget  *ratelimit.Limiter
	metrics *metrics.Metrics

	// frontends are UDP's, HTTP's, then WebSocket's. Stop closes them in
	// the reverse order: the WebSocket frontend first, so that its goodbye
	// frames go out before the listeners wake every connection.
	frontends     []frontend.Frontend
	frontendsDone sync.WaitGroup
	ws            *websocket.Server // nil: WebSocket off
	keyPair       *https.KeyPair    // HTTPS's certificate; nil: no HTTPS
	// hosts are http.allowed_hosts, shared by every HTTP server.
	hosts *atomic.Pointer[http.Hosts]
	// fullScrape is http.full_scrape for every HTTP server (nil: off);
	// scrapes builds its snapshots, made when it is first on.
	fullScrape atomic.Pointer[http.FullScrape]
	scrapes    *fullscrape.Builder
	// engine serves the HTTP connections that outlive their first read,
	// and the WebSockets; nil without HTTP listeners. It stops once the
	// frontends are done (engineStop).
	engine     *engine.Engine
	engineStop chan struct{}
	stats      *nethttp.Server
	statsLn    net.Listener
	// node is this tracker's part in a cluster (cluster.go); nil: none.
	// replicatePrivate is cluster.replicate_private, which a reload sets.
	node             *cluster.Node
	replicatePrivate atomic.Bool
	clusterCreds     []byte // the .creds file's contents as last loaded

	stopping chan struct{}
	stopOnce sync.Once
	stopErr  error // the first Stop's
	wg       sync.WaitGroup

	saveMu sync.Mutex // one save at a time
}

// New prepares a tracker for cfg, read from configPath ("" for the built-in
// defaults), which SIGHUP reads again. version goes into the start-up line.
func New(cfg config.Config, configPath, version string, log *logrus.Logger) *Daemon {
	d := &Daemon{log: log, configPath: configPath, version: version, cfg: cfg, stopping: make(chan struct{}),
		hosts: new(atomic.Pointer[http.Hosts])}
	d.store = swarm.New(storeConfig(&cfg))
	d.metrics = metrics.New(d.swarmStats)
	return d
}

// swarmStats are the store's figures as the metrics show them.
func (d *Daemon) swarmStats() metrics.SwarmStats {
	st := d.store.Stats()
	return metrics.SwarmStats{Torrents: st.Torrents,
		Seeders:      [metrics.NumFamilies]int{st.Seeders - st.Seeders6, st.Seeders6},
		Leechers:     [metrics.NumFamilies]int{st.Leechers - st.Leechers6, st.Leechers6},
		RefusedPeers: st.RefusedPeers, RefusedTorrents: st.RefusedTorrents, RefusedOutOfMemory: st.RefusedOutOfMemory}
}

// expiryInterval sweeps often enough that a peer outlives its TTL by at
// most a small fraction of it.
func expiryInterval(ttl time.Duration) time.Duration { return max(ttl/16, time.Second) }

// every calls f at each interval until the daemon stops.
func (d *Daemon) every(interval time.Duration, f func()) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-d.stopping:
			return
		case <-tick.C:
			f()
		}
	}
}

// goServe runs f until the daemon stops; Stop waits for it.
func (d *Daemon) goServe(f func()) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		f()
	}()
}

// Stop stops taking requests, waits for those under way to finish, sends
// the cluster node's last batch, and saves the database: every announce
// answered before the stop is in it. A save already under way (SIGUSR1)
// finishes first. It returns the final save's error. Later calls wait for
// the first and return its error.
func (d *Daemon) Stop() error {
	d.stopOnce.Do(func() { d.stopErr = d.stop() })
	return d.stopErr
}

// stop is Stop's one run.
func (d *Daemon) stop() error {
	close(d.stopping)
	for i := len(d.frontends) - 1; i >= 0; i-- {
		d.frontends[i].Close()
	}
	if d.stats != nil {
		d.stats.Close()
	}
	d.frontendsDone.Wait()
	if d.engine != nil {
		close(d.engineStop) // it closes what the frontends left in its loops
	}
	d.wg.Wait()
	d.closeCluster() // every announce answered is in its last batch
	return d.Save()
}

// UDPAddrs, HTTPAddrs and StatsAddr are the bound addresses, for tests that
// listen on port 0.
func (d *Daemon) UDPAddrs() []net.Addr { return addrsOf[*udp.Server](d.frontends) }

// HTTPAddrs are the HTTP listeners' addresses.
func (d *Daemon) HTTPAddrs() []net.Addr { return addrsOf[*http.Server](d.frontends) }

// addrsOf is the addresses of the frontends of type T, in their order.
func addrsOf[T frontend.Frontend](frontends []frontend.Frontend) []net.Addr {
	var a []net.Addr
	for _, f := range frontends {
		if _, ok := f.(T); ok {
			a = append(a, f.Addr())
		}
	}
	return a
}

// StatsAddr is the stats listener's address, or nil without one.
func (d *Daemon) StatsAddr() net.Addr {
	if d.statsLn == nil {
		return nil
	}
	return d.statsLn.Addr()
}

// Run serves until ctx is done or a SIGTERM or SIGINT arrives, reloading on
// SIGHUP and saving on SIGUSR1, and keeps systemd informed throughout. It
// fails if start does, or if the final save does: then the swarm since the
// last save is lost, and systemd must show the unit as failed.
func (d *Daemon) Run(ctx context.Context) error {
	// Signals are caught before anything starts, so that none arriving
	// during start-up takes the default action of killing the process.
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1)
	defer signal.Stop(signals)
	if err := d.Start(); err != nil {
		return fmt.Errorf("cannot start: %w", err)
	}
	stop, held := d.awaitCluster(ctx, signals) // READY once caught up with the cluster, if any
	if stop != nil {
		return d.shutdown(stop.String())
	}
	d.notify("READY=1\n" + d.status())
	for _, sig := range held {
		d.handle(sig)
	}
	d.goServe(func() { d.every(statusEvery, func() { d.notify(d.status()) }) })
	d.startWatchdog()
	for {
		select {
		case <-ctx.Done():
			return d.shutdown("context done")
		case sig := <-signals:
			if sig == syscall.SIGTERM || sig == syscall.SIGINT {
				return d.shutdown(sig.String())
			}
			d.handle(sig)
		}
	}
}

// handle acts on SIGUSR1 (save now) and SIGHUP (reload).
func (d *Daemon) handle(sig os.Signal) {
	switch sig {
	case syscall.SIGUSR1:
		go d.Save()
	case syscall.SIGHUP:
		d.notify("RELOADING=1\n" + sddaemon.SdNotifyMonotonicUsec() + "STATUS=reloading")
		if err := d.Reload(); err != nil {
			d.log.Errorf("reload failed, keeping the old configuration: %v", err)
		}
		d.notify("READY=1\n" + d.status())
	}
}

// shutdown stops the tracker and says how it ended.
func (d *Daemon) shutdown(why string) error {
	d.notify("STOPPING=1\nSTATUS=stopping: saving the database")
	d.log.Infof("stopping (%s)", why)
	err := d.Stop()
	st := d.store.Stats()
	if err != nil {
		return fmt.Errorf("stopped with %d peers in %d torrents, but the final save failed: the swarm since the last save is lost: %w", st.Peers(), st.Torrents, err)
	}
	d.log.Infof("stopped with %d peers in %d torrents", st.Peers(), st.Torrents)
	return nil
}
