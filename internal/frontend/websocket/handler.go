package websocket

import (
	"errors"
	"sync"
	"time"

	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/metrics"
	"github.com/trakx/trakx/internal/wsproto"
	"github.com/trakx/trakx/internal/wsswarm"
)

var (
	errTooManyRequests = errors.New("too many requests from your address, slow down")
	errTooManyTorrents = &bittorrent.ClientError{Message: "too many torrents on one connection"}
)

// scratchPool holds the buffers replies and relayed offers are composed in.
var scratchPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// handle answers one text message.
func (s *Server) handle(c *conn, msg []byte) {
	if !s.opts.Budget.AllowNow(c.client) {
		s.counters.Refuse(metrics.RefusalRate)
		c.send(wsproto.AppendFailure(nil, errTooManyRequests.Error(), 0, nil))
		return
	}
	var r wsproto.Request
	if err := wsproto.Parse(msg, s.opts.MaxOffers, &r); err != nil {
		s.counters.BadRequest.Add(1)
		s.counters.Errors[metrics.ReasonMalformed].Add(1)
		c.send(wsproto.AppendFailure(nil, err.Error(), 0, nil))
		return
	}
	if r.Action == wsproto.Scrape {
		s.scrape(c, &r)
		return
	}
	s.announce(c, &r)
}

func (s *Server) announce(c *conn, r *wsproto.Request) {
	if err := s.gate.Admit(&r.InfoHash, &r.PeerID); err != nil {
		s.refuse(c, r, err)
		return
	}
	a := wsswarm.Announce[*conn]{InfoHash: r.InfoHash, PeerID: r.PeerID, Conn: c, Seeder: r.LeftKnown && r.Left == 0,
		Event: r.Event, Want: len(r.Offers), Now: time.Now()}
	picked, st, err := c.announce(&a, c.picked[:0])
	c.picked = picked[:0]
	switch err {
	case nil:
	case errConnectionClosing:
		return
	default:
		s.refuse(c, r, err)
		return
	}
	s.counters.Answer(metrics.ActionAnnounce, c.client)
	bp := scratchPool.Get().(*[]byte)
	defer scratchPool.Put(bp)
	if r.Answer == nil { // an answer gets no reply, as with the reference server
		interval, _ := s.opts.Intervals()
		*bp = wsproto.AppendAnnounceReply((*bp)[:0], &wsproto.AnnounceReply{InfoHash: r.InfoHash,
			Interval: websocketInterval(interval), Complete: st.Complete, Incomplete: st.Incomplete})
		c.send(*bp)
	}
	for i, peer := range picked {
		*bp = wsproto.AppendOffer((*bp)[:0], &r.Offers[i], &r.PeerID, &r.InfoHash)
		if peer.send(*bp) {
			s.counters.Offers.Add(1)
		}
	}
	for i := range picked {
		picked[i] = nil // hold no connection past the request
	}
	if r.Answer != nil {
		if to, ok := s.swarms.Find(&r.InfoHash, &r.ToPeerID); ok && to.send(wsproto.AppendAnswer(nil, r)) {
			s.counters.Answers.Add(1)
		}
	}
}

// refuse answers an announce or scrape turned down, naming the torrent.
func (s *Server) refuse(c *conn, r *wsproto.Request, err error) {
	s.counters.Fail(err)
	h := &r.InfoHash
	if r.Action == wsproto.Scrape {
		h = nil
	}
	c.send(wsproto.AppendFailure(nil, err.Error(), r.Action, h))
}

func (s *Server) scrape(c *conn, r *wsproto.Request) {
	files := make([]wsproto.ScrapeFile, len(r.InfoHashes))
	for i := range r.InfoHashes {
		if err := s.gate.AdmitTorrent(&r.InfoHashes[i]); err != nil {
			s.refuse(c, r, err)
			return
		}
		files[i] = wsproto.ScrapeFile{InfoHash: r.InfoHashes[i], ScrapeStats: s.swarms.Scrape(&r.InfoHashes[i])}
	}
	s.counters.Answer(metrics.ActionScrape, c.client)
	interval, _ := s.opts.Intervals()
	// The reference server's min_request_interval is the whole interval.
	c.send(wsproto.AppendScrapeReply(nil, files, int(interval/time.Second)))
}

// websocketInterval is the announce interval WebSocket clients are told,
// in seconds: a fifth of the tracker's, as the reference server does,
// because WebRTC offers go stale and a browser needs fresh ones to meet
// new peers; the connection stays open between announces anyway.
func websocketInterval(announce time.Duration) int {
	return max(int((announce/5+time.Second-1)/time.Second), 1)
}
