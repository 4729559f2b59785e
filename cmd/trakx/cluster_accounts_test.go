package main

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// The black-box test of docs/cluster.md's nats-server recipe: its
// `accounts { }` block, read from the document itself so that the two
// cannot drift apart, on Debian's nats-server, with a user of its own for
// each trakx node, as the recipe has it. Only the block is used: the rest
// of the recipe's file (server_name, the 0.0.0.0 listeners, the routes to
// 10.0.0.5-7) is for three machines, and is checked by nats-server -t
// alone (TestClusterAccountsRecipeFileParses).

// clusterDoc is the document whose recipe the tests run.
const clusterDoc = "../../docs/cluster.md"

// fencedBlock is a fenced code block of a Markdown file, and accountsLine
// the line that opens nats-server's accounts block.
var (
	fencedBlock  = regexp.MustCompile("(?ms)^```[^\n]*\n(.*?)^```")
	accountsLine = regexp.MustCompile(`(?m)^accounts \{`)
)

// recipeFile is docs/cluster.md's nats-server configuration file: the
// fenced code block that holds an `accounts {` line.
func recipeFile(t *testing.T) string {
	t.Helper()
	doc, err := os.ReadFile(clusterDoc)
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, m := range fencedBlock.FindAllStringSubmatch(string(doc), -1) {
		if accountsLine.MatchString(m[1]) {
			found = append(found, m[1])
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s has %d fenced blocks with an `accounts {` line, want 1", clusterDoc, len(found))
	}
	return found[0]
}

// accountsBlock cuts the `accounts { ... }` block out of the recipe's
// file, verbatim: from its first line to the brace that closes it (a
// brace in a string or comment would throw the count; the block has none).
func accountsBlock(t *testing.T, file string) string {
	t.Helper()
	loc := accountsLine.FindStringIndex(file)
	if loc == nil {
		t.Fatalf("no `accounts {` line in:\n%s", file)
	}
	start, depth := loc[0], 0
	for i, r := range file[start:] {
		switch r {
		case '{':
			depth++
		case '}':
			if depth--; depth == 0 {
				return file[start : start+i+1]
			}
		}
	}
	t.Fatalf("the `accounts {` block does not close:\n%s", file[start:])
	return ""
}

// recipeUsers are the block's users and their passwords.
func recipeUsers(t *testing.T, block string) map[string]string {
	t.Helper()
	users := map[string]string{}
	re := regexp.MustCompile(`\{\s*user:\s*"([^"]+)",\s*password:\s*"([^"]+)"`)
	for _, m := range re.FindAllStringSubmatch(block, -1) {
		users[m[1]] = m[2]
	}
	for _, u := range []string{"a", "b", "c"} {
		if users[u] == "" {
			t.Fatalf("the recipe's accounts block has no user %q with a password:\n%s", u, block)
		}
	}
	return users
}

// TestClusterAccountsRecipeFileParses: nats-server -t accepts the
// recipe's three-machine file as it stands (it binds nothing, and does
// not reach for the routes).
func TestClusterAccountsRecipeFileParses(t *testing.T) {
	path := needNATSServer(t)
	conf := filepath.Join(t.TempDir(), "nats-server.conf")
	if err := os.WriteFile(conf, []byte(recipeFile(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(path, "-t", "-c", conf).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "is valid") {
		t.Fatalf("nats-server -t -c on %s's recipe: %v\n%s", clusterDoc, err, out)
	}
}

// accountsRig is a cluster on a nats-server that runs the recipe's
// accounts block: each node connects as one of its users.
type accountsRig struct {
	*clusterRig
	passwords map[string]string // by user, from the block
}

// startAs writes the files of node (of the cluster "trakx", the name the
// block's permissions are written for), connecting as user with the
// block's password, and runs it until it is READY.
func (r *accountsRig) startAs(t *testing.T, node, user string) *clusterNode {
	t.Helper()
	u := &url.URL{Scheme: "nats", User: url.UserPassword(user, r.passwords[user]), Host: r.nats.addr}
	n := newClusterNode(t, r.dir, u.String(), "trakx", node)
	n.run(r.top, t)
	return n
}

// TestClusterAccountsRecipe runs three trakx processes, each as its own
// user, on a nats-server configured with docs/cluster.md's accounts
// block, and then a fourth configured as node "a" with b's user.
func TestClusterAccountsRecipe(t *testing.T) {
	block := accountsBlock(t, recipeFile(t))
	dir := t.TempDir()
	rig := &accountsRig{
		clusterRig: &clusterRig{top: t, dir: dir, want: map[string]swarmCounts{}},
		passwords:  recipeUsers(t, block),
	}
	rig.nats = startNATSConfig(t, dir, func(addr string) string {
		return "listen: " + addr + "\n\n" + block + "\n"
	})
	a := rig.startAs(t, "a", "a")
	b := rig.startAs(t, "b", "b")
	awaitMesh(t, a, b)
	t.Run("live", func(t *testing.T) { rig.testLive(t, a, b) })
	var c *clusterNode
	t.Run("snapshot", func(t *testing.T) { c = rig.testSnapshot(t, a, b) })
	if c == nil {
		t.FailNow() // the later subtests need c
	}
	var impostor *clusterNode
	t.Run("impostor", func(t *testing.T) { impostor = rig.testImpostor(t, a, b, c) })
	t.Run("logs", func(t *testing.T) { rig.testLogs(t, impostor, a, b, c) })
}

// testLive: an announce to a shows on b, and one to b on a: each user may
// publish its node's batches, and subscribe to the other's.
func (r *accountsRig) testLive(t *testing.T, a, b *clusterNode) {
	const torrent = "acct-live"
	a.announce(t, torrent, "203.0.113.71", 6071, 0, "started")
	b.announce(t, torrent, "203.0.113.72", 6072, 100, "started")
	waitSwarms(t, "a's seeder and b's leecher on a and b", r.expect(torrent, swarmCounts{1, 1, 0}), a, b)
}

// testSnapshot: c, started once a and b hold peers, catches up by
// snapshot before it says READY (the serving node answers the request's
// inbox, and c acknowledges each chunk to the server's), then takes part
// live both ways.
func (r *accountsRig) testSnapshot(t *testing.T, a, b *clusterNode) *clusterNode {
	c := r.startAs(t, "c", "c")
	if m := c.metrics(t); m.Sum("trakx_cluster_catchups_total") != 1 || m.Sum("trakx_cluster_connected") != 1 {
		t.Errorf("c READY with trakx_cluster_catchups_total %v, trakx_cluster_connected %v; want 1 and 1",
			m.Sum("trakx_cluster_catchups_total"), m.Sum("trakx_cluster_connected"))
	}
	// The snapshot is applied before READY: no wait.
	if diff := swarmDiff(t, r.want, c); diff != "" {
		t.Errorf("c, READY after its catch-up (%q), lacks what a and b hold:\n%s", c.logLine("cluster: caught up"), diff)
	}
	awaitMesh(t, a, b, c)
	const torrent = "acct-from-c"
	c.announce(t, torrent, "203.0.113.73", 6073, 0, "started")
	waitSwarms(t, "c's seeder on a and b", r.expect(torrent, swarmCounts{1, 0, 0}), a, b, c)
	return c
}

// testImpostor: a process configured as node "a" but with b's user, as in
// docs/cluster.md's "Two nodes with one name". The real a is frozen
// (SIGSTOP) while the impostor starts and takes an announce: otherwise
// the impostor could hear a's heartbeat and leave the cluster before its
// announce's batch went to the server. The server refuses its batches,
// the impostor says so, and its announce reaches no node. Once a runs
// again the impostor hears it and leaves the cluster; a, which never
// heard the impostor, stays, and serves.
func (r *accountsRig) testImpostor(t *testing.T, a, b, c *clusterNode) *clusterNode {
	sendSignal(t, a, syscall.SIGSTOP)
	frozen := true
	defer func() {
		if frozen {
			sendSignal(t, a, syscall.SIGCONT)
		}
	}()
	impostor := r.startAs(t, "a", "b")
	if line := impostor.logLine("cluster: NATS does not let this node publish on trakx.a.announce"); !strings.Contains(line, "level=error") {
		t.Errorf("the impostor says %q, want an error", line)
	}
	const torrent = "acct-impostor"
	impostor.announce(t, torrent, "203.0.113.74", 6074, 0, "started")
	r.awaitRefused(t, impostor, "b", "trakx.a.announce")

	sendSignal(t, a, syscall.SIGCONT)
	frozen = false
	waitUntil(t, "the impostor leaving the cluster once it hears the real a", func() (bool, string) {
		connected := impostor.metrics(t).Sum("trakx_cluster_connected")
		return connected == 0, fmt.Sprintf("the impostor's trakx_cluster_connected %v", connected)
	})
	if line := impostor.logLine("node names must be unique"); !strings.Contains(line, `another connection publishes as node \"a\"`) {
		t.Errorf("the impostor left the cluster saying %q", line)
	}
	awaitMesh(t, a, b, c)
	const marker = "acct-after-impostor"
	a.announce(t, marker, "203.0.113.75", 6075, 0, "started")
	waitSwarms(t, "a's marker, after the impostor, on every node", r.expect(marker, swarmCounts{1, 0, 0}), a, b, c)
	if diff := swarmDiff(t, map[string]swarmCounts{torrent: {}}, a, b, c); diff != "" {
		t.Errorf("the impostor's announce reached the cluster:\n%s", diff)
	}
	return impostor
}

// sendSignal sends sig to n's process.
func sendSignal(t *testing.T, n *clusterNode, sig syscall.Signal) {
	t.Helper()
	if err := n.tr.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("%s: %v: %v", n, sig, err)
	}
}

// awaitRefused waits until node has handed the server the batch with its
// last announce, which it counts dropped (the server has refused its
// batches before), and the server has refused that batch: it logs each
// publish it refuses, and handles a connection's messages in order, so
// the batch is among the first two it refuses from then on (one sent
// before it may still be on its way; batches are 100 ms apart at least).
func (r *accountsRig) awaitRefused(t *testing.T, node *clusterNode, user, subject string) {
	t.Helper()
	waitUntil(t, node.String()+"'s announce counted dropped", func() (bool, string) {
		dropped := node.metrics(t).Sum("trakx_cluster_deltas_total", "direction", "dropped")
		return dropped >= 1, fmt.Sprintf("%s: dropped %v", node, dropped)
	})
	violation := fmt.Sprintf("Publish Violation - User %q, Subject %q", user, subject)
	before := strings.Count(r.nats.log(), violation)
	waitUntil(t, "nats-server refusing the batch with the announce", func() (bool, string) {
		log := r.nats.log()
		return strings.Count(log, violation) >= before+2, log
	})
}

// testLogs stops every node, and reads what each logged: the recipe's
// users had every permission their nodes used, and the impostor said
// once that it could not publish. nats-server refused nothing but the
// impostor's publishing under a's name.
func (r *accountsRig) testLogs(t *testing.T, impostor *clusterNode, nodes ...*clusterNode) {
	for _, n := range nodes {
		n.stop(t)
		for _, bad := range []string{"cluster: NATS: ", "does not let this node publish", "node names must be unique", "cannot connect"} {
			if strings.Contains(n.tr.log.String(), bad) {
				t.Errorf("%s logged %q:\n%s", n, bad, n.tr.log.String())
			}
		}
	}
	// The impostor may publish nothing under a's name: its batches, and
	// its snapshot requests, are refused.
	violation := `Publish Violation - User "b", Subject "trakx.a.`
	for _, line := range strings.Split(r.nats.log(), "\n") {
		if strings.Contains(line, "Violation") && !strings.Contains(line, violation) {
			t.Errorf("nats-server refused something else than the impostor's publishing as a: %s", line)
		}
	}
	if impostor == nil {
		return
	}
	impostor.stop(t)
	if k := strings.Count(impostor.tr.log.String(), "NATS does not let this node publish on trakx.a.announce"); k != 1 {
		t.Errorf("the impostor said %d times that NATS does not let it publish, want once:\n%s", k, impostor.tr.log.String())
	}
}
