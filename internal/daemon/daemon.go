// Package daemon wires trakx together: configuration, the swarm store, the
// UDP and HTTP frontends, the stats listener and the process's signals. It
// is the one place that knows about all of them.
package daemon

import (
	"context"
	"fmt"
	"net"
	nethttp "net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/trakx/trakx/internal/config"
	"github.com/trakx/trakx/internal/frontend/http"
	"github.com/trakx/trakx/internal/frontend/udp"
	"github.com/trakx/trakx/internal/logging"
	"github.com/trakx/trakx/internal/metrics"
	"github.com/trakx/trakx/internal/swarm"
	"github.com/trakx/trakx/internal/udpproto"
)

// Daemon is one running tracker.
type Daemon struct {
	log        *logrus.Logger
	configPath string
	cfg        config.Config

	store   *swarm.Store
	metrics *metrics.Metrics

	udp     []*udp.Server
	http    []*http.Server
	stats   *nethttp.Server
	statsLn net.Listener

	stopping chan struct{}
	wg       sync.WaitGroup

	saveMu sync.Mutex // one save at a time
}

// New prepares a tracker for cfg, read from configPath ("" for the built-in
// defaults), which SIGHUP reads again.
func New(cfg config.Config, configPath string, log *logrus.Logger) *Daemon {
	d := &Daemon{log: log, configPath: configPath, cfg: cfg, stopping: make(chan struct{})}
	d.store = swarm.New(storeConfig(&cfg))
	d.metrics = metrics.New(func() metrics.SwarmStats {
		st := d.store.Stats()
		return metrics.SwarmStats{Torrents: st.Torrents, Peers: st.Peers(), Seeders: st.Seeders, Leechers: st.Leechers}
	})
	return d
}

func storeConfig(cfg *config.Config) swarm.Config {
	return swarm.Config{
		AnnounceInterval: cfg.Tracker.AnnounceInterval.Duration,
		MinInterval:      cfg.Tracker.MinInterval.Duration,
		PeerTTL:          cfg.Tracker.PeerTTL.Duration,
		NumWantDefault:   cfg.Tracker.NumWantDefault,
		NumWantMax:       cfg.Tracker.NumWantMax,
	}
}

// Start binds every configured socket and starts serving. On error nothing
// is left open.
func (d *Daemon) Start() (err error) {
	d.load()
	defer func() {
		if err != nil {
			d.closeListeners()
		}
	}()
	ids := udpproto.NewConnectionIDs(d.cfg.UDP.ConnectionIDLifetime.Duration)
	for _, addr := range d.cfg.UDP.Listen {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return fmt.Errorf("udp.listen %s: %w", addr, err)
		}
		d.udp = append(d.udp, udp.NewServer(pc.(*net.UDPConn), d.store, ids, d.metrics, d.log))
	}
	proxies, err := d.cfg.HTTP.TrustedProxyPrefixes()
	if err != nil {
		return err
	}
	httpOpts := http.Options{
		ReadTimeout:    d.cfg.HTTP.ReadTimeout.Duration,
		WriteTimeout:   d.cfg.HTTP.WriteTimeout.Duration,
		RealIPHeader:   d.cfg.HTTP.RealIPHeader,
		TrustedProxies: proxies,
	}
	for _, addr := range d.cfg.HTTP.Listen {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("http.listen %s: %w", addr, err)
		}
		d.http = append(d.http, http.NewServer(ln, d.store, httpOpts, d.metrics, d.log))
	}
	if d.cfg.Stats.Listen != "" {
		if d.statsLn, err = net.Listen("tcp", d.cfg.Stats.Listen); err != nil {
			return fmt.Errorf("stats.listen %s: %w", d.cfg.Stats.Listen, err)
		}
		d.stats = &nethttp.Server{Handler: d.metrics.Handler(), ReadHeaderTimeout: 5 * time.Second}
	}

	for _, s := range d.udp {
		d.goServe(s.Serve)
		d.log.Infof("udp tracker on %s", s.Addr())
	}
	for _, s := range d.http {
		d.goServe(s.Serve)
		d.log.Infof("http tracker on %s", s.Addr())
	}
	if d.stats != nil {
		d.goServe(func() { d.stats.Serve(d.statsLn) })
		d.log.Infof("stats on http://%s/debug/vars", d.statsLn.Addr())
	}
	d.goServe(func() { d.store.RunExpiry(expiryInterval(d.cfg.Tracker.PeerTTL.Duration), d.stopping) })
	if every := d.cfg.Database.SaveInterval.Duration; every > 0 {
		d.goServe(func() { d.saveEvery(every) })
	}
	return nil
}

