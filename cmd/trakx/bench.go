package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"time"

	"github.com/trakx/trakx/internal/loadgen"
)

// bench runs the load generator: `trakx bench -target HOST:PORT [...]`.
func bench(args []string, stdout, stderr io.Writer) int {
	cfg := loadgen.Defaults()
	fs, modes := benchFlags(&cfg, stderr)
	fill, cpuProfile, hashes := modes.fill, modes.cpuProfile, modes.hashes
	floodCfg := floodFlags(fs, &cfg)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: trakx bench [flags]\n\nPlays BitTorrent clients against a tracker and reports responses/s,\nerrors, timeouts, peers per reply and latency percentiles.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	switch {
	case *modes.wsIdle > 0:
		return holdIdleWebSockets(cfg, *modes.wsIdle, stdout, stderr)
	case floodCfg.Source != "" || floodCfg.Sources > 0:
		floodCfg.Target, floodCfg.Duration = cfg.Target, cfg.Duration
		return runFlood(floodCfg, stdout, stderr)
	case *hashes:
		return writeHashes(cfg, stdout, stderr)
	case *fill > 0:
		return fillStore(cfg, *fill, stdout, stderr)
	}
	return runLoad(cfg, *cpuProfile, stdout, stderr)
}

// writeHashes writes the info hashes of the load's torrents (-hashes).
func writeHashes(cfg loadgen.Config, stdout, stderr io.Writer) int {
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	if err := loadgen.WriteHashes(w, cfg.Seed, cfg.Torrents); err != nil {
		fmt.Fprintln(stderr, "trakx bench:", err)
		return 1
	}
	return 0
}

// fillStore announces peers distinct peers and reports how it went (-fill).
func fillStore(cfg loadgen.Config, peers int64, stdout, stderr io.Writer) int {
	r, err := loadgen.Fill(cfg, peers)
	if err != nil {
		fmt.Fprintln(stderr, "trakx bench:", err)
		return 1
	}
	fmt.Fprintf(stdout, "filled %d peers into %d torrents in %.1fs (%.0f announces/s); %d timeouts (sent again), %d errors\n",
		r.Peers, cfg.Torrents, r.Elapsed.Seconds(), float64(r.Peers)/r.Elapsed.Seconds(), r.Timeouts, r.Errors)
	if r.Errors > 0 {
		return 1
	}
	return 0
}

// runLoad plays the load and prints its result, under the CPU profiler if
// cpuProfile names a file.
func runLoad(cfg loadgen.Config, cpuProfile string, stdout, stderr io.Writer) int {
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "trakx bench:", err)
			return 1
		}
		defer f.Close()
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	r, err := loadgen.Run(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "trakx bench:", err)
		return 1
	}
	r.Fprint(stdout)
	if r.Answered() == 0 {
		fmt.Fprintf(stderr, "trakx bench: no answer from %s (%s): is a tracker listening there?\n", cfg.Target, cfg.Protocol)
		return 1
	}
	return 0
}

// benchModes are the flags that pick what trakx bench does, rather than
// shape the load.
type benchModes struct {
	fill       *int64
	cpuProfile *string
	hashes     *bool
	wsIdle     *int
}

