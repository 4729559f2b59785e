package loadgen

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
)

const hexDigits = "0123456789ABCDEF"

// appendEscaped percent-encodes every byte: valid for any tracker, and
// what many clients send for binary hashes.
func appendEscaped(dst []byte, b []byte) []byte {
	for _, c := range b {
		dst = append(dst, '%', hexDigits[c>>4], hexDigits[c&15])
	}
	return dst
}

// runHTTP sends one request at a time on its connection until stop,
// opening a connection per request unless cfg.KeepAlive is set.
func runHTTP(cfg *Config, g *generator, st *stats, counting *atomic.Bool, stop <-chan struct{}) error {
	var (
		conn   net.Conn
		req    bittorrent.AnnounceRequest
		hashes []bittorrent.InfoHash
		out    = make([]byte, 0, 2048)
		in     = make([]byte, 64<<10)
	)
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		var k kind
		out, hashes, k = appendHTTPRequest(out[:0], cfg, g, &req, hashes)

		start := time.Now()
		if conn == nil {
			c, err := net.DialTimeout("tcp", cfg.Target, cfg.Timeout)
			if err != nil {
				if counting.Load() {
					st.timeouts++
				}
				time.Sleep(time.Millisecond) // not listening yet, or out of ports
				continue
			}
			conn = c
		}
		conn.SetDeadline(start.Add(cfg.Timeout))
		body, keep, err := exchange(conn, out, in)
		if !keep || err != nil || !cfg.KeepAlive {
			conn.Close()
			conn = nil
		}
		if err != nil {
			if counting.Load() {
				st.timeouts++
			}
			continue
		}
		if !counting.Load() {
			continue
		}
		if bytes.HasPrefix(body, []byte("d14:failure reason")) {
			st.errors++
			continue
		}
		st.responses[k]++
		st.latency.add(time.Since(start))
		if k == kindAnnounce {
			st.peers += uint64(countPeers(body))
		}
	}
}

// appendHTTPRequest appends the generator's next request, an announce or a
// scrape, and says which; hashes is scratch space for a scrape's.
func appendHTTPRequest(out []byte, cfg *Config, g *generator, req *bittorrent.AnnounceRequest, hashes []bittorrent.InfoHash) ([]byte, []bittorrent.InfoHash, kind) {
	k := kindAnnounce
	if g.isScrape() {
		k = kindScrape
		out = append(out, "GET /scrape?"...)
		hashes = g.scrape(hashes[:0])
		for i := range hashes {
			if i > 0 {
				out = append(out, '&')
			}
			out = append(out, "info_hash="...)
			out = appendEscaped(out, hashes[i][:])
		}
	} else {
		g.announce(req)
		out = append(out, "GET /announce?info_hash="...)
		out = appendEscaped(out, req.InfoHash[:])
		out = append(out, "&peer_id="...)
		out = appendEscaped(out, req.PeerID[:])
		out = append(out, "&port="...)
		out = strconv.AppendUint(out, uint64(req.Port), 10)
		out = append(out, "&uploaded=0&downloaded=0&left="...)
		out = strconv.AppendUint(out, req.Left, 10)
		out = append(out, "&numwant="...)
		out = strconv.AppendInt(out, int64(req.NumWant), 10)
		out = append(out, "&compact=1"...)
	}
	out = append(out, " HTTP/1.1\r\nHost: tracker\r\n"...)
	if !cfg.KeepAlive {
		out = append(out, "Connection: close\r\n"...)
	}
	return append(out, "\r\n"...), hashes, k
}

var errBadResponse = errors.New("malformed HTTP response")

// exchange writes a request and reads its response into in, returning the
// body and whether the connection may carry another request.
func exchange(conn net.Conn, request, in []byte) (body []byte, keep bool, err error) {
	if _, err := conn.Write(request); err != nil {
		return nil, false, err
	}
	n := 0
	for {
		if n == len(in) {
			return nil, false, errBadResponse
		}
		k, err := conn.Read(in[n:])
		n += k
		if end := bytes.Index(in[:n], []byte("\r\n\r\n")); end >= 0 {
			head := in[:end]
			keep = !bytes.Contains(bytes.ToLower(head), []byte("connection: close")) && bytes.HasPrefix(head, []byte("HTTP/1.1"))
			length := -1
			if i := bytes.Index(bytes.ToLower(head), []byte("content-length:")); i >= 0 {
				rest := head[i+len("content-length:"):]
				if j := bytes.IndexByte(rest, '\r'); j >= 0 {
					rest = rest[:j]
				}
				if length, err = strconv.Atoi(string(bytes.TrimSpace(rest))); err != nil {
					return nil, false, errBadResponse
				}
			}
			start := end + 4
			if length < 0 { // read to the end of the connection
				keep = false
				for err == nil {
					if n == len(in) {
						return nil, false, errBadResponse
					}
					k, err = conn.Read(in[n:])
					n += k
				}
				if err != io.EOF {
					return nil, false, err
				}
				return in[start:n], false, nil
			}
			for n-start < length {
				if n == len(in) {
					return nil, false, errBadResponse
				}
				k, err := conn.Read(in[n:])
				n += k
				if err != nil && n-start < length {
					return nil, false, err
				}
			}
			return in[start : start+length], keep, nil
		}
		if err != nil {
			return nil, false, err
		}
	}
}

// countPeers reads the length of the compact "peers" string.
func countPeers(body []byte) int {
	i := bytes.Index(body, []byte("5:peers"))
	if i < 0 {
		return 0
	}
	rest := body[i+len("5:peers"):]
	colon := bytes.IndexByte(rest, ':')
	if colon < 0 {
		return 0
	}
	n, _ := strconv.Atoi(string(rest[:colon]))
	return n / 6
}
