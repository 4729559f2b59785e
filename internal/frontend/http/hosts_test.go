package http

import (
	"net/url"
	"strings"
	"testing"
)

func TestHostsMatch(t *testing.T) {
	h := NewHosts([]string{"Tracker.Example.org", "[2001:db8::1]", "2001:db8::2", "192.0.2.1:6969", "localhost."})
	for host, want := range map[string]bool{
		"tracker.example.org": true, "TRACKER.EXAMPLE.ORG:80": true, "tracker.example.org.": true,
		"[2001:db8::1]": true, "[2001:DB8::1]:6969": true, "[2001:db8::2]": true, "192.0.2.1": true, "192.0.2.1:1": true,
		"localhost": true, "localhost:6969": true,
		"example.org": false, "tracker.example.org.evil": false, "xtracker.example.org": false, "[2001:db8::3]": false,
		"2001:db8::1": false, "[2001:db8::1": false, "": false, "192.0.2.10": false,
	} {
		if got := h.Allowed([]byte(host), true); got != want {
			t.Errorf("Host %q: allowed %v, want %v", host, got, want)
		}
	}
	if h.Allowed(nil, false) {
		t.Error("a request with no Host was allowed by a list")
	}
	if !AnyHost.Allowed(nil, false) || !NewHosts(nil).Allowed([]byte("anything"), true) {
		t.Error("the empty list refused a host")
	}
}

// FuzzHostsAgainstNetURL compares the Host matching with net/url's
// reading of a host (Hostname: no port, no brackets) as an oracle.
func FuzzHostsAgainstNetURL(f *testing.F) {
	for _, s := range []string{"tracker.example.org", "Tracker.Example.org:6969", "[::1]:80", "[::1]", "a.", "x:y:z"} {
		f.Add(s, "tracker.example.org")
	}
	f.Fuzz(func(t *testing.T, host, listed string) {
		if !isHost([]byte(host)) || !isHost([]byte(listed)) || strings.Count(host, "[") > 1 || strings.Count(listed, "[") > 1 {
			return
		}
		name := func(s string) (string, bool) {
			u, err := url.Parse("http://" + s + "/")
			if err != nil || u.Host != s || u.Port() == "" && strings.HasSuffix(s, ":") {
				return "", false
			}
			return strings.TrimSuffix(strings.ToLower(u.Hostname()), "."), true
		}
		hn, ok1 := name(host)
		ln, ok2 := name(listed)
		if !ok1 || !ok2 || hn == "" || ln == "" {
			return
		}
		want := hn == ln
		if got := NewHosts([]string{listed}).Allowed([]byte(host), true); got != want {
			t.Fatalf("Host %q against %q: allowed %v, net/url says %v", host, listed, got, want)
		}
	})
}
