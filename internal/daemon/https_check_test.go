package daemon

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trakx/trakx/internal/config"
	tt "github.com/trakx/trakx/internal/trackertest"
)

// TestCheckHTTPSMessages: for each way https.cert and https.key can be
// wrong, check-config refuses or notes, and what it says is right for
// that case and agrees with itself: a file it cannot see is noted, with
// the reason that holds (not $CREDENTIALS_DIRECTORY's when that is set,
// or the path absolute); anything else is refused, naming the key; and
// loadKeyPair (start, reload) says what is not set.
func TestCheckHTTPSMessages(t *testing.T) {
	dir, creds := t.TempDir(), t.TempDir()
	good := tt.WriteCertificate(t, dir, "good", "good")
	other := tt.WriteCertificate(t, dir, "other", "other")
	tt.WriteCertificate(t, creds, "tracker", "from credentials")
	configPath := filepath.Join(dir, "trakx.toml")
	denied := filepath.Join(dir, "denied.key")
	for name, c := range map[string]struct {
		listen         bool
		cert, key      string
		credentials    string // $CREDENTIALS_DIRECTORY, or unset
		err, note, not string // what the error or note says, and what neither may
		loadErr        string // what loadKeyPair says, if not err
	}{
		"neither set, no listener":                   {loadErr: "https.cert and https.key are not set"},
		"neither set, a listener":                    {listen: true, err: "https.cert and https.key are not set"},
		"no certificate":                             {listen: true, key: good.KeyPath, err: "https.cert is not set, but https.key is"},
		"no key":                                     {listen: true, cert: good.CertPath, err: "https.key is not set, but https.cert is"},
		"a good pair":                                {listen: true, cert: good.CertPath, key: good.KeyPath},
		"a mismatched pair":                          {cert: good.CertPath, key: other.KeyPath, err: "https.key " + other.KeyPath + " is not the key of https.cert " + good.CertPath},
		"relative, nowhere to be seen":               {cert: "tracker.crt", key: "tracker.key", note: "https.cert " + filepath.Join(dir, "tracker.crt") + ": no such file or directory (a relative path is read beside the configuration file when $CREDENTIALS_DIRECTORY is not set): not visible here: the service reads a relative path from $CREDENTIALS_DIRECTORY when it gets the file with LoadCredential=", not: "holds a certificate", loadErr: "https.cert " + filepath.Join(dir, "tracker.crt") + ": no such file"},
		"relative key unseen, certificate absolute":  {cert: good.CertPath, key: "tracker.key", note: "https.cert holds a certificate; whether https.key is its key was not checked", not: "https.cert " + good.CertPath, loadErr: "https.key"},
		"absolute certificate missing, key relative": {cert: filepath.Join(dir, "none.crt"), key: "tracker.key", err: "https.cert " + filepath.Join(dir, "none.crt") + ": no such file"},
		"missing from the credentials":               {cert: "none.crt", key: "tracker.key", credentials: creds, err: "https.cert " + filepath.Join(creds, "none.crt") + ": no such file or directory (a relative path is read from $CREDENTIALS_DIRECTORY)"},
		"from the credentials":                       {cert: "tracker.crt", key: "tracker.key", credentials: creds},
		"a key this user may not read":               {cert: good.CertPath, key: denied, credentials: creds, note: "https.key " + denied + ": permission denied: not visible here: this user may not read it", not: "CREDENTIALS_DIRECTORY", loadErr: "https.key " + denied + ": permission denied"},
		"denied key, bad certificate":                {cert: good.KeyPath, key: denied, err: "https.cert " + good.KeyPath + ": no PEM certificate"},
	} {
		t.Run(name, func(t *testing.T) {
			if c.credentials != "" {
				t.Setenv(config.CredentialsDirectoryEnv, c.credentials)
			} else {
				t.Setenv(config.CredentialsDirectoryEnv, "")
				os.Unsetenv(config.CredentialsDirectoryEnv)
			}
			readFile = func(path string) ([]byte, error) {
				if path == denied {
					return nil, &fs.PathError{Op: "open", Path: path, Err: fs.ErrPermission}
				}
				return os.ReadFile(path)
			}
			defer func() { readFile = os.ReadFile }()
			cfg := config.Default()
			cfg.HTTPS.Cert, cfg.HTTPS.Key = c.cert, c.key
			if c.listen {
				cfg.HTTPS.Listen = []string{"127.0.0.1:0"}
			}
			note, err := CheckHTTPS(&cfg, configPath)
			said := note
			if err != nil {
				said = err.Error()
			}
			if (err != nil) != (c.err != "") || (note != "") != (c.note != "") || !strings.Contains(said, c.err+c.note) ||
				(c.not != "" && strings.Contains(said, c.not)) {
				t.Errorf("check-config: error %v, note %q; want error %q, note %q, and not %q", err, note, c.err, c.note, c.not)
			}
			_, err = loadKeyPair(&cfg.HTTPS, configPath)
			want := c.loadErr
			if want == "" {
				want = c.err
			}
			if (err != nil) != (want != "") || (err != nil && !strings.Contains(err.Error(), want)) {
				t.Errorf("loadKeyPair: %v, want %q", err, want)
			}
		})
	}
}
