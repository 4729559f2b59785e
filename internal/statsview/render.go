package statsview

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// View is what one screen shows: two samples and the time between them,
// from which rates come.
type View struct {
	Addr     string
	Prev     Sample // nil: no rates yet
	Cur      Sample
	Elapsed  time.Duration
	Now      time.Time
	Interval time.Duration // the sampling interval, as the person asked
}

// Render writes the summary. Every figure stands next to its word
// ("peers: 13", "seeders 5", "udp 150/s"), so that it reads and greps
// well.
func Render(w io.Writer, v *View) {
	s := v.Cur
	rate := func(name string, labels ...string) string {
		if v.Prev == nil {
			return "-"
		}
		return formatRate(s.Rate(v.Prev, v.Elapsed, name, labels...))
	}
	count := func(name string, labels ...string) string { return fmt.Sprintf("%.0f", s.Sum(name, labels...)) }

	fmt.Fprintf(w, "trakx %s at %s, up %s\n", buildVersion(s), v.Addr, uptime(s, v.Now))
	fmt.Fprintf(w, "peers: %s (seeders %s, leechers %s; ipv4 %s, ipv6 %s)\n", count("trakx_peers"),
		count("trakx_peers", "role", "seeder"), count("trakx_peers", "role", "leecher"),
		count("trakx_peers", "family", "ipv4"), count("trakx_peers", "family", "ipv6"))
	fmt.Fprintf(w, "torrents: %s\n", count("trakx_torrents"))
	fmt.Fprintf(w, "requests: udp %s/s, http %s/s, websocket %s/s%s (over %s)\n", rate("trakx_requests_total", "protocol", "udp"),
		rate("trakx_requests_total", "protocol", "http"), rate("trakx_requests_total", "protocol", "websocket"),
		others(s, "trakx_requests_total", "protocol", shownProtocols, func(p string) string { return rate("trakx_requests_total", "protocol", p) + "/s" }),
		v.Interval)
	fmt.Fprintf(w, "  udp: connect %s/s, announce %s/s, scrape %s/s\n", rate("trakx_requests_total", "protocol", "udp", "action", "connect"),
		rate("trakx_requests_total", "protocol", "udp", "action", "announce"), rate("trakx_requests_total", "protocol", "udp", "action", "scrape"))
	fmt.Fprintf(w, "  http: announce %s/s, scrape %s/s\n", rate("trakx_requests_total", "protocol", "http", "action", "announce"),
		rate("trakx_requests_total", "protocol", "http", "action", "scrape"))
	fmt.Fprintf(w, "  ipv4 %s/s, ipv6 %s/s\n", rate("trakx_requests_total", "family", "ipv4"), rate("trakx_requests_total", "family", "ipv6"))
	fmt.Fprintf(w, "errors: udp %s/s, http %s/s, websocket %s/s (since start: udp %s, http %s, websocket %s%s)\n",
		rate("trakx_errors_total", "protocol", "udp"), rate("trakx_errors_total", "protocol", "http"), rate("trakx_errors_total", "protocol", "websocket"),
		count("trakx_errors_total", "protocol", "udp"), count("trakx_errors_total", "protocol", "http"), count("trakx_errors_total", "protocol", "websocket"),
		others(s, "trakx_errors_total", "protocol", shownProtocols, func(p string) string { return count("trakx_errors_total", "protocol", p) }))
	fmt.Fprintf(w, "refused: %s/s (since start: rate %s, host %s, client %s, access_list %s, tracker_full %s, out_of_memory %s, connection_cap %s, websocket_cap %s%s)\n",
		rate("trakx_refused_total"), count("trakx_refused_total", "reason", "rate"), count("trakx_refused_total", "reason", "host"),
		count("trakx_refused_total", "reason", "client"), count("trakx_refused_total", "reason", "access_list"),
		fmt.Sprintf("%.0f", s.Sum("trakx_refused_total", "reason", "tracker_full_peers")+s.Sum("trakx_refused_total", "reason", "tracker_full_torrents")),
		count("trakx_refused_total", "reason", "out_of_memory"), count("trakx_refused_total", "reason", "connection_cap"), count("trakx_refused_total", "reason", "websocket_cap"),
		others(s, "trakx_refused_total", "reason", shownRefusals, func(r string) string { return count("trakx_refused_total", "reason", r) }))
	fmt.Fprintf(w, "http connections: %s (evicted %s)\n", count("trakx_http_connections"), count("trakx_http_connections_evicted_total"))
	fmt.Fprintf(w, "websocket: connections %s, announce %s/s, offers %s/s, answers %s/s; peers %s (seeders %s, leechers %s), torrents %s\n",
		count("trakx_websocket_connections"), rate("trakx_requests_total", "protocol", "websocket", "action", "announce"),
		rate("trakx_websocket_relayed_total", "kind", "offer"), rate("trakx_websocket_relayed_total", "kind", "answer"),
		count("trakx_websocket_peers"), count("trakx_websocket_peers", "role", "seeder"), count("trakx_websocket_peers", "role", "leecher"),
		count("trakx_websocket_torrents"))
	fmt.Fprintf(w, "udp receive drops: %s (%s/s)\n", count("trakx_udp_receive_drops_total"), rate("trakx_udp_receive_drops_total"))
	if line := clusterLine(v); line != "" {
		fmt.Fprintln(w, line)
	}
	fmt.Fprintf(w, "%s\n", lastSave(s, v.Now))
}

