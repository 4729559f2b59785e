package daemon

import (
	"fmt"
	"strings"

	"github.com/trakx/trakx/internal/config"
)

// CheckHTTPS reads https.cert and https.key as start does, for
// `trakx check-config`, which may run where the service's credentials are
// not visible: a relative path with no $CREDENTIALS_DIRECTORY set (the
// service's LoadCredential= sets it), or a file this user may not read.
// Such a file is not refused: note names it, says why, and what was
// checked and what not. Anything else (a key not set, a file missing
// where the service would look too, a certificate that is not one, a
// mismatched pair) is refused, naming the key at fault, as start would.
func CheckHTTPS(cfg *config.Config, configPath string) (note string, err error) {
	h := &cfg.HTTPS
	if h.Cert == "" && h.Key == "" && len(h.Listen) == 0 {
		return "", nil // no HTTPS (a socket systemd passes without a pair, start refuses)
	}
	if err := bothSet(h); err != nil {
		return "", err
	}
	certPath, keyPath := h.HTTPSKeyPair(configPath)
	certPEM, certErr := readCredential("https.cert", h.Cert, certPath)
	keyPEM, keyErr := readCredential("https.key", h.Key, keyPath)
	var unseen []string
	for _, err := range []error{certErr, keyErr} {
		if err == nil {
			continue
		}
		why := invisible(err)
		if why == "" {
			return "", err
		}
		unseen = append(unseen, fmt.Sprintf("%v: not visible here: %s", err, why))
	}
	if certErr == nil {
		if err := checkCertificatePEM(certPEM); err != nil {
			return "", fmt.Errorf("https.cert %s: %w", certPath, err)
		}
	}
	if len(unseen) == 0 {
		_, err := pairOf(certPEM, keyPEM, certPath, keyPath)
		return "", err
	}
	checked := "neither https.cert nor https.key was checked"
	switch {
	case certErr == nil:
		checked = "https.cert holds a certificate; whether https.key is its key was not checked"
	case keyErr == nil:
		checked = "https.key was read, but whether it is https.cert's key was not checked"
	}
	return strings.Join(unseen, "\n") + "\n" + checked + "; check them as the service reads them, with\n" +
		"  systemd-run --pipe --wait -p User=... -p LoadCredential=... trakx check-config", nil
}
