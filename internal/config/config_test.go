package config

import (
	"github.com/trakx/trakx/internal/swarm"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestDefaultsAreValid(t *testing.T) {
	t.Setenv("STATE_DIRECTORY", "")
	cfg := Default()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Database.Path != "peers.db" {
		t.Fatalf("database path %q", cfg.Database.Path)
	}
	t.Setenv("STATE_DIRECTORY", "/var/lib/trakx:/other")
	if p := Default().Database.Path; p != "/var/lib/trakx/peers.db" {
		t.Fatalf("under systemd the database path is %q", p)
	}
}

// TestShippedFileListsEveryKey checks etc/trakx.toml: uncommented, it must
// parse to exactly the defaults (but for the packaged database path), and it
// must mention every key the defaults have.
func TestShippedFileListsEveryKey(t *testing.T) {
	t.Setenv("STATE_DIRECTORY", "")
	shipped, err := os.ReadFile("../../etc/trakx.toml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg, err := Parse(shipped); err != nil || cfg.TOML() != Default().TOML() {
		t.Fatalf("the shipped file, as shipped, is not the defaults: %v", err)
	}
	uncommented := regexp.MustCompile(`(?m)^# ([a-z_]+ = )`).ReplaceAll(shipped, []byte("$1"))
	cfg, err := Parse(uncommented)
	if err != nil {
		t.Fatalf("uncommented shipped file: %v", err)
	}
	want := Default()
	want.Database.Path = "/var/lib/trakx/peers.db"
	if cfg.TOML() != want.TOML() {
		t.Fatalf("uncommented shipped file differs from the defaults:\n%s\nwant:\n%s", cfg.TOML(), want.TOML())
	}
	keys := regexp.MustCompile(`(?m)^\s*([a-z_]+) = `).FindAllSubmatch([]byte(want.TOML()), -1)
	for _, k := range keys {
		if !strings.Contains(string(shipped), "# "+string(k[1])+" = ") {
			t.Errorf("key %s is not in etc/trakx.toml", k[1])
		}
	}
}

func TestErrorsNameTheKey(t *testing.T) {
	for text, want := range map[string]string{
		"[tracker]\npeer_ttl = \"soon\"\n":                                              `tracker.peer_ttl`,
		"[tracker]\npeer_ttl = \"10m\"\n":                                               `tracker.peer_ttl: 10m0s must be longer than tracker.announce_interval`,
		"[tracker]\npeer_ttl = \"13h\"\n":                                               `tracker.peer_ttl: 13h0m0s is longer than 12h0m0s`,
		"[udp]\nlisten = [\"127.0.0.1:7000\", \"127.0.0.1:7000\"]\n":                    `udp.listen[1]: "127.0.0.1:7000" clashes with "127.0.0.1:7000"`,
		"[http]\nlisten = [\"[::]:7000\", \"127.0.0.1:7000\"]\n":                        `http.listen[1]: "127.0.0.1:7000" clashes with "[::]:7000"`,
		"[http]\nlisten = [\"127.0.0.1:7000\"]\n[stats]\nlisten = \"127.0.0.1:7000\"\n": `stats.listen: "127.0.0.1:7000" clashes with http.listen "127.0.0.1:7000"`,
		"[tracker]\nnumwant_max = \"many\"\n":                                           `tracker.numwant_max`,
		"[tracker]\nnumwant_default = 500\n":                                            `tracker.numwant_default: 500 is not between 0 and tracker.numwant_max`,
		"[tracker]\nbogus = 1\n":                                                        `unknown key tracker.bogus`,
		"[limits]\nper_ip_rate = -1\n":                                                  `limits.per_ip_rate: -1 is not 0 (off)`,
		"[limits]\nper_ip_rate = nan\n":                                                 `limits.per_ip_rate: NaN is not 0 (off)`,
		"[limits]\nper_ip_burst = 0\n":                                                  `limits.per_ip_burst: 0 is not between 1`,
		"[limits]\ntracked_ips = 0\n":                                                   `limits.tracked_ips: 0 is not between 1`,
		"[http]\nallowed_hosts = [\"tracker.example.org\", \"bad host\"]\n":             `http.allowed_hosts[1]: "bad host" is not a host name`,
		"[access]\nclient_deny = [\"\"]\n":                                              `access.client_deny[0]: "" is not a peer id prefix`,
		"[access]\nclient_allow = [\"-qB4600-too-long-for-an-id\"]\n":                   `access.client_allow[0]`,
		"[nonsense]\n":                                    `unknown key nonsense`,
		"[log]\nlevel = \"loud\"\n":                       `log.level: "loud" is not one of`,
		"[udp]\nlisten = [\"6969\"]\n":                    `udp.listen[0]: "6969" is not host:port`,
		"[http]\nlisten = [\"[::]:99999\"]\n":             `http.listen[0]`,
		"[http]\ntrusted_proxies = [\"10.0.0/8\"]\n":      `http.trusted_proxies`,
		"[http]\nread_timeout = \"0\"\n":                  `http.read_timeout: must be at least 1s`,
		"[http]\nfull_scrape_interval = \"500ms\"\n":      `http.full_scrape_interval: must be at least 1s`,
		"[http]\nfull_scrape_from = [\"192.0.2/24\"]\n":   `http.full_scrape_from: "192.0.2/24" is neither`,
		"[stats]\nlisten = \"localhost\"\n":               `stats.listen`,
		"[access]\nmode = \"maybe\"\n":                    `access.mode`,
		"[database]\nsave_interval = \"-1m\"\n":           `database.save_interval`,
		"[tracker\n":                                      `line 2`,
		"[tracker]\nnumwant_max = 10\nnumwant_max = 20\n": `line 3`,
	} {
		_, err := Parse([]byte(text))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want it to mention %q", text, err, want)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "trakx.toml")
	os.WriteFile(path, []byte("[tracker]\nannounce_interval = \"20m\"\n[database]\nsave_interval = \"0\"\n"), 0o644)
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Tracker.AnnounceInterval.Duration != 20*time.Minute || cfg.Tracker.PeerTTL.Duration != 45*time.Minute || cfg.Database.SaveInterval.Duration != 0 {
		t.Fatalf("loaded %+v", cfg.Tracker)
	}
	os.WriteFile(path, []byte("[tracker]\nannounce_interval = 5\n"), 0o644)
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("error does not name the file: %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.toml")); err == nil {
		t.Fatal("a missing -config file was accepted")
	}
}

func FuzzParse(f *testing.F) {
	shipped, _ := os.ReadFile("../../etc/trakx.toml")
	f.Add(string(shipped))
	f.Add("[tracker]\npeer_ttl = \"1h\"\n")
	f.Add("[http]\ntrusted_proxies = [\"::ffff:10.0.0.0/104\"]\n")
	f.Fuzz(func(t *testing.T, text string) {
		cfg, err := Parse([]byte(text))
		if err != nil {
			return
		}
		// What is accepted renders to a file that reads back the same.
		again, err := Parse([]byte(cfg.TOML()))
		if err != nil || again.TOML() != cfg.TOML() {
			t.Fatalf("accepted config does not round-trip: %v\n%s", err, cfg.TOML())
		}
	})
}

// The longest peer_ttl accepted is the longest the store keeps time for.
func TestMaxPeerTTLIsTheStores(t *testing.T) {
	cfg := Default()
	cfg.Tracker.PeerTTL = Duration{swarm.MaxPeerTTL}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("peer_ttl = the store's longest (%v) refused: %v", swarm.MaxPeerTTL, err)
	}
	cfg.Tracker.PeerTTL = Duration{swarm.MaxPeerTTL + time.Second}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "tracker.peer_ttl") {
		t.Fatalf("peer_ttl over the store's longest: %v, want a tracker.peer_ttl error", err)
	}
}

