//go:build !linux

package http

// serveRaw: the fast path needs Linux's accept4; elsewhere every
// connection goes through net.Listener.Accept.
func (s *Server) serveRaw() bool { return false }