// benchFlags are trakx bench's flags: the load's go into cfg.
func benchFlags(cfg *loadgen.Config, output io.Writer) (*flag.FlagSet, benchModes) {
	fs := flag.NewFlagSet("trakx bench", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.StringVar(&cfg.Target, "target", "127.0.0.1:6969", "tracker address, host:port")
	fs.StringVar(&cfg.Protocol, "protocol", cfg.Protocol, "udp, http, https (over TLS: X25519, full handshakes, the certificate unchecked), or ws (WebTorrent announces over WebSocket, one at a time per -workers connection)")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "how long to measure")
	fs.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "load sent before measuring")
	fs.IntVar(&cfg.Workers, "workers", cfg.Workers, "UDP sockets, or HTTP connections")
	fs.IntVar(&cfg.InFlight, "inflight", cfg.InFlight, "requests outstanding per UDP socket")
	fs.IntVar(&cfg.Torrents, "torrents", cfg.Torrents, "number of torrents")
	fs.Float64Var(&cfg.Skew, "skew", cfg.Skew, "Zipf exponent of torrent popularity (above 1; higher is more skewed)")
	fs.StringVar(&cfg.Popularity, "popularity", cfg.Popularity, "how torrents are drawn: zipf (by -skew), or square (torrent N*u^2, u uniform)")
	fs.Float64Var(&cfg.ConnectRatio, "connects", cfg.ConnectRatio, "UDP: fraction of requests that are connects")
	fs.IntVar(&cfg.NumWant, "numwant", cfg.NumWant, "peers asked for per announce")
	fs.Float64Var(&cfg.ScrapeRatio, "scrapes", cfg.ScrapeRatio, "fraction of requests that are scrapes")
	fs.IntVar(&cfg.ScrapeSize, "scrape-size", cfg.ScrapeSize, "info hashes per scrape")
	fs.Float64Var(&cfg.SeederRatio, "seeders", cfg.SeederRatio, "fraction of announces from seeders")
	fs.BoolVar(&cfg.KeepAlive, "keepalive", cfg.KeepAlive, "HTTP: reuse connections (default: a new connection per request, as clients do)")
	fs.Int64Var(&cfg.Seed, "seed", cfg.Seed, "random seed; also picks the info hashes")
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "a request unanswered this long counts as a timeout")
	fs.IntVar(&cfg.Rate, "rate", 0, "pace the load, open loop: send this many requests per second in all, spread over -workers, each at its scheduled time whether or not earlier ones were answered, and measure latency from that time (UDP: many outstanding per socket, -inflight unused; HTTP: needs -keepalive, pipelined on each connection); 0: closed loop")
	return fs, benchModes{
		fill:       fs.Int64("fill", 0, "instead of measuring, announce this many distinct peers over UDP (spread over -torrents) and exit"),
		cpuProfile: fs.String("cpuprofile", "", "write the load generator's own CPU profile to this file"),
		hashes:     fs.Bool("hashes", false, "instead of measuring, print the -torrents info hashes in hex, one per line (a whitelist)"),
		wsIdle:     fs.Int("ws-idle", 0, "instead of measuring, open this many WebSockets (wss:// with -protocol https), announce once on each (over -torrents), print \"ready\" and hold them for -duration"),
	}
}

// floodFlags are the flags of trakx bench's abuse modes; the target and
// duration are the load's.
func floodFlags(fs *flag.FlagSet, cfg *loadgen.Config) *loadgen.FloodConfig {
	f := &loadgen.FloodConfig{}
	fs.StringVar(&f.Source, "flood", "", "instead of measuring, flood UDP connects as fast as possible from this local address (such as 127.0.0.2)")
	fs.StringVar(&f.Client, "client", "", "with -flood: a well-behaved client announcing from this local address")
	fs.Float64Var(&f.ClientRate, "client-rate", 10, "with -client: its announces per second")
	fs.IntVar(&f.Sources, "sources", 0, "instead of measuring, send one UDP connect from each of this many addresses 127.1.0.0 onwards")
	return f
}

func runFlood(f *loadgen.FloodConfig, stdout, stderr io.Writer) int {
	r, err := loadgen.Flood(*f)
	if err != nil {
		fmt.Fprintln(stderr, "trakx bench:", err)
		return 1
	}
	r.Fprint(stdout, f)
	if r.Answered+r.ClientAnswered == 0 {
		fmt.Fprintf(stderr, "trakx bench: no answer from %s: is a tracker listening there?\n", f.Target)
		return 1
	}
	return 0
}

// holdIdleWebSockets opens n idle WebTorrent peers and holds them, for a
// tracker's memory to be measured meanwhile.
func holdIdleWebSockets(cfg loadgen.Config, n int, stdout, stderr io.Writer) int {
	closeAll, err := loadgen.IdleWebSockets(cfg.Target, n, cfg.Torrents, cfg.Protocol == "https", 10*cfg.Timeout)
	if err != nil {
		fmt.Fprintln(stderr, "trakx bench:", err)
		return 1
	}
	defer closeAll()
	fmt.Fprintf(stdout, "ready: %d WebSocket peers announced in %d torrents; holding them %v\n", n, min(n, cfg.Torrents), cfg.Duration)
	time.Sleep(cfg.Duration)
	return 0
}
