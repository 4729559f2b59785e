package metrics

import (
	"net/netip"
	"sync/atomic"
)

// Requests is the block of request counters every frontend keeps, embedded
// in its own counters (UDP, HTTP, WebSocket). Each event is one atomic add
// on a counter of the block; the names the views give the indexes are in
// names.go.
type Requests struct {
	Answered   [NumActions][NumFamilies]atomic.Uint64 // requests answered, by action and the client's family
	Errors     [NumErrorReasons]atomic.Uint64         // error replies (or, for descriptors, connections closed unanswered)
	Refused    [NumRefusalReasons]atomic.Uint64       // requests refused
	BadRequest atomic.Uint64                          // requests that could not be read, answered or not
}

// Answer counts a request for a from client, answered.
func (r *Requests) Answer(a Action, client netip.Addr) { r.Answered[a][FamilyOf(client)].Add(1) }

// Refuse counts a request refused for why without an error reply of its
// own (over budget, a host not served).
func (r *Requests) Refuse(why RefusalReason) { r.Refused[why].Add(1) }

// Fail counts an error reply for err: its reason, and the refusal it stands
// for when the tracker turned the request down. It is the one place where
// an error becomes counters, for every frontend.
func (r *Requests) Fail(err error) {
	if why, ok := refusalOf(err); ok {
		r.Refused[why].Add(1)
	}
	r.Errors[reasonOf(err)].Add(1)
}

// RequestTotals are Requests blocks added up: one frontend's figures.
type RequestTotals struct {
	Answered   [NumActions][NumFamilies]uint64
	Errors     [NumErrorReasons]uint64
	Refused    [NumRefusalReasons]uint64
	BadRequest uint64
}

// add is the one place where request counters are added up.
func (t *RequestTotals) add(c *Requests) {
	for a := range c.Answered {
		addAll(t.Answered[a][:], c.Answered[a][:])
	}
	addAll(t.Errors[:], c.Errors[:])
	addAll(t.Refused[:], c.Refused[:])
	t.BadRequest += c.BadRequest.Load()
}

// Answers is the number of requests for a answered, of both families.
func (t *RequestTotals) Answers(a Action) uint64 { return sum(t.Answered[a][:]) }

// ErrorTotal is the number of error replies, of every reason.
func (t *RequestTotals) ErrorTotal() uint64 { return sum(t.Errors[:]) }

// sum adds up counters kept per family or per reason.
func sum(v []uint64) (n uint64) {
	for _, x := range v {
		n += x
	}
	return n
}

func addAll(dst []uint64, src []atomic.Uint64) {
	for i := range src {
		dst[i] += src[i].Load()
	}
}
