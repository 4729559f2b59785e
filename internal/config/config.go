// Package config reads /etc/trakx.toml. Every key is optional: what a file
// leaves out keeps its built-in default, so no file at all is a working
// configuration.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// MaxPeerTTL is the longest tracker.peer_ttl: the swarm store keeps a
// peer's last-seen time as seconds modulo 2^16 (swarm.MaxPeerTTL).
const MaxPeerTTL = 12 * time.Hour

// DefaultPath is read when no -config is given and the file exists.
const DefaultPath = "/etc/trakx.toml"

// Duration is a time.Duration written as a string such as "30m".
type Duration struct{ time.Duration }

// UnmarshalText reads a Go duration; "0" is allowed without a unit.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(string(text))
	if err != nil {
		return fmt.Errorf("invalid duration %q (write it like \"30m\" or \"5s\")", text)
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration the way people write it.
func (d Duration) MarshalText() ([]byte, error) {
	s := d.Duration.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return []byte(s), nil
}

// Config is the whole configuration.
type Config struct {
	Log       Log       `toml:"log"`
	Tracker   Tracker   `toml:"tracker"`
	UDP       UDP       `toml:"udp"`
	HTTP      HTTP      `toml:"http"`
	Stats     Stats     `toml:"stats"`
	Database  Database  `toml:"database"`
	Access    Access    `toml:"access"`
	Limits    Limits    `toml:"limits"`
	WebSocket WebSocket `toml:"websocket"`
}

type Log struct {
	Level string `toml:"level"`
}

type Tracker struct {
	AnnounceInterval Duration `toml:"announce_interval"`
	MinInterval      Duration `toml:"min_interval"`
	PeerTTL          Duration `toml:"peer_ttl"`
	NumWantDefault   int      `toml:"numwant_default"`
	NumWantMax       int      `toml:"numwant_max"`
	MaxPeers         int64    `toml:"max_peers"`
	MaxTorrents      int64    `toml:"max_torrents"`
	PrivatePeers     bool     `toml:"private_peers"`
}

type UDP struct {
	Listen               []string `toml:"listen"`
	ConnectionIDLifetime Duration `toml:"connection_id_lifetime"`
}

type HTTP struct {
	Listen         []string `toml:"listen"`
	ReadTimeout    Duration `toml:"read_timeout"`
	WriteTimeout   Duration `toml:"write_timeout"`
	RealIPHeader   string   `toml:"real_ip_header"`
	TrustedProxies []string `toml:"trusted_proxies"`
	MaxConnections int64    `toml:"max_connections"`
	// MaxRequestsPerConnection closes a keep-alive connection after that
	// many requests, so that no client holds one for ever.
	MaxRequestsPerConnection int `toml:"max_requests_per_connection"`
	// AllowedHosts are the host names requests may be addressed to (the
	// Host header); empty: any.
	AllowedHosts []string `toml:"allowed_hosts"`
	// WebSocket serves WebTorrent clients over WebSocket at the announce
	// path.
	WebSocket bool `toml:"websocket"`
}

// WebSocket is the WebTorrent frontend's section.
type WebSocket struct {
	MaxConnections  int64 `toml:"max_connections"`
	MaxOffers       int   `toml:"max_offers"`
	MaxMessageBytes int   `toml:"max_message_bytes"`
}

type Stats struct {
	Listen string `toml:"listen"`
	// Pprof serves Go's profiles under /debug/pprof/ on the stats listener.
	Pprof bool `toml:"pprof"`
}

type Database struct {
	Path         string   `toml:"path"`
	SaveInterval Duration `toml:"save_interval"`
}

type Access struct {
	Mode string `toml:"mode"`
	File string `toml:"file"`
	// ClientAllow and ClientDeny are peer id prefixes: deny wins, and a
	// non-empty allow list serves only the clients it names.
	ClientAllow []string `toml:"client_allow"`
	ClientDeny  []string `toml:"client_deny"`
}

// Limits is the per-source request budget.
type Limits struct {
	PerIPRate  float64 `toml:"per_ip_rate"` // requests per second; 0: off
	PerIPBurst int     `toml:"per_ip_burst"`
	TrackedIPs int     `toml:"tracked_ips"`
}

// MaxTrackedIPs bounds limits.tracked_ips: about 1.7 GB of budgets.
const MaxTrackedIPs = 100_000_000

// Default returns the built-in configuration. The database lives in the
// state directory systemd gives the service, or else in the working
// directory.
func Default() Config {
	dbDir := ""
	if dirs := os.Getenv("STATE_DIRECTORY"); dirs != "" {
		dbDir, _, _ = strings.Cut(dirs, ":")
	}
	return Config{
		Log: Log{Level: "info"},
		Tracker: Tracker{
			AnnounceInterval: Duration{30 * time.Minute},
			MinInterval:      Duration{5 * time.Minute},
			PeerTTL:          Duration{45 * time.Minute},
			NumWantDefault:   50,
			NumWantMax:       200,
			// About 80 bytes a peer and a few hundred a torrent at most:
			// these bound the store near 1 GiB.
			MaxPeers:    10_000_000,
			MaxTorrents: 2_000_000,
		},
		UDP: UDP{Listen: []string{"[::]:6969"}, ConnectionIDLifetime: Duration{5 * time.Minute}},
		HTTP: HTTP{
			Listen:         []string{"[::]:6969"},
			ReadTimeout:    Duration{5 * time.Second},
			WriteTimeout:   Duration{5 * time.Second},
			TrustedProxies: []string{},
			// A connection costs about 20 KiB (goroutine and buffers).
			MaxConnections:           10_000,
			MaxRequestsPerConnection: 1000,
			AllowedHosts:             []string{},
			WebSocket:                true,
		},
		Stats:    Stats{Listen: "127.0.0.1:6880"},
		Database: Database{Path: filepath.Join(dbDir, "peers.db"), SaveInterval: Duration{5 * time.Minute}},
		Access:   Access{Mode: "off", File: "/etc/trakx/access.txt", ClientAllow: []string{}, ClientDeny: []string{}},
		Limits:   Limits{PerIPRate: 0, PerIPBurst: 20, TrackedIPs: 1_000_000},
		// Half of http.max_connections: long-lived WebSockets leave the
		// other half to announces over plain HTTP.
		WebSocket: WebSocket{MaxConnections: 5000, MaxOffers: 10, MaxMessageBytes: 64 << 10},
	}
}

// Load reads the file at path over the defaults. An empty path means the
// default file if it exists, else the defaults alone. Errors name the file
// and, where the decoder knows them, the key and line.
func Load(path string) (Config, error) {
	if path == "" {
		if _, err := os.Stat(DefaultPath); err != nil {
			return Default(), nil
		}
		path = DefaultPath
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	cfg, err := Parse(data)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Parse reads a configuration from TOML text over the defaults.
func Parse(data []byte) (Config, error) {
	cfg := Default()
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&cfg)
	if err != nil {
		return Config{}, err // the decoder's message names the line and key
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		keys := make([]string, len(undecoded))
		for i, k := range undecoded {
			keys[i] = k.String()
		}
		return Config{}, fmt.Errorf("unknown key %s", strings.Join(keys, ", "))
	}
	return cfg, cfg.Validate()
}

// Validate checks values the decoder cannot, naming the key at fault.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	positive := map[string]time.Duration{
		"tracker.announce_interval":  c.Tracker.AnnounceInterval.Duration,
		"tracker.min_interval":       c.Tracker.MinInterval.Duration,
		"tracker.peer_ttl":           c.Tracker.PeerTTL.Duration,
		"udp.connection_id_lifetime": c.UDP.ConnectionIDLifetime.Duration,
		"http.read_timeout":          c.HTTP.ReadTimeout.Duration,
		"http.write_timeout":         c.HTTP.WriteTimeout.Duration,
	}
	for _, key := range sortedKeys(positive) {
		if positive[key] < time.Second {
			bad(key, "must be at least 1s, not %v", positive[key])
		}
	}
	if c.Tracker.PeerTTL.Duration > MaxPeerTTL {
		bad("tracker.peer_ttl", "%v is longer than %v, the longest the swarm store keeps time for", c.Tracker.PeerTTL.Duration, MaxPeerTTL)
	}
	if c.Tracker.PeerTTL.Duration <= c.Tracker.AnnounceInterval.Duration {
		bad("tracker.peer_ttl", "%v must be longer than tracker.announce_interval (%v), or peers expire before they announce again",
			c.Tracker.PeerTTL.Duration, c.Tracker.AnnounceInterval.Duration)
	}
	if c.Tracker.MinInterval.Duration > c.Tracker.AnnounceInterval.Duration {
		bad("tracker.min_interval", "%v is longer than tracker.announce_interval (%v)", c.Tracker.MinInterval.Duration, c.Tracker.AnnounceInterval.Duration)
	}
	if c.Tracker.NumWantMax < 1 || c.Tracker.NumWantMax > 1000 {
		bad("tracker.numwant_max", "%d is not between 1 and 1000", c.Tracker.NumWantMax)
	}
	if c.Tracker.NumWantDefault < 0 || c.Tracker.NumWantDefault > c.Tracker.NumWantMax {
		bad("tracker.numwant_default", "%d is not between 0 and tracker.numwant_max (%d)", c.Tracker.NumWantDefault, c.Tracker.NumWantMax)
	}
	if c.Tracker.MaxPeers < 1 {
		bad("tracker.max_peers", "%d is not a positive number", c.Tracker.MaxPeers)
	}
	if c.HTTP.MaxRequestsPerConnection < 1 {
		bad("http.max_requests_per_connection", "%d is not a positive number", c.HTTP.MaxRequestsPerConnection)
	}
	if c.HTTP.MaxConnections < 1 {
		bad("http.max_connections", "%d is not a positive number", c.HTTP.MaxConnections)
	}
	if c.Tracker.MaxTorrents < 1 {
		bad("tracker.max_torrents", "%d is not a positive number", c.Tracker.MaxTorrents)
	}
	for i, a := range c.UDP.Listen {
		if err := checkHostPort(a); err != nil {
			bad(fmt.Sprintf("udp.listen[%d]", i), "%v", err)
		}
	}
	for i, a := range c.HTTP.Listen {
		if err := checkHostPort(a); err != nil {
			bad(fmt.Sprintf("http.listen[%d]", i), "%v", err)
		}
	}
	if c.Stats.Listen != "" {
		if err := checkHostPort(c.Stats.Listen); err != nil {
			bad("stats.listen", "%v", err)
		}
	}
	c.checkListenClashes(bad)
	if _, err := c.HTTP.TrustedProxyPrefixes(); err != nil {
		bad("http.trusted_proxies", "%v", err)
	}
	if c.HTTP.RealIPHeader != "" && strings.ContainsAny(c.HTTP.RealIPHeader, " :\t\r\n") {
		bad("http.real_ip_header", "%q is not a header name", c.HTTP.RealIPHeader)
	}
	if c.Database.Path == "" {
		bad("database.path", "must not be empty")
	}
	if c.Database.SaveInterval.Duration < 0 {
		bad("database.save_interval", "must not be negative")
	}
	switch c.Access.Mode {
	case "off":
	case "allow", "deny":
		if c.Access.File == "" {
			bad("access.file", "must be set when access.mode is %q", c.Access.Mode)
		}
	default:
		bad("access.mode", "%q is not one of off, allow, deny", c.Access.Mode)
	}
	c.validateLimits(bad)
	c.validateWebSocket(bad)
	c.validateHostsAndClients(bad)
	return errors.Join(errs...)
}

