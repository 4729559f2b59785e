package daemon

import (
	"fmt"
	"strings"

	"github.com/trakx/trakx/internal/access"
	"github.com/trakx/trakx/internal/config"
	"github.com/trakx/trakx/internal/frontend/http"
	"github.com/trakx/trakx/internal/logging"
)

// reloadable are the sections, and single keys, a reload applies; a change
// to any other key is logged as needing a restart.
var reloadable = map[string]bool{"log": true, "tracker": true, "access": true, "limits": true, "http.allowed_hosts": true,
	"http.full_scrape": true, "http.full_scrape_interval": true, "http.full_scrape_from": true,
	"https.cert": true, "https.key": true, "cluster.replicate_private": true, "cluster.credentials": true}

// Reload reads the configuration file again and applies what can change
// without dropping a peer: log level, the tracker section (intervals and
// the expiry sweep's, numwant and limits), the access list, the per-IP
// budget, http.allowed_hosts, the http.full_scrape keys (turned off, the
// snapshot is dropped, and trakx_full_scrape_bytes is 0), and HTTPS's
// certificate and key (new handshakes get the new pair, open connections
// keep theirs), cluster.replicate_private (from the next announce) and
// cluster.credentials (a new path, or new contents: the node reconnects
// with them).
// A file or list that does not load leaves everything as it was; a
// certificate that does not load is logged, and the old one kept. Every
// other changed key (listeners, timeouts, the database path, the other
// cluster keys, ...) is logged as a warning naming it: it takes a
// restart.
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
	d.hosts.Store(http.NewHosts(cfg.HTTP.AllowedHosts))
	d.fullScrape.Store(d.fullScrapeSettings(&cfg))
	if !cfg.HTTP.FullScrape && d.scrapes != nil { // off: its snapshot goes with the replies under way
		d.scrapes.Close()
		d.scrapes = nil // on again, a builder anew
		d.metrics.RecordFullScrape(0, 0)
	}
	d.cfg.Log, d.cfg.Tracker, d.cfg.Access, d.cfg.Limits = cfg.Log, cfg.Tracker, cfg.Access, cfg.Limits
	d.cfg.HTTP.AllowedHosts = cfg.HTTP.AllowedHosts
	d.cfg.HTTP.FullScrape, d.cfg.HTTP.FullScrapeInterval, d.cfg.HTTP.FullScrapeFrom = cfg.HTTP.FullScrape, cfg.HTTP.FullScrapeInterval, cfg.HTTP.FullScrapeFrom
	d.reloadKeyPair(&cfg)
	d.replicatePrivate.Store(cfg.Cluster.ReplicatePrivate) // read at each announce
	d.cfg.Cluster.ReplicatePrivate = cfg.Cluster.ReplicatePrivate
	d.reloadClusterCredentials(&cfg)
	acl := "access off"
	if list.Mode() != access.Off {
		acl = fmt.Sprintf("access %s with %d info hashes", list.Mode(), list.Len())
	}
	d.log.Infof("configuration reloaded: log level %s, announce interval %v, peer TTL %v, numwant %d/%d, %s, %s",
		cfg.Log.Level, cfg.Tracker.AnnounceInterval.Duration, cfg.Tracker.PeerTTL.Duration,
		cfg.Tracker.NumWantDefault, cfg.Tracker.NumWantMax, acl, defences(&cfg))
	return nil
}

// defences says which abuse defences are on, and whether the full scrape
// is, for the start-up and reload lines.
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
	full := ""
	if h := &cfg.HTTP; h.FullScrape {
		full = ", full scrape at most every " + h.FullScrapeInterval.Duration.String()
		if len(h.FullScrapeFrom) > 0 {
			full += " to " + strings.Join(h.FullScrapeFrom, " ")
		}
	}
	return budget + ", " + hosts + ", " + clients + full
}
