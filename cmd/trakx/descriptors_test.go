package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestOutOfDescriptors runs the binary under a real open files limit
// (RLIMIT_NOFILE, as systemd's LimitNOFILE= sets it) and holds more
// connections open, each with part of a request, than it has descriptors
// for. Nothing may be silent: a warning names the limit, the connections
// lost are counted (trakx.http.descriptor_errors), and once the clients
// let go, the tracker serves again.
func TestOutOfDescriptors(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, `
[udp]
listen = []
[http]
listen = ["127.0.0.1:0"]
[stats]
listen = "127.0.0.1:0"
[database]
path = "`+dir+`/peers.db"
save_interval = "0"
`)
	tr := follow(t, exec.Command(binary, "run", "-config", cfg))
	web := regexp.MustCompile(`http (\S+?)[ ,;]`)
	stats := regexp.MustCompile(`stats http://(\S+?)/`)
	var statsAddr string
	tr.waitLog(" serving ", func(line string) {
		if m := web.FindStringSubmatch(line); m != nil {
			tr.httpAddr = m[1]
		}
		if m := stats.FindStringSubmatch(line); m != nil {
			statsAddr = m[1]
		}
	})
	pid := tr.cmd.Process.Pid
	fds, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		t.Skipf("cannot count the tracker's descriptors: %v", err)
	}
	limit := uint64(len(fds) + 8)
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: limit, Max: limit}, nil); err != nil {
		t.Skipf("cannot limit the tracker's descriptors here: %v", err)
	}
	var clients []net.Conn
	for range 40 {
		c, err := net.Dial("tcp", tr.httpAddr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("GET /announce?info_hash=")) // part of a request
		clients = append(clients, c)
	}
	tr.waitLog("out of descriptors", nil)
	// Those beyond the limit are told so (a spare descriptor is given up
	// for a moment to answer each), not left waiting in the backlog; the
	// others still wait for the rest of their requests.
	told := 0
	for _, answer := range readAll(clients, 2*time.Second) {
		switch {
		case strings.HasPrefix(answer, "HTTP/1.1 503 ") && strings.Contains(answer, "out of descriptors"):
			told++
		case answer != "":
			t.Fatalf("a client beyond the limit got %q", answer)
		}
	}
	if told == 0 {
		t.Fatalf("no client beyond the limit was told 503\n%s", tr.log.String())
	}
	for _, c := range clients {
		c.Close()
	}
	// Descriptors free again: the tracker answers, and has counted.
	var vars struct {
		Trakx struct {
			HTTP struct {
				DescriptorErrors float64 `json:"descriptor_errors"`
			} `json:"http"`
		} `json:"trakx"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + statsAddr + "/debug/vars")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&vars)
			resp.Body.Close()
		}
		if err == nil && vars.Trakx.HTTP.DescriptorErrors >= float64(told) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats after the clients let go: %+v %v\n%s", vars, err, tr.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := http.Get("http://" + tr.httpAddr + "/scrape")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("the tracker does not serve again: %v", err)
	}
	resp.Body.Close()
	t.Logf("limit %d descriptors; %v connections refused and counted, %d of them told 503", limit, vars.Trakx.HTTP.DescriptorErrors, told)
	tr.stop()
}

// readAll reads, from every connection at once, what arrives within wait
// or until its end of stream.
func readAll(conns []net.Conn, wait time.Duration) []string {
	answers := make([]string, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetReadDeadline(time.Now().Add(wait))
			b, _ := io.ReadAll(c)
			answers[i] = string(b)
		}()
	}
	wg.Wait()
	return answers
}
