// Package config reads /etc/trakx.toml. Every key is optional: what a file
// leaves out keeps its built-in default, so no file at all is a working
// configuration.
//
// Each section is a type of its own that documents its keys and checks
// them (validate); Config.Validate runs the sections' checks, then the
// few that span sections. config.go holds the whole (defaults, loading,
// rendering); tracker.go the sections of what is served (log, tracker,
// database, access, limits); listeners.go those of where it is served
// (udp, http, websocket, stats); https.go the TLS listeners' (https);
// cluster.go the cluster's (cluster).
// A new key is a field in its section, its default in Default, its check
// in the section's validate, and its line in etc/trakx.toml and the man
// page; Changed (diff.go) finds it by itself.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// DefaultPath is read when no -config is given and the file exists.
const DefaultPath = "/etc/trakx.toml"

// Duration is a time.Duration written as a string such as "30m".
type Duration struct{ time.Duration }

// UnmarshalText reads a Go duration; "0" is allowed without a unit.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(string(text))
	if err != nil {
		return fmt.Errorf("invalid duration %q (write it like \"30m\" or \"5s\")", text)
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration the way people write it.
func (d Duration) MarshalText() ([]byte, error) {
	s := d.Duration.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return []byte(s), nil
}

// Config is the whole configuration.
type Config struct {
	Log       Log       `toml:"log"`
	Tracker   Tracker   `toml:"tracker"`
	UDP       UDP       `toml:"udp"`
	HTTP      HTTP      `toml:"http"`
	Stats     Stats     `toml:"stats"`
	Database  Database  `toml:"database"`
	Access    Access    `toml:"access"`
	Limits    Limits    `toml:"limits"`
	WebSocket WebSocket `toml:"websocket"`
	HTTPS     HTTPS     `toml:"https"`
	Cluster   Cluster   `toml:"cluster"`
}

// Default returns the built-in configuration: each section's defaults,
// which its file keeps beside its keys.
func Default() Config {
	return Config{
		Log: defaultLog(), Tracker: defaultTracker(), Database: defaultDatabase(), Access: defaultAccess(), Limits: defaultLimits(),
		UDP: defaultUDP(), HTTP: defaultHTTP(), WebSocket: defaultWebSocket(), Stats: defaultStats(),
		HTTPS: defaultHTTPS(), Cluster: defaultCluster(),
	}
}

// Load reads the file at path over the defaults. An empty path means the
// default file if it exists, else the defaults alone. Errors name the file
// and, where the decoder knows them, the key and line.
func Load(path string) (Config, error) {
	if path == "" {
		if _, err := os.Stat(DefaultPath); err != nil {
			return Default(), nil
		}
		path = DefaultPath
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	cfg, err := Parse(data)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Parse reads a configuration from TOML text over the defaults.
func Parse(data []byte) (Config, error) {
	cfg := Default()
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&cfg)
	if err != nil {
		return Config{}, err // the decoder's message names the line and key
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		keys := make([]string, len(undecoded))
		for i, k := range undecoded {
			keys[i] = k.String()
		}
		return Config{}, fmt.Errorf("unknown key %s", strings.Join(keys, ", "))
	}
	return cfg, cfg.Validate()
}

// Validate checks values the decoder cannot, naming the key at fault: each
// section checks its own keys, in the order of the sections in Config (as
// Changed lists keys), then the checks that span sections. Every problem
// is reported, not only the first.
func (c *Config) Validate() error {
	var p problems
	checks := []func(*problems){
		c.Log.validate, c.Tracker.validate, c.UDP.validate, c.HTTP.validate, c.Stats.validate,
		c.Database.validate, c.Access.validate, c.Limits.validate, c.WebSocket.validate,
		c.HTTPS.validate, c.Cluster.validate, c.checkListenClashes, c.checkHTTPSClashes,
	}
	for _, check := range checks {
		check(&p)
	}
	return errors.Join(p...)
}

// problems collects what validation finds, each error naming its key.
type problems []error

// add notes that key's value is wrong, and why.
func (p *problems) add(key, format string, args ...any) {
	*p = append(*p, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
}

// atLeastASecond checks a duration that must be one second or more.
func (p *problems) atLeastASecond(key string, d Duration) {
	if d.Duration < time.Second {
		p.add(key, "must be at least 1s, not %v", d.Duration)
	}
}

// positive checks a count that must be 1 or more.
func (p *problems) positive(key string, n int64) {
	if n < 1 {
		p.add(key, "%d is not a positive number", n)
	}
}

// TOML renders the configuration as a complete file, NATS passwords and
// tokens masked (RedactURLs).
func (c Config) TOML() string {
	if c.Cluster.NATSURL != "" { // printed, not logged: no secret either
		c.Cluster.NATSURL = RedactURLs(c.Cluster.NATSURL)
	}
	var b bytes.Buffer
	if err := toml.NewEncoder(&b).Encode(c); err != nil {
		return "# cannot render: " + err.Error() + "\n"
	}
	return b.String()
}
