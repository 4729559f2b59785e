package main

import (
	"crypto/tls"
	"os"
	"os/exec"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	tt "github.com/trakx/trakx/internal/trackertest"
)

// TestClusterOverTLSWithAPrivateCA: a node reaches a NATS server whose
// certificate a private CA signed over tls:// once SSL_CERT_FILE names
// the CA (docs/cluster.md's recipe); without it, it says why it cannot
// connect, and serves alone.
func TestClusterOverTLSWithAPrivateCA(t *testing.T) {
	dir := t.TempDir()
	ca := tt.WriteCertificate(t, dir, "nats", "nats test CA") // its own CA
	cert, err := tls.LoadX509KeyPair(ca.CertPath, ca.KeyPath)
	if err != nil {
		t.Fatal(err)
	}
	s := tt.RunNATS(t, &server.Options{TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, TLSTimeout: 2})
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
	trusting.Env = append(os.Environ(), "SSL_CERT_FILE="+ca.CertPath)
	tr := follow(t, trusting)
	tr.waitLog("cluster: connected to NATS at tls://", nil)
	tr.stop()
}
