package cluster

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/trakx/trakx/internal/bittorrent"
	tt "github.com/trakx/trakx/internal/trackertest"
)

// jwtServer is an embedded NATS server that trusts one operator, with one
// account whose key signs the users' credentials.
type jwtServer struct {
	url     string
	account nkeys.KeyPair
}

// runJWTServer starts a server in operator mode, as nsc sets one up.
func runJWTServer(t *testing.T) *jwtServer {
	t.Helper()
	op, _ := nkeys.CreateOperator()
	opPub, _ := op.PublicKey()
	opJWT, err := jwt.NewOperatorClaims(opPub).Encode(op)
	if err != nil {
		t.Fatal(err)
	}
	opClaims, _ := jwt.DecodeOperatorClaims(opJWT)
	acct, _ := nkeys.CreateAccount()
	acctPub, _ := acct.PublicKey()
	acctJWT, err := jwt.NewAccountClaims(acctPub).Encode(op)
	if err != nil {
		t.Fatal(err)
	}
	resolver := &server.MemAccResolver{}
	if err := resolver.Store(acctPub, acctJWT); err != nil {
		t.Fatal(err)
	}
	s := tt.RunNATS(t, &server.Options{TrustedOperators: []*jwt.OperatorClaims{opClaims}, AccountResolver: resolver})
	return &jwtServer{url: s.ClientURL(), account: acct}
}

// creds writes a .creds file for a new user that may publish on pub
// (and on what a node needs besides), and returns its path.
func (js *jwtServer) creds(t *testing.T, pub string) string {
	t.Helper()
	user, _ := nkeys.CreateUser()
	userPub, _ := user.PublicKey()
	claims := jwt.NewUserClaims(userPub)
	claims.Pub.Allow.Add(pub)
	userJWT, err := claims.Encode(js.account)
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := user.Seed()
	data, err := jwt.FormatUserConfig(userJWT, seed)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "node.creds")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSetCredentials: a node whose credentials may not publish on its
// subject reaches nobody; given credentials that may, it reconnects with
// them at once and its announces reach the others.
func TestSetCredentials(t *testing.T) {
	js := runJWTServer(t)
	wrong, right := js.creds(t, "trakx.elsewhere.>"), js.creds(t, "trakx.a.>")
	a := startNode(t, js.url, "a", nil, func(o *Options) { o.CredsFile = wrong })
	b := startNode(t, js.url, "b", nil, func(o *Options) { o.CredsFile = js.creds(t, "trakx.b.>") })
	announce(t, a.front, hash(1), "1.2.3.4", 1, bittorrent.EventStarted)
	waitFor(t, "A's batches refused", func() bool { return a.publishDenied.Load() })
	if peers(b.store, hash(1)) != 0 {
		t.Fatal("B got a refused batch")
	}
	if err := a.SetCredentials(right); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "A reconnected", func() bool { return a.Stats().Connected && !a.publishDenied.Load() })
	announce(t, a.front, hash(2), "1.2.3.5", 2, bittorrent.EventStarted)
	waitFor(t, "A's next announce on B", func() bool { return peers(b.store, hash(2)) == 1 })
	if a.publishDenied.Load() {
		t.Error("A refused with the new credentials")
	}
}

// TestSetCredentialsNeedsSome: a node started without credentials cannot
// be given some (that takes a restart).
func TestSetCredentialsNeedsSome(t *testing.T) {
	_, url := runServer(t, -1)
	a := newNode(t, url, "a", nil, nil)
	if err := a.SetCredentials("x.creds"); err == nil {
		t.Fatal("credentials set on a node started without any")
	}
}

// TestCredentialsFallBack: a .creds file that stops loading (replaced
// by garbage) leaves the node reconnecting with the last that did.
func TestCredentialsFallBack(t *testing.T) {
	js := runJWTServer(t)
	path := js.creds(t, "trakx.a.>")
	a := startNode(t, js.url, "a", nil, func(o *Options) { o.CredsFile = path })
	if err := os.WriteFile(path, []byte("-----BEGIN NATS USER JWT-----\ngarbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.SetCredentials(path); err != nil { // a reconnection, as after a NATS restart
		t.Fatal(err)
	}
	waitFor(t, "A reconnected with its last good credentials", func() bool { return a.Stats().Connected && a.credsWarned.Load() })
}