// expiryInterval sweeps often enough that a peer outlives its TTL by at
// most a small fraction of it.
func expiryInterval(ttl time.Duration) time.Duration { return max(ttl/16, time.Second) }

func (d *Daemon) goServe(f func()) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		f()
	}()
}

func (d *Daemon) closeListeners() {
	for _, s := range d.udp {
		s.Close()
	}
	for _, s := range d.http {
		s.Close()
	}
	if d.stats != nil {
		d.stats.Close()
	} else if d.statsLn != nil {
		d.statsLn.Close()
	}
}

// Stop stops taking requests, waits for those under way to finish, and
// saves the database: every announce answered before the stop is in it.
func (d *Daemon) Stop() {
	close(d.stopping)
	d.closeListeners()
	d.wg.Wait()
	d.Save()
}

// UDPAddrs, HTTPAddrs and StatsAddr are the bound addresses, for tests that
// listen on port 0.
func (d *Daemon) UDPAddrs() []net.Addr {
	var a []net.Addr
	for _, s := range d.udp {
		a = append(a, s.Addr())
	}
	return a
}

func (d *Daemon) HTTPAddrs() []net.Addr {
	var a []net.Addr
	for _, s := range d.http {
		a = append(a, s.Addr())
	}
	return a
}

func (d *Daemon) StatsAddr() net.Addr {
	if d.statsLn == nil {
		return nil
	}
	return d.statsLn.Addr()
}

// Metrics returns the tracker's counters.
func (d *Daemon) Metrics() *metrics.Metrics { return d.metrics }

// Reload reads the configuration file again and applies what can change
// without dropping a peer: log level, intervals and numwant limits. A file
// that does not load leaves everything as it was.
func (d *Daemon) Reload() error {
	cfg, err := config.Load(d.configPath)
	if err != nil {
		return err
	}
	if err := logging.SetLevel(d.log, cfg.Log.Level); err != nil {
		return err
	}
	d.store.SetConfig(storeConfig(&cfg))
	d.cfg.Log, d.cfg.Tracker = cfg.Log, cfg.Tracker
	return nil
}

// Run serves until ctx is done or a SIGTERM or SIGINT arrives, reloading on
// SIGHUP.
func (d *Daemon) Run(ctx context.Context) error {
	// Signals are caught before anything starts, so that none arriving
	// during start-up takes the default action of killing the process.
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1)
	defer signal.Stop(signals)
	if err := d.Start(); err != nil {
		return err
	}
	st := d.store.Stats()
	d.log.Infof("trakx ready: %d peers in %d torrents", st.Peers(), st.Torrents)
	for {
		select {
		case <-ctx.Done():
			d.shutdown("context done")
			return nil
		case sig := <-signals:
			if sig == syscall.SIGUSR1 {
				go d.Save()
				continue
			}
			if sig == syscall.SIGHUP {
				if err := d.Reload(); err != nil {
					d.log.Errorf("reload failed, keeping the old configuration: %v", err)
				} else {
					d.log.Info("configuration reloaded")
				}
				continue
			}
			d.shutdown(sig.String())
			return nil
		}
	}
}

func (d *Daemon) shutdown(why string) {
	d.log.Infof("stopping (%s)", why)
	d.Stop()
	st := d.store.Stats()
	d.log.Infof("stopped with %d peers in %d torrents", st.Peers(), st.Torrents)
}
