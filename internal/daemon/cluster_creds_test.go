package daemon_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"

	"github.com/trakx/trakx/internal/config"
)

// userCreds is a NATS .creds file for a new user of a made-up account:
// a server without authentication takes any.
func userCreds(t *testing.T) []byte {
	t.Helper()
	acct, _ := nkeys.CreateAccount()
	user, _ := nkeys.CreateUser()
	pub, _ := user.PublicKey()
	token, err := jwt.NewUserClaims(pub).Encode(acct)
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := user.Seed()
	data, err := jwt.FormatUserConfig(token, seed)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestClusterReloadCredentials: a reload with the same credentials does
// nothing; new contents make the node reconnect with them; a file that
// is not credentials is logged and the running ones kept; removing the
// key is logged as taking a restart.
func TestClusterReloadCredentials(t *testing.T) {
	t.Setenv(config.CredentialsDirectoryEnv, "")
	nats, dir := runNATS(t), t.TempDir()
	creds := filepath.Join(dir, "node.creds")
	os.WriteFile(creds, userCreds(t), 0o600)
	text := withHTTP(t, "") + "[cluster]\nnats_url = \"" + nats + "\"\nnode = \"a\"\n"
	d, path, logged := startFromText(t, text+"credentials = \""+creds+"\"\n")
	awaitClusterReady(t, d)
	reload := func(want string) {
		t.Helper()
		mark := len(logged.String())
		if err := d.Reload(); err != nil {
			t.Fatal(err)
		}
		if got := logged.String()[mark:]; (want == "") == strings.Contains(got, "cluster") || !strings.Contains(got, want) {
			t.Fatalf("reload: want %q in the log:\n%s", want, got)
		}
	}
	reload("") // the same credentials: nothing about the cluster
	os.WriteFile(creds, userCreds(t), 0o600)
	reload("cluster: credentials " + creds + "; reconnecting to NATS with them")
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(logged.String(), "cluster: reconnected to NATS") {
		if time.Now().After(deadline) {
			t.Fatalf("no reconnection after new credentials:\n%s", logged.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	os.WriteFile(creds, []byte("not credentials\n"), 0o600)
	reload("cluster: the credentials did not load, keeping the running ones")
	os.WriteFile(path, []byte(text), 0o644)
	reload("adding or removing credentials takes a restart")
}