func (c *Config) validateLimits(bad func(key, format string, args ...any)) {
	if r := c.Limits.PerIPRate; r < 0 || math.IsNaN(r) || math.IsInf(r, 0) || (r > 0 && r < 1e-6) {
		bad("limits.per_ip_rate", "%v is not 0 (off) or a rate in requests per second of at least 0.000001", r)
	}
	if c.Limits.PerIPBurst < 1 || c.Limits.PerIPBurst > 1_000_000 {
		bad("limits.per_ip_burst", "%d is not between 1 and 1000000", c.Limits.PerIPBurst)
	}
	if c.Limits.TrackedIPs < 1 || c.Limits.TrackedIPs > MaxTrackedIPs {
		bad("limits.tracked_ips", "%d is not between 1 and %d", c.Limits.TrackedIPs, MaxTrackedIPs)
	}
}

func (c *Config) validateWebSocket(bad func(key, format string, args ...any)) {
	w := &c.WebSocket
	if w.MaxConnections < 1 {
		bad("websocket.max_connections", "%d is not a positive number", w.MaxConnections)
	}
	if w.MaxOffers < 1 || w.MaxOffers > 50 {
		bad("websocket.max_offers", "%d is not between 1 and 50", w.MaxOffers)
	}
	if w.MaxMessageBytes < 1024 || w.MaxMessageBytes > 16<<20 {
		bad("websocket.max_message_bytes", "%d is not between 1024 and 16777216", w.MaxMessageBytes)
	}
}

