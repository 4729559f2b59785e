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
	switch {
	case h.Cert == "":
		return nil, errors.New("https.cert is not set, but https.key is")
	case h.Key == "":
		return nil, errors.New("https.key is not set, but https.cert is")
	}
	certPath, key := h.HTTPSKeyPair(configPath)
	certPEM, err := readCredential("https.cert", h.Cert, certPath)
	if err != nil {
		return nil, err
	}
	if err := checkCertificatePEM(certPEM); err != nil {
		return nil, fmt.Errorf("https.cert %s: %w", certPath, err)
	}
	keyPEM, err := readCredential("https.key", h.Key, key)
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("https.key %s is not the key of https.cert %s: %w", key, certPath, err)
	}
	return &pair, nil
}

// readCredential reads a certificate or key file, saying where it looked.
func readCredential(key, value, path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		return data, nil
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err // the path is said below
	}
	switch {
	case filepath.IsAbs(value):
		return nil, fmt.Errorf("%s %s: %w", key, path, err)
	case credentialsSet():
		return nil, fmt.Errorf("%s %s: %w (a relative path is read from $%s)", key, path, err, config.CredentialsDirectoryEnv)
	}
	return nil, fmt.Errorf("%s %s: %w (a relative path is read beside the configuration file when $%s is not set)",
		key, path, err, config.CredentialsDirectoryEnv)
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

// CheckHTTPS reads https.cert and https.key as start does, for
// `trakx check-config`, which may run where the service's credentials are
// not visible: a relative path with no $CREDENTIALS_DIRECTORY set (the
// service's LoadCredential= sets it), or a file it may not read. Such a
// pair is not refused: note says so, and what could not be checked. A
// missing or mismatched pair it can see is refused, naming the key.
func CheckHTTPS(cfg *config.Config, configPath string) (note string, err error) {
	h := &cfg.HTTPS
	if h.Cert == "" && h.Key == "" {
		return "", nil
	}
	_, err = loadKeyPair(h, configPath)
	if err == nil || !invisible(h, err) {
		return "", err
	}
	return fmt.Sprintf("%v\nthe certificate and key are not visible here, so they were not checked; "+
		"$%s is not set: if the service gets them with LoadCredential=, check them as it reads them with\n"+
		"  systemd-run --pipe --wait -p LoadCredential=... trakx check-config", err, config.CredentialsDirectoryEnv), nil
}

// invisible reports whether err is a file check-config cannot see that
// the service may: one not found under a relative path while
// $CREDENTIALS_DIRECTORY is not set, or one it may not read.
func invisible(h *config.HTTPS, err error) bool {
	if errors.Is(err, fs.ErrPermission) {
		return true
	}
	relative := !filepath.IsAbs(h.Cert) || !filepath.IsAbs(h.Key)
	return errors.Is(err, fs.ErrNotExist) && relative && !credentialsSet()
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
func (d *Daemon) HTTPSAddrs() []net.Addr {
	var a []net.Addr
	for _, f := range d.frontends {
		if s, ok := f.(*https.Server); ok {
			a = append(a, s.Addr())
		}
	}
	return a
}
