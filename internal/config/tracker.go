package config

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/trakx/trakx/internal/swarm"
)

// Log is [log]: how much the tracker says.
type Log struct {
	// Level is debug, info, warn or error; a reload applies it.
	Level string `toml:"level"`
}

func defaultLog() Log { return Log{Level: "info"} }

func (l *Log) validate(p *problems) {
	switch l.Level {
	case "debug", "info", "warn", "error":
	default:
		p.add("log.level", "%q is not one of debug, info, warn, error", l.Level)
	}
}

// Tracker is [tracker]: what clients are told and how much the swarm store
// keeps. A reload applies every key.
type Tracker struct {
	AnnounceInterval Duration `toml:"announce_interval"` // how often clients are asked to announce
	MinInterval      Duration `toml:"min_interval"`      // the least they may wait
	// PeerTTL is how long a silent peer is kept: longer than the announce
	// interval, at most swarm.MaxPeerTTL.
	PeerTTL        Duration `toml:"peer_ttl"`
	NumWantDefault int      `toml:"numwant_default"` // peers given to a client that asks for none
	NumWantMax     int      `toml:"numwant_max"`     // the most given to any client
	MaxPeers       int64    `toml:"max_peers"`       // newcomers past it are refused
	MaxTorrents    int64    `toml:"max_torrents"`    // new torrents past it are refused
	// PrivatePeers sends peers at private, loopback, link-local or
	// carrier-grade-NAT addresses to every client (off: only to clients at
	// such addresses themselves).
	PrivatePeers bool `toml:"private_peers"`
}

func defaultTracker() Tracker {
	return Tracker{
		AnnounceInterval: Duration{30 * time.Minute},
		MinInterval:      Duration{5 * time.Minute},
		PeerTTL:          Duration{45 * time.Minute},
		NumWantDefault:   50,
		NumWantMax:       200,
		// At both, the store takes about 0.2 to 0.63 GiB, by the peers'
		// family and how they spread over torrents (docs/benchmarks.md).
		MaxPeers:    10_000_000,
		MaxTorrents: 2_000_000,
	}
}

func (t *Tracker) validate(p *problems) {
	p.atLeastASecond("tracker.announce_interval", t.AnnounceInterval)
	p.atLeastASecond("tracker.min_interval", t.MinInterval)
	p.atLeastASecond("tracker.peer_ttl", t.PeerTTL)
	if t.PeerTTL.Duration > swarm.MaxPeerTTL {
		p.add("tracker.peer_ttl", "%v is longer than %v, the longest the swarm store keeps time for", t.PeerTTL.Duration, swarm.MaxPeerTTL)
	}
	if t.PeerTTL.Duration <= t.AnnounceInterval.Duration {
		p.add("tracker.peer_ttl", "%v must be longer than tracker.announce_interval (%v), or peers expire before they announce again",
			t.PeerTTL.Duration, t.AnnounceInterval.Duration)
	}
	if t.MinInterval.Duration > t.AnnounceInterval.Duration {
		p.add("tracker.min_interval", "%v is longer than tracker.announce_interval (%v)", t.MinInterval.Duration, t.AnnounceInterval.Duration)
	}
	if t.NumWantMax < 1 || t.NumWantMax > 1000 {
		p.add("tracker.numwant_max", "%d is not between 1 and 1000", t.NumWantMax)
	}
	if t.NumWantDefault < 0 || t.NumWantDefault > t.NumWantMax {
		p.add("tracker.numwant_default", "%d is not between 0 and tracker.numwant_max (%d)", t.NumWantDefault, t.NumWantMax)
	}
	p.positive("tracker.max_peers", t.MaxPeers)
	p.positive("tracker.max_torrents", t.MaxTorrents)
}

// Database is [database]: where the swarms are saved, and how often.
type Database struct {
	Path         string   `toml:"path"`
	SaveInterval Duration `toml:"save_interval"` // 0: only on stop and on SIGUSR1
}

// defaultDatabase keeps the database in the state directory systemd gives
// the service, or else in the working directory.
func defaultDatabase() Database {
	dir := ""
	if dirs := os.Getenv("STATE_DIRECTORY"); dirs != "" {
		dir, _, _ = strings.Cut(dirs, ":")
	}
	return Database{Path: filepath.Join(dir, "peers.db"), SaveInterval: Duration{5 * time.Minute}}
}

func (d *Database) validate(p *problems) {
	if d.Path == "" {
		p.add("database.path", "must not be empty")
	}
	if d.SaveInterval.Duration < 0 {
		p.add("database.save_interval", "must not be negative")
	}
}

// Access is [access]: which torrents and clients are served. A reload
// applies every key.
type Access struct {
	Mode string `toml:"mode"` // off, allow (a whitelist) or deny (a blacklist)
	File string `toml:"file"` // the info hashes, one a line in hex
	// ClientAllow and ClientDeny are peer id prefixes: deny wins, and a
	// non-empty allow list serves only the clients it names.
	ClientAllow []string `toml:"client_allow"`
	ClientDeny  []string `toml:"client_deny"`
}

func defaultAccess() Access {
	return Access{Mode: "off", File: "/etc/trakx/access.txt", ClientAllow: []string{}, ClientDeny: []string{}}
}

func (a *Access) validate(p *problems) {
	switch a.Mode {
	case "off":
	case "allow", "deny":
		if a.File == "" {
			p.add("access.file", "must be set when access.mode is %q", a.Mode)
		}
	default:
		p.add("access.mode", "%q is not one of off, allow, deny", a.Mode)
	}
	for _, list := range []struct {
		key      string
		prefixes []string
	}{{"access.client_allow", a.ClientAllow}, {"access.client_deny", a.ClientDeny}} {
		for i, prefix := range list.prefixes {
			if prefix == "" || len(prefix) > 20 {
				p.add(fmt.Sprintf("%s[%d]", list.key, i), "%q is not a peer id prefix of 1 to 20 bytes", prefix)
			}
		}
	}
}

// Limits is [limits]: the per-source request budget, shared by every
// protocol. A reload applies every key.
type Limits struct {
	PerIPRate  float64 `toml:"per_ip_rate"` // requests per second; 0: off
	PerIPBurst int     `toml:"per_ip_burst"`
	TrackedIPs int     `toml:"tracked_ips"` // sources remembered at once
}

// MaxTrackedIPs bounds limits.tracked_ips: about 1.7 GB of budgets.
const MaxTrackedIPs = 100_000_000

func defaultLimits() Limits { return Limits{PerIPRate: 0, PerIPBurst: 20, TrackedIPs: 1_000_000} }

func (l *Limits) validate(p *problems) {
	if r := l.PerIPRate; r < 0 || math.IsNaN(r) || math.IsInf(r, 0) || (r > 0 && r < 1e-6) {
		p.add("limits.per_ip_rate", "%v is not 0 (off) or a rate in requests per second of at least 0.000001", r)
	}
	if l.PerIPBurst < 1 || l.PerIPBurst > 1_000_000 {
		p.add("limits.per_ip_burst", "%d is not between 1 and 1000000", l.PerIPBurst)
	}
	if l.TrackedIPs < 1 || l.TrackedIPs > MaxTrackedIPs {
		p.add("limits.tracked_ips", "%d is not between 1 and %d", l.TrackedIPs, MaxTrackedIPs)
	}
}
