package main

import (
	"io"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	"github.com/trakx/trakx/internal/config"
	"github.com/trakx/trakx/internal/daemon"
)

// TestBenchPaced: `trakx bench -rate` is documented in -h, refuses HTTP
// without keep-alive, and against a tracker sends at the rate asked and
// adds rate=, sent= and lag_p99_us= at the end of its RESULT line.
func TestBenchPaced(t *testing.T) {
	_, stderr, code := runBinary(t, "bench", "-h")
	if code != 2 || !strings.Contains(stderr, "-rate") || !strings.Contains(stderr, "open loop") {
		t.Fatalf("trakx bench -h: %d\n%s", code, stderr)
	}
	_, stderr, code = runBinary(t, "bench", "-rate", "100", "-protocol", "http")
	if code != 1 || !strings.Contains(stderr, "needs keep-alive") {
		t.Fatalf("-rate over HTTP without -keepalive: %d %q", code, stderr)
	}

	cfg := config.Default()
	cfg.UDP.Listen, cfg.HTTP.Listen, cfg.Stats.Listen = []string{"127.0.0.1:0"}, []string{"127.0.0.1:0"}, ""
	cfg.Database.Path = filepath.Join(t.TempDir(), "peers.db")
	log := logrus.New()
	log.SetOutput(io.Discard)
	d := daemon.New(cfg, "", "test", log)
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	defer d.Stop()
	for _, args := range [][]string{
		{"-target", d.UDPAddrs()[0].String()},
		{"-target", d.HTTPAddrs()[0].String(), "-protocol", "http", "-keepalive"},
	} {
		args = append([]string{"bench", "-rate", "1000", "-workers", "2", "-duration", "400ms", "-warmup", "100ms", "-torrents", "100"}, args...)
		out, stderr, code := runBinary(t, args...)
		result := regexp.MustCompile(`(?m)^RESULT .* p999_us=\d+ rate=1000 sent=(\d+) lag_p99_us=\d+$`).FindStringSubmatch(out)
		// 1,000/s for 400 ms, to within 5%.
		if code != 0 || result == nil || atoi(result[1]) < 380 || atoi(result[1]) > 400 {
			t.Fatalf("trakx %v: %d\n%s%s", args, code, out, stderr)
		}
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}