func (c *Config) validateHostsAndClients(bad func(key, format string, args ...any)) {
	for i, h := range c.HTTP.AllowedHosts {
		if err := CheckHostName(h); err != nil {
			bad(fmt.Sprintf("http.allowed_hosts[%d]", i), "%v", err)
		}
	}
	for key, list := range map[string][]string{"access.client_allow": c.Access.ClientAllow, "access.client_deny": c.Access.ClientDeny} {
		for i, p := range list {
			if p == "" || len(p) > 20 {
				bad(fmt.Sprintf("%s[%d]", key, i), "%q is not a peer id prefix of 1 to 20 bytes", p)
			}
		}
	}
}

// CheckHostName accepts what http.allowed_hosts may list: a host name, an
// IP address, an IPv6 literal in brackets, each with or without a port.
func CheckHostName(h string) error {
	host := h
	if hp, _, err := net.SplitHostPort(h); err == nil {
		host = hp
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	if host == "" || len(host) > 253 {
		return fmt.Errorf("%q is not a host name", h)
	}
	for _, label := range strings.Split(strings.TrimSuffix(host, "."), ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("%q is not a host name", h)
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("%q is not a host name: %q is not allowed in one", h, c)
			}
		}
	}
	return nil
}

// TrustedProxyPrefixes parses http.trusted_proxies; a bare address is a
// prefix of one address.
func (h *HTTP) TrustedProxyPrefixes() ([]netip.Prefix, error) {
	prefixes := make([]netip.Prefix, 0, len(h.TrustedProxies))
	for _, s := range h.TrustedProxies {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("%q is neither a CIDR prefix nor an address", s)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		prefixes = append(prefixes, p.Masked())
	}
	return prefixes, nil
}

