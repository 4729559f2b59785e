package loadgen

import (
	"fmt"
	"io"
	"time"
)

// Result is a finished run.
type Result struct {
	Config  Config
	Elapsed time.Duration
	stats
}

// Answered is how many requests got a reply of any kind, errors included.
func (r *Result) Answered() uint64 {
	n := r.errors
	for _, k := range r.responses {
		n += k
	}
	return n
}

// Sent is how many requests a paced run sent in its measured window; each
// ended as a response, an error reply or a timeout.
func (r *Result) Sent() uint64 { return r.sent }

// Timeouts is how many requests got no answer within the timeout.
func (r *Result) Timeouts() uint64 { return r.timeouts }

// Errors is how many requests got an error reply.
func (r *Result) Errors() uint64 { return r.errors }

// Latency is quantile q of the answered requests' latency (in a paced run,
// from each request's scheduled send), to the histogram's bucket: 10 µs
// below 100 ms, 1 ms above.
func (r *Result) Latency(q float64) time.Duration { return r.latency.quantile(q) }

// Fprint writes the result for people, then one RESULT line for scripts
// (a paced run's ends with rate=, sent= and lag_p99_us=).
func (r *Result) Fprint(w io.Writer) {
	secs := r.Elapsed.Seconds()
	var total uint64
	for _, n := range r.responses {
		total += n
	}
	fmt.Fprintf(w, "%s load on %s for %.1fs: %d workers", r.Config.Protocol, r.Config.Target, secs, r.Config.Workers)
	if r.Config.Rate > 0 {
		fmt.Fprintf(w, ", paced at %d requests/s (open loop", r.Config.Rate)
		if r.Config.Protocol == "http" {
			fmt.Fprint(w, ", keep-alive, pipelined")
		}
		fmt.Fprint(w, ")")
	} else if r.Config.Protocol == "udp" {
		fmt.Fprintf(w, " x %d in flight", r.Config.InFlight)
	} else if r.Config.KeepAlive {
		fmt.Fprint(w, ", keep-alive")
	} else {
		fmt.Fprint(w, ", a new connection per request")
	}
	if r.Config.Popularity == "square" {
		fmt.Fprintf(w, "; %d torrents (torrent N*u^2)\n", r.Config.Torrents)
	} else {
		fmt.Fprintf(w, "; %d torrents (Zipf %.2f)\n", r.Config.Torrents, r.Config.Skew)
	}
	fmt.Fprintf(w, "  responses/s  %10.0f\n", float64(total)/secs)
	for k, n := range r.responses {
		if n > 0 {
			fmt.Fprintf(w, "    %-9s  %10.0f\n", kindNames[k], float64(n)/secs)
		}
	}
	peers := 0.0
	if n := r.responses[kindAnnounce]; n > 0 {
		peers = float64(r.peers) / float64(n)
	}
	fmt.Fprintf(w, "  errors %d, timeouts %d, peers per announce reply %.1f\n", r.errors, r.timeouts, peers)
	if r.Config.Rate > 0 {
		fmt.Fprintf(w, "  sent %d (%.0f/s of %d/s asked); sent late by p50 %v, p99 %v, p99.9 %v (the generator's own delay, part of the latency)\n",
			r.sent, float64(r.sent)/secs, r.Config.Rate, r.lag.quantile(0.5), r.lag.quantile(0.99), r.lag.quantile(0.999))
		fmt.Fprint(w, "  latency from the scheduled send")
	} else {
		fmt.Fprint(w, "  latency")
	}
	fmt.Fprintf(w, " p50 %v, p99 %v, p99.9 %v\n", r.latency.quantile(0.5), r.latency.quantile(0.99), r.latency.quantile(0.999))
	fmt.Fprintf(w, "RESULT protocol=%s keepalive=%v rps=%.0f announce_rps=%.0f errors=%d timeouts=%d peers_per_reply=%.1f p50_us=%d p99_us=%d p999_us=%d",
		r.Config.Protocol, r.Config.KeepAlive, float64(total)/secs, float64(r.responses[kindAnnounce])/secs, r.errors, r.timeouts, peers,
		r.latency.quantile(0.5).Microseconds(), r.latency.quantile(0.99).Microseconds(), r.latency.quantile(0.999).Microseconds())
	if r.Config.Rate > 0 {
		fmt.Fprintf(w, " rate=%d sent=%d lag_p99_us=%d", r.Config.Rate, r.sent, r.lag.quantile(0.99).Microseconds())
	}
	fmt.Fprintln(w)
}
