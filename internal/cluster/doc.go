// Package cluster is a trakx node's part in a cluster of nodes that share
// their swarms through NATS (issue 26). The byte format of what travels is
// package wire; this package is the machinery around it: publishing the
// announces this node accepts, applying those other nodes accepted,
// catching up by snapshot, and counting it all. The daemon wires it in one
// place: New with Options, Wrap in front of the store's Gate for the
// frontends, Start, Ready, Stats, SetCredentials (a reload) and Close.
//
// # Contract
//
//   - Publishing never holds up a request: Wrap's Announce passes every
//     announce to the tracker behind it and, when that accepts it, adds
//     its wire.Record to a bounded outbox under a short lock, allocating
//     nothing; a full outbox drops the record and counts it. A flusher
//     goroutine publishes the outbox as wire batches on
//     <name>.<node>.announce at least every 100 ms, sooner when a batch
//     reaches 32 KiB, and an empty batch as a heartbeat when idle for a
//     second. The connection is made with no-echo. Peers at private
//     addresses (wire.IsPrivate) are left out unless ReplicatePrivate says
//     otherwise. A batch the server refuses by permission is counted
//     dropped, and logged once a connection.
//   - NATS down: the batches of announces accepted meanwhile are kept
//     (64 MiB at most; more are dropped and counted) in the outage's
//     journal. Once reconnected, the node sends them when every node it
//     heard before the outage is heard again, 10 s after its return at
//     the latest; batches made until then join them, so that its
//     announces keep their order. A snapshot from one node holds that
//     node's outage announces, not a third's: the journal is how every
//     node gets every node's.
//   - Receiving: a batch on <name>.*.announce is applied only when the
//     subject's node token equals the node its header names; each valid
//     record goes through Options.Apply (the access list in front of the
//     store, Admitting, so that the list and the store's limits hold:
//     refusals are counted), never through Wrap, so nothing received is
//     republished. The client filter is the accepting node's: peer ids do
//     not travel, so Apply must not be the whole access.Gate.
//     Malformed batches and records are counted and dropped, never a
//     crash. A batch on our own subject comes from another connection
//     using our node name: the node logs an error and leaves the cluster
//     (closes its NATS connection) and goes on serving alone.
//   - Catch-up, at start and after each reconnection: the node waits
//     until its outage journal, if any, has gone and it has listened for
//     a heartbeat (so that it has heard every live node); announces that
//     arrive are then buffered, and one live node (a NATS queue group on
//     <name>.<node>.snapshot) is asked for a snapshot, which it streams in
//     chunks of at most 1 MiB (a torrent's hash once per run of its
//     peers), each acknowledged once applied, at most 4 unacknowledged;
//     the requester applies chunks side by side (a snapshot holds each
//     peer once); then the buffer is replayed. After the chunks come
//     lists of the torrents' completion counts (wire.AppendCounts), which
//     the requester merges as the larger of its count and the list's
//     (Options.Downloaded). The request names, for every node, the last
//     batch the requester applied of it, its own included (it publishes
//     its outbox first); the serving node applies as much before it
//     serves (a second at most).
//   - Completions: a node publishes a completion as completed only when
//     its store counted it (a repeat travels as a plain announce). A
//     receiver counts it by the store's rule (once per peer, so a batch
//     applied twice counts once), except after a snapshot: of each node's
//     batches, those up to the snapshot's cut are applied uncounted (held
//     during the catch-up; the snapshot's counts hold them), and those
//     between the cut and the end of the serving node's walk, sent before
//     the end, are counted whatever the store holds of the peer
//     (AnnounceRequest.Counted), held or not, since the walk may have
//     brought the peer as a seeder already (window.go).
//   - Counts at one cut (cut.go): the serving node copies its counts
//     while it holds the batches that arrive and its own completions
//     wait, and notes how far it has applied each node's batches, its
//     own by a barrier in its outbox; the snapshot's end names those.
//     The requester's own completions in batches after the end's Seq for
//     it are added to the list's count (owncounts.go), and it applies its
//     own announces made during the catch-up again, a segment at a time
//     while its announces wait, so that none is undone by an older state
//     in the snapshot (own.go). A node holding an outage's journal serves
//     no snapshot: its counts hold completions its batches do not. The
//     larger-of-two merge is then exact whenever the serving node has
//     applied everything the requester has (it awaits the request's
//     batches, a second at most). It is not when each of two nodes lacks
//     completions the other has: a node that missed another's announces
//     while NATS was away from it, and sent its own journal while that
//     other was away in turn, stays short of those completions (a count
//     per originating node would be needed; see docs/cluster.md).
//   - A node serves one snapshot at a time and answers "busy" to more,
//     and none before it has first caught up (or given up), while it
//     catches up, nor while the server refuses its announces; it does not
//     begin a catch-up while it serves. No answer within 2 s: the node
//     serves with what it holds and retries with back-off while other
//     nodes are heard; still behind, it catches up when it hears a node
//     it had not heard for 3 s. Ready closes when the node has caught up
//     or given up waiting, at once when NATS is unreachable at start.
//     Snapshot requests are numbered from the time the node started, so
//     that a node restarted under the same name never takes the rest of
//     a stream served to its previous run.
//   - The node keeps serving with NATS down, logs one warning, reconnects
//     with back-off (100 ms doubling to 5 s) for ever, catches up and
//     logs that it did.
//   - Presence: a node counts itself and the nodes heard from in the last
//     3 s (every node publishes at least once a second).
//   - Apply lag: for each sender, the receiver keeps the least difference
//     between its own monotonic clock at application and the batch's
//     SentNanos as that sender's offset; a batch's lag is its difference
//     less that offset (Stats.ApplyLagSeconds, the last batch's, and
//     Options.ObserveLag, each batch's, for a histogram). No two machines'
//     clocks are ever compared. A lag so measured is above the least ever
//     seen, so it reads 0 for a steady delay: it shows queueing, not the
//     network's fixed latency.
//
// # Files
//
//   - node.go: Options, Node, the NATS connection and its handlers.
//   - publish.go: the publishing decorator, the outbox and the flusher.
//   - outage.go: the journal of what was accepted while NATS was down.
//   - own.go: the node's own announces during a catch-up.
//   - owncounts.go: the node's own completions during a catch-up.
//   - receive.go: applying batches, the buffer during catch-up.
//   - presence.go: live nodes and apply lag per sender.
//   - catchup.go: asking for a snapshot and receiving it.
//   - apply.go: applying a snapshot's chunks side by side.
//   - snapshot.go: serving a snapshot; StoreSnapshot walks a swarm.Store,
//     StoreCounts copies its counts.
//   - cut.go: the instant a snapshot's counts are taken at.
//   - window.go: the batches between a snapshot's cut and its walk's end.
//   - admit.go: Admitting, the access list in front of Apply.
//   - credentials.go: the .creds file, read at each connection.
//   - stats.go: the counters and Stats.
package cluster
