// Package daemon wires trakx together: configuration, the swarm store and
// its database, the access list, the UDP and HTTP frontends, the stats
// listener, systemd and the process's signals. It is the one place that
// knows about all of them.
package daemon

import (
	"context"
	"fmt"
	"net"
	nethttp "net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
	"github.com/sirupsen/logrus"
	"github.com/trakx/trakx/internal/access"
	"github.com/trakx/trakx/internal/config"
	"github.com/trakx/trakx/internal/frontend/engine"
	"github.com/trakx/trakx/internal/frontend/http"
	"github.com/trakx/trakx/internal/frontend/udp"
	"github.com/trakx/trakx/internal/frontend/websocket"
	"github.com/trakx/trakx/internal/logging"
	"github.com/trakx/trakx/internal/metrics"
	"github.com/trakx/trakx/internal/promexport"
	"github.com/trakx/trakx/internal/ratelimit"
	"github.com/trakx/trakx/internal/sockstat"
	"github.com/trakx/trakx/internal/swarm"
	"github.com/trakx/trakx/internal/udpproto"
)

// udpReceiveBuffer is the receive buffer asked for on UDP sockets trakx
// binds itself (trakx.socket sets the same with ReceiveBuffer=): room for
// bursts of requests while the workers are busy, where the kernel's
// default holds only a few hundred.
const udpReceiveBuffer = 4 << 20

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

	udp  []*udp.Server
	http []*http.Server
	ws   *websocket.Server // nil: WebSocket off
	// engine serves the HTTP connections that outlive their first read,
	// and the WebSockets; nil without HTTP listeners. It stops once the
	// HTTP servers are done (engineStop).
	engine     *engine.Engine
	engineStop chan struct{}
	httpDone   sync.WaitGroup
	stats      *nethttp.Server
	statsLn    net.Listener

	stopping chan struct{}
	wg       sync.WaitGroup

	saveMu sync.Mutex // one save at a time
}

// New prepares a tracker for cfg, read from configPath ("" for the built-in
// defaults), which SIGHUP reads again. version goes into the start-up line.
func New(cfg config.Config, configPath, version string, log *logrus.Logger) *Daemon {
	d := &Daemon{log: log, configPath: configPath, version: version, cfg: cfg, stopping: make(chan struct{})}
	d.store = swarm.New(storeConfig(&cfg))
	d.metrics = metrics.New(func() metrics.SwarmStats {
		st := d.store.Stats()
		return metrics.SwarmStats{Torrents: st.Torrents,
			Seeders:      [metrics.NumFamilies]int{st.Seeders - st.Seeders6, st.Seeders6},
			Leechers:     [metrics.NumFamilies]int{st.Leechers - st.Leechers6, st.Leechers6},
			RefusedPeers: st.RefusedPeers, RefusedTorrents: st.RefusedTorrents, RefusedOutOfMemory: st.RefusedOutOfMemory}
	})
	return d
}

// newWebSocket makes the WebTorrent frontend, which the HTTP servers hand
// their upgrades to, and the WebSocket swarms it serves: apart from the
// UDP/HTTP store, since a browser cannot reach a UDP or TCP peer.
func (d *Daemon) newWebSocket(readTimeout, writeTimeout time.Duration) (*websocket.Server, error) {
	w := &d.cfg.WebSocket
	return websocket.NewServer(websocket.Options{
		MaxConnections: w.MaxConnections, MaxOffers: w.MaxOffers, MaxMessageBytes: w.MaxMessageBytes,
		ReadTimeout: readTimeout, WriteTimeout: writeTimeout, Budget: d.budget, Open: &d.metrics.HTTPConnections, Engine: d.engine,
		Swarms: websocket.NewSwarms(),
		Intervals: func() (time.Duration, time.Duration) {
			c := d.store.Config()
			return c.AnnounceInterval, c.PeerTTL
		},
	}, d.gate, d.metrics, d.log)
}

func budgetConfig(cfg *config.Config) ratelimit.Config {
	return ratelimit.Config{Rate: cfg.Limits.PerIPRate, Burst: cfg.Limits.PerIPBurst, Tracked: cfg.Limits.TrackedIPs}
}

