package config

import (
	"fmt"
	"os"
	"path/filepath"
)

// HTTPS is [https]: the HTTP tracker (and WebSocket, wss://) over TLS,
// served by the process itself. Its listeners take a restart; a reload
// (SIGHUP) reads the certificate and key again.
type HTTPS struct {
	Listen []string `toml:"listen"` // host:port each; [] serves no HTTPS
	// Cert and Key are PEM files: the certificate chain, leaf first, and
	// its private key. A relative path is read from $CREDENTIALS_DIRECTORY
	// when it is set (systemd's LoadCredential=), else from the
	// configuration file's directory (CredentialPath).
	Cert string `toml:"cert"`
	Key  string `toml:"key"`
}

func defaultHTTPS() HTTPS { return HTTPS{Listen: []string{}} }

func (h *HTTPS) validate(p *problems) {
	checkListen(p, "https.listen", h.Listen)
	if len(h.Listen) == 0 {
		return
	}
	if h.Cert == "" {
		p.add("https.cert", "must name the certificate's PEM file when https.listen is set")
	}
	if h.Key == "" {
		p.add("https.key", "must name the private key's PEM file when https.listen is set")
	}
}

// CredentialsDirectoryEnv is where systemd's LoadCredential= puts the
// files it hands a service, and relative https.cert, https.key and
// cluster.credentials paths are read from.
const CredentialsDirectoryEnv = "CREDENTIALS_DIRECTORY"

// CredentialPath is where a https.cert, https.key or cluster.credentials
// value is read from: an absolute path as it is; a relative one under
// $CREDENTIALS_DIRECTORY when that is set, else beside the configuration
// file at configPath (the working directory without one).
// fromCredentials says which.
func CredentialPath(value, configPath string) (path string, fromCredentials bool) {
	if filepath.IsAbs(value) {
		return value, false
	}
	if dir := os.Getenv(CredentialsDirectoryEnv); dir != "" {
		return filepath.Join(dir, value), true
	}
	dir := "."
	if configPath != "" {
		dir = filepath.Dir(configPath)
	} else if _, err := os.Stat(DefaultPath); err == nil {
		dir = filepath.Dir(DefaultPath)
	}
	return filepath.Join(dir, value), false
}

// HTTPSKeyPair are the certificate's and key's paths as read
// (CredentialPath), for messages and loading.
func (h *HTTPS) HTTPSKeyPair(configPath string) (cert, key string) {
	cert, _ = CredentialPath(h.Cert, configPath)
	key, _ = CredentialPath(h.Key, configPath)
	return cert, key
}

// checkHTTPSClashes refuses an https.listen address repeated, or on an
// address http.listen or stats.listen binds: start could only fail to
// bind it.
func (c *Config) checkHTTPSClashes(p *problems) {
	for i, a := range c.HTTPS.Listen {
		key := fmt.Sprintf("https.listen[%d]", i)
		for j := range i {
			if listenClash(a, c.HTTPS.Listen[j]) {
				p.add(key, "%q clashes with %q, also in https.listen", a, c.HTTPS.Listen[j])
			}
		}
		for _, b := range c.HTTP.Listen {
			if listenClash(a, b) {
				p.add(key, "%q clashes with http.listen %q", a, b)
			}
		}
		if c.Stats.Listen != "" && listenClash(a, c.Stats.Listen) {
			p.add(key, "%q clashes with stats.listen %q", a, c.Stats.Listen)
		}
	}
}
