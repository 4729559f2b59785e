package daemon

import (
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	sddaemon "github.com/coreos/go-systemd/v22/daemon"
)

// sockets are the tracker's bound sockets, whether inherited or bound here.
type sockets struct {
	udp       []*net.UDPConn
	tcp       []net.Listener
	tls       []net.Listener // HTTPS
	inherited bool
}

// httpsName is the name (FileDescriptorName=, in LISTEN_FDNAMES) of the
// stream sockets that serve HTTPS: trakx-https.socket's.
const httpsName = "https"

// inheritedSockets takes the sockets systemd passed (LISTEN_FDS), telling
// them apart by type: datagram sockets serve UDP, stream sockets HTTP, or
// HTTPS when named so (httpsName). The descriptors are read once:
// go-systemd's other helpers each consume the environment and would see
// nothing after one another; Files names each file after its
// LISTEN_FDNAMES entry.
func inheritedSockets() (sockets, error) {
	files := activation.Files(true)
	s := sockets{inherited: len(files) > 0}
	for _, f := range files {
		err := s.adopt(f)
		f.Close() // the net package holds a duplicate
		if err != nil {
			s.close()
			return sockets{}, err
		}
	}
	return s, nil
}

func (s *sockets) adopt(f *os.File) error {
	typ, domain, err := socketKind(f)
	if err != nil {
		return fmt.Errorf("inherited descriptor %d (%s) is not a socket: %w", f.Fd(), f.Name(), err)
	}
	if domain != syscall.AF_INET && domain != syscall.AF_INET6 {
		return fmt.Errorf("inherited socket %s is not an IP socket (address family %d); trakx serves UDP and TCP only", f.Name(), domain)
	}
	switch typ {
	case syscall.SOCK_DGRAM:
		pc, err := net.FilePacketConn(f)
		if err != nil {
			return fmt.Errorf("inherited socket %s: %w", f.Name(), err)
		}
		s.udp = append(s.udp, pc.(*net.UDPConn))
	case syscall.SOCK_STREAM:
		ln, err := net.FileListener(f)
		if err != nil {
			return fmt.Errorf("inherited socket %s: %w (is it listening? use ListenStream=)", f.Name(), err)
		}
		if f.Name() == httpsName {
			s.tls = append(s.tls, ln)
		} else {
			s.tcp = append(s.tcp, ln)
		}
	default:
		return fmt.Errorf("inherited socket %s is of type %d; trakx serves datagram (UDP) and stream (TCP) sockets only", f.Name(), typ)
	}
	return nil
}

// socketKind reads a descriptor's socket type and address family without
// changing its blocking mode, as f.Fd() would.
func socketKind(f *os.File) (typ, domain int, err error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, 0, err
	}
	var sockErr error
	err = rc.Control(func(fd uintptr) {
		typ, sockErr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TYPE)
		if sockErr == nil {
			domain, sockErr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_DOMAIN)
		}
	})
	if err == nil {
		err = sockErr
	}
	return typ, domain, err
}

func (s *sockets) close() {
	for _, c := range s.udp {
		c.Close()
	}
	for _, l := range s.tcp {
		l.Close()
	}
	for _, l := range s.tls {
		l.Close()
	}
}

// notify tells systemd about the service's state; without NOTIFY_SOCKET it
// does nothing.
func (d *Daemon) notify(state string) {
	if _, err := sddaemon.SdNotify(false, state); err != nil {
		d.log.WithError(err).Warn("sd_notify")
	}
}

// status is the STATUS= line systemctl status shows.
func (d *Daemon) status() string {
	st := d.store.Stats()
	return fmt.Sprintf("STATUS=%d peers in %d torrents", st.Peers(), st.Torrents)
}

// stalled reports whether any frontend has a request stuck for longer than
// limit: a UDP worker, an HTTP connection, or a WebSocket polling loop.
func (d *Daemon) stalled(limit time.Duration) bool {
	for _, f := range d.frontends {
		if f.Stalled(limit) {
			return true
		}
	}
	return d.engine != nil && d.engine.Stalled(limit)
}

// startWatchdog pings systemd's watchdog, if the unit asks for one
// (WatchdogSec=).
func (d *Daemon) startWatchdog() {
	interval, err := sddaemon.SdWatchdogEnabled(false)
	if err != nil {
		d.log.WithError(err).Warn("watchdog settings")
		return
	}
	if interval > 0 {
		writeTimeout := d.cfg.HTTP.WriteTimeout.Duration
		d.goServe(func() { d.watchdog(interval, writeTimeout) })
	}
}

// watchdog pings systemd at half the interval it asked for, but only while
// no request worker is stuck: a wedged worker stops the pings, and systemd
// restarts the service. A request may take as long as a slow client's write
// timeout, so nothing shorter than twice that counts as stuck.
func (d *Daemon) watchdog(interval, writeTimeout time.Duration) {
	limit := max(interval/3, 2*writeTimeout)
	d.every(interval/2, func() { d.watchdogTick(limit) })
}

// watchdogTick pings the watchdog unless a request has been stuck for
// longer than limit, and reports whether it pinged.
func (d *Daemon) watchdogTick(limit time.Duration) bool {
	if d.stalled(limit) {
		d.log.Errorf("a request worker has been stuck for over %v: withholding the watchdog ping", limit)
		return false
	}
	d.notify("WATCHDOG=1")
	return true
}

// deferAccept has the kernel hand over a TCP connection only once its
// request has arrived, so that accepting one never waits on the client.
func deferAccept(ln net.Listener, timeout time.Duration) {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return
	}
	rc, err := tl.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT, int(max(timeout/time.Second, 1)))
	})
}