func storeConfig(cfg *config.Config) swarm.Config {
	return swarm.Config{
		AnnounceInterval: cfg.Tracker.AnnounceInterval.Duration,
		MinInterval:      cfg.Tracker.MinInterval.Duration,
		PeerTTL:          cfg.Tracker.PeerTTL.Duration,
		NumWantDefault:   cfg.Tracker.NumWantDefault,
		NumWantMax:       cfg.Tracker.NumWantMax,
		MaxPeers:         cfg.Tracker.MaxPeers,
		MaxTorrents:      cfg.Tracker.MaxTorrents,
		PrivatePeers:     cfg.Tracker.PrivatePeers,
	}
}

// Start loads the database, takes the sockets systemd passed or binds the
// configured ones, and starts serving. On error nothing is left open.
func (d *Daemon) Start() error {
	socks, err := inheritedSockets()
	if err != nil {
		return err
	}
	list, err := Check(&d.cfg, socks.inherited)
	if err != nil {
		socks.close()
		return err
	}
	if !socks.inherited {
		if socks, err = d.bind(); err != nil {
			return err
		}
	}
	if len(socks.udp)+len(socks.tcp) == 0 {
		return errNothingToServe
	}
	if d.cfg.Stats.Listen != "" {
		if d.statsLn, err = net.Listen("tcp", d.cfg.Stats.Listen); err != nil {
			socks.close()
			return fmt.Errorf("stats.listen %s: %w", d.cfg.Stats.Listen, err)
		}
	}

	d.load()
	d.gate = access.NewGate(d.store, list)
	d.gate.SetClients(access.NewClients(d.cfg.Access.ClientAllow, d.cfg.Access.ClientDeny))
	d.budget = ratelimit.New(budgetConfig(&d.cfg))
	ids := udpproto.NewConnectionIDs(d.cfg.UDP.ConnectionIDLifetime.Duration)
	for _, c := range socks.udp {
		d.udp = append(d.udp, udp.NewServer(c, d.gate, ids, d.budget, d.metrics, d.log))
	}
	d.metrics.SetUDPDrops(sockstat.UDPDrops(socks.udp))
	proxies, _ := d.cfg.HTTP.TrustedProxyPrefixes() // checked by Validate
	httpOpts := http.Options{
		ReadTimeout:    d.cfg.HTTP.ReadTimeout.Duration,
		WriteTimeout:   d.cfg.HTTP.WriteTimeout.Duration,
		RealIPHeader:   d.cfg.HTTP.RealIPHeader,
		TrustedProxies: proxies,
		MaxConnections: d.cfg.HTTP.MaxConnections,
		MaxRequests:    d.cfg.HTTP.MaxRequestsPerConnection,
		Open:           &d.metrics.HTTPConnections,
		Budget:         d.budget,
	}
	if len(socks.tcp) > 0 {
		if d.engine, err = engine.New(max(http.ReadBuffer, websocket.ReadBuffer(d.cfg.WebSocket.MaxMessageBytes))); err != nil {
			socks.close()
			return fmt.Errorf("connection engine: %w", err)
		}
		httpOpts.Engine = d.engine
	}
	if d.cfg.HTTP.WebSocket && len(socks.tcp) > 0 {
		if d.ws, err = d.newWebSocket(httpOpts.ReadTimeout, httpOpts.WriteTimeout); err != nil {
			socks.close()
			d.engine.Discard()
			return fmt.Errorf("websocket: %w", err)
		}
		httpOpts.WebSocket = d.ws
	}
	hosts := http.NewHosts(d.cfg.HTTP.AllowedHosts)
	for _, ln := range socks.tcp {
		deferAccept(ln, httpOpts.ReadTimeout)
		s := http.NewServer(ln, d.gate, httpOpts, d.metrics, d.log)
		s.SetHosts(hosts)
		d.http = append(d.http, s)
	}

	for _, s := range d.udp {
		d.goServe(s.Serve)
	}
	for _, s := range d.http {
		d.httpDone.Add(1)
		d.goServe(func() { defer d.httpDone.Done(); s.Serve() })
	}
	if d.engine != nil {
		// It outlives the HTTP servers, whose connections it closes.
		d.engineStop = make(chan struct{})
		d.goServe(func() { d.engine.Run(d.engineStop) })
	}
	if d.ws != nil {
		d.goServe(func() { d.ws.Run(d.stopping) })
	}
	if d.statsLn != nil {
		mux := d.metrics.Handler(d.cfg.Stats.Pprof)
		mux.Handle("GET /metrics", promexport.Handler(d.metrics, d.version))
		d.stats = &nethttp.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		d.goServe(func() { d.stats.Serve(d.statsLn) })
	}
	// The sweep follows peer_ttl, which a reload may change.
	d.goServe(func() {
		d.store.RunExpiry(func() time.Duration { return expiryInterval(d.store.Config().PeerTTL) }, d.stopping)
	})
	d.goServe(d.watchMemory)
	if interval := d.cfg.Database.SaveInterval.Duration; interval > 0 {
		d.goServe(func() { d.every(interval, func() { d.Save() }) })
	}
	d.log.Info(d.serving(socks.inherited, list))
	return nil
}

