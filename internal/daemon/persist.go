package daemon

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/trakx/trakx/internal/database"
)

// load fills the store from the database file before anything is served. A
// missing file is a first start. A file that cannot be read is renamed
// aside, never deleted, and the tracker starts empty.
func (d *Daemon) load() {
	path := d.cfg.Database.Path
	started := time.Now()
	store, st, err := database.Load(path, storeConfig(&d.cfg), started)
	switch {
	case err == nil:
		d.store.Close() // the empty store New made; nothing has seen it yet
		d.store = store
		line := fmt.Sprintf("loaded %d peers in %d torrents from %s in %.2fs (saved %s ago; %d peers had expired)",
			st.Peers, st.Torrents, path, time.Since(started).Seconds(), started.Sub(st.SavedAt).Round(time.Second), st.Expired)
		if st.NoMemory > 0 {
			d.log.Warnf("%s; out of memory: %d more peers did not fit and were dropped", line, st.NoMemory)
		} else {
			d.log.Info(line)
		}
	case errors.Is(err, os.ErrNotExist):
		d.log.Infof("no database at %s yet: starting empty", path)
	default:
		aside := path + ".corrupt-" + started.UTC().Format("20060102T150405Z")
		if rerr := os.Rename(path, aside); rerr != nil {
			d.log.Errorf("cannot load database %s: %v; starting empty, and it could not be moved aside: %v", path, err, rerr)
			return
		}
		d.log.Errorf("cannot load database %s: %v; moved it to %s and starting empty", path, err, aside)
	}
}

// Save writes the database now. Saves never overlap; the store keeps
// serving during one.
func (d *Daemon) Save() error {
	d.saveMu.Lock()
	defer d.saveMu.Unlock()
	started := time.Now()
	st, err := database.Save(d.cfg.Database.Path, d.store, started)
	took := time.Since(started)
	d.metrics.RecordSave(time.Now(), took, st.Peers, err)
	if err != nil {
		d.log.Errorf("database save failed: %v", err)
		return err
	}
	d.log.Infof("saved %d peers in %d torrents to %s in %.2fs (%d bytes; requests waited at most %v)",
		st.Peers, st.Torrents, d.cfg.Database.Path, took.Seconds(), st.Bytes, st.LongestLock.Round(time.Microsecond))
	return nil
}
