package http

import (
	"errors"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/trakx/trakx/internal/httpproto"
	"github.com/trakx/trakx/internal/metrics"
	"golang.org/x/sys/unix"
)

// Out of descriptors (the open files limit, EMFILE; the system's, ENFILE),
// a connection cannot be accepted. Nothing of it is silent: the accepting
// goroutine gives up a spare descriptor it holds for the purpose to accept
// the connection, answers it 503 and closes it; each such connection is
// counted (trakx.http.descriptor_errors,
// trakx_errors_total{reason="descriptors"}), and a warning naming the limit
// is logged at most once a second, across every listener. Should even the
// spare be gone, the listener backs off and keeps its backlog. Serving
// resumes as soon as descriptors free.

// outOfDescriptors answers a connection the tracker has no descriptor to
// serve with, rather than an end of stream a client cannot tell from a
// crash.
var outOfDescriptors = func() []byte {
	body := httpproto.AppendFailure(nil, "tracker out of descriptors, try again later")
	return append([]byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: "+
		strconv.Itoa(len(body))+"\r\n\r\n"), body...)
}()

// tooManyConnections is the whole answer to a connection over the cap.
var tooManyConnections = func() []byte {
	body := httpproto.AppendFailure(nil, "too many connections, try again later")
	head := "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n"
	return append([]byte(head), body...)
}()

// descriptorWarned is when the last warning was logged (unix nanoseconds).
var descriptorWarned atomic.Int64

// isDescriptorShortage reports whether err says the process or the system
// ran out of descriptors.
func isDescriptorShortage(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

// acceptFailed warns of an accept that failed, at most once a second, and
// counts it if it was for want of a descriptor and the connection was
// refused (answered 503 with the spare descriptor).
func (s *Server) acceptFailed(err error, refused bool) {
	if isDescriptorShortage(err) {
		if refused {
			s.counters[0].Errors[metrics.ReasonDescriptors].Add(1)
		}
		s.warnDescriptors(err, "accepting a connection")
		return
	}
	if s.warnNow() {
		s.log.WithError(err).Warn("http accept")
	}
}

// warnDescriptors warns, at most once a second, that the tracker is out of
// descriptors, naming the limit.
func (s *Server) warnDescriptors(err error, doing string) {
	if !s.warnNow() {
		return
	}
	var limit unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_NOFILE, &limit)
	s.log.WithError(err).Warnf("http: out of descriptors %s (open files limit %d): raise LimitNOFILE= or lower http.max_connections", doing, limit.Cur)
}

// warnNow reports whether a second has passed since the last warning, and
// if so, that this one is the last.
func (s *Server) warnNow() bool {
	now := time.Now().UnixNano()
	last := descriptorWarned.Load()
	return now-last >= int64(time.Second) && descriptorWarned.CompareAndSwap(last, now)
}
