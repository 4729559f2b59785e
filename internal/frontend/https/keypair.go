package https

import (
	"crypto/tls"
	"sync/atomic"
)

// KeyPair is the certificate new handshakes are served, swapped whole by
// Set: a connection keeps the certificate it shook hands with.
type KeyPair struct {
	cert atomic.Pointer[tls.Certificate]
}

// NewKeyPair holds cert, which must not be nil.
func NewKeyPair(cert *tls.Certificate) *KeyPair {
	k := &KeyPair{}
	k.cert.Store(cert)
	return k
}

// Set serves cert to the handshakes from now on.
func (k *KeyPair) Set(cert *tls.Certificate) { k.cert.Store(cert) }

// Certificate is the certificate served now.
func (k *KeyPair) Certificate() *tls.Certificate { return k.cert.Load() }

// getCertificate is tls.Config.GetCertificate: the certificate of the
// moment, whatever name the client asked for.
func (k *KeyPair) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return k.cert.Load(), nil
}

// TLSConfig is how every listener speaks TLS: 1.2 and 1.3 only, session
// tickets on (Go rotates their keys itself), ALPN http/1.1 alone (no
// HTTP/2: the tracker speaks HTTP/1.1), and k's certificate of the moment.
func TLSConfig(k *KeyPair) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		MaxVersion:     tls.VersionTLS13,
		NextProtos:     []string{"http/1.1", "http/1.0"}, // by preference; HTTP/1.0 clients (curl --http1.0) offer the second alone
		GetCertificate: k.getCertificate,
	}
}
