package metrics

import (
	"fmt"
	"io"
	"net/http"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"time"
)

// servePprof adds Go's profiles to mux: /debug/pprof/profile?seconds=N (a
// CPU profile), /debug/pprof/trace?seconds=N (an execution trace, for
// `go tool trace`: what ran when, which is what a latency tail needs) and
// /debug/pprof/NAME for the runtime's named profiles (heap, goroutine,
// allocs, block, mutex, threadcreate), in the format `go tool pprof` reads,
// or as text with ?debug=1 (or 2: every goroutine's stack). It is written on runtime/pprof rather than by
// importing net/http/pprof, whose init puts the handlers on
// http.DefaultServeMux for anything in the process that serves it.
func servePprof(mux *http.ServeMux) {
	mux.HandleFunc("GET /debug/pprof/profile", recording(pprof.StartCPUProfile, pprof.StopCPUProfile, 30))
	mux.HandleFunc("GET /debug/pprof/trace", recording(trace.Start, trace.Stop, 1))
	mux.HandleFunc("GET /debug/pprof/{name}", func(w http.ResponseWriter, r *http.Request) {
		p := pprof.Lookup(r.PathValue("name"))
		if p == nil {
			http.Error(w, fmt.Sprintf("no profile %q", r.PathValue("name")), http.StatusNotFound)
			return
		}
		// ?debug=1 or 2: as text (debug=2, goroutines with their full
		// stacks), as net/http/pprof serves them.
		debug, _ := strconv.Atoi(r.URL.Query().Get("debug"))
		if debug > 0 {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		} else {
			w.Header().Set("Content-Type", "application/octet-stream")
		}
		p.WriteTo(w, debug)
	})
}

// recording serves a recording that runs for ?seconds=N (1 to 300, else
// def), or until the client goes.
func recording(start func(io.Writer) error, stop func(), def int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		secs, err := strconv.Atoi(r.URL.Query().Get("seconds"))
		if err != nil || secs < 1 || secs > 300 {
			secs = def
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		if err := start(w); err != nil {
			http.Error(w, err.Error(), http.StatusConflict) // one already runs
			return
		}
		select {
		case <-time.After(time.Duration(secs) * time.Second):
		case <-r.Context().Done():
		}
		stop()
	}
}
