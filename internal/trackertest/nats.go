package trackertest

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// RunNATS starts an embedded NATS server with opts (nil: none) on
// 127.0.0.1 and a free port unless opts say otherwise, quiet and deaf to
// signals, waits until it takes connections, and shuts it down when the
// test ends.
func RunNATS(t testing.TB, opts *server.Options) *server.Server {
	t.Helper()
	o := server.Options{}
	if opts != nil {
		o = *opts
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.Port == 0 {
		o.Port = -1
	}
	o.NoLog, o.NoSigs = true, true
	s, err := server.NewServer(&o)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	t.Cleanup(s.Shutdown)
	return s
}
