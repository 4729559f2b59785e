//go:build race

package daemon_test

// raceEnabled: the race detector adds to every goroutine and allocation,
// so memory figures mean nothing under it.
const raceEnabled = true