// checkListenClashes refuses two listeners of one protocol on one address,
// which start could only fail to bind: a repeat in udp.listen or
// http.listen, or stats.listen on an HTTP tracker's address. A wildcard
// host (empty, 0.0.0.0, [::]) clashes with every host on its port.
func (c *Config) checkListenClashes(bad func(key, format string, args ...any)) {
	for _, list := range []struct {
		key   string
		addrs []string
	}{{"udp.listen", c.UDP.Listen}, {"http.listen", c.HTTP.Listen}} {
		for i := range list.addrs {
			for j := range i {
				if listenClash(list.addrs[i], list.addrs[j]) {
					bad(fmt.Sprintf("%s[%d]", list.key, i), "%q clashes with %q, also in %s", list.addrs[i], list.addrs[j], list.key)
				}
			}
		}
	}
	if c.Stats.Listen == "" {
		return
	}
	for _, a := range c.HTTP.Listen {
		if listenClash(c.Stats.Listen, a) {
			bad("stats.listen", "%q clashes with http.listen %q: stats must not share the tracker's port", c.Stats.Listen, a)
		}
	}
}

// listenClash reports whether two host:port listen addresses (already
// checked) would bind the same port on a shared address. Port 0 asks for
// any free port and clashes with nothing.
func listenClash(a, b string) bool {
	hostA, portA, errA := net.SplitHostPort(a)
	hostB, portB, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil || portA != portB || portA == "0" {
		return false
	}
	wild := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	if wild(hostA) || wild(hostB) {
		return true
	}
	ia, errA := netip.ParseAddr(hostA)
	ib, errB := netip.ParseAddr(hostB)
	if errA != nil || errB != nil {
		return hostA == hostB // localhost
	}
	return ia.Unmap() == ib.Unmap()
}

func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port (IPv6 hosts go in brackets: \"[::]:6969\")", s)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("%q: port %q is not a number from 0 to 65535", s, port)
	}
	if host != "" && host != "localhost" {
		if _, err := netip.ParseAddr(host); err != nil {
			return fmt.Errorf("%q: %q is not an IP address", s, host)
		}
	}
	return nil
}

func sortedKeys(m map[string]time.Duration) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := range keys {
		for j := i + 1; j < len(keys); j++ {
			if keys[j] < keys[i] {
				keys[i], keys[j] = keys[j], keys[i]
			}
		}
	}
	return keys
}

// TOML renders the configuration as a complete file.
func (c Config) TOML() string {
	var b bytes.Buffer
	if err := toml.NewEncoder(&b).Encode(c); err != nil {
		return "# cannot render: " + err.Error() + "\n"
	}
	return b.String()
}
