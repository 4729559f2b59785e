package metrics

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/trakx/trakx/internal/bittorrent"
	"github.com/trakx/trakx/internal/config"
)

// TestProfilesOnlyWhenAsked: the stats handler serves Go's profiles only
// with stats.pprof, and nothing is ever put on http.DefaultServeMux.
func TestProfilesOnlyWhenAsked(t *testing.T) {
	m := New(nil)
	for _, profiles := range []bool{false, true} {
		srv := httptest.NewServer(m.Handler(profiles))
		for _, path := range []string{"/debug/pprof/heap", "/debug/pprof/goroutine", "/debug/pprof/profile?seconds=1", "/debug/pprof/trace?seconds=1", "/debug/pprof/goroutine?debug=2"} {
			resp, err := http.Get(srv.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if profiles && strings.HasSuffix(path, "trace?seconds=1") && !bytes.HasPrefix(body, []byte("go 1.")) {
				t.Errorf("%s: not an execution trace: %.40q", path, body)
			}
			if profiles && strings.HasSuffix(path, "debug=2") && !bytes.Contains(body, []byte("goroutine ")) {
				t.Errorf("%s: not the goroutines' stacks as text: %.40q", path, body)
			}
			if want := map[bool]int{false: 404, true: 200}[profiles]; resp.StatusCode != want {
				t.Errorf("profiles %v: %s answered %d, want %d", profiles, path, resp.StatusCode, want)
			}
		}
		srv.Close()
	}
	if _, pattern := http.DefaultServeMux.Handler(httptest.NewRequest("GET", "/debug/pprof/", nil)); pattern != "" {
		t.Fatalf("http.DefaultServeMux serves %q", pattern)
	}
	if config.Default().Stats.Pprof {
		t.Fatal("profiles are served by default")
	}
}

// TestEveryBlockIsAddedUp: the request counters of every worker of a
// protocol, however they were made, are in that protocol's totals and
// /debug/vars tree, and in no other protocol's.
func TestEveryBlockIsAddedUp(t *testing.T) {
	m := New(nil)
	v4, v6 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")
	m.NewUDP().Answer(ActionConnect, v4)
	m.NewUDP().Answer(ActionAnnounce, v6)
	m.NewRequests(ProtocolUDP).Fail(bittorrent.ErrNotAllowed)
	m.NewHTTP().Refuse(RefusalRate)
	m.WebSocket.Answer(ActionScrape, v4)

	tot := m.Totals()
	udp := &tot.Requests[ProtocolUDP]
	if udp.Answered[ActionConnect][IPv4] != 1 || udp.Answered[ActionAnnounce][IPv6] != 1 ||
		udp.Refused[RefusalAccessList] != 1 || udp.Errors[ReasonTorrentNotAllowed] != 1 {
		t.Errorf("udp totals %+v", udp)
	}
	if h := &tot.Requests[ProtocolHTTP]; h.Refused[RefusalRate] != 1 || h.Answers(ActionAnnounce)+h.ErrorTotal() != 0 {
		t.Errorf("http totals %+v", h)
	}
	if w := &tot.Requests[ProtocolWebSocket]; w.Answers(ActionScrape) != 1 || w.Answers(ActionAnnounce) != 0 {
		t.Errorf("websocket totals %+v", w)
	}
	vars := m.Snapshot()
	if u := vars["udp"].(map[string]any); u["connect"] != uint64(1) || u["announce"] != uint64(1) || u["refused"] != uint64(1) || u["error"] != uint64(1) {
		t.Errorf("/debug/vars udp tree %v", u)
	}
	if r := vars["refused"].(map[string]any); r["rate"] != uint64(1) {
		t.Errorf("/debug/vars refused tree %v", r)
	}
}
