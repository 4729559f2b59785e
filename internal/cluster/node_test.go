package cluster

import (
	"strings"
	"testing"
)

// TestRedactURLs: no password reaches a log line, whatever the list holds.
func TestRedactURLs(t *testing.T) {
	for list, want := range map[string]string{
		"nats://10.0.0.5:4222":                           "nats://10.0.0.5:4222",
		"nats://a:A-SECRET@10.0.0.5:4222,tls://h:4222":   "nats://a:xxxxx@10.0.0.5:4222,tls://h:4222",
		"tls://u:A-SECRET@h:4222, nats://b:A-SECRET@g:1": "tls://u:xxxxx@h:4222,nats://b:xxxxx@g:1",
		"nats://a:A-SECRET@h:4222/%zz":                   "(an unreadable URL)",
	} {
		got := RedactURLs(list)
		if got != want || strings.Contains(got, "SECRET") {
			t.Errorf("%q: %q, want %q", list, got, want)
		}
	}
}