// bind opens the configured sockets.
func (d *Daemon) bind() (sockets, error) {
	var s sockets
	for _, addr := range d.cfg.UDP.Listen {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			s.close()
			return sockets{}, fmt.Errorf("udp.listen %s: %w", addr, err)
		}
		uc := pc.(*net.UDPConn)
		// Best effort: the kernel caps it at net.core.rmem_max.
		uc.SetReadBuffer(udpReceiveBuffer)
		s.udp = append(s.udp, uc)
	}
	for _, addr := range d.cfg.HTTP.Listen {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			s.close()
			return sockets{}, fmt.Errorf("http.listen %s: %w", addr, err)
		}
		s.tcp = append(s.tcp, ln)
	}
	return s, nil
}

// serving is the start-up line: what is served where, and with what.
func (d *Daemon) serving(inherited bool, list *access.List) string {
	var parts []string
	from := ""
	if inherited {
		from = " (inherited)"
	}
	for _, s := range d.udp {
		parts = append(parts, "udp "+s.Addr().String()+from)
	}
	for _, s := range d.http {
		parts = append(parts, "http "+s.Addr().String()+from)
	}
	if d.ws != nil {
		parts = append(parts, "websocket at /announce on the http listeners")
	}
	if d.statsLn != nil {
		parts = append(parts, "stats http://"+d.statsLn.Addr().String()+"/debug/vars and /metrics")
	}
	acl := "access off"
	if list.Mode() != access.Off {
		acl = fmt.Sprintf("access %s with %d info hashes from %s", list.Mode(), list.Len(), d.cfg.Access.File)
	}
	st := d.store.Stats()
	return fmt.Sprintf("trakx %s serving %s; %s; %s; %d peers in %d torrents", d.version, strings.Join(parts, ", "), acl, defences(&d.cfg), st.Peers(), st.Torrents)
}

// defences says which abuse defences are on, for the start-up and reload
// lines.
func defences(cfg *config.Config) string {
	budget := "per-IP budget off"
	if r := cfg.Limits.PerIPRate; r > 0 {
		budget = fmt.Sprintf("per-IP budget %g/s, burst %d, %d addresses tracked", r, cfg.Limits.PerIPBurst, cfg.Limits.TrackedIPs)
	}
	hosts := "any host"
	if len(cfg.HTTP.AllowedHosts) > 0 {
		hosts = "hosts " + strings.Join(cfg.HTTP.AllowedHosts, " ")
	}
	clients := "any client"
	if n, m := len(cfg.Access.ClientAllow), len(cfg.Access.ClientDeny); n+m > 0 {
		clients = fmt.Sprintf("clients: %d allowed, %d denied prefixes", n, m)
	}
	return budget + ", " + hosts + ", " + clients
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

func (d *Daemon) goServe(f func()) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		f()
	}()
}

