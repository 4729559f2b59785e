package config

import (
	"strings"
	"testing"
)

// TestClusterDefaults: no cluster by default, the name "trakx", the node
// left to the host name.
func TestClusterDefaults(t *testing.T) {
	c := Default().Cluster
	if c.NATSURL != "" || c.Credentials != "" || c.Name != "trakx" || c.Node != "" || c.ReplicatePrivate {
		t.Fatalf("defaults %+v", c)
	}
}

// TestClusterKeysAreChecked: each bad value is refused naming its key;
// good ones pass.
func TestClusterKeysAreChecked(t *testing.T) {
	for text, want := range map[string]string{
		"[cluster]\nnats_url = \"http://10.0.0.5:4222\"\n":        `cluster.nats_url: server 1: "http://10.0.0.5:4222" is not nats://`,
		"[cluster]\nnats_url = \"nats://a:4222,10.0.0.6:4222\"\n": `cluster.nats_url: server 2:`,
		"[cluster]\nnats_url = \"nats://a:4222,\"\n":              `cluster.nats_url: server 2: empty`,
		"[cluster]\nnats_url = \"nats://:4222\"\n":                `names no host`,
		"[cluster]\nnats_url = \"nats://a:4222/x\"\n":             `has a path`,
		"[cluster]\nnats_url = \"nats://a:99999\"\n":              `the port is not 1 to 65535`,
		"[cluster]\nname = \"\"\n":                                `cluster.name: "" is not 1 to 64`,
		"[cluster]\nname = \"a.b\"\n":                             `cluster.name: "a.b"`,
		"[cluster]\nnode = \"node*\"\n":                           `cluster.node: "node*"`,
		"[cluster]\nnode = \"" + strings.Repeat("n", 65) + "\"\n": `cluster.node:`,
		"[cluster]\nreplicate_private = \"yes\"\n":                `replicate_private`,
		"[cluster]\nnats = \"nats://a:4222\"\n":                   `unknown key cluster.nats`,
	} {
		_, err := Parse([]byte(text))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", text, err, want)
		}
	}
	cfg, err := Parse([]byte("[cluster]\nnats_url = \"nats://10.0.0.5:4222, tls://nats.example.org:4222,nats://user:pw@[2001:db8::1]:4222\"\n" +
		"credentials = \"trakx.creds\"\nname = \"tracker_1\"\nnode = \"a-1\"\nreplicate_private = true\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c := cfg.Cluster; c.Name != "tracker_1" || c.Node != "a-1" || !c.ReplicatePrivate || c.Credentials != "trakx.creds" {
		t.Fatalf("parsed %+v", c)
	}
}

// TestClusterNodeName: cluster.node wins; else the host name made a token.
func TestClusterNodeName(t *testing.T) {
	c := Cluster{}
	for host, want := range map[string]string{
		"tracker1": "tracker1", "a.example.org": "a-example-org", "": "",
		strings.Repeat("h", 70): strings.Repeat("h", 64), "h\u00e9": "h--",
	} {
		if got := c.NodeName(host); got != want {
			t.Errorf("host %q: node %q, want %q", host, got, want)
		}
	}
	c.Node = "mine"
	if got := c.NodeName("host"); got != "mine" {
		t.Fatalf("cluster.node set: %q", got)
	}
}

// TestClusterChanged: Changed lists the cluster's keys, so that a reload
// can say which take a restart.
func TestClusterChanged(t *testing.T) {
	a, b := Default(), Default()
	b.Cluster.NATSURL = "nats://127.0.0.1:4222"
	b.Cluster.ReplicatePrivate = true
	if got := strings.Join(Changed(&a, &b), " "); got != "cluster.nats_url cluster.replicate_private" {
		t.Fatalf("changed: %s", got)
	}
}

// TestRedactURLs: passwords and tokens are masked, whatever else the
// list holds; an entry that does not parse is replaced whole.
func TestRedactURLs(t *testing.T) {
	for list, want := range map[string]string{
		"nats://10.0.0.5:4222":                           "nats://10.0.0.5:4222",
		"nats://a:A-SECRET@10.0.0.5:4222,tls://h:4222":   "nats://a:xxxxx@10.0.0.5:4222,tls://h:4222",
		"tls://u:A-SECRET@h:4222, nats://b:A-SECRET@g:1": "tls://u:xxxxx@h:4222,nats://b:xxxxx@g:1",
		"nats://A-SECRET@10.0.0.5:4222":                  "nats://xxxxx@10.0.0.5:4222",
		"nats://a:A-SECRET@h:4222/%zz":                   "(an unreadable URL)",
	} {
		got := RedactURLs(list)
		if got != want || strings.Contains(got, "SECRET") {
			t.Errorf("%q: %q, want %q", list, got, want)
		}
	}
	c := Default()
	c.Cluster.NATSURL = "nats://A-SECRET@h:4222"
	if strings.Contains(c.TOML(), "SECRET") {
		t.Error("the printed configuration holds the token")
	}
}
