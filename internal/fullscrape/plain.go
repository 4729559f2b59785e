package fullscrape

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"sync"
)

// Plain reads a snapshot's reply decompressed, a piece at a time, for a
// client that does not accept gzip. It takes one of its builder's slots
// for plain readers, and its buffers are pooled: Close gives them back.
type Plain struct {
	src   bytes.Reader
	zr    *gzip.Reader
	buf   *[PieceSize]byte
	slots chan struct{} // the one it took a slot of, until Close; or nil
}

// ErrBusy is NewPlain's answer when as many replies as the builder allows
// (Options.MaxPlain) are being read decompressed already.
var ErrBusy = errors.New("full scrape busy: too many replies decompressed at once")

// PieceSize is the most Next returns at once.
const PieceSize = 64 << 10

var (
	readers sync.Pool // *gzip.Reader
	pieces  = sync.Pool{New: func() any { return new([PieceSize]byte) }}
)

// NewPlain starts reading s decompressed, or says ErrBusy if its builder
// has no slot free: it never waits for one.
func (s *Snapshot) NewPlain() (*Plain, error) {
	if s.slots != nil {
		select {
		case s.slots <- struct{}{}:
		default:
			return nil, ErrBusy
		}
	}
	p := &Plain{buf: pieces.Get().(*[PieceSize]byte), slots: s.slots}
	p.src.Reset(s.Gzip)
	var err error
	if zr, ok := readers.Get().(*gzip.Reader); ok {
		p.zr, err = zr, zr.Reset(&p.src)
	} else {
		p.zr, err = gzip.NewReader(&p.src)
	}
	if err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// Next returns the next piece of the reply, valid until the next call,
// or io.EOF after the last.
func (p *Plain) Next() ([]byte, error) {
	n, err := io.ReadFull(p.zr, p.buf[:])
	if err == io.ErrUnexpectedEOF || (err == io.EOF && n > 0) {
		err = nil
	}
	if n > 0 {
		return p.buf[:n], nil
	}
	return nil, err
}

// WritePlain writes the reply decompressed to w, for a caller that may
// block on w; ErrBusy, having written nothing, if NewPlain says so.
func (s *Snapshot) WritePlain(w io.Writer) error {
	p, err := s.NewPlain()
	if err != nil {
		return err
	}
	defer p.Close()
	return p.WriteAll(w)
}

// WriteAll writes the rest of the reply to w, piece by piece.
func (p *Plain) WriteAll(w io.Writer) error {
	for {
		piece, err := p.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := w.Write(piece); err != nil {
			return err
		}
	}
}

// Close gives the reader's buffers and slot back; p is not to be used
// again.
func (p *Plain) Close() {
	if p.slots != nil {
		<-p.slots
		p.slots = nil
	}
	p.src.Reset(nil) // a pooled reader keeps no snapshot alive
	if p.zr != nil {
		readers.Put(p.zr)
		p.zr = nil
	}
	if p.buf != nil {
		pieces.Put(p.buf)
		p.buf = nil
	}
}
