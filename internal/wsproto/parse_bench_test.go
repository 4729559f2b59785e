package wsproto

import "testing"

// BenchmarkParseAnnounce is one WebTorrent announce without offers, as
// test/ws-compare.sh sends them.
func BenchmarkParseAnnounce(b *testing.B) {
	msg := []byte(`{"numwant":0,"uploaded":0,"downloaded":0,"left":1,"action":"announce","info_hash":"éèabcdefghijklmnopqr","peer_id":"-WB0001-\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0001"}`)
	var r Request
	b.ReportAllocs()
	for b.Loop() {
		if err := Parse(msg, 10, &r); err != nil {
			b.Fatal(err)
		}
	}
}
