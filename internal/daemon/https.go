package daemon

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"

	"github.com/trakx/trakx/internal/config"
	"github.com/trakx/trakx/internal/frontend/http"
	"github.com/trakx/trakx/internal/frontend/https"
)

// HTTPS: its certificate (https.cert, https.key), read at start, by
// check-config and on SIGHUP, and its frontends.

// errNoCertificate refuses HTTPS sockets without a certificate to serve.
var errNoCertificate = errors.New("https.cert and https.key must name the certificate and its key: systemd passes an https socket (trakx-https.socket)")

// loadKeyPair reads https.cert and https.key (config.CredentialPath) and
// checks that they are a pair; the errors name the key at fault.
func loadKeyPair(h *config.HTTPS, configPath string) (*tls.Certificate, error) {
	if err := bothSet(h); err != nil {
		return nil, err
	}
	certPath, keyPath := h.HTTPSKeyPair(configPath)
	certPEM, err := readCredential("https.cert", h.Cert, certPath)
	if err != nil {
		return nil, err
	}
	if err := checkCertificatePEM(certPEM); err != nil {
		return nil, fmt.Errorf("https.cert %s: %w", certPath, err)
	}
	keyPEM, err := readCredential("https.key", h.Key, keyPath)
	if err != nil {
		return nil, err
	}
	return pairOf(certPEM, keyPEM, certPath, keyPath)
}

// bothSet refuses https.cert and https.key unless both are set.
func bothSet(h *config.HTTPS) error {
	switch {
	case h.Cert == "" && h.Key == "":
		return errors.New("https.cert and https.key are not set: they must name the certificate's and its private key's PEM files")
	case h.Cert == "":
		return errors.New("https.cert is not set, but https.key is: both must be")
	case h.Key == "":
		return errors.New("https.key is not set, but https.cert is: both must be")
	}
	return nil
}

// pairOf makes the certificate of a pair read; the error names the key.
func pairOf(certPEM, keyPEM []byte, certPath, keyPath string) (*tls.Certificate, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("https.key %s is not the key of https.cert %s: %w", keyPath, certPath, err)
	}
	return &pair, nil
}

// readFile reads a credential file; a test's own stands in for a file
// this process may not read (it runs as root).
var readFile = os.ReadFile

// credentialError is a certificate or key file that could not be read.
type credentialError struct {
	key, value, path string // https.cert or https.key, its value, where it was read
	err              error  // the reason, without the path
}

// Error says which key, where it was read, why it failed, and where a
// relative path is read from.
func (e *credentialError) Error() string {
	switch {
	case filepath.IsAbs(e.value):
		return fmt.Sprintf("%s %s: %v", e.key, e.path, e.err)
	case credentialsSet():
		return fmt.Sprintf("%s %s: %v (a relative path is read from $%s)", e.key, e.path, e.err, config.CredentialsDirectoryEnv)
	}
	return fmt.Sprintf("%s %s: %v (a relative path is read beside the configuration file when $%s is not set)",
		e.key, e.path, e.err, config.CredentialsDirectoryEnv)
}

// Unwrap is the reason (fs.ErrNotExist, fs.ErrPermission, ...).
func (e *credentialError) Unwrap() error { return e.err }

// readCredential reads a certificate or key file, saying where it looked.
func readCredential(key, value, path string) ([]byte, error) {
	data, err := readFile(path)
	if err == nil {
		return data, nil
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err // the path is said by Error
	}
	return nil, &credentialError{key: key, value: value, path: path, err: err}
}

// checkCertificatePEM makes sure a certificate file holds a certificate
// first, so that any later failure of the pair is the key's.
func checkCertificatePEM(data []byte) error {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return errors.New("no PEM certificate (-----BEGIN CERTIFICATE-----) at its start")
	}
	_, err := x509.ParseCertificate(block.Bytes)
	return err
}

