package cluster

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/sirupsen/logrus"

	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/cluster/wire"
	"github.com/trakx/trakx/internal/config"
	"github.com/trakx/trakx/internal/swarm"
)

// Options are what a node needs; the daemon fills them from [cluster].
type Options struct {
	URL       string // NATS servers, comma-separated (nats:// or tls://)
	CredsFile string // a NATS .creds file, or "" for none
	Name      string // the cluster's name: the subjects' first token
	Node      string // this node's name, unique in the cluster
	// ReplicatePrivate says whether peers at private addresses are
	// published (and served in snapshots); nil: never. Read for each
	// announce, so that a reload applies at once.
	ReplicatePrivate func() bool
	// Apply is where what arrives from the cluster goes: the store behind
	// the access list (Admitting(gate.AdmitTorrent, store)), never the
	// publishing decorator, nor the client filter (peer ids do not travel).
	Apply bittorrent.Tracker
	// Snapshot yields every peer the store holds, torrent by torrent
	// (StoreSnapshot), until yield returns false.
	Snapshot func(yield func(r wire.Record) bool)
	// Counts yields every torrent's completion count (StoreCounts); nil:
	// snapshots carry no counts. It runs while the node's completions
	// wait (see cut), so it copies and does nothing else.
	Counts func(yield func(h *bittorrent.InfoHash, downloaded uint32))
	// ApplyTorrent, if set, applies a snapshot's run of one torrent's
	// peers at once (StoreApplyTorrent), or says ok false for them to go
	// through Apply one by one: the same rules, a list sized once.
	ApplyTorrent func(t *swarm.Torrent) (kept int, ok bool)
	// Downloaded raises a torrent's completion count to at least n, if
	// the store holds the torrent (StoreDownloaded); nil: counts from a
	// snapshot are not applied.
	Downloaded func(h *bittorrent.InfoHash, n uint32)
	Log        *logrus.Logger
	// ObserveLag, if set, is given each applied batch's apply lag in
	// seconds (a histogram's Observe), from the receiving goroutine.
	ObserveLag func(seconds float64)
	// SnapshotChunkBytes bounds a snapshot chunk; 0: 1 MiB, or the
	// server's max_payload when less.
	SnapshotChunkBytes int
}

// Node is this trakx's part in a cluster: its NATS connection, its
// publisher and its receiver.
type Node struct {
	opts  Options
	log   *logrus.Logger
	start time.Time // the monotonic clock's origin

	subjectOut, subjectIn string
	// attempts numbers snapshot requests, from the time the node was
	// made: a node restarted under the same name never takes the rest of
	// a stream served to its previous run for itself.
	attempts atomic.Uint64

	conn  atomic.Pointer[nats.Conn]
	creds atomic.Pointer[string] // the .creds file's path
	// goodCreds is the last .creds file that loaded; credsWarned: one
	// that does not load was logged.
	goodCreds   atomic.Pointer[nats.Options]
	credsWarned atomic.Bool
	left        atomic.Bool // left the cluster for good
	everUp      atomic.Bool // caught up (or gave up) once: may serve snapshots
	// role is what the node does with snapshots, one thing at a time:
	// serving one, or catching up (its store may be behind, and its
	// counts and its record of what it applied move apart: it serves
	// none then, and does not begin one while it serves).
	role atomic.Int32
	// behind: no catch-up has succeeded since the last (re)connection;
	// a node heard anew then triggers one.
	behind atomic.Bool
	// publishDenied: the server refuses our announce subject.
	publishDenied atomic.Bool
	// connected follows the connection's handlers, for Stats: asking the
	// connection takes its lock, which a stalled write holds.
	connected atomic.Bool
	// announcing is held for reading while a completion, or an announce
	// during a catch-up, is taken and queued; for writing while a
	// snapshot's cut copies the counts, and while the catch-up applies
	// the node's own announces again.
	announcing sync.RWMutex
	pubSeq     atomic.Uint64 // the Seq of the last batch published
	// listening is when the node last began to receive batches (its
	// subscription, a reconnection), on its clock: see awaitHearing.
	listening atomic.Int64
	connErr   atomic.Pointer[string] // the last reason a connection failed
	counters  counters

	out     outbox
	journal journal
	own     ownLog
	rx      receiver
	senders senders

	ready     chan struct{}
	readyOnce sync.Once
	kick      chan struct{}    // a catch-up is wanted
	flushReq  chan chan uint64 // flushNow's requests to the flusher
	done      chan struct{}
	closeOnce sync.Once
	flushed   sync.WaitGroup // the flusher
	wg        sync.WaitGroup // the catch-up
	// serves are the snapshots being served; servesMu orders goServe
	// with Close's closing of done.
	serves   sync.WaitGroup
	servesMu sync.Mutex
}

