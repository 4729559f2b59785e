package metrics

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

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
