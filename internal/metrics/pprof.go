package metrics

import (
	"fmt"
	"net/http"
	"runtime/pprof"
	"strconv"
	"time"
)

// servePprof adds Go's profiles to mux: /debug/pprof/profile?seconds=N (a
// CPU profile) and /debug/pprof/NAME for the runtime's named profiles
// (heap, goroutine, allocs, block, mutex, threadcreate), in the format
// `go tool pprof` reads. It is written on runtime/pprof rather than by
// importing net/http/pprof, whose init puts the handlers on
// http.DefaultServeMux for anything in the process that serves it.
func servePprof(mux *http.ServeMux) {
	mux.HandleFunc("GET /debug/pprof/profile", func(w http.ResponseWriter, r *http.Request) {
		secs, err := strconv.Atoi(r.URL.Query().Get("seconds"))
		if err != nil || secs < 1 || secs > 300 {
			secs = 30
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		if err := pprof.StartCPUProfile(w); err != nil {
			http.Error(w, err.Error(), http.StatusConflict) // one already runs
			return
		}
		select {
		case <-time.After(time.Duration(secs) * time.Second):
		case <-r.Context().Done():
		}
		pprof.StopCPUProfile()
	})
	mux.HandleFunc("GET /debug/pprof/{name}", func(w http.ResponseWriter, r *http.Request) {
		p := pprof.Lookup(r.PathValue("name"))
		if p == nil {
			http.Error(w, fmt.Sprintf("no profile %q", r.PathValue("name")), http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		p.WriteTo(w, 0)
	})
}
