package cluster

import (
	"testing"
	"time"
)

// TestJournalWaitsForTheNodesOfBefore: the journal goes once NATS is back
// and every node live before the outage was heard again, or journalWait
// after NATS was first seen back; never while NATS is away; batches keep
// their order; it stops holding once sent.
func TestJournalWaitsForTheNodesOfBefore(t *testing.T) {
	var j journal
	j.lost([]string{"b", "c"})
	j.lost([]string{"x"}) // a second loss keeps the first list
	for i := range 3 {
		if !j.keep([]byte{byte(i)}, i+1) {
			t.Fatal("no room for a small batch")
		}
	}
	if _, ok := j.due(time.Hour, false, false); ok {
		t.Fatal("due while NATS is away")
	}
	if _, ok := j.due(time.Second, true, false); ok {
		t.Fatal("due before any node was heard again")
	}
	j.heard("b")
	j.heard("x")
	if _, ok := j.due(2*time.Second, true, false); ok {
		t.Fatal("due with c not heard again")
	}
	j.heard("c")
	got, ok := j.due(3*time.Second, true, false)
	if !ok || len(got) != 3 || got[0].data[0] != 0 || got[2].data[0] != 2 || got[2].records != 3 {
		t.Fatalf("due %v: %+v", ok, got)
	}
	if j.holding.Load() {
		t.Fatal("still holding once sent")
	}
}

// TestJournalGoesAfterTheWait: a node that never comes back holds the
// journal journalWait past NATS's return, counted from when it was first
// seen back, not from an earlier return.
func TestJournalGoesAfterTheWait(t *testing.T) {
	var j journal
	j.lost([]string{"gone"})
	j.keep([]byte{1}, 1)
	j.due(time.Second, true, false)                     // back at 1 s
	j.due(2*time.Second, false, false)                  // away again
	if _, ok := j.due(3*time.Second, true, false); ok { // back at 3 s
		t.Fatal("due at once")
	}
	if _, ok := j.due(3*time.Second+journalWait-1, true, false); ok {
		t.Fatal("due before the wait from the last return")
	}
	if got, ok := j.due(3*time.Second+journalWait, true, false); !ok || len(got) != 1 {
		t.Fatalf("not due after the wait: %v %d", ok, len(got))
	}
	j.lost([]string{"gone"})
	j.keep([]byte{2}, 1)
	if _, ok := j.due(time.Hour, false, true); ok {
		t.Fatal("forced out while NATS is away")
	}
	if got, ok := j.due(time.Hour, true, true); !ok || len(got) != 1 {
		t.Fatalf("not forced out with NATS back: %v %d", ok, len(got))
	}
}

// TestJournalBounded: past journalBytes a batch is refused, the first
// refusal of an outage reported once, and discard counts what was kept.
func TestJournalBounded(t *testing.T) {
	var j journal
	j.lost(nil)
	big := make([]byte, journalBytes/4)
	for range 4 {
		if !j.keep(big, 10) {
			t.Fatal("refused within the bound")
		}
	}
	if j.keep([]byte{1}, 1) {
		t.Fatal("kept past the bound")
	}
	if !j.overflowed() || j.overflowed() {
		t.Fatal("the overflow not reported exactly once")
	}
	if n := j.discard(); n != 40 {
		t.Fatalf("discarded %d records, want 40", n)
	}
}
