package engine

import (
	"bytes"
	"flag"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	tt "github.com/trakx/trakx/internal/trackertest"
	"golang.org/x/sys/unix"
)

// probe is a connection that records what the loop does to it: the bytes
// it read, and each call, so that a test can hold the loop to the
// contract (no call after Closed, Closed once, descriptors closed only
// once shut or lingered out).
type probe struct {
	t    testing.TB
	fd   int
	loop *Loop

	mu     sync.Mutex
	got    []byte
	ended  bool // it read the end of stream
	shut   atomic.Bool
	closed atomic.Int32
	calls  atomic.Int32 // Ready and Poked calls after Closed: must stay 0
	pokes  atomic.Int32
}

func (p *probe) FD() int      { return p.fd }
func (p *probe) IsShut() bool { return p.shut.Load() }
func (p *probe) Shut() {
	if !p.shut.Swap(true) {
		unix.Shutdown(p.fd, unix.SHUT_RDWR)
	}
}
func (p *probe) Closed() {
	if p.closed.Add(1) != 1 {
		p.t.Errorf("fd %d closed twice", p.fd)
	}
}
func (p *probe) Poked(time.Time) {
	p.afterClose()
	p.pokes.Add(1)
}

// Ready reads what there is; at the end of stream it shuts itself and
// lingers, as a frontend's connection does.
func (p *probe) Ready(_ uint32, buf []byte) {
	p.afterClose()
	n, err := unix.Read(p.fd, buf)
	if err == unix.EAGAIN {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if n <= 0 {
		p.ended = true
		p.shut.Store(true)
		p.loop.Linger(p, time.Time{})
		return
	}
	p.got = append(p.got, buf[:n]...)
}

func (p *probe) afterClose() {
	if p.closed.Load() != 0 {
		p.calls.Add(1)
	}
}

func (p *probe) received() ([]byte, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return bytes.Clone(p.got), p.ended
}

// model is what a test expects of each connection it made.
type model struct {
	p       *probe
	peer    int    // the test's end of the pair; -1 once closed
	sent    []byte // what the peer wrote
	retired bool   // asked to close (retired, shut, or the peer ended it)
}

// harness runs an engine and the connections of one test.
type harness struct {
	t     testing.TB
	e     *Engine
	stop  chan struct{}
	done  chan struct{}
	conns []*model
	fds   int // the process's descriptors before the engine
}

func newHarness(t testing.TB) *harness {
	h := &harness{t: t, fds: tt.OpenDescriptors(t), stop: make(chan struct{}), done: make(chan struct{})}
	e, err := New(4096)
	if err != nil {
		t.Fatal(err)
	}
	h.e = e
	go func() { defer close(h.done); e.Run(h.stop) }()
	return h
}

func (h *harness) add() *model {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		h.t.Fatal(err)
	}
	unix.SetNonblock(fds[1], false)
	l := h.e.Pick()
	p := &probe{t: h.t, fd: fds[0], loop: l}
	if err := l.Add(p, ReadEvents); err != nil {
		h.t.Fatal(err)
	}
	m := &model{p: p, peer: fds[1]}
	h.conns = append(h.conns, m)
	return m
}

// check waits until every connection is as the model says: one still open
// has read exactly what its peer sent; one asked to close is closed, once.
func (h *harness) check() {
	h.t.Helper()
	for i, m := range h.conns {
		if m.retired {
			tt.WaitFor(h.t, fmt.Sprintf("conn %d to close", i), func() bool { return m.p.closed.Load() == 1 })
			continue
		}
		tt.WaitFor(h.t, fmt.Sprintf("conn %d to read %d bytes", i, len(m.sent)), func() bool {
			got, _ := m.p.received()
			return len(got) >= len(m.sent)
		})
		if got, _ := m.p.received(); !bytes.Equal(got, m.sent) {
			h.t.Fatalf("conn %d read %q, its peer sent %q", i, got, m.sent)
		}
		if m.p.closed.Load() != 0 {
			h.t.Fatalf("conn %d closed, never asked to", i)
		}
	}
}

// finish stops the engine and checks the exact end: every connection
// closed once, nothing called after, and the process's descriptors as
// before the engine.
func (h *harness) finish() {
	h.t.Helper()
	close(h.stop)
	<-h.done
	for i, m := range h.conns {
		if m.peer >= 0 {
			unix.Close(m.peer)
		}
		if n := m.p.closed.Load(); n != 1 {
			h.t.Fatalf("conn %d closed %d times", i, n)
		}
		if n := m.p.calls.Load(); n != 0 {
			h.t.Fatalf("conn %d called %d times after Closed", i, n)
		}
	}
	// The process's count, exact when the tests run alone (the seeds
	// included). Under -fuzz the fuzzing worker shares the process and
	// its own descriptors come and go meanwhile (one more, or one fewer,
	// now and then): there each connection's single close, above, is
	// what is checked.
	if fuzzing() {
		return
	}
	if n := tt.OpenDescriptors(h.t); n != h.fds {
		h.t.Fatalf("%d descriptors open, %d before the engine", n, h.fds)
	}
}

