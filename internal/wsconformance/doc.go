// Package wsconformance is a black-box conformance suite for trakx's
// WebSocket endpoint (the WebTorrent tracker served on the HTTP port at
// /announce), organised by section of RFC 6455. It holds no code: only
// tests.
//
// # Contract
//
// The suite checks, over a real TCP connection and with bytes it writes
// itself (every frame masked as a client must, unless the case is about
// masking), that the tracker:
//
//   - §4 handshake (handshake_test.go): answers a valid upgrade with 101 and
//     the right Sec-WebSocket-Accept; refuses a Sec-WebSocket-Key that is
//     not the base64 of exactly 16 bytes, a repeated or missing one, with
//     400; a version other than 13 with 426 and "Sec-WebSocket-Version: 13";
//     methods other than GET with 405.
//   - §5.2 framing (framing_test.go): fails the connection with close code
//     1002 for an unmasked frame, reserved bits, reserved opcodes, a control
//     frame over 125 bytes or fragmented, a 64-bit length with its most
//     significant bit set; 1003 for a binary message; 1009 for a declared
//     length over websocket.max_message_bytes, at once, before any payload;
//     and accepts 16- and 64-bit length encodings of short messages.
//   - §5.4 fragmentation (fragmentation_test.go): answers a message sent in
//     fragments, with control frames between them answered first and in
//     order; fails with 1002 a continuation that continues nothing and a new
//     message started inside a fragmented one.
//   - §5.5.2, §5.5.3 ping and pong (ping_test.go): a pong with the ping's
//     payload for every ping of 0 to 125 bytes; unsolicited pongs ignored.
//   - §5.5.1, §7.4 close (close_test.go): echoes a valid close code, answers
//     an empty close with 1000, fails with 1002 a 1-byte body or a code that
//     may not be sent, with 1007 a reason that is not UTF-8; then sends
//     nothing more and closes TCP. It never sends 1005, 1006 or 1015, nor
//     anything after its close frame (checked on every close in the suite).
//   - §8.1 UTF-8 (utf8_test.go): fails with 1007 a text message that is not
//     UTF-8, whole or across fragments, and never relays what such a
//     message carried to other peers; accepts a code point split between
//     fragments.
//   - limits (limits_test.go): 1009 for a message over
//     websocket.max_message_bytes, whole or assembled from fragments; a
//     failure "too many torrents on one connection" past 200 swarms on one
//     connection; a client that reads nothing and is owed more than 256 KiB
//     of relayed offers is disconnected while other peers carry on.
//
// Every server frame the suite reads is also checked to be unmasked, with
// no reserved bit set (§5.1, §5.2). Case numbers of the Autobahn testsuite
// (fuzzingclient) are given in comments and subtest names where a case
// matches one.
//
// # Running it
//
// By default each run starts a tracker in-process (internal/daemon, built-in
// defaults with HTTP and WebSocket on 127.0.0.1 at a port the kernel picks,
// UDP and stats off, the database in a temporary directory; tests that
// need other settings start one of their own):
//
//	go test -race ./internal/wsconformance/
//
// To test a tracker that is already running, name its HTTP listener:
//
//	TRAKX_WS_ADDR=127.0.0.1:6969 go test ./internal/wsconformance/
//
// It must run with http.websocket on, http.allowed_hosts taking the
// address it is dialled at, an open access list and client filter, no
// per-IP rate limit (limits.per_ip_rate = 0), and room for a few hundred
// WebSocket connections; TestLimitSlowReader assumes that its TCP buffers
// grow no larger than this machine's (net.ipv4.tcp_wmem). Set TRAKX_WS_MAX_MESSAGE_BYTES to its
// websocket.max_message_bytes when that is not the default 65536. Tests
// that need a configuration of their own skip themselves then.
//
// With TRAKX_WS_TLS set, the suite speaks wss:// (TLS, the certificate
// unchecked): to the in-process tracker's HTTPS listener, whose WebSockets
// the https frontend hands over as net.Conns, or to TRAKX_WS_ADDR. There
// a connection the tracker shuts without a close frame may end without a
// TLS close_notify.
package wsconformance
