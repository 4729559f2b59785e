package wire

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"testing"
)

// benchSubject is a plausible subject for a node's batches; its length
// is all the figures depend on.
const benchSubject = "trakx.node-a.announce"

// natsFraming is the bytes NATS adds to a message of n bytes delivered to
// a subscriber: "MSG <subject> <sid> <n>\r\n" before it, "\r\n" after it.
// (The publisher's "PUB <subject> <n>\r\n" is two bytes shorter.)
func natsFraming(n int) int {
	return len("MSG ") + len(benchSubject) + len(" 1 ") + len(strconv.Itoa(n)) + len("\r\n") + len("\r\n")
}

// workload draws the torrents of announces: uniform over torrents, or
// Zipf-distributed with exponent s (a few popular torrents get most
// announces, as on a public tracker).
type workload struct {
	name     string
	s        float64 // 0: uniform
	torrents uint64
}

var workloads = []workload{
	{"uniform-1M", 0, 1_000_000},
	{"zipf1.1-1M", 1.1, 1_000_000},
	{"zipf1.1-100k", 1.1, 100_000},
	{"zipf1.5-1M", 1.5, 1_000_000},
}

// records returns n IPv4 announces of the workload, in arrival order.
func (w workload) records(r *rand.Rand, n int) []Record {
	draw := func() uint64 { return r.Uint64N(w.torrents) }
	if w.s > 0 {
		z := rand.NewZipf(r, w.s, 1, w.torrents-1)
		draw = z.Uint64
	}
	recs := make([]Record, n)
	for i := range recs {
		t := draw() * 0x9E3779B97F4A7C15 // popular torrents' hashes spread over the order
		binary.BigEndian.PutUint64(recs[i].InfoHash[:], t)
		recs[i].Addr = netip.AddrFrom4([4]byte{byte(1 + r.IntN(126)), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())})
		recs[i].Port, recs[i].Event, recs[i].Seeder = uint16(1+r.IntN(65535)), 0, r.IntN(2) == 0
	}
	return recs
}

// BenchmarkBytesPerRecord reports the wire bytes a receiver gets per
// replicated IPv4 announce (wire-B/rec, NATS's framing included;
// payload-B/rec without it), for batches of 100 and 1000 announces (a
// node taking 1,000 or 10,000 announces/s, flushing every 100 ms), sent
// in arrival order or sorted by info hash as Batch sends them. The time
// is a batch's gathering, sorting and appending.
func BenchmarkBytesPerRecord(b *testing.B) {
	for _, w := range workloads {
		for _, n := range []int{100, 1000} {
			for _, sorted := range []bool{false, true} {
				b.Run(fmt.Sprintf("%s/batch=%d/sorted=%v", w.name, n, sorted), func(b *testing.B) {
					benchBatches(b, w, n, sorted)
				})
			}
		}
	}
}

// benchBatches sends batches of n records of the workload and reports
// their average size.
func benchBatches(b *testing.B, w workload, n int, sorted bool) {
	r := rand.New(rand.NewPCG(1, uint64(n)))
	const batches = 64
	all := w.records(r, batches*n)
	var batch Batch
	var buf []byte
	var wire, payload, recs int
	i := 0
	for b.Loop() {
		batch.Reset()
		for _, rc := range all[i*n : (i+1)*n] {
			batch.Add(rc)
		}
		i = (i + 1) % batches
		h := Header{Node: "node-a", Seq: uint64(i), SentNanos: int64(i) * 1e8}
		if sorted {
			buf = batch.AppendTo(buf[:0], h)
		} else {
			buf = AppendBatch(buf[:0], h, batch.Records)
		}
		payload += len(buf)
		wire += len(buf) + natsFraming(len(buf))
		recs += n
	}
	b.ReportMetric(float64(wire)/float64(recs), "wire-B/rec")
	b.ReportMetric(float64(payload)/float64(recs), "payload-B/rec")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(recs), "ns/rec")
}

// BenchmarkParse reports the time to read a batch of 1000 records of the
// Zipf workload, sorted, with a Parser that knows the node.
func BenchmarkParse(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	var batch Batch
	for _, rc := range workloads[1].records(r, 1000) {
		batch.Add(rc)
	}
	buf := batch.AppendTo(nil, Header{Node: "node-a"})
	var p Parser
	valid := 0
	b.ReportAllocs()
	for b.Loop() {
		_, st, err := p.Parse(buf, func(Record) { valid++ })
		if err != nil || st.Valid != 1000 {
			b.Fatal(st, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/rec")
}
