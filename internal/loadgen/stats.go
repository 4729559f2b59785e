package loadgen

import (
	"time"
)

// kind is what a request asks.
type kind int

const (
	kindConnect kind = iota
	kindAnnounce
	kindScrape
	kinds
)

var kindNames = [kinds]string{"connect", "announce", "scrape"}

// stats are one worker's counts; workers merge theirs at the end.
type stats struct {
	responses [kinds]uint64
	errors    uint64 // error replies
	timeouts  uint64
	peers     uint64 // peers received in announce replies
	latency   histogram
	// Paced runs only: requests sent (scheduled in the measured window),
	// and how late after its scheduled time each went out.
	sent uint64
	lag  histogram
}

func (s *stats) merge(o *stats) {
	for k := range s.responses {
		s.responses[k] += o.responses[k]
	}
	s.errors += o.errors
	s.timeouts += o.timeouts
	s.peers += o.peers
	s.sent += o.sent
	for i := range s.latency {
		s.latency[i] += o.latency[i]
		s.lag[i] += o.lag[i]
	}
}

// histogram counts latencies in buckets of 10 µs up to 100 ms, then of
// 1 ms up to 10 s (a paced run's queueing delay can pass 100 ms), the last
// bucket holding everything longer.
type histogram [histFine + histCoarse + 1]uint64

const (
	histFine   = 10_000 // 10 µs buckets: [0, 100 ms)
	histCoarse = 9_900  // 1 ms buckets: [100 ms, 10 s)
)

func (h *histogram) add(d time.Duration) {
	i := int(d / (10 * time.Microsecond))
	if i >= histFine {
		i = histFine + int((d-100*time.Millisecond)/time.Millisecond)
	}
	h[min(max(i, 0), len(h)-1)]++
}

// quantile is the lower bound of the bucket holding quantile q.
func (h *histogram) quantile(q float64) time.Duration {
	var total uint64
	for _, n := range h {
		total += n
	}
	var seen uint64
	for i, n := range h {
		seen += n
		if n > 0 && float64(seen) >= q*float64(total) {
			if i < histFine {
				return time.Duration(i) * 10 * time.Microsecond
			}
			return 100*time.Millisecond + time.Duration(i-histFine)*time.Millisecond
		}
	}
	return 0
}
