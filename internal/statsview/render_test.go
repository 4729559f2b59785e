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
