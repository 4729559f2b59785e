package daemon

import (
	"fmt"
	"net"
	nethttp "net/http"
	"strings"
	"time"

	"github.com/trakx/trakx/internal/access"
	"github.com/trakx/trakx/internal/promexport"
	"github.com/trakx/trakx/internal/ratelimit"
	"github.com/trakx/trakx/internal/statspage"
)

// udpReceiveBuffer is the receive buffer asked for on UDP sockets trakx
// binds itself (trakx.socket sets the same with ReceiveBuffer=): room for
// bursts of requests while the workers are busy, where the kernel's
// default holds only a few hundred.
const udpReceiveBuffer = 4 << 20

// Start loads the database, takes the sockets systemd passed or binds the
// configured ones, and starts serving. On error nothing is left open.
func (d *Daemon) Start() error {
	socks, list, err := d.takeSockets()
	if err != nil {
		return err
	}
	fail := func(err error) error {
		socks.close()
		if d.statsLn != nil {
			d.statsLn.Close()
		}
		d.closeCluster()
		return err
	}
	if d.cfg.Stats.Listen != "" {
		if d.statsLn, err = net.Listen("tcp", d.cfg.Stats.Listen); err != nil {
			return fail(fmt.Errorf("stats.listen %s: %w", d.cfg.Stats.Listen, err))
		}
	}
	d.load()
	// The frontends' gate passes announces to the store, or in a cluster
	// to the node's decorator in front of it.
	tracker, err := d.newCluster()
	if err != nil {
		return fail(err)
	}
	d.gate = access.NewGate(tracker, list)
	d.gate.SetClients(access.NewClients(d.cfg.Access.ClientAllow, d.cfg.Access.ClientDeny))
	d.budget = ratelimit.New(budgetConfig(&d.cfg))
	if err := d.startCluster(); err != nil {
		return fail(err)
	}
	if err := d.newFrontends(socks); err != nil {
		return fail(err)
	}
	d.serve()
	d.log.Info(d.serving(socks.inherited, list))
	return nil
}

// takeSockets checks the configuration against the machine (Check), then
// takes the sockets systemd passed or binds the configured ones.
func (d *Daemon) takeSockets() (sockets, *access.List, error) {
	socks, err := inheritedSockets()
	if err != nil {
		return sockets{}, nil, err
	}
	list, err := Check(&d.cfg, socks.inherited)
	if err != nil {
		socks.close()
		return sockets{}, nil, err
	}
	if !socks.inherited {
		if socks, err = d.bind(); err != nil {
			return sockets{}, nil, err
		}
	}
	if len(socks.udp)+len(socks.tcp)+len(socks.tls) == 0 {
		return sockets{}, nil, errNothingToServe
	}
	return socks, list, nil
}

// serve starts the frontends, the engine under them, the stats listener
// and the daemon's own chores: the expiry sweep, the memory watch and the
// periodic save.
func (d *Daemon) serve() {
	for _, f := range d.frontends {
		d.frontendsDone.Add(1)
		d.goServe(func() { defer d.frontendsDone.Done(); f.Serve() })
	}
	if d.engine != nil {
		// It outlives the frontends, whose connections it closes.
		d.engineStop = make(chan struct{})
		d.goServe(func() { d.engine.Run(d.engineStop) })
	}
	if d.statsLn != nil {
		mux := d.metrics.Handler(d.cfg.Stats.Pprof)
		mux.Handle("GET /metrics", promexport.Handler(d.metrics, d.version))
		page := statspage.New(statspage.Options{Totals: d.metrics.Totals, Visit: d.store.EachTorrent, Version: d.version})
		page.Register(mux)
		d.goServe(func() { page.Run(d.stopping) })
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
	for _, addr := range d.cfg.HTTPS.Listen {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			s.close()
			return sockets{}, fmt.Errorf("https.listen %s: %w", addr, err)
		}
		s.tls = append(s.tls, ln)
	}
	return s, nil
}

// serving is the start-up line: what is served where, and with what.
func (d *Daemon) serving(inherited bool, list *access.List) string {
	var parts []string
	for _, f := range d.frontends {
		part := f.Describe()
		if inherited && f.Addr() != nil {
			part += " (inherited)"
		}
		parts = append(parts, part)
	}
	if d.statsLn != nil {
		at := "http://" + d.statsLn.Addr().String()
		parts = append(parts, "stats "+at+"/debug/vars and /metrics", "stats page "+at+"/ and /stats.json")
	}
	if c := d.describeCluster(); c != "" {
		parts = append(parts, c)
	}
	acl := "access off"
	if list.Mode() != access.Off {
		acl = fmt.Sprintf("access %s with %d info hashes from %s", list.Mode(), list.Len(), d.cfg.Access.File)
	}
	st := d.store.Stats()
	return fmt.Sprintf("trakx %s serving %s; %s; %s; %d peers in %d torrents", d.version, strings.Join(parts, ", "), acl, defences(&d.cfg), st.Peers(), st.Torrents)
}
