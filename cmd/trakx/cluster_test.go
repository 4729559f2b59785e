package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/trakx/trakx/internal/httpproto"
	"github.com/trakx/trakx/internal/statsview"
	tt "github.com/trakx/trakx/internal/trackertest"
)

// The black-box test of a cluster (docs/cluster.md): Debian's nats-server
// and trakx processes on loopback, driven over HTTP as clients and
// operators see them: announces, scrapes and /metrics. Its clients stand
// behind a trusted proxy (X-Forwarded-For) at public documentation
// addresses (203.0.113.0/24), since loopback and private peers are not
// replicated.
//
// The subtests run in order on one cluster, each on torrents of its own
// and checking only those, so that one failing does not fail the next.
// What each leaves behind is written in the rig's ledger (want): a node
// restarted empty must catch up with all of it.

// clusterRig is the test's cluster: one nats-server, the nodes, and the
// swarms every node of the cluster "trakx" must show.
type clusterRig struct {
	top  *testing.T
	dir  string
	nats *natsServer
	want map[string]swarmCounts // by torrent name (tt.Hash)
}

// swarmCounts are a torrent's scrape figures.
type swarmCounts struct{ complete, incomplete, downloaded int64 }

// String writes the counts in failure messages.
func (c swarmCounts) String() string {
	return fmt.Sprintf("%d seeders, %d leechers, %d downloaded", c.complete, c.incomplete, c.downloaded)
}

// clusterHTTP is the test's HTTP client: no request may hang the test.
var clusterHTTP = &http.Client{Timeout: 5 * time.Second}

// TestCluster runs a cluster of three trakx processes through Debian's
// nats-server, and the subtests below on it, in order.
func TestCluster(t *testing.T) {
	dir := t.TempDir()
	rig := &clusterRig{top: t, dir: dir, want: map[string]swarmCounts{}}
	rig.nats = startNATS(t, dir)
	a := rig.startNode(t, "trakx", "a")
	b := rig.startNode(t, "trakx", "b")
	c := rig.startNode(t, "trakx", "c")
	nodes := []*clusterNode{a, b, c}
	awaitMesh(t, nodes...)

	t.Run("propagation", func(t *testing.T) { rig.testPropagation(t, a, b, c) })
	t.Run("completions", func(t *testing.T) { rig.testCompletions(t, a, b, c) })
	t.Run("stopped", func(t *testing.T) { rig.testStopped(t, a, b, c) })
	t.Run("kill9", func(t *testing.T) { rig.testKill9(t, a, b, c) })
	t.Run("restart_empty", func(t *testing.T) { rig.testRestartEmpty(t, a, b, c) })
	t.Run("nats_outage", func(t *testing.T) { rig.testNATSOutage(t, nodes) })
	t.Run("names_isolated", func(t *testing.T) { rig.testNamesIsolated(t, a, b, c) })
	t.Run("duplicate_node", func(t *testing.T) { rig.testDuplicateNode(t, a, b, c) })
}

// startNode writes a node's files and runs it until it is READY.
func (r *clusterRig) startNode(t *testing.T, cluster, node string) *clusterNode {
	t.Helper()
	n := newClusterNode(t, r.dir, r.nats.url(), cluster, node)
	n.run(r.top, t)
	return n
}

// expect records in the ledger that torrent must show counts on every
// node of the cluster "trakx" from now on, and returns that one torrent's
// want, for the subtest's own checks.
func (r *clusterRig) expect(torrent string, counts swarmCounts) map[string]swarmCounts {
	r.want[torrent] = counts
	return map[string]swarmCounts{torrent: counts}
}

