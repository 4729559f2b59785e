package config

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestHTTPSKeysAreChecked(t *testing.T) {
	for text, want := range map[string]string{
		"[https]\nlisten = [\"127.0.0.1:443\"]\nkey = \"k.pem\"\n":                                            "https.cert: must name",
		"[https]\nlisten = [\"127.0.0.1:443\"]\ncert = \"c.pem\"\n":                                           "https.key: must name",
		"[https]\nlisten = [\"443\"]\ncert = \"c\"\nkey = \"k\"\n":                                            "https.listen[0]",
		"[http]\nlisten = [\"[::]:443\"]\n[https]\nlisten = [\"127.0.0.1:443\"]\ncert = \"c\"\nkey = \"k\"\n": "https.listen[0]: \"127.0.0.1:443\" clashes with http.listen",
	} {
		_, err := Parse([]byte(text))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", text, err, want)
		}
	}
	if _, err := Parse([]byte("[https]\ncert = \"c.pem\"\nkey = \"k.pem\"\n")); err != nil {
		t.Fatalf("a pair without listeners (socket activation): %v", err)
	}
}

func TestCredentialPath(t *testing.T) {
	t.Setenv(CredentialsDirectoryEnv, "")
	if p, creds := CredentialPath("/etc/ssl/a.pem", "/etc/trakx.toml"); p != "/etc/ssl/a.pem" || creds {
		t.Fatalf("absolute: %s %v", p, creds)
	}
	if p, creds := CredentialPath("a.pem", "/srv/trakx/trakx.toml"); p != "/srv/trakx/a.pem" || creds {
		t.Fatalf("beside the file: %s %v", p, creds)
	}
	t.Setenv(CredentialsDirectoryEnv, "/run/credentials/trakx.service")
	if p, creds := CredentialPath("a.pem", "/srv/trakx/trakx.toml"); p != filepath.Join("/run/credentials/trakx.service", "a.pem") || !creds {
		t.Fatalf("from the credentials: %s %v", p, creds)
	}
}