// apply does one operation, coded by op and arg, to the model and the
// engine.
func (h *harness) apply(op, arg byte) {
	if op%8 == 0 || len(h.conns) == 0 {
		if len(h.conns) < 32 {
			h.add()
		}
		return
	}
	m := h.conns[int(arg)%len(h.conns)]
	switch op % 8 {
	case 1, 2: // the peer sends
		if m.peer < 0 || m.retired {
			return
		}
		data := bytes.Repeat([]byte{arg}, int(arg)%64+1)
		if _, err := unix.Write(m.peer, data); err != nil {
			h.t.Fatal(err)
		}
		m.sent = append(m.sent, data...)
	case 3: // a poke
		m.p.loop.Poke(m.p)
	case 4: // retired from another goroutine, to close at once
		m.retired = true
		m.p.Shut()
		m.p.loop.Retire(m.p, time.Now())
	case 5: // retired to linger a moment first
		m.retired = true
		m.p.loop.Retire(m.p, time.Now().Add(time.Duration(arg%20)*time.Millisecond))
	case 6: // the peer ends the stream: the probe sees it and closes
		if m.peer < 0 {
			return
		}
		unix.Close(m.peer)
		m.peer = -1
		m.retired = true
	case 7: // wait until the engine has caught up with the model
		h.check()
	}
}

// fuzzing reports whether the test binary runs with -fuzz.
func fuzzing() bool {
	f := flag.Lookup("test.fuzz")
	return f != nil && f.Value.String() != ""
}

// FuzzLoop runs sequences of operations on an engine's connections (add,
// send, poke, retire, linger, end of stream) and holds the engine to a
// model of each connection, then to an exact end.
func FuzzLoop(f *testing.F) {
	f.Add([]byte{0, 0, 1, 5, 0, 1, 2, 9, 7, 0, 4, 0, 7, 0})
	f.Add([]byte{0, 0, 0, 1, 6, 1, 5, 0, 3, 0, 2, 1, 7, 0})
	f.Add([]byte{0, 0, 0, 1, 0, 2, 1, 0, 1, 1, 1, 2, 6, 0, 5, 1, 3, 2, 4, 2, 7, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 400 {
			ops = ops[:400]
		}
		h := newHarness(t)
		for i := 0; i+1 < len(ops); i += 2 {
			h.apply(ops[i], ops[i+1])
		}
		h.check()
		h.finish()
	})
}

// TestConcurrentConnectionsEndInReference: goroutines add, feed, poke,
// retire and end connections on a shared engine at once; every byte sent
// to a connection still open is read in order, every connection retired
// is closed once, and stopping the engine leaves exactly the descriptors
// there were before it.
func TestConcurrentConnectionsEndInReference(t *testing.T) {
	h := newHarness(t)
	const workers, rounds = 8, 200
	models := make([][]*model, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			own := &harness{t: t, e: h.e}
			for r := range rounds {
				own.apply(byte(r*7+w)%7, byte(r*13+w*5)) // no check (op 7) from many goroutines
			}
			models[w] = own.conns
		}()
	}
	wg.Wait()
	for _, m := range models {
		h.conns = append(h.conns, m...)
	}
	h.check()
	h.finish()
}

// TestStalledLoop: a loop serving one batch for longer than the limit is
// stalled; waiting for events, however long, is not.
func TestStalledLoop(t *testing.T) {
	h := newHarness(t)
	m := h.add()
	release := make(chan struct{})
	blocked := &blockingProbe{probe: m.p, release: release, in: make(chan struct{})}
	m.p.loop.Replace(blocked)
	if h.e.Stalled(time.Millisecond) {
		t.Fatal("an idle engine is stalled")
	}
	unix.Write(m.peer, []byte("x"))
	<-blocked.in
	tt.WaitFor(t, "the wedged loop to count as stalled", func() bool { return h.e.Stalled(5 * time.Millisecond) })
	close(release)
	tt.WaitFor(t, "the loop to be free", func() bool { return !h.e.Stalled(5 * time.Millisecond) })
	h.conns = nil
	close(h.stop)
	<-h.done
	unix.Close(m.peer)
}

type blockingProbe struct {
	*probe
	release chan struct{}
	in      chan struct{}
	once    sync.Once
}

func (b *blockingProbe) Ready(ev uint32, buf []byte) {
	b.once.Do(func() { close(b.in); <-b.release })
	b.probe.Ready(ev, buf)
}

// TestIdleLoopParksInThePoller: a loop with nothing to do waits as a
// goroutine waiting for a socket does ("IO wait"), not in a system call
// that keeps its thread's P ("syscall"): with one P, every other
// goroutine waited for the runtime to take the P back, 10-20 ms. Parked,
// it still wakes for a connection's bytes.
func TestIdleLoopParksInThePoller(t *testing.T) {
	h := newHarness(t)
	m := h.add()
	loopStates := func() []string {
		buf := make([]byte, 1<<20)
		var states []string
		for _, g := range bytes.Split(buf[:runtime.Stack(buf, true)], []byte("\n\n")) {
			if bytes.Contains(g, []byte("engine.(*Loop).run")) {
				header, _, _ := bytes.Cut(g, []byte("\n"))
				states = append(states, string(header))
			}
		}
		return states
	}
	for round := range 3 {
		tt.WaitFor(t, "every loop to park in the poller", func() bool {
			states := loopStates()
			for _, s := range states {
				if !strings.Contains(s, "[IO wait") {
					return false
				}
			}
			return len(states) == runtime.GOMAXPROCS(0)
		})
		data := []byte(fmt.Sprint("round ", round))
		if _, err := unix.Write(m.peer, data); err != nil {
			t.Fatal(err)
		}
		m.sent = append(m.sent, data...)
		h.check()
	}
	h.finish()
}
