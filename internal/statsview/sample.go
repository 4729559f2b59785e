// Package statsview reads a running trakx's Prometheus view (/metrics on
// its stats listener) and renders it for a person: the `trakx stats`
// command. It reads /metrics rather than /debug/vars so that what it
// prints is, figure for figure, what Prometheus and netdata 2.x see.
package statsview

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Sample is one reading of /metrics: each series, written
// name{label="value",...} with the labels in order, and its value.
type Sample map[string]float64

// Fetch reads the metrics at url (http://HOST:PORT/metrics).
func Fetch(ctx context.Context, client *http.Client, url string) (Sample, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("%s answered %s: is that trakx's stats listener?", url, resp.Status)
	}
	return Parse(resp.Body)
}

// Parse reads the Prometheus text format.
func Parse(r io.Reader) (Sample, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, err
	}
	s := Sample{}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			labels := make([]string, 0, len(m.GetLabel()))
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName(), l.GetValue())
			}
			if h := m.GetHistogram(); h != nil { // its mean is what a line shows
				s[Series(name+"_sum", labels...)] = h.GetSampleSum()
				s[Series(name+"_count", labels...)] = float64(h.GetSampleCount())
				continue
			}
			var v float64
			switch {
			case m.GetCounter() != nil:
				v = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				v = m.GetGauge().GetValue()
			case m.GetUntyped() != nil:
				v = m.GetUntyped().GetValue()
			default:
				continue // summaries: not shown
			}
			s[Series(name, labels...)] = v
		}
	}
	return s, nil
}

// Series names a series: labels come as name, value pairs, in any order.
func Series(name string, labels ...string) string {
	if len(labels) == 0 {
		return name
	}
	pairs := make([]string, 0, len(labels)/2)
	for i := 0; i+1 < len(labels); i += 2 {
		pairs = append(pairs, labels[i]+"="+fmt.Sprintf("%q", labels[i+1]))
	}
	sort.Strings(pairs)
	return name + "{" + strings.Join(pairs, ",") + "}"
}

// Sum adds up the series of a family whose labels include the given
// name, value pairs.
func (s Sample) Sum(name string, labels ...string) float64 {
	var want []string
	for i := 0; i+1 < len(labels); i += 2 {
		want = append(want, labels[i]+"="+fmt.Sprintf("%q", labels[i+1]))
	}
	var total float64
	for series, v := range s {
		if series != name && !strings.HasPrefix(series, name+"{") {
			continue
		}
		ok := true
		for _, w := range want {
			if !strings.Contains(series, "{"+w+",") && !strings.Contains(series, ","+w+",") &&
				!strings.Contains(series, ","+w+"}") && !strings.Contains(series, "{"+w+"}") {
				ok = false
				break
			}
		}
		if ok {
			total += v
		}
	}
	return total
}

// Rate is how fast a family's matching series grew from prev to s, per
// second over elapsed.
func (s Sample) Rate(prev Sample, elapsed time.Duration, name string, labels ...string) float64 {
	if prev == nil || elapsed <= 0 {
		return 0
	}
	return max(s.Sum(name, labels...)-prev.Sum(name, labels...), 0) / elapsed.Seconds()
}
