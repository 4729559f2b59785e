//go:build !linux

package database

// hugePages does nothing where huge pages cannot be asked for.
func hugePages[T any](s []T) {}