// shownRefusals are the refusal reasons the refused line names in its own
// order; tracker_full stands for both of the store's.
var shownRefusals = map[string]bool{"rate": true, "host": true, "client": true, "access_list": true,
	"tracker_full_peers": true, "tracker_full_torrents": true, "out_of_memory": true, "connection_cap": true, "websocket_cap": true}

// shownProtocols are the frontends the requests and errors lines name in
// their own order.
var shownProtocols = map[string]bool{"udp": true, "http": true, "websocket": true}

// others names the values of metric's label that a line does not (shown),
// each with its figure (", banned 3"), in sorted order, so that a
// protocol or refusal reason added to the tracker shows without an edit
// here.
func others(s Sample, metric, label string, shown map[string]bool, figure func(string) string) string {
	seen := map[string]bool{}
	prefix := metric + "{"
	for series := range s {
		rest, ok := strings.CutPrefix(series, prefix)
		if !ok {
			continue
		}
		if _, after, ok := strings.Cut(","+rest, ","+label+`="`); ok {
			if value, _, _ := strings.Cut(after, `"`); !shown[value] {
				seen[value] = true
			}
		}
	}
	names := make([]string, 0, len(seen))
	for name := range seen {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, name := range names {
		fmt.Fprintf(&b, ", %s %s", name, figure(name))
	}
	return b.String()
}

func formatRate(r float64) string {
	if r >= 100 || r == 0 {
		return fmt.Sprintf("%.0f", r)
	}
	return fmt.Sprintf("%.1f", r)
}

// buildVersion reads trakx_build_info's version label.
func buildVersion(s Sample) string {
	for series := range s {
		if rest, ok := strings.CutPrefix(series, "trakx_build_info{"); ok {
			if _, after, ok := strings.Cut(","+rest, `,version="`); ok {
				v, _, _ := strings.Cut(after, `"`)
				return v
			}
		}
	}
	return "(unknown version)"
}

func uptime(s Sample, now time.Time) string {
	start, ok := s["process_start_time_seconds"]
	if !ok || start == 0 {
		return "?"
	}
	return now.Sub(time.Unix(int64(start), 0)).Round(time.Second).String()
}

func lastSave(s Sample, now time.Time) string {
	saves, failed := s.Sum("trakx_database_saves_total", "result", "ok"), s.Sum("trakx_database_saves_total", "result", "error")
	at := s["trakx_database_last_save_timestamp_seconds"]
	if at == 0 {
		return fmt.Sprintf("last save: none yet (saves %.0f, failed %.0f)", saves, failed)
	}
	t := time.Unix(int64(at), 0)
	return fmt.Sprintf("last save: %s (%s ago), took %.3fs, peers %.0f (saves %.0f, failed %.0f)",
		t.UTC().Format("2006-01-02 15:04:05 UTC"), now.Sub(t).Round(time.Second), s["trakx_database_save_duration_seconds"],
		s["trakx_database_last_save_peers"], saves, failed)
}

// clusterLine is the cluster's line, or "" for a tracker not in one (no
// trakx_cluster_* series): the node's state, its deltas' rates, and the
// mean apply lag of the batches applied over the interval (since start
// when none was, or before a second sample).
func clusterLine(v *View) string {
	s := v.Cur
	if _, ok := s["trakx_cluster_connected"]; !ok {
		return ""
	}
	state := "disconnected"
	if s["trakx_cluster_connected"] == 1 {
		state = "connected"
	}
	rate := func(name string, labels ...string) string {
		if v.Prev == nil {
			return "-"
		}
		return formatRate(s.Rate(v.Prev, v.Elapsed, name, labels...))
	}
	sum, n := s["trakx_cluster_apply_lag_seconds_sum"], s["trakx_cluster_apply_lag_seconds_count"]
	if v.Prev != nil && n > v.Prev["trakx_cluster_apply_lag_seconds_count"] {
		sum, n = sum-v.Prev["trakx_cluster_apply_lag_seconds_sum"], n-v.Prev["trakx_cluster_apply_lag_seconds_count"]
	}
	lag := "-"
	if n > 0 {
		lag = fmt.Sprintf("%.3fs", sum/n)
	}
	d := func(direction string) string {
		return fmt.Sprintf("%s %s/s", direction, rate("trakx_cluster_deltas_total", "direction", direction))
	}
	return fmt.Sprintf("cluster: %s, nodes %.0f; announces %s, %s, %s, %s; bytes sent %s/s, received %s/s; catch-ups %.0f; apply lag %s",
		state, s["trakx_cluster_nodes"], d("published"), d("applied"), d("refused"), d("dropped"),
		rate("trakx_cluster_bytes_total", "direction", "sent"), rate("trakx_cluster_bytes_total", "direction", "received"),
		s["trakx_cluster_catchups_total"], lag)
}
