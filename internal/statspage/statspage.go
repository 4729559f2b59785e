// Package statspage is the stats listener's page for people: GET / serves
// one self-contained HTML page (its CSS and JavaScript embedded in the
// binary; nothing is fetched from another host) that shows the tracker's
// figures and charts of the last 24 hours, and refreshes itself; GET
// /stats.json serves the same figures for scripts, and with ?history=1
// the charts' points too.
//
// The contract:
//   - Figures are read from the counters' totals (package metrics) at the
//     time of the request; request rates are over the sampler's last
//     interval (Resolution).
//   - The history is a ring of one point every Resolution for
//     HistoryLength, allocated once: its memory is bounded and stated
//     there.
//   - The busiest torrents are found at most every 10 s by visiting the
//     torrents' counts, never copying a peer, and shared by every viewer.
//   - The page knows nothing of the store or the wire; the daemon hands it
//     the totals, the visitor and the version.
package statspage

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/trakx/trakx/internal/metrics"
)

//go:embed page.html
var pageHTML []byte

// pagePolicy is the page's Content-Security-Policy: nothing from anywhere,
// but its own inline script and style, named by their SHA-256 (not
// 'unsafe-inline', so that no other script could run even if one were
// injected), and requests to its own origin.
var pagePolicy = "default-src 'none'; script-src " + inlineHash("script") + "; style-src " + inlineHash("style") +
	"; connect-src 'self'; img-src 'self' data:"

// inlineHash is the CSP source naming the page's one element tag by the
// SHA-256 of its text; it panics at start if the page has no such element,
// which a test catches.
func inlineHash(tag string) string {
	open, end := "<"+tag+">", "</"+tag+">"
	i := bytes.Index(pageHTML, []byte(open))
	j := bytes.Index(pageHTML, []byte(end))
	if i < 0 || j < i || bytes.Count(pageHTML, []byte(open)) != 1 {
		panic("statspage: page.html must hold exactly one " + open)
	}
	sum := sha256.Sum256(pageHTML[i+len(open) : j])
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// Options are what the page reads.
type Options struct {
	Totals  func() metrics.Totals
	Visit   Visit  // the torrents' counts, for the busiest; nil: none listed
	Version string // the tracker's
}

// Page serves the page and the figures, and samples the history.
type Page struct {
	opts    Options
	history history
	busiest busiest

	mu   sync.Mutex
	last window // the sampler's last two totals
}

// New prepares a page; Run samples its history.
func New(opts Options) *Page {
	return &Page{opts: opts, busiest: busiest{visit: opts.Visit}}
}

// Run takes a point every Resolution until stop is closed; the first one
// at once, so that rates show after one interval.
func (p *Page) Run(stop <-chan struct{}) {
	p.sample(time.Now())
	tick := time.NewTicker(Resolution)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-tick.C:
			p.sample(now)
		}
	}
}

// sample reads the totals into the history and the rate window.
func (p *Page) sample(now time.Time) {
	t := p.opts.Totals()
	p.history.add(pointOf(&t, now))
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last.to != nil {
		p.last.from, p.last.elapsed = p.last.to, t.Uptime-p.last.to.Uptime
	}
	p.last.to = &t
}

// Register adds the page's paths to mux: GET / (exactly) and GET
// /stats.json.
func (p *Page) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", p.servePage)
	mux.HandleFunc("GET /stats.json", p.serveJSON)
}

func (p *Page) servePage(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// Nothing but itself: a page that cannot load from elsewhere cannot
	// be made to.
	h.Set("Content-Security-Policy", pagePolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(pageHTML)))
	w.Write(pageHTML)
}

// Snapshot is /stats.json's body: the figures, and the history's points
// when asked.
type Snapshot struct {
	Figures
	History *History `json:"history,omitempty"`
}

// Figures returns the figures now.
func (p *Page) Figures(now time.Time) Figures {
	t := p.opts.Totals()
	p.mu.Lock()
	w := p.last
	p.mu.Unlock()
	f := figuresOf(&t, w)
	f.Version = p.opts.Version
	f.Busiest = p.busiest.get(now)
	return f
}

func (p *Page) serveJSON(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	s := Snapshot{Figures: p.Figures(now)}
	if q := r.URL.Query(); q.Get("history") == "1" {
		// since: the newest point the caller has (unix seconds), so that
		// a refresh takes only what is new.
		since, _ := strconv.ParseInt(q.Get("since"), 10, 64)
		s.History = historyOf(p.history.since(max(since, now.Add(-HistoryLength).Unix())))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(&s)
}