// invisible says why check-config may not see a file the service can, or
// "" if it should see it: this user may not read it (the service's may),
// or it is not found under a relative path while $CREDENTIALS_DIRECTORY,
// where the service reads relative paths, is not set.
func invisible(err error) string {
	var ce *credentialError
	switch {
	case !errors.As(err, &ce):
		return ""
	case errors.Is(err, fs.ErrPermission):
		return "this user may not read it; the service's user may"
	case errors.Is(err, fs.ErrNotExist) && !filepath.IsAbs(ce.value) && !credentialsSet():
		return fmt.Sprintf("the service reads a relative path from $%s when it gets the file with LoadCredential=",
			config.CredentialsDirectoryEnv)
	}
	return ""
}

// credentialsSet reports whether systemd handed credentials
// ($CREDENTIALS_DIRECTORY).
func credentialsSet() bool { return os.Getenv(config.CredentialsDirectoryEnv) != "" }

// addHTTPS serves HTTP, and WebSocket if on, over TLS on every HTTPS
// socket, with the same checks and counters as HTTP (http.Exchange).
func (d *Daemon) addHTTPS(socks sockets) error {
	if len(socks.tls) == 0 {
		return nil
	}
	if d.cfg.HTTPS.Cert == "" && d.cfg.HTTPS.Key == "" {
		return errNoCertificate
	}
	cert, err := loadKeyPair(&d.cfg.HTTPS, d.configPath)
	if err != nil {
		return err
	}
	d.keyPair = https.NewKeyPair(cert)
	hopts := d.httpOptions()
	opts := https.Options{ReadTimeout: hopts.ReadTimeout, WriteTimeout: hopts.WriteTimeout,
		MaxConnections: hopts.MaxConnections, Open: hopts.Open, KeyPair: d.keyPair, Evict: d.evictAny}
	if d.ws != nil {
		opts.WebSocket = d.ws
	}
	ex := http.NewExchange(d.gate, hopts, d.metrics, d.log)
	for _, ln := range socks.tls {
		deferAccept(ln, hopts.ReadTimeout) // a ClientHello, as HTTP's request
		d.frontends = append(d.frontends, https.NewServer(ln, ex, opts, d.log))
	}
	return nil
}

// evictTLS makes room under http.max_connections for a new connection,
// closing an HTTPS connection in its handshake or idle between requests,
// the one idle the longest of its server's; false if there is none. The
// HTTP servers call it when none of their own is idle, so that sockets
// stalled in a TLS handshake cannot deny plain HTTP.
func (d *Daemon) evictTLS() bool {
	for _, f := range d.frontends {
		if s, ok := f.(*https.Server); ok && s.EvictIdle() {
			return true
		}
	}
	return false
}

// evictAny makes room as evictTLS does, else closing a plain HTTP
// connection idle between requests: the HTTPS servers' eviction.
func (d *Daemon) evictAny() bool {
	if d.evictTLS() {
		return true
	}
	for _, f := range d.frontends {
		if s, ok := f.(*http.Server); ok && s.EvictIdle() {
			return true
		}
	}
	return false
}

// reloadKeyPair reads the certificate and key again for new handshakes;
// a pair that does not load is logged, and the old one kept.
func (d *Daemon) reloadKeyPair(cfg *config.Config) {
	if d.keyPair == nil {
		return
	}
	cert, err := loadKeyPair(&cfg.HTTPS, d.configPath)
	if err != nil {
		d.log.Errorf("https: the certificate did not load, keeping the old one: %v", err)
		return
	}
	d.keyPair.Set(cert)
	d.cfg.HTTPS.Cert, d.cfg.HTTPS.Key = cfg.HTTPS.Cert, cfg.HTTPS.Key
	if leaf := cert.Leaf; leaf != nil {
		d.log.Infof("https: certificate reloaded: %s, valid until %s", leaf.Subject, leaf.NotAfter.UTC().Format("2006-01-02 15:04 MST"))
	}
}

// HTTPSAddrs are the HTTPS listeners' addresses.
func (d *Daemon) HTTPSAddrs() []net.Addr { return addrsOf[*https.Server](d.frontends) }
