package wire

import (
	"encoding/binary"
	"errors"
	"math"
	"net/netip"
	"strconv"

	"github.com/trakx/trakx/internal/bittorrent"
)

// Errors of ParseBatch. ErrHeader and FormatError refuse the whole batch;
// after ErrTruncated and ErrTrailingBytes the records yielded stand.
var (
	ErrHeader        = errors.New("cluster batch: malformed header")
	ErrTruncated     = errors.New("cluster batch: records end before the header's count")
	ErrTrailingBytes = errors.New("cluster batch: bytes after the last record")
)

// FormatError refuses a batch of a format this node does not read: one
// written by a later (or earlier) trakx, which is refused by name rather
// than misread.
type FormatError byte

// Error says which format the batch was.
func (f FormatError) Error() string {
	return "cluster batch: format " + strconv.Itoa(int(f)) + ", this node reads format " + strconv.Itoa(Format)
}

// Stats count a parsed batch's records.
type Stats struct {
	Valid     int // yielded to the caller
	Malformed int // refused, or missing from a truncated batch
}

// ParseBatch reads a batch and calls fn with each valid record, in order.
// It returns the header, the records' counts, and an error: with
// ErrHeader or a FormatError nothing was yielded; otherwise Valid +
// Malformed is the header's Count. It never panics. It allocates the
// header's node name; a Parser does not, once it knows the node.
func ParseBatch(b []byte, fn func(Record)) (Header, Stats, error) {
	var p Parser
	return p.Parse(b, fn)
}

// maxNames is the most node names a Parser keeps: more than a cluster
// has, and few enough that a flood of made-up names costs little.
const maxNames = 64

// Parser reads batches as ParseBatch does, and keeps the node names it
// has seen (maxNames at most), so that it allocates nothing for a node
// it knows. Its zero value is ready; it is not safe for concurrent use.
type Parser struct {
	names []string
}

// Parse is ParseBatch, with the node's name taken from those known.
func (p *Parser) Parse(b []byte, fn func(Record)) (Header, Stats, error) {
	h, body, err := p.parseHeader(b)
	if err != nil {
		return Header{}, Stats{}, err
	}
	var st Stats
	var hash bittorrent.InfoHash
	haveHash := false
	for range h.Count {
		if len(body) == 0 || len(body) < recordSize(body[0]) {
			st.Malformed = h.Count - st.Valid
			return h, st, ErrTruncated
		}
		n := recordSize(body[0])
		r, ok := parseRecord(body[:n], &hash, &haveHash)
		body = body[n:]
		if !ok {
			st.Malformed++
			continue
		}
		st.Valid++
		fn(r)
	}
	if len(body) > 0 {
		return h, st, ErrTrailingBytes
	}
	return h, st, nil
}

// name returns the node name spelled by b, one the parser knows when it
// knows it.
func (p *Parser) name(b []byte) string {
	for _, n := range p.names {
		if n == string(b) {
			return n
		}
	}
	n := string(b)
	if len(p.names) < maxNames {
		p.names = append(p.names, n)
	}
	return n
}

// parseHeader reads a batch's header and returns it and the records'
// bytes.
func (p *Parser) parseHeader(b []byte) (Header, []byte, error) {
	if len(b) == 0 {
		return Header{}, nil, ErrHeader
	}
	if b[0] != Format {
		return Header{}, nil, FormatError(b[0])
	}
	if len(b) < 2 || len(b) < 2+int(b[1])+16 {
		return Header{}, nil, ErrHeader
	}
	node, rest := b[2:2+int(b[1])], b[2+int(b[1]):]
	if !validNode(node) {
		return Header{}, nil, ErrHeader
	}
	h := Header{Node: p.name(node)}
	h.Seq = binary.BigEndian.Uint64(rest)
	sent := binary.BigEndian.Uint64(rest[8:])
	count, n := binary.Uvarint(rest[16:])
	if sent > math.MaxInt64 || n <= 0 {
		return Header{}, nil, ErrHeader
	}
	body := rest[16+n:]
	if count > uint64(len(body)/minRecordSize) {
		return Header{}, nil, ErrHeader
	}
	h.SentNanos, h.Count = int64(sent), int(count)
	return h, body, nil
}

// validNode is ValidNode of a name as a string or as bytes, so that a
// header's name is checked before it is made a string.
func validNode[S string | []byte](name S) bool {
	if len(name) == 0 || len(name) > MaxNodeLen {
		return false
	}
	for i := range len(name) {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

// parseRecord reads one record, b being exactly its bytes, and reports
// whether it is valid. hash is the info hash in effect, which a record
// that carries one replaces, valid or not; haveHash says there is one.
func parseRecord(b []byte, hash *bittorrent.InfoHash, haveHash *bool) (Record, bool) {
	t := b[0]
	b = b[1:]
	if t&tagSameHash == 0 {
		*hash, *haveHash = bittorrent.InfoHash(b[:hashSize]), true
		b = b[hashSize:]
	}
	r := Record{InfoHash: *hash, Event: bittorrent.Event(t & tagEvent), Seeder: t&tagSeeder != 0}
	if t&tagIPv6 != 0 {
		r.Addr, b = netip.AddrFrom16([16]byte(b[:16])), b[16:]
	} else {
		r.Addr, b = netip.AddrFrom4([4]byte(b[:4])), b[4:]
	}
	r.Port = binary.BigEndian.Uint16(b)
	return r, *haveHash && t&tagReserved == 0 && r.Valid()
}
