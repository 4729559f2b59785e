package daemon

import (
	"testing"
	"time"
)

// TestOOMWarnerAtMostOnceAMinute: the first refusal is warned of at once,
// later ones at most once a minute, each warning counting those since the
// last, and nothing new means no warning.
func TestOOMWarnerAtMostOnceAMinute(t *testing.T) {
	var w oomWarner
	t0 := time.Unix(1_800_000_000, 0)
	steps := []struct {
		at      time.Duration
		refused uint64
		fresh   uint64
		warn    bool
	}{
		{0, 0, 0, false},
		{time.Second, 3, 3, true},
		{2 * time.Second, 10, 0, false},
		{59 * time.Second, 50, 0, false},
		{61 * time.Second, 51, 48, true},
		{200 * time.Second, 51, 0, false},
		{201 * time.Second, 52, 1, true},
	}
	for _, s := range steps {
		fresh, warn := w.check(t0.Add(s.at), s.refused)
		if fresh != s.fresh || warn != s.warn {
			t.Fatalf("at %v with %d refused: %d, %v; want %d, %v", s.at, s.refused, fresh, warn, s.fresh, s.warn)
		}
	}
}
