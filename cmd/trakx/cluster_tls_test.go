package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// selfSigned makes a certificate for 127.0.0.1 that is its own CA, and
// writes it, PEM, to dir/ca.pem.
func selfSigned(t *testing.T, dir string) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "nats test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, path
}

// TestClusterOverTLSWithAPrivateCA: a node reaches a NATS server whose
// certificate a private CA signed over tls:// once SSL_CERT_FILE names
// the CA (docs/cluster.md's recipe); without it, it says why it cannot
// connect, and serves alone.
func TestClusterOverTLSWithAPrivateCA(t *testing.T) {
	dir := t.TempDir()
	cert, ca := selfSigned(t, dir)
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, TLSTimeout: 2})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	t.Cleanup(s.Shutdown)
	cfg := writeConfig(t, `
[udp]
listen = ["127.0.0.1:0"]
[http]
listen = []
[stats]
listen = ""
[database]
path = "`+dir+`/peers.db"
[cluster]
nats_url = "tls://`+s.Addr().String()+`"
node = "a"
`)
	untrusting := follow(t, exec.Command(binary, "run", "-config", cfg))
	untrusting.waitLog("cluster: cannot connect to NATS: ", nil)
	untrusting.stop()

	trusting := exec.Command(binary, "run", "-config", cfg)
	trusting.Env = append(os.Environ(), "SSL_CERT_FILE="+ca)
	tr := follow(t, trusting)
	tr.waitLog("cluster: connected to NATS at tls://", nil)
	tr.stop()
}
