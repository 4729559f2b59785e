package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/trakx/trakx/internal/access"
	"github.com/trakx/trakx/internal/config"
)

// errNothingToServe refuses a configuration with no listener at all.
var errNothingToServe = errors.New("nothing to serve: udp.listen, http.listen and https.listen are all empty")

// Check refuses what a valid configuration can still get wrong about the
// machine it runs on: an access list that does not load, a database path
// that is a directory or lies in a directory that is missing or not
// writable, and no listeners (unless systemd passes sockets). Start runs
// it first, and `trakx check-config` runs the same, so that the two agree
// word for word. It returns the access list it loaded.
func Check(cfg *config.Config, socketActivated bool) (*access.List, error) {
	list, err := access.Load(access.Mode(cfg.Access.Mode), cfg.Access.File)
	if err != nil {
		return nil, err
	}
	if err := checkDatabasePath(cfg.Database.Path); err != nil {
		return nil, err
	}
	if !socketActivated && len(cfg.UDP.Listen)+len(cfg.HTTP.Listen)+len(cfg.HTTPS.Listen) == 0 {
		return nil, errNothingToServe
	}
	return list, nil
}

// checkDatabasePath makes sure a save can work: the file, if there, is a
// file, and its directory exists and takes new files (a save writes a
// temporary file there and renames it).
func checkDatabasePath(path string) error {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("database.path %s is a directory, not a file", path)
	}
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("database.path %s: directory %s does not exist", path, dir)
	case err != nil:
		return fmt.Errorf("database.path %s: %w", path, err)
	case !fi.IsDir():
		return fmt.Errorf("database.path %s: %s is not a directory", path, dir)
	}
	probe, err := os.CreateTemp(dir, ".trakx-check-*")
	if err != nil {
		return fmt.Errorf("database.path %s: cannot write in %s: %w", path, dir, errors.Unwrap(err))
	}
	probe.Close()
	os.Remove(probe.Name())
	return nil
}

// DatabasePath is the database file as start uses it: absolute, so that a
// relative path in the configuration says where it lands.
func DatabasePath(cfg *config.Config) string {
	if abs, err := filepath.Abs(cfg.Database.Path); err == nil {
		return abs
	}
	return cfg.Database.Path
}
