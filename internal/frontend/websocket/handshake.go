package websocket

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"strconv"
	"syscall"
	"time"

	"github.com/gobwas/ws"
	"github.com/trakx/trakx/internal/httpproto"
	"github.com/trakx/trakx/internal/metrics"
	"golang.org/x/sys/unix"
)

// The opening handshake (RFC 6455 section 4.2): gobwas/ws checks the
// request and answers it; trakx checks beforehand what gobwas/ws lets
// through, the key.

// handshake answers the upgrade and returns a non-blocking duplicate of
// the socket's descriptor for a loop. The duplicate is made first, so that
// a tracker out of descriptors answers 503 rather than 101 and silence.
func (s *Server) handshake(nc net.Conn, request []byte) (int, error) {
	nc.SetDeadline(time.Now().Add(s.opts.ReadTimeout))
	if !oneValidKey(request) {
		s.counters.BadRequest.Add(1)
		nc.Write(badKey)
		return -1, errBadKey
	}
	fd, err := duplicate(nc)
	if err != nil {
		s.counters.Errors[metrics.ErrDescriptors].Add(1)
		s.warnDescriptors(err)
		nc.Write(noDescriptor)
		return -1, err
	}
	rw := struct {
		io.Reader
		io.Writer
	}{io.MultiReader(bytes.NewReader(request), nc), nc}
	if _, err := (ws.Upgrader{}).Upgrade(rw); err != nil {
		unix.Close(fd)
		s.counters.BadRequest.Add(1)
		return -1, err // gobwas/ws has answered 400 with the reason
	}
	return fd, nil
}

// duplicate returns a non-blocking duplicate of nc's descriptor.
func duplicate(nc net.Conn) (int, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return -1, errors.New("not a socket")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	raw.Control(func(orig uintptr) { fd, err = unix.FcntlInt(orig, unix.F_DUPFD_CLOEXEC, 0) })
	if err != nil {
		return -1, err
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// noDescriptor answers an upgrade the tracker has no descriptor for.
var noDescriptor = func() []byte {
	body := httpproto.AppendFailure(nil, "tracker out of descriptors, try again later")
	return append([]byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: "+
		strconv.Itoa(len(body))+"\r\n\r\n"), body...)
}()

// warnDescriptors logs, at most once a second, that an upgrade found no
// descriptor to take the connection over with (the open files limit).
func (s *Server) warnDescriptors(err error) {
	now := time.Now().Unix()
	last := s.descriptorWarned.Load()
	if now > last && s.descriptorWarned.CompareAndSwap(last, now) {
		var limit unix.Rlimit
		unix.Getrlimit(unix.RLIMIT_NOFILE, &limit)
		s.log.WithError(err).Warnf("websocket: no descriptor for an upgraded connection (open files limit %d): answered 503", limit.Cur)
	}
}

var errBadKey = errors.New("websocket: Sec-WebSocket-Key is not one base64 nonce of 16 bytes")

// badKey answers an upgrade whose key is missing, repeated or malformed.
var badKey = func() []byte {
	body := httpproto.AppendFailure(nil, "Sec-WebSocket-Key must be one base64-encoded 16-byte value")
	return append([]byte("HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: "+
		strconv.Itoa(len(body))+"\r\n\r\n"), body...)
}()

// oneValidKey reports whether request's header has exactly one
// Sec-WebSocket-Key field, and its value is 16 bytes in base64 (RFC 6455
// sections 4.2.1 and 11.3.1): a list of keys, or two fields, is refused.
func oneValidKey(request []byte) bool {
	head, _, _ := bytes.Cut(request, []byte("\r\n\r\n"))
	var key []byte
	keys := 0
	for rest := head; len(rest) > 0; {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte("\n"))
		name, value, ok := bytes.Cut(bytes.TrimSuffix(line, []byte("\r")), []byte(":"))
		if ok && bytes.EqualFold(name, []byte("Sec-WebSocket-Key")) {
			keys++
			key = bytes.Trim(value, " \t")
		}
	}
	if keys != 1 || len(key) != 24 {
		return false
	}
	var nonce [18]byte
	n, err := base64.StdEncoding.Strict().Decode(nonce[:], key)
	return err == nil && n == 16
}
