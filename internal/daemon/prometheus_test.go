package daemon_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/trakx/trakx/internal/config"
	"github.com/trakx/trakx/internal/daemon"
	"github.com/trakx/trakx/internal/statsview"
	tt "github.com/trakx/trakx/internal/trackertest"
	"github.com/trakx/trakx/internal/udpproto"
)

func scrapeMetrics(t *testing.T, d *daemon.Daemon) statsview.Sample {
	t.Helper()
	s, err := statsview.Fetch(context.Background(), http.DefaultClient, "http://"+d.StatsAddr().String()+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// counterMoves lists every trakx counter series that moved from before to
// after, with how much.
func counterMoves(before, after statsview.Sample) map[string]float64 {
	moved := map[string]float64{}
	for series, v := range after {
		name, _, _ := strings.Cut(series, "{")
		if !strings.HasPrefix(name, "trakx_") || !strings.HasSuffix(name, "_total") {
			continue
		}
		if d := v - before[series]; d != 0 {
			moved[series] = d
		}
	}
	return moved
}

// expectMoves asserts that exactly the given series moved, by exactly the
// given amounts.
func expectMoves(t *testing.T, what string, before, after statsview.Sample, want map[string]float64) {
	t.Helper()
	got := counterMoves(before, after)
	var diffs []string
	for series, d := range want {
		if got[series] != d {
			diffs = append(diffs, fmt.Sprintf("%s moved %v, want %v", series, got[series], d))
		}
	}
	for series, d := range got {
		if _, ok := want[series]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s moved %v, want no move", series, d))
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		t.Fatalf("%s:\n%s", what, strings.Join(diffs, "\n"))
	}
}

var series = statsview.Series

// TestPrometheusCountersMoveExactly: each kind of request moves its own
// series by exactly what was sent, and nothing else, over both protocols
// and both address families.
func TestPrometheusCountersMoveExactly(t *testing.T) {
	d := startTracker(t, nil)
	families(t, func(t *testing.T, i int) {
		fam := []string{"ipv4", "ipv6"}[i]
		c := tt.DialUDP(t, d.UDPAddrs()[i].String())

		before := scrapeMetrics(t, d)
		c.Connect()
		const n = 7
		for p := range n {
			if _, err := c.Announce(peerReq(tt.Hash("prom-"+fam), uint16(100+p), 1, 0)); err != nil {
				t.Fatal(err)
			}
		}
		c.Scrape(tt.Hash("prom-" + fam))
		after := scrapeMetrics(t, d)
		expectMoves(t, "UDP connect, announces, scrape", before, after, map[string]float64{
			series("trakx_requests_total", "protocol", "udp", "action", "connect", "family", fam):  1,
			series("trakx_requests_total", "protocol", "udp", "action", "announce", "family", fam): n,
			series("trakx_requests_total", "protocol", "udp", "action", "scrape", "family", fam):   1,
		})
		if got := after.Sum("trakx_peers", "family", fam, "role", "leecher") - before.Sum("trakx_peers", "family", fam, "role", "leecher"); got != n {
			t.Fatalf("trakx_peers{family=%s,role=leecher} rose by %v, want %d", fam, got, n)
		}

		before = after
		tx := c.NextTx()
		unknownAction := binary.BigEndian.AppendUint64(nil, c.ID)
		unknownAction = binary.BigEndian.AppendUint32(unknownAction, 9)
		c.Exchange(binary.BigEndian.AppendUint32(unknownAction, tx), tx)
		c.Conn.Write(udpproto.AppendAnnounceRequest(nil, 12345, c.NextTx(), peerReq(tt.Hash("x"), 1, 0, 0))) // a forged connection id
		tt.WaitForVar(t, d.StatsAddr().String(), "trakx.udp.bad_connection_id", func(v float64) bool { return v >= 1 })
		after = scrapeMetrics(t, d)
		expectMoves(t, "UDP bad requests", before, after, map[string]float64{
			series("trakx_errors_total", "protocol", "udp", "reason", "malformed"):               1,
			series("trakx_bad_requests_total", "protocol", "udp", "reason", "malformed"):         1,
			series("trakx_bad_requests_total", "protocol", "udp", "reason", "bad_connection_id"): 1,
		})

		before = after
		base := d.HTTPAddrs()[i].String()
		for p := range n {
			get(t, http.DefaultClient, announceURL(base, tt.Hash("prom-http-"+fam), 200+p, 0, ""))
		}
		scrapeHash := tt.Hash("prom-http-" + fam)
		get(t, http.DefaultClient, "http://"+base+"/scrape?info_hash="+url.QueryEscape(string(scrapeHash[:])))
		get(t, http.DefaultClient, "http://"+base+"/nowhere")
		get(t, http.DefaultClient, "http://"+base+"/announce?info_hash=short")
		after = scrapeMetrics(t, d)
		expectMoves(t, "HTTP announces, scrape, 404, malformed", before, after, map[string]float64{
			series("trakx_requests_total", "protocol", "http", "action", "announce", "family", fam): n,
			series("trakx_requests_total", "protocol", "http", "action", "scrape", "family", fam):   1,
			series("trakx_errors_total", "protocol", "http", "reason", "not_found"):                 1,
			series("trakx_errors_total", "protocol", "http", "reason", "malformed"):                 1,
			series("trakx_bad_requests_total", "protocol", "http", "reason", "malformed"):           1,
		})
	})
}

// TestPrometheusAgreesWithDebugVars: every /debug/vars counter equals the
// matching /metrics series (or their sum), read with no traffic between.
func TestPrometheusAgreesWithDebugVars(t *testing.T) {
	d := startTracker(t, func(c *config.Config) { c.Limits.PerIPRate, c.Limits.PerIPBurst = 0.0001, 3 })
	c := tt.DialUDP(t, d.UDPAddrs()[0].String())
	c.Connect()
	for p := range 2 {
		c.Announce(peerReq(tt.Hash("agree"), uint16(p+1), uint64(p), 0))
	}
	c.Conn.Write(udpproto.AppendConnectRequest(nil, 1)) // over the budget of 3
	tt.WaitForVar(t, d.StatsAddr().String(), "trakx.refused.rate", func(v float64) bool { return v == 1 })
	get(t, http.DefaultClient, announceURL(d.HTTPAddrs()[1].String(), tt.Hash("agree"), 9, 0, ""))
	if err := d.Save(); err != nil {
		t.Fatal(err)
	}
	vars := tt.Vars(t, d.StatsAddr().String())
	m := scrapeMetrics(t, d)
	for key, value := range map[string]float64{
		"trakx.swarm.torrents":                m.Sum("trakx_torrents"),
		"trakx.swarm.peers":                   m.Sum("trakx_peers"),
		"trakx.swarm.seeders":                 m.Sum("trakx_peers", "role", "seeder"),
		"trakx.swarm.leechers":                m.Sum("trakx_peers", "role", "leecher"),
		"trakx.swarm.refused_peers":           m.Sum("trakx_refused_total", "reason", "tracker_full_peers"),
		"trakx.swarm.refused_torrents":        m.Sum("trakx_refused_total", "reason", "tracker_full_torrents"),
		"trakx.udp.connect":                   m.Sum("trakx_requests_total", "protocol", "udp", "action", "connect"),
		"trakx.udp.announce":                  m.Sum("trakx_requests_total", "protocol", "udp", "action", "announce"),
		"trakx.udp.scrape":                    m.Sum("trakx_requests_total", "protocol", "udp", "action", "scrape"),
		"trakx.udp.error":                     m.Sum("trakx_errors_total", "protocol", "udp"),
		"trakx.udp.bad_connection_id":         m.Sum("trakx_bad_requests_total", "protocol", "udp", "reason", "bad_connection_id"),
		"trakx.udp.bad_request":               m.Sum("trakx_bad_requests_total", "protocol", "udp", "reason", "malformed"),
		"trakx.udp.receive_drops":             m.Sum("trakx_udp_receive_drops_total"),
		"trakx.http.announce":                 m.Sum("trakx_requests_total", "protocol", "http", "action", "announce"),
		"trakx.http.scrape":                   m.Sum("trakx_requests_total", "protocol", "http", "action", "scrape"),
		"trakx.http.full_scrape":              m.Sum("trakx_requests_total", "protocol", "http", "action", "full_scrape"),
		"trakx.http.full_scrape_bytes":        m.Sum("trakx_full_scrape_bytes"),
		"trakx.http.error":                    m.Sum("trakx_errors_total", "protocol", "http"),
		"trakx.http.bad_request":              m.Sum("trakx_bad_requests_total", "protocol", "http"),
		"trakx.http.connections_refused":      m.Sum("trakx_refused_total", "reason", "connection_cap"),
		"trakx.http.connections_evicted":      m.Sum("trakx_http_connections_evicted_total"),
		"trakx.refused.rate":                  m.Sum("trakx_refused_total", "reason", "rate"),
		"trakx.refused.host":                  m.Sum("trakx_refused_total", "reason", "host"),
		"trakx.refused.client":                m.Sum("trakx_refused_total", "reason", "client"),
		"trakx.refused.out_of_memory":         m.Sum("trakx_refused_total", "reason", "out_of_memory"),
		"trakx.database.saves":                m.Sum("trakx_database_saves_total", "result", "ok"),
		"trakx.database.save_errors":          m.Sum("trakx_database_saves_total", "result", "error"),
		"trakx.database.last_save_unix":       m.Sum("trakx_database_last_save_timestamp_seconds"),
		"trakx.database.last_save_seconds":    m.Sum("trakx_database_save_duration_seconds"),
		"trakx.database.last_save_peers":      m.Sum("trakx_database_last_save_peers"),
		"trakx.websocket.connections":         m.Sum("trakx_websocket_connections"),
		"trakx.websocket.connections_refused": m.Sum("trakx_refused_total", "reason", "websocket_cap"),
		"trakx.websocket.announce":            m.Sum("trakx_requests_total", "protocol", "websocket", "action", "announce"),
		"trakx.websocket.scrape":              m.Sum("trakx_requests_total", "protocol", "websocket", "action", "scrape"),
		"trakx.websocket.offers":              m.Sum("trakx_websocket_relayed_total", "kind", "offer"),
		"trakx.websocket.answers":             m.Sum("trakx_websocket_relayed_total", "kind", "answer"),
		"trakx.websocket.error":               m.Sum("trakx_errors_total", "protocol", "websocket"),
		"trakx.websocket.bad_request":         m.Sum("trakx_bad_requests_total", "protocol", "websocket"),
		"trakx.websocket.peers":               m.Sum("trakx_websocket_peers"),
		"trakx.websocket.torrents":            m.Sum("trakx_websocket_torrents"),
	} {
		got, ok := tt.Lookup(vars, key)
		if !ok || got != value {
			t.Errorf("/debug/vars %s = %v (present %v), /metrics says %v", key, got, ok, value)
		}
	}
	udpRefused, _ := tt.Lookup(vars, "trakx.udp.refused")
	httpRefused, _ := tt.Lookup(vars, "trakx.http.refused")
	wsRefused, _ := tt.Lookup(vars, "trakx.websocket.refused")
	if m.Sum("trakx_refused_total", "reason", "access_list") != udpRefused+httpRefused+wsRefused {
		t.Error("access-list refusals disagree")
	}
	if m.Sum("trakx_peers") != 3 || m.Sum("trakx_refused_total", "reason", "rate") != 1 || m.Sum("trakx_database_last_save_peers") != 3 {
		t.Fatalf("the test's own traffic is not there: %v peers", m.Sum("trakx_peers"))
	}
}

// TestMetricsFormats: the text format by default, which promtool accepts;
// OpenMetrics, ending in # EOF, when asked for, which an OpenMetrics
// parser (Python's prometheus_client) accepts.
func TestMetricsFormats(t *testing.T) {
	d := startTracker(t, nil)
	url := "http://" + d.StatsAddr().String() + "/metrics"
	body := func(accept string) (string, string) {
		req, _ := http.NewRequest("GET", url, nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.Header.Get("Content-Type"), string(b)
	}
	ct, text := body("")
	if !strings.HasPrefix(ct, "text/plain; version=0.0.4") || !strings.Contains(text, "\nprocess_start_time_seconds ") || !strings.Contains(text, "\ngo_goroutines ") {
		t.Fatalf("text format: %q, process_ and go_ families present: %v", ct, strings.Contains(text, "go_goroutines"))
	}
	ct, om := body("application/openmetrics-text; version=1.0.0")
	if !strings.HasPrefix(ct, "application/openmetrics-text") || !strings.HasSuffix(om, "# EOF\n") {
		t.Fatalf("OpenMetrics: %q, ends %q", ct, om[max(len(om)-20, 0):])
	}
	// Each parser is a subtest, which skips alone when its tool is
	// missing: the checks above hold without them.
	check := func(t *testing.T, name, input string, cmd *exec.Cmd) {
		t.Helper()
		cmd.Stdin = strings.NewReader(input)
		if out, err := cmd.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "" {
			t.Fatalf("%s: %v\n%s", name, err, out)
		}
	}
	t.Run("promtool", func(t *testing.T) {
		promtool := tt.NeedCommand(t, "promtool", "prometheus")
		check(t, "promtool check metrics", text, exec.Command(promtool, "check", "metrics"))
	})
	t.Run("openmetrics", func(t *testing.T) {
		python := tt.NeedPython(t, "prometheus_client", "python3-prometheus-client")
		check(t, "the OpenMetrics parser", om, exec.Command(python, "-c",
			"import sys\nfrom prometheus_client.openmetrics.parser import text_string_to_metric_families as p\n"+
				"n = len(list(p(sys.stdin.read())))\nassert n > 20, n"))
	})
}

// TestGrafanaDashboardQueriesExist: every family the dashboard queries is
// served, and every query is PromQL that promtool accepts (as recording
// rules, with Grafana's variables filled in).
func TestGrafanaDashboardQueriesExist(t *testing.T) {
	raw, err := os.ReadFile("../../contrib/grafana/trakx.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatal(err)
	}
	d := startTracker(t, nil)
	served := scrapeMetrics(t, d)
	families := regexp.MustCompile(`\b(?:trakx|process)_[a-z_]+`)
	var rules strings.Builder
	rules.WriteString("groups:\n- name: dashboard\n  rules:\n")
	for i, p := range dash.Panels {
		for j, target := range p.Targets {
			for _, family := range families.FindAllString(target.Expr, -1) {
				if served.Sum(family) == 0 && !hasFamily(served, family) {
					t.Errorf("panel %d queries %s, which /metrics does not serve", i, family)
				}
			}
			expr := strings.NewReplacer("$__rate_interval", "1m", "$job", ".*", "$instance", ".*").Replace(target.Expr)
			fmt.Fprintf(&rules, "  - record: panel_%d_%d\n    expr: %q\n", i, j, expr)
		}
	}
	t.Run("promtool", func(t *testing.T) {
		promtool := tt.NeedCommand(t, "promtool", "prometheus")
		path := t.TempDir() + "/rules.yml"
		if err := os.WriteFile(path, []byte(rules.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput(); err != nil {
			t.Fatalf("promtool check rules: %v\n%s", err, out)
		}
	})
}

func hasFamily(s statsview.Sample, family string) bool {
	for series := range s {
		if series == family || strings.HasPrefix(series, family+"{") {
			return true
		}
	}
	return false
}
