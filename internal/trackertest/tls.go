package trackertest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Certificate is a self-signed test certificate (ECDSA P-256) for
// localhost, 127.0.0.1 and ::1, written as PEM files; tests make their
// own, and no key is ever committed.
type Certificate struct {
	CertPath, KeyPath string
	Cert              *x509.Certificate
	Pool              *x509.CertPool // trusts it alone
	CertPEM, KeyPEM   []byte
}

// WriteCertificate makes a certificate named cn and writes it, and its
// key, to dir/NAME.crt and dir/NAME.key.
func WriteCertificate(t testing.TB, dir, name, cn string) *Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c := &Certificate{CertPath: filepath.Join(dir, name+".crt"), KeyPath: filepath.Join(dir, name+".key"),
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})}
	c.Cert, _ = x509.ParseCertificate(der)
	c.Pool = x509.NewCertPool()
	c.Pool.AddCert(c.Cert)
	if err := os.WriteFile(c.CertPath, c.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.KeyPath, c.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return c
}