// New checks the options and returns a node, not yet connected.
func New(o Options) (*Node, error) {
	switch {
	case o.URL == "":
		return nil, errors.New("cluster: no NATS URL")
	case !wire.ValidNode(o.Name):
		return nil, errors.New("cluster: the name must be 1 to 64 of [A-Za-z0-9_-]: " + o.Name)
	case !wire.ValidNode(o.Node):
		return nil, errors.New("cluster: the node must be 1 to 64 of [A-Za-z0-9_-]: " + o.Node)
	case o.Apply == nil || o.Snapshot == nil:
		return nil, errors.New("cluster: Apply and Snapshot are required")
	}
	if o.Log == nil {
		o.Log = logrus.StandardLogger()
	}
	n := &Node{
		opts: o, log: o.Log, start: time.Now(),
		subjectOut: o.Name + "." + o.Node + ".announce",
		subjectIn:  o.Name + ".*.announce",
		ready:      make(chan struct{}),
		kick:       make(chan struct{}, 1),
		flushReq:   make(chan chan uint64),
		done:       make(chan struct{}),
	}
	n.attempts.Store(uint64(n.start.UnixNano()))
	n.creds.Store(&o.CredsFile)
	n.out.init()
	n.rx.init(n)
	n.senders.init()
	return n, nil
}

// The node's snapshot roles (Node.role).
const (
	idle int32 = iota
	serving
	catchingUp
)

// clock is the node's monotonic clock: time since it was made.
func (n *Node) clock() time.Duration { return time.Since(n.start) }

// Ready is closed once the node has caught up with the cluster, or given
// up waiting for it.
func (n *Node) Ready() <-chan struct{} { return n.ready }

// markReady closes Ready, once.
func (n *Node) markReady() {
	n.everUp.Store(true)
	n.readyOnce.Do(func() { close(n.ready) })
}

// Start connects to NATS (or keeps trying in the background), subscribes
// and starts the flusher and the catch-up. It fails only on a subscription
// the client refuses (a bad subject); NATS being down is no error.
func (n *Node) Start() error {
	nc, err := nats.Connect(n.opts.URL, n.natsOptions()...)
	if err != nil {
		return err
	}
	n.conn.Store(nc)
	if !nc.IsConnected() {
		n.log.Warnf("cluster: NATS at %s is not reachable; serving alone, retrying in the background", config.RedactURLs(n.opts.URL))
		n.markReady() // nothing to wait for; the connect handler catches up
	}
	if _, err := nc.Subscribe(n.subjectIn, n.rx.onMessage); err != nil {
		nc.Close()
		return err
	}
	n.listening.Store(int64(n.clock()))
	if _, err := nc.QueueSubscribe(n.snapshotAsk("*"), "snapshot", n.onSnapshotRequest); err != nil {
		nc.Close()
		return err
	}
	n.flushed.Add(1)
	n.wg.Add(1)
	go n.runFlusher()
	go n.runCatchUps() // the connect handler asks for the first catch-up
	return nil
}

// natsOptions are the connection's options: no echo, reconnection for
// ever with back-off, and the handlers that log and catch up.
func (n *Node) natsOptions() []nats.Option {
	opts := []nats.Option{
		nats.Name("trakx " + n.opts.Name + "." + n.opts.Node),
		nats.NoEcho(),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.CustomReconnectDelay(reconnectDelay),
		// A write stalled this long breaks the connection (then it
		// reconnects): nothing waits on a socket NATS does not read.
		nats.FlusherTimeout(2 * time.Second),
		nats.DisconnectErrHandler(n.onDisconnect),
		nats.ReconnectErrHandler(n.onConnectError),
		nats.ReconnectHandler(func(nc *nats.Conn) { n.onConnect(nc, "reconnected") }),
		nats.ConnectHandler(func(nc *nats.Conn) { n.onConnect(nc, "connected") }),
		nats.ErrorHandler(n.onAsyncError),
	}
	if n.opts.CredsFile != "" {
		opts = append(opts, n.credentials())
	}
	return opts
}

