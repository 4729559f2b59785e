package loadgen_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
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
	cert := tt.WriteCertificate(t, t.TempDir(), "tracker", "bench")
	d := trackerWith(t, func(c *config.Config) {
		c.HTTPS.Listen = []string{"127.0.0.1:0"}
		c.HTTPS.Cert, c.HTTPS.Key = cert.CertPath, cert.KeyPath
	})
	for _, c := range []struct {
		protocol  string
		target    string
		keepAlive bool
	}{
		{"udp", d.UDPAddrs()[0].String(), false},
		{"http", d.HTTPAddrs()[0].String(), false},
		{"http", d.HTTPAddrs()[0].String(), true},
		{"https", d.HTTPSAddrs()[0].String(), false},
		{"https", d.HTTPSAddrs()[0].String(), true},
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

// pacedConfig is a short paced run: 2,000 requests a second over two
// workers, 100 ms of warm-up, then 500 ms measured (1,000 requests).
func pacedConfig(protocol, target string) loadgen.Config {
	cfg := loadgen.Defaults()
	cfg.Protocol, cfg.Target, cfg.KeepAlive = protocol, target, protocol == "http"
	cfg.Rate, cfg.Workers, cfg.Torrents = 2000, 2, 100
	cfg.Warmup, cfg.Duration, cfg.Timeout = 100*time.Millisecond, 500*time.Millisecond, time.Second
	return cfg
}

// checkPacedRate: a paced run sent what its schedule asked, to within 5%
// (a generator more than a millisecond behind at the end loses the rest),
// and every request it sent ended as an answer or a timeout.
func checkPacedRate(t *testing.T, cfg loadgen.Config, r *loadgen.Result) {
	t.Helper()
	want := float64(cfg.Rate) * cfg.Duration.Seconds()
	if sent := float64(r.Sent()); sent < 0.95*want || sent > want {
		t.Errorf("sent %.0f requests, want %.0f (%d/s for %v)", sent, want, cfg.Rate, cfg.Duration)
	}
	if r.Answered()+r.Timeouts() != r.Sent() {
		t.Errorf("%d answered and %d timed out of %d sent", r.Answered(), r.Timeouts(), r.Sent())
	}
}

func printed(r *loadgen.Result) string {
	var out bytes.Buffer
	r.Fprint(&out)
	return out.String()
}

// TestPacedLoad: against trakx, a paced run sends at the rate asked over
// UDP and over pipelined keep-alive HTTP, gets its answers, and reports
// latency percentiles and the rate on its RESULT line.
func TestPacedLoad(t *testing.T) {
	d := tracker(t)
	for _, c := range []struct{ protocol, target string }{
		{"udp", d.UDPAddrs()[0].String()},
		{"http", d.HTTPAddrs()[0].String()},
	} {
		t.Run(c.protocol, func(t *testing.T) {
			cfg := pacedConfig(c.protocol, c.target)
			r, err := loadgen.Run(cfg)
			if err != nil {
				t.Fatal(err)
			}
			out := printed(r)
			t.Log(out)
			checkPacedRate(t, cfg, r)
			if r.Errors() != 0 || r.Answered() < r.Sent()*9/10 {
				t.Errorf("%d errors, %d of %d answered", r.Errors(), r.Answered(), r.Sent())
			}
			if p50, p99 := r.Latency(0.5), r.Latency(0.99); p50 <= 0 || p99 < p50 || p99 >= cfg.Timeout {
				t.Errorf("latency p50 %v, p99 %v", p50, p99)
			}
			if !strings.Contains(out, "RESULT protocol="+c.protocol) || !strings.Contains(out, fmt.Sprintf(" rate=2000 sent=%d lag_p99_us=", r.Sent())) ||
				strings.Contains(out, "peers_per_reply=0.0") {
				t.Errorf("RESULT line:\n%s", out)
			}
		})
	}
}

// TestPacedStallIsLatencyNotALowerRate: a responder that stops answering
// for 200 ms in the middle of the measured window does not slow a paced
// run down (that is the point of an open loop): the requests due meanwhile
// go out on time and wait, and their wait shows in the latency measured
// from their scheduled time (or, were any dropped, as timeouts). A
// responder that never answers gets timeouts, at the same rate.
func TestPacedStallIsLatencyNotALowerRate(t *testing.T) {
	const stall = 200 * time.Millisecond
	// Request 400 is due 200 ms into the run: 100 ms into the window.
	for _, c := range []struct {
		protocol string
		listen   func(*testing.T, int, time.Duration) string
	}{
		{"udp", udpResponder},
		{"http", httpResponder},
	} {
		t.Run(c.protocol+"/stall", func(t *testing.T) {
			cfg := pacedConfig(c.protocol, c.listen(t, 400, stall))
			r, err := loadgen.Run(cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Log(printed(r))
			checkPacedRate(t, cfg, r)
			if r.Latency(0.99) < stall*3/4 && r.Timeouts() == 0 {
				t.Errorf("a %v stall: latency p99 %v and no timeout", stall, r.Latency(0.99))
			}
			if r.Latency(0.5) >= stall/2 {
				t.Errorf("latency p50 %v: more than the stall held up", r.Latency(0.5))
			}
		})
		t.Run(c.protocol+"/silent", func(t *testing.T) {
			cfg := pacedConfig(c.protocol, c.listen(t, 0, 0))
			cfg.Timeout = 100 * time.Millisecond
			r, err := loadgen.Run(cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Log(printed(r))
			checkPacedRate(t, cfg, r)
			if r.Answered() != 0 || r.Timeouts() != r.Sent() {
				t.Errorf("%d answered, %d timeouts of %d sent", r.Answered(), r.Timeouts(), r.Sent())
			}
		})
	}
}

// udpResponder answers BEP 15 connects, announces (one peer) and scrapes
// at once, except that before the stallAt-th request it stops for stall
// (the kernel holds what comes meanwhile). With stallAt 0 it never
// answers.
func udpResponder(t *testing.T, stallAt int, stall time.Duration) string {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pc.(*net.UDPConn).SetReadBuffer(4 << 20)
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		var reply []byte
		for n := 1; ; n++ {
			m, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if stallAt == 0 || m < 16 {
				continue
			}
			if n == stallAt {
				time.Sleep(stall)
			}
			action, tx := binary.BigEndian.Uint32(buf[8:]), binary.BigEndian.Uint32(buf[12:])
			reply = binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(reply[:0], action), tx)
			switch action {
			case 0:
				reply = binary.BigEndian.AppendUint64(reply, 0x5eed)
			case 1: // interval, leechers, seeders, one peer
				reply = append(reply, 0, 0, 7, 8, 0, 0, 0, 1, 0, 0, 0, 0, 10, 0, 0, 1, 0x1a, 0xe1)
			case 2:
				reply = append(reply, make([]byte, 12*((m-16)/20))...)
			}
			pc.WriteTo(reply, from)
		}
	}()
	return pc.LocalAddr().String()
}

// httpResponder answers HTTP requests, pipelined or not, each with a
// one-peer announce reply, except that before the stallAt-th request (of
// all connections) every connection stops for stall. With stallAt 0 it
// reads requests and never answers.
func httpResponder(t *testing.T, stallAt int, stall time.Duration) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		count atomic.Int64
		gate  sync.RWMutex // held by the stall
	)
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	body := "d8:intervali1800e5:peers6:\x0a\x00\x00\x01\x1a\xe1e"
	reply := []byte(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body))
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if line != "\r\n" || stallAt == 0 {
						continue
					}
					if count.Add(1) == int64(stallAt) {
						gate.Lock()
						time.Sleep(stall)
						gate.Unlock()
					}
					gate.RLock()
					_, err = c.Write(reply)
					gate.RUnlock()
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}
