package loadgen

// A paced run (Config.Rate) is open loop: requests go out on a fixed
// schedule whether or not earlier ones were answered, so that a tracker
// falling behind shows as queueing delay and timeouts, not as a generator
// that slows down with it. Latency is measured from each request's
// scheduled time, not from when it actually went out, so that the
// generator's own delays are not hidden (no coordinated omission); how late
// requests went out is reported beside it.
//
// Each worker is a lane (a UDP socket, or an HTTP connection) with its own
// share of the schedule. One goroutine per CPU (GOMAXPROCS) drives several
// lanes and waits for all of them in one ppoll, whose timeout is precise to
// microseconds: the Go runtime's timers (deadlines, time.Sleep) wake a quiet
// process to the millisecond, which would add up to a millisecond of the
// generator's own to every latency, and a goroutine per lane costs a thread
// wake-up per request.

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// pace is a paced run's schedule, shared by its lanes: worker w's k-th
// request is due at (k*workers + w)/rate seconds after start, so that the
// workers' requests interleave evenly.
type pace struct {
	start   time.Time     // set before the lanes start
	measure time.Duration // requests due from here on are counted
	end     time.Duration // no request is due from here on
	rate    int64
	workers int64
}

func (p *pace) due(w int, k int64) time.Duration {
	return time.Duration((k*p.workers + int64(w)) * int64(time.Second) / p.rate)
}

func (p *pace) now() time.Duration { return time.Since(p.start) }

// lateGrace is how late after the end of the schedule a request may still
// go out and count as sent; a generator further behind than that loses the
// requests it did not send, and sends fewer than it was asked to.
const lateGrace = time.Millisecond

// never is a wake-up time that does not come.
const never = time.Duration(1<<63 - 1)

// pacedSlots is how many requests a UDP socket can have outstanding in a
// paced run: all those of the last timeout, with room to spare. A slot's
// index is the low 16 bits of its transaction id.
func pacedSlots(cfg *Config) int {
	return int(float64(cfg.Rate)/float64(cfg.Workers)*cfg.Timeout.Seconds()*1.25) + 64
}

// lane is one worker of a paced run.
type lane interface {
	// send times out what has waited too long and sends what is due at
	// now. It says what to wait for on which descriptor (-1: none), and
	// when to call send again at the latest; done once the schedule is
	// over and nothing is outstanding.
	send(now time.Duration) (fd int, events int16, wake time.Duration, done bool)
	// receive handles what ppoll reported on the lane's descriptor.
	receive(revents int16) error
	close()
}

// runPaced plays a paced load: every lane's socket or connection is set up
// first, then the schedule starts; the lanes stop sending at its end and
// wait for the answers still due (each for at most cfg.Timeout).
func runPaced(cfg Config) (*Result, error) {
	if err := checkPaced(&cfg); err != nil {
		return nil, err
	}
	p := &pace{measure: cfg.Warmup, end: cfg.Warmup + cfg.Duration, rate: int64(cfg.Rate), workers: int64(cfg.Workers)}
	results := make([]*stats, cfg.Workers)
	lanes, err := openLanes(&cfg, p, results)
	defer func() {
		for _, l := range lanes {
			l.close()
		}
	}()
	if err != nil {
		return nil, err
	}
	p.start = time.Now()
	if err := driveAll(p, lanes); err != nil {
		return nil, err
	}
	r := &Result{Config: cfg, Elapsed: cfg.Duration}
	for _, st := range results {
		r.merge(st)
	}
	return r, nil
}

// checkPaced refuses what a paced run cannot play.
func checkPaced(cfg *Config) error {
	switch {
	case cfg.Rate < 0:
		return fmt.Errorf("rate %d: want requests per second above 0", cfg.Rate)
	case cfg.Timeout <= 0:
		return errors.New("a paced run needs a timeout above 0")
	case cfg.Protocol == "http" && !cfg.KeepAlive:
		return errors.New("a paced run over HTTP needs keep-alive (-keepalive): it pipelines requests on -workers connections")
	case cfg.Protocol != "udp" && cfg.Protocol != "http":
		return fmt.Errorf("a paced run is UDP or HTTP keep-alive, not %q", cfg.Protocol)
	case cfg.Protocol == "udp" && pacedSlots(cfg) > 1<<16:
		return fmt.Errorf("%d requests a second over %d sockets with a timeout of %v can leave more than 65536 outstanding on a socket: add workers or shorten the timeout",
			cfg.Rate, cfg.Workers, cfg.Timeout)
	}
	return nil
}

// openLanes sets up every worker's lane, each counting into its own
// results[w]; on error, the lanes opened so far are returned to be closed.
func openLanes(cfg *Config, p *pace, results []*stats) ([]lane, error) {
	lanes := make([]lane, 0, cfg.Workers)
	for w := range cfg.Workers {
		g := newGenerator(cfg, w)
		g.prepare()
		results[w] = &stats{}
		var l lane
		var err error
		if cfg.Protocol == "udp" {
			l, err = newUDPLane(cfg, g, results[w], p, w)
		} else {
			l, err = newHTTPLane(cfg, g, results[w], p, w)
		}
		if err != nil {
			return lanes, err
		}
		lanes = append(lanes, l)
	}
	return lanes, nil
}

// driveAll shares the lanes out among one goroutine per CPU, each driving
// its own, and waits for them all.
func driveAll(p *pace, lanes []lane) error {
	pacers := min(len(lanes), runtime.GOMAXPROCS(0))
	errs := make([]error, pacers)
	var wg sync.WaitGroup
	for i := range pacers {
		var mine []lane
		for w := i; w < len(lanes); w += pacers {
			mine = append(mine, lanes[w])
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = drive(p, mine)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// drive runs lanes until each is done, waiting for all of them at once.
func drive(p *pace, lanes []lane) error {
	fds := make([]unix.PollFd, len(lanes))
	done := make([]bool, len(lanes))
	for {
		now := p.now()
		wake, live := never, 0
		for i, l := range lanes {
			fds[i] = unix.PollFd{Fd: -1}
			if done[i] {
				continue
			}
			fd, events, at, finished := l.send(now)
			if finished {
				done[i] = true
				continue
			}
			live++
			fds[i] = unix.PollFd{Fd: int32(fd), Events: events}
			wake = min(wake, at)
		}
		if live == 0 {
			return nil
		}
		// At most 100 ms, as a guard: every lane names its next wake-up.
		ts := unix.NsecToTimespec(int64(min(max(wake-p.now(), 0), 100*time.Millisecond)))
		n, err := unix.Ppoll(fds, &ts, nil)
		if err == unix.EINTR || n <= 0 {
			if err != nil && err != unix.EINTR {
				return err
			}
			continue
		}
		for i := range fds {
			if fds[i].Fd >= 0 && fds[i].Revents != 0 {
				if err := lanes[i].receive(fds[i].Revents); err != nil {
					return err
				}
			}
		}
	}
}

// rawFD is a socket's descriptor, for ppoll; the socket must outlive its
// use.
func rawFD(c syscall.Conn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	if err := rc.Control(func(s uintptr) { fd = int(s) }); err != nil {
		return -1, err
	}
	return fd, nil
}
