package daemon

import (
	"fmt"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/config"
	"github.com/trakx/trakx/internal/frontend/engine"
	"github.com/trakx/trakx/internal/frontend/http"
	"github.com/trakx/trakx/internal/frontend/udp"
	"github.com/trakx/trakx/internal/frontend/websocket"
	"github.com/trakx/trakx/internal/fullscrape"
	"github.com/trakx/trakx/internal/ratelimit"
	"github.com/trakx/trakx/internal/sockstat"
	"github.com/trakx/trakx/internal/swarm"
	"github.com/trakx/trakx/internal/udpproto"
)

// newFrontends makes a frontend for each socket, in the order the start-up
// line names them: UDP, HTTP, HTTPS, then WebSocket on the HTTP and HTTPS
// listeners. A new protocol is one more constructor here. On error, what
// was made is discarded and the sockets are still the caller's.
func (d *Daemon) newFrontends(socks sockets) error {
	d.addUDP(socks)
	if len(socks.tcp)+len(socks.tls) == 0 {
		return nil
	}
	var err error
	if d.engine, err = engine.New(max(http.ReadBuffer, websocket.ReadBuffer(d.cfg.WebSocket.MaxMessageBytes))); err != nil {
		d.frontends = nil
		return fmt.Errorf("connection engine: %w", err)
	}
	if d.cfg.HTTP.WebSocket {
		if d.ws, err = d.newWebSocket(); err != nil {
			d.frontends = nil
			d.engine.Discard()
			return fmt.Errorf("websocket: %w", err)
		}
	}
	d.addHTTP(socks)
	if err := d.addHTTPS(socks); err != nil {
		d.frontends = nil
		d.engine.Discard()
		return err
	}
	if d.ws != nil {
		d.frontends = append(d.frontends, d.ws)
	}
	return nil
}

// addUDP serves BEP 15 on every datagram socket.
func (d *Daemon) addUDP(socks sockets) {
	ids := udpproto.NewConnectionIDs(d.cfg.UDP.ConnectionIDLifetime.Duration)
	for _, c := range socks.udp {
		d.frontends = append(d.frontends, udp.NewServer(c, d.gate, ids, d.budget, d.metrics, d.log))
	}
	d.metrics.SetUDPDrops(sockstat.UDPDrops(socks.udp))
}

// addHTTP serves HTTP on every stream socket, handing WebSocket upgrades
// to d.ws.
func (d *Daemon) addHTTP(socks sockets) {
	opts := d.httpOptions()
	d.hosts.Store(http.NewHosts(d.cfg.HTTP.AllowedHosts))
	d.fullScrape.Store(d.fullScrapeSettings(&d.cfg))
	for _, ln := range socks.tcp {
		deferAccept(ln, opts.ReadTimeout)
		d.frontends = append(d.frontends, http.NewServer(ln, d.gate, opts, d.metrics, d.log))
	}
}

// httpOptions are the HTTP frontend's settings, which HTTPS shares.
func (d *Daemon) httpOptions() http.Options {
	proxies, _ := d.cfg.HTTP.TrustedProxyPrefixes() // checked by Validate
	opts := http.Options{
		ReadTimeout:    d.cfg.HTTP.ReadTimeout.Duration,
		WriteTimeout:   d.cfg.HTTP.WriteTimeout.Duration,
		RealIPHeader:   d.cfg.HTTP.RealIPHeader,
		TrustedProxies: proxies,
		MaxConnections: d.cfg.HTTP.MaxConnections,
		MaxRequests:    d.cfg.HTTP.MaxRequestsPerConnection,
		Open:           &d.metrics.HTTPConnections,
		Budget:         d.budget,
		Engine:         d.engine,
		Hosts:          d.hosts,
		FullScrape:     &d.fullScrape,
		Evict:          d.evictTLS,
	}
	if d.ws != nil {
		opts.WebSocket = d.ws
	}
	return opts
}

// newWebSocket makes the WebTorrent frontend, which the HTTP servers hand
// their upgrades to, and the WebSocket swarms it serves: apart from the
// UDP/HTTP store, since a browser cannot reach a UDP or TCP peer.
func (d *Daemon) newWebSocket() (*websocket.Server, error) {
	w := &d.cfg.WebSocket
	return websocket.NewServer(websocket.Options{
		MaxConnections: w.MaxConnections, MaxOffers: w.MaxOffers, MaxMessageBytes: w.MaxMessageBytes,
		ReadTimeout: d.cfg.HTTP.ReadTimeout.Duration, WriteTimeout: d.cfg.HTTP.WriteTimeout.Duration,
		Budget: d.budget, Open: &d.metrics.HTTPConnections, Engine: d.engine, Swarms: websocket.NewSwarms(),
		Intervals: func() (time.Duration, time.Duration) {
			c := d.store.Config()
			return c.AnnounceInterval, c.PeerTTL
		},
	}, d.gate, d.metrics, d.log)
}

// fullScrapeSettings are http.full_scrape's keys for the HTTP servers:
// nil when off. The builder is made the first time it is on and kept
// across reloads, with its last snapshot (a new access list applies from
// the next build); a reload sets its interval.
func (d *Daemon) fullScrapeSettings(cfg *config.Config) *http.FullScrape {
	if !cfg.HTTP.FullScrape {
		return nil
	}
	interval := cfg.HTTP.FullScrapeInterval.Duration
	if d.scrapes == nil {
		d.scrapes = fullscrape.New(fullscrape.Options{
			Source:   d.store,
			Allowed:  func(h *bittorrent.InfoHash) bool { return d.gate.AdmitTorrent(h) == nil },
			Interval: interval,
			Built:    func(s *fullscrape.Snapshot) { d.metrics.RecordFullScrape(len(s.Gzip), s.Took) },
		})
	}
	d.scrapes.SetInterval(interval)
	from, _ := cfg.HTTP.FullScrapeFromPrefixes() // checked by Validate
	return &http.FullScrape{Builder: d.scrapes, From: from}
}

// budgetConfig is the per-source budget's part of the configuration.
func budgetConfig(cfg *config.Config) ratelimit.Config {
	return ratelimit.Config{Rate: cfg.Limits.PerIPRate, Burst: cfg.Limits.PerIPBurst, Tracked: cfg.Limits.TrackedIPs}
}

// storeConfig is the swarm store's part of the configuration.
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
