//go:build !linux

package main

// stopWithGoRun: only Linux can tie a process's life to its parent's.
func stopWithGoRun() {}
