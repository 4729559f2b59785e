package loadgen

import (
	"testing"
	"time"

	"github.com/trakx/trakx/internal/httpproto"
)

// TestParseResponse: pipelined responses are taken one at a time, a
// partial one waits for more, and one without a length ends with the
// connection.
func TestParseResponse(t *testing.T) {
	two := []byte("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nde")
	used, body, keep, err := httpproto.ParseResponse(two, false)
	if err != nil || used != 41 || string(body) != "abc" || !keep {
		t.Fatalf("first: %d %q %v %v", used, body, keep, err)
	}
	used, body, keep, err = httpproto.ParseResponse(two[41:], false)
	if err != nil || used != len(two)-41 || string(body) != "de" || keep {
		t.Fatalf("second: %d %q %v %v", used, body, keep, err)
	}
	for _, partial := range []string{"HTTP/1.1 200 OK\r\nContent-Le", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nab", "HTTP/1.1 200 OK\r\n\r\nabc"} {
		if used, _, _, err := httpproto.ParseResponse([]byte(partial), false); used != 0 || err != nil {
			t.Fatalf("%q: %d %v", partial, used, err)
		}
	}
	if used, body, keep, err := httpproto.ParseResponse([]byte("HTTP/1.0 200 OK\r\n\r\nabc"), true); used != 22 || string(body) != "abc" || keep || err != nil {
		t.Fatalf("to the end: %d %q %v %v", used, body, keep, err)
	}
	if _, _, _, err := httpproto.ParseResponse([]byte("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nab"), true); err == nil {
		t.Fatal("a response cut short by the end of the connection is an error")
	}
}

// TestHistogramBeyond100ms: latencies past 100 ms (a paced run's queueing)
// are kept to the millisecond up to 10 s.
func TestHistogramBeyond100ms(t *testing.T) {
	var h histogram
	for _, d := range []time.Duration{50 * time.Microsecond, 99 * time.Millisecond, 150*time.Millisecond + 500*time.Microsecond, 20 * time.Second} {
		h = histogram{}
		h.add(d)
		want := d.Truncate(10 * time.Microsecond)
		if d >= 100*time.Millisecond {
			want = d.Truncate(time.Millisecond)
		}
		if d > 10*time.Second {
			want = 10 * time.Second
		}
		if got := h.quantile(0.5); got != want {
			t.Errorf("%v: %v, want %v", d, got, want)
		}
	}
}

// TestScheduleInterleaves: the workers' requests are due in turn, evenly
// spaced.
func TestScheduleInterleaves(t *testing.T) {
	p := &pace{rate: 1000, workers: 3}
	last := -time.Millisecond
	for k := range int64(4) {
		for w := range 3 {
			d := p.due(w, k)
			if d != last+time.Millisecond {
				t.Fatalf("worker %d request %d due at %v, after %v", w, k, d, last)
			}
			last = d
		}
	}
}
