package loadgen_test

import (
	"bytes"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/trakx/trakx/internal/config"
	"github.com/trakx/trakx/internal/daemon"
	"github.com/trakx/trakx/internal/loadgen"
	tt "github.com/trakx/trakx/internal/trackertest"
)

func tracker(t *testing.T) *daemon.Daemon {
	return trackerWith(t, nil)
}

func trackerWith(t *testing.T, edit func(*config.Config)) *daemon.Daemon {
	cfg := config.Default()
	cfg.UDP.Listen = []string{"127.0.0.1:0"}
	cfg.HTTP.Listen = []string{"127.0.0.1:0"}
	cfg.Stats.Listen = "127.0.0.1:0"
	cfg.Database.Path = filepath.Join(t.TempDir(), "peers.db")
	if edit != nil {
		edit(&cfg)
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	d := daemon.New(cfg, "", "test", log)
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Stop() })
	return d
}

func TestLoadOverUDPAndHTTP(t *testing.T) {
	d := tracker(t)
	for _, c := range []struct {
		protocol  string
		target    string
		keepAlive bool
	}{
		{"udp", d.UDPAddrs()[0].String(), false},
		{"http", d.HTTPAddrs()[0].String(), false},
		{"http", d.HTTPAddrs()[0].String(), true},
	} {
		cfg := loadgen.Defaults()
		cfg.Protocol, cfg.Target, cfg.KeepAlive = c.protocol, c.target, c.keepAlive
		cfg.Duration, cfg.Warmup, cfg.Workers, cfg.Torrents = 300*time.Millisecond, 100*time.Millisecond, 2, 100
		r, err := loadgen.Run(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		r.Fprint(&out)
		t.Logf("%s", out.String())
		if !strings.Contains(out.String(), "RESULT protocol="+c.protocol) || !strings.Contains(out.String(), " errors=0 ") {
			t.Fatalf("%s", out.String())
		}
		if strings.Contains(out.String(), " rps=0 ") || strings.Contains(out.String(), "peers_per_reply=0.0") {
			t.Fatalf("no answered requests, or no peers in them:\n%s", out.String())
		}
	}
}

func TestFillLoadsExactlyThePeersAsked(t *testing.T) {
	d := tracker(t)
	cfg := loadgen.Defaults()
	cfg.Target, cfg.Torrents, cfg.Workers = d.UDPAddrs()[0].String(), 50, 3
	r, err := loadgen.Fill(cfg, 5000)
	if err != nil || r.Errors != 0 {
		t.Fatalf("%+v %v", r, err)
	}
	stats := d.StatsAddr().String()
	tt.WaitForVar(t, stats, "trakx.swarm.peers", func(v float64) bool { return v == 5000 })
	tt.WaitForVar(t, stats, "trakx.swarm.torrents", func(v float64) bool { return v == 50 })
}

func TestHashesAreStable(t *testing.T) {
	var a, b bytes.Buffer
	loadgen.WriteHashes(&a, 7, 3)
	loadgen.WriteHashes(&b, 7, 3)
	lines := strings.Split(strings.TrimSpace(a.String()), "\n")
	if a.String() != b.String() || len(lines) != 3 || len(lines[0]) != 40 || lines[0] == lines[1] {
		t.Fatalf("%q", a.String())
	}
}

// TestFloodMeetsTheBudget: a flooder from one address gets about its
// budget answered (burst plus rate times duration), a polite client from
// another address gets everything, and the tracker counts the rest as
// rate refusals.
func TestFloodMeetsTheBudget(t *testing.T) {
	d := trackerWith(t, func(c *config.Config) { c.Limits.PerIPRate, c.Limits.PerIPBurst = 100, 20 })
	// 20,000 datagrams a second, 200 times the budget: a flood the tracker
	// takes in whole even under the race detector on a busy machine, so
	// that the kernel drops none of the polite client's (test/flood.sh
	// floods at full speed).
	f := loadgen.FloodConfig{Target: d.UDPAddrs()[0].String(), Duration: 500 * time.Millisecond,
		Source: "127.0.0.2", Rate: 20_000, Client: "127.0.0.3", ClientRate: 20}
	r, err := loadgen.Flood(f)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	r.Fprint(&out, &f)
	t.Log(out.String())
	budget := 20 + 100*r.Elapsed.Seconds()
	if float64(r.Answered) > budget+5 || float64(r.Answered) < budget/2 || r.Sent < 10*r.Answered || r.Sent > 20_000 {
		t.Fatalf("flooder answered %d of %d, budget %.0f", r.Answered, r.Sent, budget)
	}
	if r.ClientSent == 0 || r.ClientAnswered != r.ClientSent {
		t.Fatalf("polite client: %d of %d answered", r.ClientAnswered, r.ClientSent)
	}
	tt.WaitForVar(t, d.StatsAddr().String(), "trakx.refused.rate", func(v float64) bool { return v > 0 })
}

func TestManySourcesEachAnswered(t *testing.T) {
	d := trackerWith(t, func(c *config.Config) { c.Limits.PerIPRate, c.Limits.PerIPBurst = 1, 1 })
	f := loadgen.FloodConfig{Target: d.UDPAddrs()[0].String(), Sources: 3000}
	r, err := loadgen.Flood(f)
	if err != nil {
		t.Fatal(err)
	}
	if r.Sent != 3000 || r.Answered != 3000 {
		t.Fatalf("%d sent, %d answered: each source's single packet is within its budget", r.Sent, r.Answered)
	}
	tt.WaitForVar(t, d.StatsAddr().String(), "trakx.udp.connect", func(v float64) bool { return v == 3000 })
}
