package daemon_test

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

// TestRealClientSwarm has libtorrent (Debian's python3-libtorrent), a
// client written independently of trakx, share a torrent through the
// tracker over UDP and over HTTP. Without the library the test is skipped,
// unless TRAKX_REQUIRE_CLIENTS is set, as CI sets it.
func TestRealClientSwarm(t *testing.T) {
	if exec.Command("/usr/bin/python3", "-c", "import libtorrent").Run() != nil {
		if os.Getenv("TRAKX_REQUIRE_CLIENTS") != "" {
			t.Fatal("python3-libtorrent is not installed, and TRAKX_REQUIRE_CLIENTS is set")
		}
		t.Skip("python3-libtorrent is not installed")
	}
	d := startTracker(t, nil)
	for name, url := range map[string]string{
		"udp":  "udp://" + d.UDPAddrs()[0].String() + "/announce",
		"http": "http://" + d.HTTPAddrs()[0].String() + "/announce",
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 70*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, "/usr/bin/python3", "testdata/libtorrent_swarm.py", url).CombinedOutput()
			t.Logf("%s", out)
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}
