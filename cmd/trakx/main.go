// Command trakx is a BitTorrent tracker: UDP (BEP 15), HTTP (BEP 3, 23, 7,
// 48) and WebTorrent over WebSocket on the HTTP port, IPv4 and IPv6, over
// one in-memory swarm database that is saved and loaded across restarts.
// The tracker itself is package daemon; this command parses the command
// line and hands over.
//
// Usage:
//
//	trakx [run] [-config PATH]    run the tracker in the foreground
//	trakx check-config [-config PATH]
//	trakx stats [-config PATH | -addr HOST:PORT] [-watch] [-interval D]
//	trakx version | --version
//	trakx bench [flags]           load-test a tracker (package loadgen)
//	trakx help | -h | --help
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/coreos/go-systemd/v22/journal"
	"github.com/trakx/trakx/internal/config"
	"github.com/trakx/trakx/internal/daemon"
	"github.com/trakx/trakx/internal/loadgen"
	"github.com/trakx/trakx/internal/logging"
)

// Set at build time with -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = "unknown"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	command := "run"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		command, args = args[0], args[1:]
	}
	if len(args) == 1 && command == "run" {
		switch args[0] {
		case "-h", "-help", "--help":
			command = "help"
		case "-version", "--version":
			command = "version"
		}
	}
	switch command {
	case "run":
		return runTracker(args, stderr)
	case "check-config":
		return checkConfig(args, stdout, stderr)
	case "bench":
		return bench(args, stdout, stderr)
	case "stats":
		return stats(args, stdout, stderr)
	case "version":
		fmt.Fprintf(stdout, "trakx %s (commit %s, %s)\n", version, commit, runtime.Version())
		return 0
	case "help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "trakx: unknown command %q\n", command)
	usage(stderr)
	return 2
}

// usage lists every command and every flag.
func usage(w io.Writer) {
	fmt.Fprintf(w, `usage:
  trakx [run] [-config PATH]         run the tracker in the foreground
  trakx check-config [-config PATH]  validate and print the effective configuration
  trakx version, trakx --version     print version, commit and Go version
  trakx stats [-config PATH | -addr HOST:PORT] [-watch] [-interval D]
                                     a running tracker's figures, from its stats listener
  trakx bench [flags]                load-test a tracker (flags below)
  trakx help, trakx -h               this text

-config PATH: the configuration file. Without it, %s is read when it
exists, else the built-in defaults apply.

trakx bench flags:
`, config.DefaultPath)
	cfg := loadgen.Defaults()
	fs, _ := benchFlags(&cfg, w)
	fs.PrintDefaults()
}

// configFlag parses the -config flag of a command that takes only it.
func configFlag(name string, args []string, stderr io.Writer) (string, bool) {
	fs := flag.NewFlagSet("trakx "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (default "+config.DefaultPath+" if it exists)")
	if err := fs.Parse(args); err != nil {
		return "", false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "trakx %s: unexpected argument %q\n", name, fs.Arg(0))
		return "", false
	}
	return *path, true
}

// checkConfig is `trakx check-config`: the checks start makes, then the
// effective configuration.
func checkConfig(args []string, stdout, stderr io.Writer) int {
	path, ok := configFlag("check-config", args, stderr)
	if !ok {
		return 2
	}
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintf(stderr, "trakx: configuration is invalid: %v\n", err)
		return 1
	}
	if _, err := daemon.Check(&cfg, false); err != nil {
		fmt.Fprintf(stderr, "trakx: cannot start: %v\n", err)
		return 1
	}
	for _, check := range []func(*config.Config, string) (string, error){daemon.CheckHTTPS, daemon.CheckCluster} {
		note, err := check(&cfg, path)
		if err != nil {
			fmt.Fprintf(stderr, "trakx: cannot start: %v\n", err)
			return 1
		}
		if note != "" {
			fmt.Fprintf(stderr, "trakx: note: %s\n", note)
		}
	}
	fmt.Fprint(stdout, cfg.TOML())
	fmt.Fprintf(stdout, "\n# The database file, as start uses it: %s\n", daemon.DatabasePath(&cfg))
	return 0
}

// runTracker is `trakx run`: the tracker in the foreground until a signal.
func runTracker(args []string, stderr io.Writer) int {
	path, ok := configFlag("run", args, stderr)
	if !ok {
		return 2
	}
	stopWithGoRun()
	log, _ := logging.New(stderr, "info", journaled())
	cfg, err := config.Load(path)
	if err != nil {
		log.Errorf("configuration is invalid: %v", err)
		return 1
	}
	if err := logging.SetLevel(log, cfg.Log.Level); err != nil {
		log.Error(err)
		return 1
	}
	if err := daemon.New(cfg, path, version, log).Run(context.Background()); err != nil {
		log.Error(err)
		return 1
	}
	return 0
}

// journaled reports whether standard error goes to the journal, which then
// gets the priority-prefixed form.
func journaled() bool {
	ok, _ := journal.StderrIsJournalStream()
	return ok
}
