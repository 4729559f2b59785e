package main

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	tt "github.com/trakx/trakx/internal/trackertest"
)

// runWithCredentials runs the binary with $CREDENTIALS_DIRECTORY set to
// dir, or unset if dir is empty.
func runWithCredentials(t *testing.T, dir string, args ...string) (stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CREDENTIALS_DIRECTORY=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if dir != "" {
		cmd.Env = append(cmd.Env, "CREDENTIALS_DIRECTORY="+dir)
	}
	var e bytes.Buffer
	cmd.Stderr = &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return e.String(), code
}

// TestCheckConfigHTTPSPair: check-config refuses a missing or mismatched
// certificate and key, naming the key, as start does; it reads a relative
// path from $CREDENTIALS_DIRECTORY, else beside the file; and where the
// credentials are not visible it says so and passes what it can check.
func TestCheckConfigHTTPSPair(t *testing.T) {
	dir := t.TempDir()
	good := tt.WriteCertificate(t, dir, "good", "good")
	other := tt.WriteCertificate(t, dir, "other", "other")
	creds := t.TempDir()
	tt.WriteCertificate(t, creds, "tracker", "from credentials")
	rest := fmt.Sprintf("[udp]\nlisten = [\"127.0.0.1:0\"]\n[http]\nlisten = []\n[stats]\nlisten = \"\"\n[database]\npath = %q\n",
		filepath.Join(dir, "peers.db"))
	pair := func(cert, key string) string {
		return rest + fmt.Sprintf("[https]\nlisten = [\"127.0.0.1:0\"]\ncert = %q\nkey = %q\n", cert, key)
	}
	for name, c := range map[string]struct {
		config, credentials string
		code                int
		says                string
	}{
		"a good pair":                    {pair(good.CertPath, good.KeyPath), "", 0, ""},
		"a missing key":                  {pair(good.CertPath, filepath.Join(dir, "none.key")), "", 1, "https.key " + filepath.Join(dir, "none.key") + ": no such file"},
		"a missing certificate":          {pair(filepath.Join(dir, "none.crt"), good.KeyPath), "", 1, "https.cert " + filepath.Join(dir, "none.crt") + ": no such file"},
		"a mismatched key":               {pair(good.CertPath, other.KeyPath), "", 1, "https.key " + other.KeyPath + " is not the key of https.cert " + good.CertPath},
		"a key for a certificate":        {pair(good.KeyPath, good.KeyPath), "", 1, "https.cert " + good.KeyPath + ": no PEM certificate"},
		"only a certificate":             {pair(good.CertPath, ""), "", 1, "https.key"},
		"from the credentials directory": {pair("tracker.crt", "tracker.key"), creds, 0, ""},
		"missing from the credentials":   {pair("none.crt", "tracker.key"), creds, 1, "https.cert " + filepath.Join(creds, "none.crt") + ": no such file"},
		"not visible here":               {pair("tracker.crt", "tracker.key"), "", 0, "not visible here"},
	} {
		path := writeConfig(t, c.config)
		stderr, code := runWithCredentials(t, c.credentials, "check-config", "-config", path)
		if code != c.code || (c.says == "" && stderr != "") || !strings.Contains(stderr, c.says) {
			t.Errorf("%s: check-config exit %d %q, want %d and %q", name, code, stderr, c.code, c.says)
			continue
		}
		if c.code == 0 {
			continue
		}
		runErr, runCode := runWithCredentials(t, c.credentials, "run", "-config", path)
		if runCode == 0 || !strings.Contains(strings.ReplaceAll(runErr, `\"`, `"`), c.says) {
			t.Errorf("%s: start exit %d %q, want it to say %q", name, runCode, runErr, c.says)
		}
	}
	// Beside the configuration file, without $CREDENTIALS_DIRECTORY.
	beside := writeConfig(t, pair("tracker.crt", "tracker.key"))
	tt.WriteCertificate(t, filepath.Dir(beside), "tracker", "beside")
	if stderr, code := runWithCredentials(t, "", "check-config", "-config", beside); code != 0 || stderr != "" {
		t.Fatalf("a pair beside the file: exit %d %q", code, stderr)
	}
}

// TestHTTPSSocketActivation: systemd passes trakx.socket's stream socket
// and trakx-https.socket's, named https; the first serves HTTP, the second
// TLS, with the configured pair. Without a pair, start refuses the named
// socket, saying why.
func TestHTTPSSocketActivation(t *testing.T) {
	cert := tt.WriteCertificate(t, t.TempDir(), "tracker", "activated")
	listen := func() (*os.File, string) {
		ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		f, _ := ln.File()
		ln.Close()
		return f, ln.Addr().String()
	}
	plainFile, plainAddr := listen()
	tlsFile, tlsAddr := listen()
	cfg := minimalConfig(t, fmt.Sprintf("[https]\ncert = %q\nkey = %q\n", cert.CertPath, cert.KeyPath))
	_, lines := startWithEnv(t, cfg, []string{"LISTEN_FDS=2", "LISTEN_FDNAMES=trakx.socket:https"}, []*os.File{plainFile, tlsFile})
	serving := ""
	for lines.Scan() {
		if strings.Contains(lines.Text(), " serving ") {
			serving = lines.Text()
			break
		}
	}
	if !strings.Contains(serving, "http "+plainAddr+" (inherited)") || !strings.Contains(serving, "https "+tlsAddr+" (inherited)") {
		t.Fatalf("start-up line %q", serving)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: cert.Pool}}}
	hash := tt.Hash("activated-https")
	if status, _ := tt.GetBencoded(t, client, "https://"+tlsAddr+"/scrape?info_hash="+url.QueryEscape(string(hash[:]))); status != 200 {
		t.Fatalf("scrape over the inherited https socket: %d", status)
	}
	if status, _ := getBencoded(t, "http://"+plainAddr+"/scrape?info_hash="+url.QueryEscape(string(hash[:]))); status != 200 {
		t.Fatalf("scrape over the inherited http socket: %d", status)
	}

	tlsFile, _ = listen()
	_, lines = startWithEnv(t, minimalConfig(t, ""), []string{"LISTEN_FDS=1", "LISTEN_FDNAMES=https"}, []*os.File{tlsFile})
	said := ""
	for lines.Scan() { // until it exits
		said += lines.Text() + "\n"
	}
	if !strings.Contains(said, "https.cert and https.key must name") {
		t.Fatalf("an https socket and no certificate: %q", said)
	}
}
