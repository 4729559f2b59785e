package http

import (
	"time"

	"github.com/trakx/trakx/internal/frontend/engine"
	"golang.org/x/sys/unix"
)

// A connection that has answered, or has bytes of the client's unread,
// is closed gracefully: closing it outright would answer what the client
// sends (or has sent) with a reset, and a reset destroys what the socket
// still holds of the replies, and what the client has not read of them.
// So the connection sends the end of stream after its replies, then reads
// and discards what the client still sends, and is closed only once it
// may: at the client's end of stream, or once it has discarded
// lingerBytes and the client has every byte of its replies (a client that
// pipelines past the last reply reads them only once it has sent the
// rest), or once it has discarded maxDiscard bytes or lingered for
// lingerTime, owed bytes or not. maxLingering refused connections may
// linger so at once. Half a second is what net/http waits for the same
// reason.
const (
	lingerTime   = 500 * time.Millisecond
	lingerBytes  = 64 << 10
	maxDiscard   = 1 << 20
	maxLingering = 256
)

// discarder counts what a connection closing gracefully has discarded.
type discarder struct{ discarded int }

// discard reads and drops what the client sends on fd, with one read into
// buf; true once the connection may be closed.
func (d *discarder) discard(fd int, buf []byte) bool {
	n, err := engine.Read(fd, buf)
	if err == unix.EAGAIN || err == unix.EINTR {
		return false
	}
	if n <= 0 {
		return true // end of stream, or reset: nothing more will come
	}
	d.discarded += n
	return d.discarded >= maxDiscard || (d.discarded >= lingerBytes && !unsent(fd))
}

// unsent reports whether fd's send queue holds bytes the peer has not
// acknowledged.
func unsent(fd int) bool {
	n, err := unix.IoctlGetInt(fd, unix.SIOCOUTQ)
	return err == nil && n > 0
}
