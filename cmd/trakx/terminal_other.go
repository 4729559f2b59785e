//go:build !linux

package main

import "io"

// isTerminal: trakx stats -watch prints one screen after another where it
// cannot tell.
func isTerminal(io.Writer) bool { return false }
