package https

import (
	"bytes"
	"io"
	"net"
	"testing"
)

// streamConn is a net.Conn reading from a byte stream, up to as many
// bytes a read as the next of sizes says (0: all asked for).
type streamConn struct {
	net.Conn
	r     *bytes.Reader
	sizes []byte
}

func (s *streamConn) Read(b []byte) (int, error) {
	if len(s.sizes) > 0 {
		if n := int(s.sizes[0]); n > 0 && n < len(b) {
			b = b[:n]
		}
		s.sizes = s.sizes[1:]
	}
	return s.r.Read(b)
}

// FuzzRecordConn: an exact recordConn hands out the stream unchanged,
// and no read crosses the end of a record, however the reads are asked
// and however the socket splits them.
func FuzzRecordConn(f *testing.F) {
	f.Add([]byte{3, 1, 200, 7, 0}, []byte{0, 3, 1}, 4096)
	f.Add([]byte{0, 0, 5, 9, 9}, []byte{2, 2, 2, 2}, 3)
	f.Fuzz(func(t *testing.T, lengths, sizes []byte, ask int) {
		ask = 1 + ask&0xffff
		var stream []byte
		var ends []int // where each record ends in the stream
		for i, l := range lengths {
			body := bytes.Repeat([]byte{byte(i)}, int(l)*3)
			stream = append(stream, 23, 3, 3, byte(len(body)>>8), byte(len(body)))
			stream = append(stream, body...)
			ends = append(ends, len(stream))
		}
		rc := &recordConn{Conn: &streamConn{r: bytes.NewReader(stream), sizes: sizes}, exact: true}
		var got []byte
		buf := make([]byte, ask)
		for {
			n, err := rc.Read(buf)
			start := len(got)
			got = append(got, buf[:n]...)
			for _, end := range ends {
				if start < end && len(got) > end {
					t.Fatalf("a read of [%d, %d) crosses the record ending at %d", start, len(got), end)
				}
			}
			if err == io.EOF {
				break
			}
		}
		if !bytes.Equal(got, stream) {
			t.Fatalf("got %d bytes, not the stream's %d", len(got), len(stream))
		}
	})
}
