package config

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/trakx/trakx/internal/cluster/wire"
)

// Cluster is [cluster]: the nodes that share their swarms through NATS
// (package cluster). NATSURL, Name and Node take a restart; Credentials
// and ReplicatePrivate a reload.
type Cluster struct {
	// NATSURL lists the NATS servers, comma-separated, each nats:// or
	// tls://; empty: no cluster (no cluster code runs).
	NATSURL string `toml:"nats_url"`
	// Credentials is a NATS .creds file, read at each (re)connection; a
	// relative path is read as https.cert's is (CredentialPath).
	Credentials string `toml:"credentials"`
	// Name is the cluster's, the subjects' first token: nodes of
	// different names never mix.
	Name string `toml:"name"`
	// Node is this node's name, unique in the cluster; empty: the host
	// name, made a token at start (NodeName).
	Node string `toml:"node"`
	// ReplicatePrivate publishes peers at private addresses too.
	ReplicatePrivate bool `toml:"replicate_private"`
}

func defaultCluster() Cluster { return Cluster{Name: "trakx"} }

func (c *Cluster) validate(p *problems) {
	if c.NATSURL != "" {
		for i, u := range strings.Split(c.NATSURL, ",") {
			if err := checkNATSURL(strings.TrimSpace(u)); err != nil {
				p.add("cluster.nats_url", "server %d: %v", i+1, err)
			}
		}
	}
	if !wire.ValidNode(c.Name) {
		p.add("cluster.name", "%q is not 1 to %d of A-Z, a-z, 0-9, _ and -", c.Name, wire.MaxNodeLen)
	}
	if c.Node != "" && !wire.ValidNode(c.Node) {
		p.add("cluster.node", "%q is not 1 to %d of A-Z, a-z, 0-9, _ and -", c.Node, wire.MaxNodeLen)
	}
}

// checkNATSURL checks one server of cluster.nats_url: nats:// or tls://
// and a host.
func checkNATSURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case s == "":
		return errors.New("empty (servers are separated by single commas)")
	case err != nil:
		return errors.New("not a URL (not shown: it may hold a password)")
	case u.Scheme != "nats" && u.Scheme != "tls":
		return fmt.Errorf("%q is not nats://HOST:PORT or tls://HOST:PORT", u.Redacted())
	case u.Hostname() == "":
		return fmt.Errorf("%q names no host", u.Redacted())
	case u.Path != "" && u.Path != "/":
		return fmt.Errorf("%q has a path; NATS URLs have none", u.Redacted())
	case u.Port() != "" && !validPort(u.Port()):
		return fmt.Errorf("%q: the port is not 1 to 65535", u.Redacted())
	}
	return nil
}

// NodeName is the node's name as the cluster sees it: cluster.node, or
// else host (the host name) made a token: each byte outside [A-Za-z0-9_-]
// becomes "-" (so "a.example.org" is "a-example-org"), cut at 64 bytes.
// It is "" when host gives nothing to work with.
func (c *Cluster) NodeName(host string) string {
	if c.Node != "" {
		return c.Node
	}
	b := []byte(host)
	for i, ch := range b {
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '_' || ch == '-') {
			b[i] = '-'
		}
	}
	if len(b) > wire.MaxNodeLen {
		b = b[:wire.MaxNodeLen]
	}
	if !wire.ValidNode(string(b)) {
		return ""
	}
	return string(b)
}

// RedactURLs is a comma-separated list of NATS URLs fit for a log or a
// printout: each password, or a token (a user with no password, as
// nats://TOKEN@host), replaced by "xxxxx", and an entry that does not
// parse replaced whole, since it may hold one.
func RedactURLs(list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil {
			parts[i] = "(an unreadable URL)"
			continue
		}
		if _, hasPassword := u.User.Password(); u.User != nil && !hasPassword {
			u.User = url.User("xxxxx")
		}
		parts[i] = u.Redacted()
	}
	return strings.Join(parts, ",")
}

// validPort reports whether a URL's port is 1 to 65535.
func validPort(port string) bool {
	n, err := strconv.Atoi(port)
	return err == nil && n >= 1 && n <= 65535
}
