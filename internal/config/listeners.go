package config

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// UDP is [udp]: the BEP 15 frontend. Its keys take a restart.
type UDP struct {
	Listen []string `toml:"listen"` // host:port each; [] serves no UDP
	// ConnectionIDLifetime is how long a connection id from a connect
	// stays good (BEP 15 says two minutes at least).
	ConnectionIDLifetime Duration `toml:"connection_id_lifetime"`
}

func defaultUDP() UDP {
	return UDP{Listen: []string{"[::]:6969"}, ConnectionIDLifetime: Duration{5 * time.Minute}}
}

func (u *UDP) validate(p *problems) {
	p.atLeastASecond("udp.connection_id_lifetime", u.ConnectionIDLifetime)
	checkListen(p, "udp.listen", u.Listen)
}

// HTTP is [http]: the HTTP frontend, and the WebSocket one on its
// listeners. Its keys take a restart but for allowed_hosts and the
// full_scrape ones.
type HTTP struct {
	Listen       []string `toml:"listen"`        // host:port each; [] serves no HTTP
	ReadTimeout  Duration `toml:"read_timeout"`  // for a whole request, and an idle keep-alive
	WriteTimeout Duration `toml:"write_timeout"` // for a reply
	// RealIPHeader names the header (X-Forwarded-For, X-Real-IP) whose
	// address a trusted proxy vouches for; empty: none.
	RealIPHeader   string   `toml:"real_ip_header"`
	TrustedProxies []string `toml:"trusted_proxies"` // CIDR prefixes or addresses
	MaxConnections int64    `toml:"max_connections"` // open at once, WebSockets included
	// MaxRequestsPerConnection closes a keep-alive connection after that
	// many requests, so that no client holds one for ever.
	MaxRequestsPerConnection int `toml:"max_requests_per_connection"`
	// AllowedHosts are the host names requests may be addressed to (the
	// Host header); empty: any.
	AllowedHosts []string `toml:"allowed_hosts"`
	// WebSocket serves WebTorrent clients over WebSocket at the announce
	// path.
	WebSocket bool `toml:"websocket"`
	// FullScrape answers GET /scrape without info_hash with every torrent
	// the access list allows (BEP 48), from a snapshot built at most once
	// per FullScrapeInterval, to addresses in FullScrapeFrom (CIDR
	// prefixes or addresses; empty: anyone).
	FullScrape         bool     `toml:"full_scrape"`
	FullScrapeInterval Duration `toml:"full_scrape_interval"`
	FullScrapeFrom     []string `toml:"full_scrape_from"`
}

func defaultHTTP() HTTP {
	return HTTP{
		Listen:         []string{"[::]:6969"},
		ReadTimeout:    Duration{5 * time.Second},
		WriteTimeout:   Duration{5 * time.Second},
		TrustedProxies: []string{},
		// A connection costs about 20 KiB (goroutine and buffers).
		MaxConnections:           10_000,
		MaxRequestsPerConnection: 1000,
		AllowedHosts:             []string{},
		WebSocket:                true,
		FullScrapeInterval:       Duration{time.Minute},
		FullScrapeFrom:           []string{},
	}
}

func (h *HTTP) validate(p *problems) {
	p.atLeastASecond("http.read_timeout", h.ReadTimeout)
	p.atLeastASecond("http.write_timeout", h.WriteTimeout)
	checkListen(p, "http.listen", h.Listen)
	if _, err := h.TrustedProxyPrefixes(); err != nil {
		p.add("http.trusted_proxies", "%v", err)
	}
	p.atLeastASecond("http.full_scrape_interval", h.FullScrapeInterval)
	if _, err := h.FullScrapeFromPrefixes(); err != nil {
		p.add("http.full_scrape_from", "%v", err)
	}
	if h.RealIPHeader != "" && strings.ContainsAny(h.RealIPHeader, " :\t\r\n") {
		p.add("http.real_ip_header", "%q is not a header name", h.RealIPHeader)
	}
	p.positive("http.max_connections", h.MaxConnections)
	p.positive("http.max_requests_per_connection", int64(h.MaxRequestsPerConnection))
	for i, host := range h.AllowedHosts {
		if err := CheckHostName(host); err != nil {
			p.add(fmt.Sprintf("http.allowed_hosts[%d]", i), "%v", err)
		}
	}
}

