package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/trakx/trakx/internal/config"
	"github.com/trakx/trakx/internal/statsview"
)

// stats prints a running trakx's figures: `trakx stats [-config PATH |
// -addr HOST:PORT] [-watch] [-interval D]`.
func stats(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("trakx stats", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "read stats.listen from this configuration file (default "+config.DefaultPath+" if it exists)")
	addr := fs.String("addr", "", "the stats listener's HOST:PORT, instead of the configuration's stats.listen")
	watch := fs.Bool("watch", false, "redraw every interval until interrupted (Ctrl-C)")
	interval := fs.Duration("interval", time.Second, "how long rates are measured over")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 || *interval <= 0 {
		fmt.Fprintln(stderr, "trakx stats: unexpected argument, or an -interval that is not positive")
		return 2
	}
	target, err := statsAddress(*addr, *path)
	if err != nil {
		fmt.Fprintln(stderr, "trakx stats:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	w := &statsWatcher{addr: target, url: "http://" + target + "/metrics", interval: *interval,
		client: &http.Client{Timeout: 5 * time.Second}, out: stdout}
	if err := w.run(ctx, *watch, isTerminal(stdout)); err != nil {
		fmt.Fprintln(stderr, "trakx stats:", err)
		return 1
	}
	return 0
}

// statsAddress is where the stats listener is: -addr, else the
// configuration's stats.listen, a wildcard host read as loopback.
func statsAddress(addr, path string) (string, error) {
	if addr != "" {
		return addr, nil
	}
	cfg, err := config.Load(path)
	if err != nil {
		return "", err
	}
	if cfg.Stats.Listen == "" {
		return "", errors.New("stats.listen is empty in the configuration: the stats listener is off (give -addr HOST:PORT)")
	}
	host, port, err := net.SplitHostPort(cfg.Stats.Listen)
	if err != nil {
		return "", fmt.Errorf("stats.listen %q: %w", cfg.Stats.Listen, err)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port), nil
}

type statsWatcher struct {
	addr, url string
	interval  time.Duration
	client    *http.Client
	out       io.Writer
}

// run takes a sample, another after the interval, and prints; with watch,
// it goes on until ctx is done (Ctrl-C), which ends it at once and cleanly.
func (w *statsWatcher) run(ctx context.Context, watch, terminal bool) error {
	prev, err := w.fetch(ctx)
	if err != nil {
		return err
	}
	prevAt := time.Now()
	tick := time.NewTicker(w.interval)
	defer tick.Stop()
	for first := true; ; first = false {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		cur, err := w.fetch(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		now := time.Now()
		switch {
		case watch && terminal:
			fmt.Fprint(w.out, "\x1b[H\x1b[2J") // home, clear: redraw in place
		case watch && !first:
			fmt.Fprintln(w.out)
		}
		statsview.Render(w.out, &statsview.View{Addr: w.addr, Prev: prev, Cur: cur, Elapsed: now.Sub(prevAt), Now: now, Interval: w.interval})
		if !watch {
			return nil
		}
		prev, prevAt = cur, now
	}
}

func (w *statsWatcher) fetch(ctx context.Context) (statsview.Sample, error) {
	s, err := statsview.Fetch(ctx, w.client, w.url)
	if err != nil && ctx.Err() == nil {
		var netErr *net.OpError
		if errors.As(err, &netErr) {
			return nil, fmt.Errorf("nothing answers at %s (is trakx running, with stats.listen there?): %v", w.addr, netErr.Err)
		}
		return nil, fmt.Errorf("%s: %w", w.addr, err)
	}
	return s, err
}
