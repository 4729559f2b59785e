package metrics

import (
	"errors"
	"net/netip"

	"github.com/trakx/trakx/internal/bittorrent"
)

// This file declares what the request counters are counted by, each with
// its name in the views. A new action, error reason or refusal reason is a
// constant and its entry in the table below it: the counters, Totals,
// /debug/vars, /metrics and `trakx stats` all follow from these tables.

// Protocol indexes the frontends whose requests a Requests block counts.
type Protocol uint8

// The frontends.
const (
	ProtocolUDP Protocol = iota
	ProtocolHTTP
	ProtocolWebSocket
	NumProtocols
)

// ProtocolNames are the frontends' names in the views.
var ProtocolNames = [NumProtocols]string{"udp", "http", "websocket"}

// Protocols is a set of frontends: the ones a counter exists for.
type Protocols uint8

// Has says whether p is in the set.
func (s Protocols) Has(p Protocol) bool { return s&(1<<p) != 0 }

// Sets of frontends the tables below use.
const (
	OnlyUDP      Protocols = 1 << ProtocolUDP
	OnlyHTTP     Protocols = 1 << ProtocolHTTP
	AllProtocols Protocols = 1<<NumProtocols - 1
)

// Shown is a counter's name in the views and the frontends that can count
// it: the views show it for those only, so that no series is exposed that
// could never move (UDP has no paths, so no not_found).
type Shown struct {
	Name string
	In   Protocols
}

// Family indexes counters kept per address family: the client's, as the
// tracker resolves it.
type Family uint8

// The address families.
const (
	IPv4 Family = iota
	IPv6
	NumFamilies
)

// FamilyNames are the families' names in the views.
var FamilyNames = [NumFamilies]string{"ipv4", "ipv6"}

// FamilyOf is the family of a client address (IPv4-mapped is IPv4).
func FamilyOf(a netip.Addr) Family {
	if a.Is4() || a.Is4In6() {
		return IPv4
	}
	return IPv6
}

// Action is what an answered request asked for.
type Action uint8

// The actions.
const (
	ActionConnect Action = iota
	ActionAnnounce
	ActionScrape
	ActionFullScrape // an HTTP scrape of every torrent (http.full_scrape)
	NumActions
)

// Actions name the actions in the views (trakx_requests_total's action
// label, the protocols' keys in /debug/vars).
var Actions = [NumActions]Shown{
	ActionConnect:    {"connect", OnlyUDP}, // BEP 15's first exchange
	ActionAnnounce:   {"announce", AllProtocols},
	ActionScrape:     {"scrape", AllProtocols},
	ActionFullScrape: {"full_scrape", OnlyHTTP},
}

// ErrorReason is why a request was answered with an error.
type ErrorReason uint8

// The error reasons.
const (
	// ReasonMalformed: the request could not be read, or asked for
	// something no tracker serves (a BEP 15 packet, HTTP framing, a query
	// string, a method other than GET).
	ReasonMalformed ErrorReason = iota
	// ReasonNotFound: an HTTP path other than the announce and scrape ones.
	ReasonNotFound
	ReasonTorrentNotAllowed // the access list
	ReasonClientNotAllowed  // the client filter
	ReasonTrackerFull       // tracker.max_peers or max_torrents
	ReasonInternal          // a fault of the tracker's own
	// ReasonDescriptors: a connection the tracker had no descriptor to
	// serve with (the open files limit); closed unanswered.
	ReasonDescriptors
	NumErrorReasons
)

// ErrorReasons name the error reasons in the views (trakx_errors_total's
// reason label).
var ErrorReasons = [NumErrorReasons]Shown{
	ReasonMalformed:         {"malformed", AllProtocols},
	ReasonNotFound:          {"not_found", OnlyHTTP},
	ReasonTorrentNotAllowed: {"torrent_not_allowed", AllProtocols},
	ReasonClientNotAllowed:  {"client_not_allowed", AllProtocols},
	ReasonTrackerFull:       {"tracker_full", AllProtocols},
	ReasonInternal:          {"internal", AllProtocols},
	ReasonDescriptors:       {"descriptors", AllProtocols &^ OnlyUDP}, // UDP has no connections
}

// RefusalReason is why a request was refused rather than served.
type RefusalReason uint8

// The refusal reasons.
const (
	RefusalAccessList RefusalReason = iota // torrents the access list excludes
	RefusalRate                            // requests over their source's budget
	RefusalHost                            // HTTP requests for a host not served (421)
	RefusalClient                          // announces from clients the filter excludes
	// RefusalFullScrapeBusy: full scrapes for clients that do not accept
	// gzip, past the few decompressed at once (503).
	RefusalFullScrapeBusy
	NumRefusalReasons
)

// RefusalReasons name the refusal reasons in the views
// (trakx_refused_total's reason label, /debug/vars' refused tree). The
// store's refusals (tracker_full_*, out_of_memory) and the connection caps
// are counted where they happen and named in the views themselves.
var RefusalReasons = [NumRefusalReasons]string{
	RefusalAccessList: "access_list",
	RefusalRate:       "rate",
	RefusalHost:       "host",
	RefusalClient:     "client",

	RefusalFullScrapeBusy: "full_scrape_busy",
}

// reasonOf classifies an error the tracker or a parser returned (for
// Requests.Fail).
func reasonOf(err error) ErrorReason {
	var ce *bittorrent.ClientError
	if !errors.As(err, &ce) {
		return ReasonInternal
	}
	switch ce.Kind {
	case bittorrent.KindTorrentNotAllowed:
		return ReasonTorrentNotAllowed
	case bittorrent.KindClientNotAllowed:
		return ReasonClientNotAllowed
	case bittorrent.KindTrackerFull:
		return ReasonTrackerFull
	}
	return ReasonMalformed
}

// refusalOf is the refusal an error stands for, if any: the tracker's
// access list and client filter turn requests down with an error reply.
func refusalOf(err error) (RefusalReason, bool) {
	switch err {
	case bittorrent.ErrNotAllowed:
		return RefusalAccessList, true
	case bittorrent.ErrClientNotAllowed:
		return RefusalClient, true
	}
	return 0, false
}