// Stop stops taking requests, waits for those under way to finish, and
// saves the database: every announce answered before the stop is in it. A
// save already under way (SIGUSR1) finishes first. It returns the final
// save's error.
func (d *Daemon) Stop() error {
	close(d.stopping)
	if d.ws != nil {
		d.ws.Close() // goodbye frames, before the listeners wake everyone
	}
	for _, s := range d.udp {
		s.Close()
	}
	for _, s := range d.http {
		s.Close()
	}
	if d.stats != nil {
		d.stats.Close()
	}
	if d.engine != nil {
		d.httpDone.Wait()
		close(d.engineStop)
	}
	d.wg.Wait()
	return d.Save()
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

// reloadable are the sections, and single keys, a reload applies; a change
// to any other key is logged as needing a restart.
var reloadable = map[string]bool{"log": true, "tracker": true, "access": true, "limits": true, "http.allowed_hosts": true}

// Reload reads the configuration file again and applies what can change
// without dropping a peer: log level, the tracker section (intervals and
// the expiry sweep's, numwant and limits) and the access list. A file or
// list that does not load leaves everything as it was. Every other changed
// key (listeners, timeouts, the database path, ...) is logged as a warning
// naming it: it takes a restart.
func (d *Daemon) Reload() error {
	cfg, err := config.Load(d.configPath)
	if err != nil {
		return err
	}
	list, err := access.Load(access.Mode(cfg.Access.Mode), cfg.Access.File)
	if err != nil {
		return err
	}
	if err := logging.SetLevel(d.log, cfg.Log.Level); err != nil {
		return err
	}
	for _, key := range config.Changed(&d.cfg, &cfg) {
		if !reloadable[key] && !reloadable[strings.SplitN(key, ".", 2)[0]] {
			d.log.Warnf("%s changed, but takes a restart to apply (systemctl restart trakx); keeping the running value", key)
		}
	}
	d.store.SetConfig(storeConfig(&cfg))
	d.gate.SetList(list)
	d.gate.SetClients(access.NewClients(cfg.Access.ClientAllow, cfg.Access.ClientDeny))
	d.budget.Configure(budgetConfig(&cfg))
	hosts := http.NewHosts(cfg.HTTP.AllowedHosts)
	for _, s := range d.http {
		s.SetHosts(hosts)
	}
	d.cfg.Log, d.cfg.Tracker, d.cfg.Access, d.cfg.Limits = cfg.Log, cfg.Tracker, cfg.Access, cfg.Limits
	d.cfg.HTTP.AllowedHosts = cfg.HTTP.AllowedHosts
	acl := "access off"
	if list.Mode() != access.Off {
		acl = fmt.Sprintf("access %s with %d info hashes", list.Mode(), list.Len())
	}
	d.log.Infof("configuration reloaded: log level %s, announce interval %v, peer TTL %v, numwant %d/%d, %s, %s",
		cfg.Log.Level, cfg.Tracker.AnnounceInterval.Duration, cfg.Tracker.PeerTTL.Duration,
		cfg.Tracker.NumWantDefault, cfg.Tracker.NumWantMax, acl, defences(&cfg))
	return nil
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
	d.notify("READY=1\n" + d.status())
	d.goServe(func() { d.every(statusEvery, func() { d.notify(d.status()) }) })
	if interval, err := sddaemon.SdWatchdogEnabled(false); err != nil {
		d.log.WithError(err).Warn("watchdog settings")
	} else if interval > 0 {
		writeTimeout := d.cfg.HTTP.WriteTimeout.Duration
		d.goServe(func() { d.watchdog(interval, writeTimeout) })
	}
	for {
		select {
		case <-ctx.Done():
			return d.shutdown("context done")
		case sig := <-signals:
			switch sig {
			case syscall.SIGUSR1:
				go d.Save()
			case syscall.SIGHUP:
				d.notify("RELOADING=1\n" + sddaemon.SdNotifyMonotonicUsec() + "STATUS=reloading")
				if err := d.Reload(); err != nil {
					d.log.Errorf("reload failed, keeping the old configuration: %v", err)
				}
				d.notify("READY=1\n" + d.status())
			default:
				return d.shutdown(sig.String())
			}
		}
	}
}

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
