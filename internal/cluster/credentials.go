package cluster

import (
	"errors"
	"os"

	"github.com/nats-io/nats.go"
)

// credentials authenticates each (re)connection with the .creds file
// named then (SetCredentials changes it), read anew each time, so that a
// file replaced in place is read at the next reconnection too; one that
// does not load (not found, no valid JWT or seed) is logged, and the
// last that did is used instead.
func (n *Node) credentials() nats.Option {
	user := func() (string, error) {
		o, err := n.loadCredentials()
		if err != nil {
			return "", err
		}
		return o.UserJWT()
	}
	sign := func(nonce []byte) ([]byte, error) {
		o, err := n.loadCredentials()
		if err != nil {
			return nil, err
		}
		return o.SignatureCB(nonce)
	}
	return nats.UserJWT(user, sign)
}

// loadCredentials reads the .creds file, or falls back to the last one
// that loaded.
func (n *Node) loadCredentials() (nats.Options, error) {
	path := *n.creds.Load()
	o, err := parseCredentials(os.ReadFile(path))
	if err == nil {
		n.goodCreds.Store(&o)
		n.credsWarned.Store(false)
		return o, nil
	}
	good := n.goodCreds.Load()
	if good == nil {
		return o, err
	}
	if !n.credsWarned.Swap(true) {
		n.log.Errorf("cluster: the credentials %s do not load (%v); using the last that did", path, err)
	}
	return *good, nil
}

// CheckCredentials reports whether data is a .creds file a node can
// connect with: a user JWT and a seed that signs.
func CheckCredentials(data []byte) error {
	_, err := parseCredentials(data, nil)
	return err
}

// parseCredentials reads a .creds file's JWT and seed, and signs once to
// know that the seed is one.
func parseCredentials(data []byte, err error) (nats.Options, error) {
	var o nats.Options
	if err == nil {
		err = nats.UserCredentialBytes(data)(&o)
	}
	if err == nil {
		_, err = o.SignatureCB([]byte("trakx"))
	}
	return o, err
}

// SetCredentials makes the node authenticate with the .creds file at
// path from now on, and reconnects at once so that it does: a reload's
// new credentials. The node catches up after it, as after any
// reconnection. Only a node started with credentials has them to change.
func (n *Node) SetCredentials(path string) error {
	if n.opts.CredsFile == "" {
		return errors.New("cluster: started without credentials")
	}
	n.creds.Store(&path)
	nc := n.conn.Load()
	if nc == nil || n.left.Load() || n.closed() {
		return nil
	}
	n.log.Infof("cluster: credentials %s; reconnecting to NATS with them", path)
	n.connected.Store(false)
	return nc.ForceReconnect()
}