// onDisconnect logs the loss of NATS, unless the node is leaving, and
// starts the outage's journal.
func (n *Node) onDisconnect(_ *nats.Conn, err error) {
	n.connected.Store(false)
	if !n.left.Load() && !n.closed() {
		n.journal.lost(n.senders.liveNames(n.clock()))
		n.log.Warnf("cluster: lost NATS (%v); serving alone, reconnecting", err)
	}
}

// onConnect starts a catch-up on each (re)connection; the flusher sends
// the outage's journal once the nodes live before it are heard again.
func (n *Node) onConnect(nc *nats.Conn, how string) {
	n.connected.Store(true)
	n.listening.Store(int64(n.clock()))
	n.log.Infof("cluster: %s to NATS at %s; catching up", how, config.RedactURLs(nc.ConnectedUrl()))
	n.publishDenied.Store(false)
	n.connErr.Store(nil)
	n.behind.Store(true)
	n.wantCatchUp()
}

// onConnectError logs why an attempt to (re)connect failed (refused,
// a TLS certificate not trusted, an authorization violation, ...), once
// for each new reason until connected: attempts repeat every few seconds.
func (n *Node) onConnectError(_ *nats.Conn, err error) {
	why := err.Error()
	if last := n.connErr.Swap(&why); (last == nil || *last != why) && !n.closed() {
		n.log.Warnf("cluster: cannot connect to NATS: %s; retrying", why)
	}
}

// onAsyncError logs what the server says is wrong. A refusal to let the
// node publish its announces is logged once a connection, and its
// batches are counted dropped from then on: the server says nothing of
// those it accepts, so a batch cannot be known to have gone.
func (n *Node) onAsyncError(_ *nats.Conn, _ *nats.Subscription, err error) {
	if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), `Publish to "`+n.subjectOut+`"`) {
		if !n.publishDenied.Swap(true) {
			n.log.Errorf("cluster: NATS does not let this node publish on %s: its announces do not reach the cluster (see docs/cluster.md for the permissions a node needs)", n.subjectOut)
		}
		return
	}
	n.log.Warnf("cluster: NATS: %v", err)
}

// reconnectDelay is the back-off between reconnection attempts: 100 ms
// doubling up to 5 s (nats.go adds no jitter to a custom delay, so a
// little is added here, that N nodes do not knock at once).
func reconnectDelay(attempts int) time.Duration {
	d := 100 * time.Millisecond << min(attempts, 6)
	d = min(d, 5*time.Second)
	return d + time.Duration(time.Now().UnixNano()%int64(d/4+1))
}

// wantCatchUp asks the catch-up goroutine for a catch-up.
func (n *Node) wantCatchUp() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// closed reports whether Close was called.
func (n *Node) closed() bool {
	select {
	case <-n.done:
		return true
	default:
		return false
	}
}

// leave takes the node out of the cluster for good: another connection
// publishes under its name. It keeps serving alone.
func (n *Node) leave(other string) {
	if n.left.Swap(true) {
		return
	}
	n.log.Errorf("cluster: another connection publishes as node %q (%s): node names must be unique; leaving the cluster, serving alone", n.opts.Node, other)
	n.counters.dropped.Add(uint64(n.journal.discard()))
	if nc := n.conn.Load(); nc != nil {
		go n.parting(nc) // not from within its own callback
	}
	n.markReady()
}

// parting sends one last batch under the node's name, so that the other
// connection that uses it sees the clash too, then closes the connection.
func (n *Node) parting(nc *nats.Conn) {
	last := wire.AppendBatch(nil, wire.Header{Node: n.opts.Node, SentNanos: int64(n.clock())}, nil)
	_ = nc.Publish(n.subjectOut, last)
	_ = nc.FlushTimeout(time.Second)
	nc.Close()
}

// Close stops the node: a last flush, then the connection closed, which
// ends a catch-up under way at once.
func (n *Node) Close() {
	n.closeOnce.Do(func() {
		n.servesMu.Lock()
		close(n.done)
		n.servesMu.Unlock()
		n.flushed.Wait()
		n.counters.dropped.Add(uint64(n.journal.discard()))
		if nc := n.conn.Load(); nc != nil {
			if nc.IsConnected() { // no flush can go out while NATS is away
				_ = nc.FlushTimeout(time.Second)
			}
			nc.Close()
		}
		n.rx.close()
		n.connected.Store(false)
		n.wg.Wait()
		n.serves.Wait() // its sends fail on the closed connection
		n.markReady()
	})
}
