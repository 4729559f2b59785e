package loadgen

import (
	"context"
	"encoding/binary"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/wsproto"
)

// wsURL is the WebSocket announce URL of a host:port.
func wsURL(target string) string { return "ws://" + target + "/announce" }

// wsPeerID is worker w's peer id: one per connection, as WebTorrent has.
func wsPeerID(w int) (id bittorrent.PeerID) {
	copy(id[:], "-WB0001-")
	binary.BigEndian.PutUint64(id[12:], uint64(w))
	return id
}

// runWS announces over one WebSocket, one announce at a time, until stop.
func runWS(cfg *Config, g *generator, st *stats, counting *atomic.Bool, stop <-chan struct{}) error {
	conn, _, _, err := ws.Dialer{Timeout: cfg.Timeout}.Dial(context.Background(), wsURL(cfg.Target))
	if err != nil {
		return err
	}
	defer conn.Close()
	id := wsPeerID(g.worker)
	var msg []byte
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		var req bittorrent.AnnounceRequest
		g.announce(&req)
		msg = wsproto.AppendAnnounceRequest(msg[:0], &req.InfoHash, &id, req.Left)
		start := time.Now()
		conn.SetDeadline(start.Add(cfg.Timeout))
		if err := wsutil.WriteClientText(conn, msg); err != nil {
			return err
		}
		reply, err := wsutil.ReadServerText(conn)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				if counting.Load() {
					st.timeouts++
				}
				return nil
			}
			return err
		}
		if counting.Load() {
			if wsproto.IsFailure(reply) {
				st.errors++
				continue
			}
			st.responses[kindAnnounce]++
			st.latency.add(time.Since(start))
		}
	}
}

// IdleWebSockets opens n WebSocket connections to target (wss:// over TLS
// if secure, with the TLS of an https run), each announcing once (to
// torrent i mod torrents, as a leecher with its own peer id), and returns
// once all are answered, with a function that closes them.
func IdleWebSockets(target string, n, torrents int, secure bool, timeout time.Duration) (closeAll func(), err error) {
	conns := make([]net.Conn, n)
	closeAll = func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 64) // connections being set up at once
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			url, dialer := wsURL(target), ws.Dialer{Timeout: timeout}
			if secure {
				url, dialer.TLSConfig = "wss"+strings.TrimPrefix(url, "ws"), tlsConfig
			}
			c, _, _, err := dialer.Dial(context.Background(), url)
			if err != nil {
				errs <- err
				return
			}
			conns[i] = c
			h, id := InfoHash(1, i%torrents), wsPeerID(i)
			c.SetDeadline(time.Now().Add(timeout))
			if err := wsutil.WriteClientText(c, wsproto.AppendAnnounceRequest(nil, &h, &id, 1)); err != nil {
				errs <- err
				return
			}
			if _, err := wsutil.ReadServerText(c); err != nil {
				errs <- err
				return
			}
			c.SetDeadline(time.Time{})
			// Keep answering the tracker's pings while idle.
			go func() {
				for {
					if _, _, err := wsutil.ReadServerData(c); err != nil {
						return
					}
				}
			}()
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		closeAll()
		return nil, err
	}
	return closeAll, nil
}