// WebSocket is [websocket]: the WebTorrent frontend's own bounds. Its keys
// take a restart.
type WebSocket struct {
	MaxConnections  int64 `toml:"max_connections"`   // WebSockets open at once
	MaxOffers       int   `toml:"max_offers"`        // offers relayed from one announce
	MaxMessageBytes int   `toml:"max_message_bytes"` // the largest message read
}

// defaultWebSocket allows half of http.max_connections: long-lived
// WebSockets leave the other half to announces over plain HTTP.
func defaultWebSocket() WebSocket {
	return WebSocket{MaxConnections: 5000, MaxOffers: 10, MaxMessageBytes: 64 << 10}
}

func (w *WebSocket) validate(p *problems) {
	p.positive("websocket.max_connections", w.MaxConnections)
	if w.MaxOffers < 1 || w.MaxOffers > 50 {
		p.add("websocket.max_offers", "%d is not between 1 and 50", w.MaxOffers)
	}
	if w.MaxMessageBytes < 1024 || w.MaxMessageBytes > 16<<20 {
		p.add("websocket.max_message_bytes", "%d is not between 1024 and 16777216", w.MaxMessageBytes)
	}
}

// Stats is [stats]: the listener for /debug/vars, /metrics and profiles.
// Its keys take a restart.
type Stats struct {
	Listen string `toml:"listen"` // host:port; empty: none
	// Pprof serves Go's profiles under /debug/pprof/ on the stats listener.
	Pprof bool `toml:"pprof"`
}

func defaultStats() Stats { return Stats{Listen: "127.0.0.1:6880"} }

func (s *Stats) validate(p *problems) {
	if s.Listen == "" {
		return
	}
	if err := checkHostPort(s.Listen); err != nil {
		p.add("stats.listen", "%v", err)
	}
}

// checkListen checks each address of a listen list.
func checkListen(p *problems, key string, addrs []string) {
	for i, a := range addrs {
		if err := checkHostPort(a); err != nil {
			p.add(fmt.Sprintf("%s[%d]", key, i), "%v", err)
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
	return parsePrefixes(h.TrustedProxies)
}

// FullScrapeFromPrefixes parses http.full_scrape_from, as
// TrustedProxyPrefixes does http.trusted_proxies.
func (h *HTTP) FullScrapeFromPrefixes() ([]netip.Prefix, error) {
	return parsePrefixes(h.FullScrapeFrom)
}

// parsePrefixes parses CIDR prefixes; a bare address is a prefix of one
// address, and an IPv4-mapped one is IPv4's.
func parsePrefixes(list []string) ([]netip.Prefix, error) {
	prefixes := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
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
func (c *Config) checkListenClashes(p *problems) {
	for _, list := range []struct {
		key   string
		addrs []string
	}{{"udp.listen", c.UDP.Listen}, {"http.listen", c.HTTP.Listen}} {
		for i := range list.addrs {
			for j := range i {
				if listenClash(list.addrs[i], list.addrs[j]) {
					p.add(fmt.Sprintf("%s[%d]", list.key, i), "%q clashes with %q, also in %s", list.addrs[i], list.addrs[j], list.key)
				}
			}
		}
	}
	if c.Stats.Listen == "" {
		return
	}
	for _, a := range c.HTTP.Listen {
		if listenClash(c.Stats.Listen, a) {
			p.add("stats.listen", "%q clashes with http.listen %q: stats must not share the tracker's port", c.Stats.Listen, a)
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

// checkHostPort checks a listen address: host:port, the host an IP
// address, localhost or empty.
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