// announce makes an HTTP announce to n for the peer at ip:port (the
// proxy's X-Forwarded-For), with left bytes to go and event ("" for a
// plain re-announce), asking for a non-compact list of up to 200 peers.
// It fails t unless n answers with a peer list.
func (n *clusterNode) announce(t *testing.T, torrent, ip string, port, left int, event string) map[string]any {
	t.Helper()
	hash := tt.Hash(torrent)
	u := fmt.Sprintf("http://%s/announce?info_hash=%s&peer_id=-TT0001-%012d&port=%d&uploaded=0&downloaded=0&left=%d&compact=0&numwant=200",
		n.http, url.QueryEscape(string(hash[:])), port, port, left)
	if event != "" {
		u += "&event=" + event
	}
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("X-Forwarded-For", ip)
	resp, err := clusterHTTP.Do(req)
	if err != nil {
		t.Fatalf("announce %s:%d %s to %s: %v", ip, port, event, n, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	v, err := httpproto.Decode(body)
	r, ok := v.(map[string]any)
	if err != nil || !ok || r["failure reason"] != nil || resp.StatusCode != 200 {
		t.Fatalf("announce %s:%d %s to %s: %s %q", ip, port, event, n, resp.Status, body)
	}
	if _, ok := r["interval"]; !ok {
		t.Fatalf("announce %s:%d %s to %s: no interval in %q", ip, port, event, n, body)
	}
	return r
}

// peersOf lists the ip:port of each peer in a non-compact announce reply.
func peersOf(reply map[string]any) []string {
	var peers []string
	list, _ := reply["peers"].([]any)
	for _, p := range list {
		if p, ok := p.(map[string]any); ok {
			peers = append(peers, fmt.Sprintf("%v:%v", p["ip"], p["port"]))
		}
	}
	sort.Strings(peers)
	return peers
}

// scrape is torrent's scrape at n.
func (n *clusterNode) scrape(t *testing.T, torrent string) swarmCounts {
	t.Helper()
	hash := tt.Hash(torrent)
	_, r := tt.GetBencoded(t, clusterHTTP, fmt.Sprintf("http://%s/scrape?info_hash=%s", n.http, url.QueryEscape(string(hash[:]))))
	files, _ := r["files"].(map[string]any)
	f, _ := files[string(hash[:])].(map[string]any)
	var c swarmCounts
	c.complete, _ = f["complete"].(int64)
	c.incomplete, _ = f["incomplete"].(int64)
	c.downloaded, _ = f["downloaded"].(int64)
	return c
}

// metrics reads n's /metrics.
func (n *clusterNode) metrics(t *testing.T) statsview.Sample {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := statsview.Fetch(ctx, clusterHTTP, "http://"+n.stats+"/metrics")
	if err != nil {
		t.Fatalf("%s's /metrics: %v", n, err)
	}
	return s
}

// waitUntil polls cond every 25 ms until it holds, for at most
// clusterWait, and otherwise fails t with what it waited for and cond's
// last account of what it saw.
func waitUntil(t *testing.T, what string, cond func() (ok bool, saw string)) {
	t.Helper()
	deadline := time.Now().Add(clusterWait)
	for {
		ok, saw := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %v waiting for %s; last seen:\n%s", clusterWait, what, saw)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// waitSwarms waits until every node shows each torrent of want with its
// counts, and fails naming each node's differences.
func waitSwarms(t *testing.T, what string, want map[string]swarmCounts, nodes ...*clusterNode) {
	t.Helper()
	waitUntil(t, what, func() (bool, string) {
		diff := swarmDiff(t, want, nodes...)
		return diff == "", diff
	})
}

// swarmDiff describes, one line each, every torrent of want that a node
// shows with other counts; "" when all agree.
func swarmDiff(t *testing.T, want map[string]swarmCounts, nodes ...*clusterNode) string {
	t.Helper()
	torrents := make([]string, 0, len(want))
	for torrent := range want {
		torrents = append(torrents, torrent)
	}
	sort.Strings(torrents)
	var diff strings.Builder
	for _, n := range nodes {
		for _, torrent := range torrents {
			if got := n.scrape(t, torrent); got != want[torrent] {
				fmt.Fprintf(&diff, "%s: %s has %v, want %v\n", n, torrent, got, want[torrent])
			}
		}
	}
	return diff.String()
}

// awaitMesh waits until every node is connected and counts all of them
// live (trakx_cluster_nodes), so that each hears the others.
func awaitMesh(t *testing.T, nodes ...*clusterNode) {
	t.Helper()
	waitUntil(t, fmt.Sprintf("%d nodes connected, each hearing all", len(nodes)), func() (bool, string) {
		all, saw := true, ""
		for _, n := range nodes {
			m := n.metrics(t)
			connected, live := m.Sum("trakx_cluster_connected"), m.Sum("trakx_cluster_nodes")
			all = all && connected == 1 && live == float64(len(nodes))
			saw += fmt.Sprintf("%s: trakx_cluster_connected %v, trakx_cluster_nodes %v\n", n, connected, live)
		}
		return all, saw
	})
}

// testPropagation: an announce to any node shows on every node, in its
// scrapes and in the peers its announce replies list.
func (r *clusterRig) testPropagation(t *testing.T, a, b, c *clusterNode) {
	const torrent = "e2e-propagation"
	a.announce(t, torrent, "203.0.113.1", 6001, 0, "started")
	b.announce(t, torrent, "203.0.113.2", 6002, 100, "started")
	one := map[string]swarmCounts{torrent: {1, 1, 0}}
	waitSwarms(t, "a's seeder and b's leecher on every node", one, a, b, c)

	// c never saw either client, yet lists both to its own.
	reply := c.announce(t, torrent, "203.0.113.3", 6003, 100, "started")
	if got, want := strings.Join(peersOf(reply), " "), "203.0.113.1:6001 203.0.113.2:6002"; got != want {
		t.Errorf("c's announce reply lists %q, want %q (the peers a and b took)", got, want)
	}
	waitSwarms(t, "c's leecher on every node", r.expect(torrent, swarmCounts{1, 2, 0}), a, b, c)
}

// testCompletions: a completion accepted by one node counts once in
// `downloaded` on every node, whichever node the peer joined through, and
// a repeated completed counts nothing anywhere.
func (r *clusterRig) testCompletions(t *testing.T, a, b, c *clusterNode) {
	const torrent, marker = "e2e-completions", "e2e-completions-mark"
	a.announce(t, torrent, "203.0.113.11", 6011, 100, "started")
	waitSwarms(t, "a's leecher on every node", map[string]swarmCounts{torrent: {0, 1, 0}}, a, b, c)
	b.announce(t, torrent, "203.0.113.11", 6011, 0, "completed") // the peer moved to b
	waitSwarms(t, "the completion b took, on every node", map[string]swarmCounts{torrent: {1, 0, 1}}, a, b, c)
	c.announce(t, torrent, "203.0.113.12", 6012, 0, "completed") // a newcomer that completed
	waitSwarms(t, "a second completion, c's, on every node", map[string]swarmCounts{torrent: {2, 0, 2}}, a, b, c)

	// A completed from a peer already seeding counts nothing; the marker,
	// published by a after it, shows that the others have applied it.
	a.announce(t, torrent, "203.0.113.11", 6011, 0, "completed")
	a.announce(t, marker, "203.0.113.13", 6013, 0, "started")
	waitSwarms(t, "a's marker on every node", r.expect(marker, swarmCounts{1, 0, 0}), a, b, c)
	if diff := swarmDiff(t, r.expect(torrent, swarmCounts{2, 0, 2}), a, b, c); diff != "" {
		t.Errorf("after a repeated completed:\n%s", diff)
	}
}

// testStopped: a stopped event sent to a node that only heard of the peer
// through the cluster removes the peer on every node.
func (r *clusterRig) testStopped(t *testing.T, a, b, c *clusterNode) {
	const torrent = "e2e-stopped"
	a.announce(t, torrent, "203.0.113.21", 6021, 0, "started")
	b.announce(t, torrent, "203.0.113.22", 6022, 100, "started")
	waitSwarms(t, "a's seeder and b's leecher on every node", map[string]swarmCounts{torrent: {1, 1, 0}}, a, b, c)
	reply := c.announce(t, torrent, "203.0.113.21", 6021, 0, "stopped")
	if peers := peersOf(reply); len(peers) != 0 {
		t.Errorf("c's reply to a stopped lists peers %v", peers)
	}
	waitSwarms(t, "a's seeder gone from every node after c took its stopped", r.expect(torrent, swarmCounts{0, 1, 0}), a, b, c)
}

// testKill9: a node killed with SIGKILL leaves its peers on the others,
// which notice it gone (trakx_cluster_nodes) and still list them.
func (r *clusterRig) testKill9(t *testing.T, a, b, c *clusterNode) {
	const torrent = "e2e-kill9"
	c.announce(t, torrent, "203.0.113.31", 6031, 0, "started")
	c.announce(t, torrent, "203.0.113.32", 6032, 100, "started")
	want := map[string]swarmCounts{torrent: {1, 1, 0}}
	waitSwarms(t, "c's peers on every node", want, a, b, c)
	c.kill9(t)
	waitUntil(t, "a and b counting 2 live nodes once c is killed", func() (bool, string) {
		na, nb := a.metrics(t).Sum("trakx_cluster_nodes"), b.metrics(t).Sum("trakx_cluster_nodes")
		return na == 2 && nb == 2, fmt.Sprintf("trakx_cluster_nodes: a %v, b %v", na, nb)
	})
	if diff := swarmDiff(t, want, a, b); diff != "" {
		t.Errorf("a and b after c's death:\n%s", diff)
	}
	if reply := a.announce(t, torrent, "203.0.113.33", 6033, 100, "started"); len(peersOf(reply)) != 2 {
		t.Errorf("a lists %v, want c's two peers", peersOf(reply))
	}
	waitSwarms(t, "a's new leecher at b", r.expect(torrent, swarmCounts{1, 2, 0}), a, b)
}

// testRestartEmpty: a node started again without its database catches up
// by snapshot from a live node: every swarm the others hold, with its
// peers and its downloaded count, before it says READY.
func (r *clusterRig) testRestartEmpty(t *testing.T, a, b, c *clusterNode) {
	if !c.dead { // kill9 failed before its kill
		c.kill9(t)
	}
	if err := os.Remove(c.db); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	c.run(r.top, t)
	if m := c.metrics(t); m.Sum("trakx_cluster_catchups_total") != 1 || m.Sum("trakx_cluster_connected") != 1 {
		t.Fatalf("c READY with trakx_cluster_catchups_total %v, trakx_cluster_connected %v; want 1 and 1",
			m.Sum("trakx_cluster_catchups_total"), m.Sum("trakx_cluster_connected"))
	}
	// The snapshot is applied before READY: no wait.
	if diff := swarmDiff(t, r.want, c); diff != "" {
		caughtUp := c.logLine("cluster: caught up") // logged before READY
		t.Errorf("c restarted empty, READY after its catch-up (%q), lacks what the cluster holds:\n%s", caughtUp, diff)
	}
	awaitMesh(t, a, b, c)
}

// testNATSOutage: with nats-server stopped every node keeps answering
// from what it holds, and takes announces and completions; once
// nats-server is back on the same port, every node holds what every node
// took during the outage, and all it held before, and counts each
// completion once: a torrent completed once before the outage and once on
// each node during it shows 1 + 3 everywhere.
func (r *clusterRig) testNATSOutage(t *testing.T, nodes []*clusterNode) {
	awaitMesh(t, nodes...)
	const shared = "e2e-outage-completed"
	nodes[0].announce(t, shared, "203.0.113.50", 6050, 0, "completed")
	waitSwarms(t, "the completion before the outage on every node", r.expect(shared, swarmCounts{1, 0, 1}), nodes...)
	// Each node's own view, not the ledger: an earlier failure (a node
	// that caught up without counts) is not this subtest's.
	held := map[*clusterNode]map[string]swarmCounts{}
	for _, n := range nodes {
		held[n] = scrapeAll(t, n, r.want)
		delete(held[n], shared) // its counts change during the outage
	}
	if err := r.nats.stop(); err != nil {
		t.Fatal(err)
	}
	restarted := false
	defer func() { // the later subtests need NATS, even if this one fails
		if !restarted {
			if err := r.nats.start(); err != nil {
				t.Error(err)
			}
		}
	}()
	awaitDisconnected(t, nodes)
	outage := announceDuringOutage(t, nodes, held)
	for i, n := range nodes {
		n.announce(t, shared, fmt.Sprintf("203.0.113.%d", 51+i), 6051+i, 0, "completed")
	}
	outage[shared] = swarmCounts{int64(1 + len(nodes)), 0, int64(1 + len(nodes))}
	restarted = true
	if err := r.nats.start(); err != nil {
		t.Fatal(err)
	}
	awaitMesh(t, nodes...)
	for torrent, counts := range outage {
		r.expect(torrent, counts)
	}
	waitUntil(t, "every node holding the announces all took during the outage, and what it held before", func() (bool, string) {
		diff := ""
		for _, n := range nodes {
			diff += swarmDiff(t, outage, n) + swarmDiff(t, held[n], n)
		}
		if diff != "" {
			diff += clusterCounters(t, nodes)
		}
		return diff == "", diff
	})
}

// announceDuringOutage announces one leecher to each node, each in a
// torrent of its own, checking that the node answers, and answers scrapes
// as it did before the outage (held). It returns the torrents' counts as
// every node must show them once NATS is back.
func announceDuringOutage(t *testing.T, nodes []*clusterNode, held map[*clusterNode]map[string]swarmCounts) map[string]swarmCounts {
	t.Helper()
	outage := map[string]swarmCounts{}
	for i, n := range nodes {
		torrent := "e2e-outage-" + n.node
		ip, port := fmt.Sprintf("203.0.113.%d", 41+i), 6041+i
		if reply := n.announce(t, torrent, ip, port, 100, "started"); reply["incomplete"] != int64(1) {
			t.Errorf("%s's reply during the outage: %v, want the announcing leecher counted", n, reply)
		}
		outage[torrent] = swarmCounts{0, 1, 0}
		if diff := swarmDiff(t, held[n], n); diff != "" {
			t.Errorf("%s during the outage does not answer with what it held:\n%s", n, diff)
		}
	}
	return outage
}

// scrapeAll is n's scrape of each torrent of want.
func scrapeAll(t *testing.T, n *clusterNode, want map[string]swarmCounts) map[string]swarmCounts {
	t.Helper()
	got := make(map[string]swarmCounts, len(want))
	for torrent := range want {
		got[torrent] = n.scrape(t, torrent)
	}
	return got
}

// clusterCounters writes, one line a node, the counters that tell what
// became of its records, for failure messages.
func clusterCounters(t *testing.T, nodes []*clusterNode) string {
	t.Helper()
	var b strings.Builder
	for _, n := range nodes {
		m := n.metrics(t)
		fmt.Fprintf(&b, "%s: deltas published %v, applied %v, dropped %v; catch-ups %v\n", n,
			m.Sum("trakx_cluster_deltas_total", "direction", "published"), m.Sum("trakx_cluster_deltas_total", "direction", "applied"),
			m.Sum("trakx_cluster_deltas_total", "direction", "dropped"), m.Sum("trakx_cluster_catchups_total"))
	}
	return b.String()
}

// awaitDisconnected waits until every node reports its NATS connection
// lost, so that what the test announces next is taken during the outage.
func awaitDisconnected(t *testing.T, nodes []*clusterNode) {
	t.Helper()
	waitUntil(t, "every node disconnected from the stopped nats-server", func() (bool, string) {
		all, saw := true, ""
		for _, n := range nodes {
			connected := n.metrics(t).Sum("trakx_cluster_connected")
			all = all && connected == 0
			saw += fmt.Sprintf("%s: trakx_cluster_connected %v\n", n, connected)
		}
		return all, saw
	})
}

// testNamesIsolated: a cluster of another name on the same nats-server
// (its nodes named as the first cluster's, so that a mix-up would also
// show as a clash) shares nothing with the first, either way, even for
// the same torrent.
func (r *clusterRig) testNamesIsolated(t *testing.T, a, b, c *clusterNode) {
	d := r.startNode(t, "other", "a")
	e := r.startNode(t, "other", "b")
	awaitMesh(t, d, e)
	const shared, markA, markD = "e2e-isolated", "e2e-isolated-mark-a", "e2e-isolated-mark-d"
	a.announce(t, shared, "203.0.113.51", 6051, 0, "started")
	d.announce(t, shared, "203.0.113.52", 6052, 0, "started")
	// Each publisher's marker follows its first announce: once the marker
	// is on its own cluster's other nodes, NATS has routed the announce
	// before it to every subscriber there was.
	a.announce(t, markA, "203.0.113.53", 6053, 0, "started")
	d.announce(t, markD, "203.0.113.54", 6054, 0, "started")
	trakx := map[string]swarmCounts{shared: {1, 0, 0}, markA: {1, 0, 0}}
	for torrent, counts := range trakx {
		r.expect(torrent, counts)
	}
	waitSwarms(t, "a's announces on b and c", trakx, a, b, c)
	waitSwarms(t, "d's announces on e", map[string]swarmCounts{shared: {1, 0, 0}, markD: {1, 0, 0}}, d, e)

	if diff := swarmDiff(t, map[string]swarmCounts{markD: {}}, a, b, c); diff != "" {
		t.Errorf("the cluster \"other\"'s peer reached the cluster \"trakx\":\n%s", diff)
	}
	if diff := swarmDiff(t, map[string]swarmCounts{markA: {}, shared: {1, 0, 0}}, d, e); diff != "" {
		t.Errorf("the cluster \"trakx\"'s peers reached the cluster \"other\":\n%s", diff)
	}
	for _, n := range []*clusterNode{a, b, c, d, e} {
		want := map[string]float64{"trakx": 3, "other": 2}[n.cluster]
		if m := n.metrics(t); m.Sum("trakx_cluster_connected") != 1 || m.Sum("trakx_cluster_nodes") != want {
			t.Errorf("%s: trakx_cluster_connected %v, trakx_cluster_nodes %v; want 1 and %v", n,
				m.Sum("trakx_cluster_connected"), m.Sum("trakx_cluster_nodes"), want)
		}
	}
	d.stop(t)
	e.stop(t)
}

// testDuplicateNode: a process started with the node name of a running
// node: one of the two sees the other's batches under its own name, logs
// that node names must be unique, leaves the cluster
// (trakx_cluster_connected 0), and still answers its clients.
func (r *clusterRig) testDuplicateNode(t *testing.T, a, b, c *clusterNode) {
	twin := r.startNode(t, "trakx", "b")
	var left *clusterNode
	waitUntil(t, "b or its twin leaving the cluster", func() (bool, string) {
		saw := ""
		for _, n := range []*clusterNode{b, twin} {
			connected := n.metrics(t).Sum("trakx_cluster_connected")
			if connected == 0 && left == nil {
				left = n
			}
			saw += fmt.Sprintf("%s at %s: trakx_cluster_connected %v\n", n, n.http, connected)
		}
		return left != nil, saw
	})
	which := map[*clusterNode]string{b: "the running b", twin: "its twin, started later"}[left]
	t.Logf("%s left the cluster", which)
	left.bind(t)
	if line := left.logLine("node names must be unique"); !strings.Contains(line, "level=error") ||
		!strings.Contains(line, `another connection publishes as node \"b\"`) {
		t.Errorf("%s left the cluster saying %q", which, line)
	}
	left.announce(t, "e2e-duplicate", "203.0.113.61", 6061, 0, "started")
	for _, n := range []*clusterNode{a, c} {
		if m := n.metrics(t); m.Sum("trakx_cluster_connected") != 1 {
			t.Errorf("%s: trakx_cluster_connected %v, want 1: only b's name is in dispute", n, m.Sum("trakx_cluster_connected"))
		}
	}
}
