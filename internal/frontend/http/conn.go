package http

import (
	"net/netip"
	"sync"

	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/httpproto"
)

// conn is where requests are read and answered: the fast path reads a new
// connection's first request into in, and any request's reply is composed
// in body and out, and gathered with the replies to the requests read with
// it in batch. It is pooled, and held only while requests are answered.
type conn struct {
	in     [MaxRequestSize]byte
	body   []byte
	out    []byte
	batch  []byte
	req    bittorrent.AnnounceRequest
	resp   bittorrent.AnnounceResponse
	opts   httpproto.AnnounceOptions
	hashes []httpproto.ScrapeKey // as the client sent them: 20 bytes, or 32 (BEP 52)
	stats  []bittorrent.ScrapeStats
	// full is a full scrape handle admitted, for a stream to answer;
	// its builder is nil when the request was anything else.
	full fullAsk
}

var connPool = sync.Pool{New: func() any {
	return &conn{
		body:   make([]byte, 0, 4096),
		out:    make([]byte, 0, 4096+256),
		batch:  make([]byte, 0, 16<<10),
		hashes: make([]httpproto.ScrapeKey, 0, 8),
		stats:  make([]bittorrent.ScrapeStats, 0, 8),
	}
}}

// request is what the frontend needs of one parsed HTTP request.
type request struct {
	method, path, query []byte
	keepAlive           bool
	http11              bool
	close               bool // Connection: close
	hasBody             bool
	realIP              []byte
	hasRealIP           bool // the real-IP header was sent, if empty
	host                []byte
	hasHost             bool
	upgrade             bool // Upgrade: websocket
	acceptGzip          bool // Accept-Encoding allows gzip

	peer netip.Addr // the connection's remote address
}
