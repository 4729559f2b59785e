//go:build !linux

package swarm

// populate does nothing where memory cannot be mapped in ahead.
func populate[T any](s []T) {}
