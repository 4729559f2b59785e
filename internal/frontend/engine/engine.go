// Package engine is the connection engine of trakx's TCP frontends: a few
// epoll loops, one goroutine each, that serve every HTTP connection that
// outlives its first read and every WebSocket. A connection in a loop costs
// its own small struct and a place in the loop's table: no goroutine, no
// timer, no buffer while it is idle. The loop reads into one buffer of its
// own, and serves every ready connection of a wake-up before it waits
// again.
//
// The contract, which both frontends rely on:
//   - A descriptor handed to a loop (Add) is the loop's: only the loop
//     closes it, after the batch of events it was in and after taking it
//     out of epoll, and only once its connection is shut (Conn.IsShut) or
//     its lingering time is over. Until then the number cannot name
//     another connection, so any goroutine may use it under the
//     connection's own rules (for a WebSocket: writes under its lock,
//     while it is not shut).
//   - A connection's Ready and Poked are called on its loop's goroutine
//     only, one at a time; Closed is its last call, after the descriptor is
//     closed.
//   - Loops refuse connections once they stop, and close every one they
//     still hold on the way out.
//
// engine.go is the set of loops and the Conn contract; loop.go one loop's
// table, its calls from other goroutines and its closing of descriptors;
// wait.go how it waits for events; syscall.go its raw reads and writes.
package engine

import (
	"runtime"
	"sync/atomic"
	"time"
)

// Conn is a connection served by a loop.
type Conn interface {
	// FD is the connection's descriptor.
	FD() int
	// Ready handles epoll's events for the connection; buf is the loop's
	// read buffer, the connection's only until Ready returns.
	Ready(events uint32, buf []byte)
	// Poked is called once the loop gets to a Poke of the connection.
	Poked(now time.Time)
	// IsShut reports whether nobody but the loop will use the descriptor
	// again: the loop then closes it.
	IsShut() bool
	// Shut shuts the socket down, from any goroutine; a no-op if it is
	// shut already.
	Shut()
	// Closed tells the connection its descriptor is closed.
	Closed()
}

// Engine is a set of loops; connections are spread over them in turn.
type Engine struct {
	loops []*Loop
	next  atomic.Uint32
}

// New makes one loop per CPU, each reading into a buffer of readBuffer
// bytes (at least the largest thing a connection must read whole).
func New(readBuffer int) (*Engine, error) {
	e := &Engine{}
	for range runtime.GOMAXPROCS(0) {
		l, err := newLoop(readBuffer)
		if err != nil {
			e.closeUnused()
			return nil, err
		}
		e.loops = append(e.loops, l)
	}
	return e, nil
}

// Discard closes an engine that never ran.
func (e *Engine) Discard() { e.closeUnused() }

// closeUnused closes the loops of an engine that never ran.
func (e *Engine) closeUnused() {
	for _, l := range e.loops {
		l.closeUnused()
	}
}

// Pick is the loop the next connection goes to.
func (e *Engine) Pick() *Loop { return e.loops[e.next.Add(1)%uint32(len(e.loops))] }

// Run serves connections until stop is closed, then closes every
// connection still in a loop, and the loops.
func (e *Engine) Run(stop <-chan struct{}) {
	done := make(chan struct{})
	for _, l := range e.loops {
		go func() { l.run(stop); done <- struct{}{} }()
	}
	<-stop
	for _, l := range e.loops {
		l.wakeUp()
	}
	for range e.loops {
		<-done
	}
}

// Stalled reports whether a loop has been serving one batch of events for
// longer than limit: a wedged loop, for the watchdog. Loops waiting for
// events are not stalled, however long they wait.
func (e *Engine) Stalled(limit time.Duration) bool {
	now := time.Now().UnixNano()
	for _, l := range e.loops {
		if since := l.busySince.Load(); since != 0 && now-since > int64(limit) {
			return true
		}
	}
	return false
}
