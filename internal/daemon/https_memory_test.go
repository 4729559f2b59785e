package daemon_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/trakx/trakx/internal/config"
	tt "github.com/trakx/trakx/internal/trackertest"
)

// wssClientsEnv makes the test binary a client process (wssClients): the
// tracker's memory is measured in its own process, without its clients'.
const wssClientsEnv = "TRAKX_TEST_WSS_CLIENTS"

func TestMain(m *testing.M) {
	if spec := os.Getenv(wssClientsEnv); spec != "" {
		if err := wssClients(spec); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// wssClients opens N WebSockets over TLS to ADDR (spec "N ADDR CERT"),
// each announcing with five offers as WebTorrent does, says "ready" and
// holds them until its standard input closes.
func wssClients(spec string) error {
	f := strings.Fields(spec)
	n, _ := strconv.Atoi(f[0])
	pem, err := os.ReadFile(f[2])
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	dialer := ws.Dialer{Timeout: 10 * time.Second, TLSConfig: &tls.Config{RootCAs: pool}}
	sdp := strings.Repeat("a=candidate:1 1 udp 2113937151 192.0.2.1 54400 typ host\r\n", 8)
	for i := range n {
		conn, _, _, err := dialer.Dial(context.Background(), "wss://"+f[1]+"/announce")
		if err != nil {
			return err
		}
		hash := tt.Hash(fmt.Sprintf("idle-wss-%d", i%50))
		offers := make([]any, 5)
		for j := range offers {
			offers[j] = map[string]any{"offer_id": fmt.Sprintf("offer%015d", j), "offer": map[string]any{"type": "offer", "sdp": sdp}}
		}
		msg, _ := json.Marshal(map[string]any{"action": "announce", "info_hash": string(hash[:]), "peer_id": fmt.Sprintf("-WW0001-%012d", i),
			"numwant": 5, "left": 10, "event": "started", "offers": offers})
		if err := wsutil.WriteClientText(conn, msg); err != nil {
			return err
		}
		defer conn.Close()
	}
	fmt.Println("ready")
	bufio.NewReader(os.Stdin).ReadString('\n')
	return nil
}

// inUse is the Go runtime's memory in use after a collection: heap and
// goroutine stacks.
func inUse() uint64 {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse
}

// TestIdleWSSPeerMemory measures what an idle wss:// peer costs the
// tracker: 2000 of them, each having announced with five offers (and so
// received relayed ones), in a client process of their own. Issue 25 aims
// at 16 KiB at most (the reference server's plain WebSocket peer costs
// about 13 KiB).
func TestIdleWSSPeerMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 2000 TLS connections")
	}
	const peers = 2000
	d, cert := startHTTPS(t, func(c *config.Config) { c.WebSocket.MaxOffers = 5 })
	stats := d.StatsAddr().String()
	before := inUse()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d %s %s", wssClientsEnv, peers, d.HTTPSAddrs()[0], cert.CertPath))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("clients: %q %v", line, err)
	}
	tt.WaitForVar(t, stats, "trakx.websocket.peers", func(v float64) bool { return v == peers })
	tt.WaitForVar(t, stats, "trakx.websocket.offers", func(v float64) bool { return v > 0 })
	after := inUse()
	if os.Getenv("TRAKX_TEST_HEAP_PROFILE") != "" {
		f, _ := os.Create(os.Getenv("TRAKX_TEST_HEAP_PROFILE"))
		pprof.Lookup("heap").WriteTo(f, 0)
		f.Close()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		t.Logf("heap %d stacks %d", ms.HeapInuse, ms.StackInuse)
	}
	perPeer := float64(int64(after)-int64(before)) / peers
	t.Logf("an idle wss:// peer costs %.0f bytes (heap and stacks, %d peers)", perPeer, peers)
	if perPeer > 16<<10 && !raceEnabled {
		t.Fatalf("an idle wss:// peer costs %.0f bytes, more than the 16 KiB aimed at", perPeer)
	}
}