func TestChanged(t *testing.T) {
	a, b := Default(), Default()
	if got := Changed(&a, &b); len(got) != 0 {
		t.Fatalf("no change listed as %v", got)
	}
	b.UDP.Listen = []string{"127.0.0.1:1"}
	b.Tracker.PeerTTL.Duration *= 2
	b.Database.Path = "/elsewhere/peers.db"
	if got := strings.Join(Changed(&a, &b), " "); got != "tracker.peer_ttl udp.listen database.path" {
		t.Fatalf("changed: %s", got)
	}
}

func TestLimitsAndHostsAccepted(t *testing.T) {
	cfg, err := Parse([]byte("[limits]\nper_ip_rate = 100\nper_ip_burst = 5\n[http]\nallowed_hosts = [\"Tracker.Example.org:6969\", \"[2001:db8::1]\", \"2001:db8::2\", \"192.0.2.1\", \"localhost.\"]\n[access]\nclient_deny = [\"-XL\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Limits.PerIPRate != 100 || cfg.Limits.PerIPBurst != 5 || cfg.Limits.TrackedIPs != 1_000_000 || len(cfg.HTTP.AllowedHosts) != 5 {
		t.Fatalf("parsed %+v %v", cfg.Limits, cfg.HTTP.AllowedHosts)
	}
}

// TestEveryProblemInSectionOrder: a file with several bad keys gets every
// one named, in the order of the sections, so that the first line of
// check-config's answer does not depend on how validation is written.
func TestEveryProblemInSectionOrder(t *testing.T) {
	_, err := Parse([]byte("[websocket]\nmax_offers = 0\n[udp]\nlisten = [\"bad\"]\n[log]\nlevel = \"loud\"\n[http]\nmax_connections = 0\n"))
	if err == nil {
		t.Fatal("accepted")
	}
	msg, last := err.Error(), -1
	for _, key := range []string{"log.level", "udp.listen[0]", "http.max_connections", "websocket.max_offers"} {
		at := strings.Index(msg, key+":")
		if at < 0 || at < last {
			t.Fatalf("%s missing or out of order in:\n%s", key, msg)
		}
		last = at
	}
}
