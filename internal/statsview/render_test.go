package statsview

import (
	"strings"
	"testing"
	"time"
)

// TestRefusedLineNamesNewReasons: a refusal reason the refused line does
// not name is added at its end, with its count, and the known ones keep
// their places.
func TestRefusedLineNamesNewReasons(t *testing.T) {
	s := Sample{
		Series("trakx_refused_total", "reason", "rate"):   2,
		Series("trakx_refused_total", "reason", "banned"): 3,
	}
	var b strings.Builder
	Render(&b, &View{Addr: "a", Cur: s, Now: time.Now(), Interval: time.Second})
	want := "refused: -/s (since start: rate 2, host 0, client 0, access_list 0, tracker_full 0, out_of_memory 0, connection_cap 0, websocket_cap 0, banned 3)\n"
	if !strings.Contains(b.String(), want) {
		t.Fatalf("got\n%s\nwant the line\n%s", b.String(), want)
	}
}

// TestRequestLinesNameNewProtocols: a frontend the requests and errors
// lines do not name is added at their ends, and the known ones keep their
// places.
func TestRequestLinesNameNewProtocols(t *testing.T) {
	s := Sample{
		Series("trakx_requests_total", "protocol", "udp", "action", "announce", "family", "ipv4"):    5,
		Series("trakx_requests_total", "protocol", "gopher", "action", "announce", "family", "ipv6"): 7,
		Series("trakx_errors_total", "protocol", "gopher", "reason", "malformed"):                    2,
	}
	prev := Sample{Series("trakx_requests_total", "protocol", "gopher", "action", "announce", "family", "ipv6"): 3}
	var b strings.Builder
	Render(&b, &View{Addr: "a", Prev: prev, Cur: s, Elapsed: 2 * time.Second, Now: time.Now(), Interval: 2 * time.Second})
	for _, want := range []string{
		"requests: udp 2.5/s, http 0/s, websocket 0/s, gopher 2.0/s (over 2s)\n",
		"(since start: udp 0, http 0, websocket 0, gopher 2)\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Fatalf("got\n%s\nwant a line with\n%s", b.String(), want)
		}
	}
}

// TestClusterLine: no cluster line without trakx_cluster_* series; with
// them, the state, the deltas' rates and the interval's mean apply lag.
func TestClusterLine(t *testing.T) {
	var b strings.Builder
	Render(&b, &View{Addr: "a", Cur: Sample{}, Now: time.Now(), Interval: time.Second})
	if strings.Contains(b.String(), "cluster") {
		t.Fatalf("a cluster line without a cluster:\n%s", b.String())
	}
	prev := Sample{
		"trakx_cluster_connected": 1, Series("trakx_cluster_deltas_total", "direction", "published"): 10,
		"trakx_cluster_apply_lag_seconds_sum": 1, "trakx_cluster_apply_lag_seconds_count": 10,
	}
	cur := Sample{
		"trakx_cluster_connected": 1, "trakx_cluster_nodes": 3, "trakx_cluster_catchups_total": 1,
		Series("trakx_cluster_deltas_total", "direction", "published"): 30,
		Series("trakx_cluster_bytes_total", "direction", "sent"):       540,
		"trakx_cluster_apply_lag_seconds_sum":                          1.02, "trakx_cluster_apply_lag_seconds_count": 14,
	}
	b.Reset()
	Render(&b, &View{Addr: "a", Prev: prev, Cur: cur, Elapsed: 2 * time.Second, Now: time.Now(), Interval: 2 * time.Second})
	want := "cluster: connected, nodes 3; announces published 10.0/s, applied 0/s, refused 0/s, dropped 0/s; bytes sent 270/s, received 0/s; catch-ups 1; apply lag 0.005s\n"
	if !strings.Contains(b.String(), want) {
		t.Fatalf("got\n%s\nwant the line\n%s", b.String(), want)
	}
}
