package cluster

import (
	"errors"
	"os"

	"github.com/nats-io/nats.go"
)

// credentials authenticates each (re)connection with the .creds file
// named then (SetCredentials changes it), read anew each time, so that a
// file replaced in place is read at the next reconnection too.
func (n *Node) credentials() nats.Option {
	load := func() (nats.Options, error) {
		var o nats.Options
		data, err := os.ReadFile(*n.creds.Load())
		if err == nil {
			err = nats.UserCredentialBytes(data)(&o)
		}
		return o, err
	}
	user := func() (string, error) {
		o, err := load()
		if err != nil {
			return "", err
		}
		return o.UserJWT()
	}
	sign := func(nonce []byte) ([]byte, error) {
		o, err := load()
		if err != nil {
			return nil, err
		}
		return o.SignatureCB(nonce)
	}
	return nats.UserJWT(user, sign)
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
	return nc.ForceReconnect()
}
