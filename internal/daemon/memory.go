package daemon

import "time"

// oomWarnEvery is the least time between two warnings that announces are
// refused for want of memory: a store that cannot grow refuses every
// newcomer, and one line a request would flood the journal.
const oomWarnEvery = time.Minute

// oomWarner decides when to warn that the store refuses newcomers because
// the kernel will not give it memory.
type oomWarner struct {
	warned  time.Time // when the last warning went out
	counted uint64    // refusals the last warning covered
}

// check is given the refusals counted so far at now; it returns how many
// are new since the last warning, and whether to warn of them now.
func (w *oomWarner) check(now time.Time, refused uint64) (fresh uint64, warn bool) {
	if refused == w.counted || (!w.warned.IsZero() && now.Sub(w.warned) < oomWarnEvery) {
		return 0, false
	}
	fresh, w.counted, w.warned = refused-w.counted, refused, now
	return fresh, true
}

// watchMemory looks once a second for announces refused out of memory and
// warns of them, at most once a minute, until the daemon stops.
func (d *Daemon) watchMemory() {
	var w oomWarner
	d.every(time.Second, func() {
		if n, warn := w.check(time.Now(), d.store.RefusedOutOfMemory()); warn {
			d.log.Warnf("out of memory: %d new peers or torrents refused (\"tracker is full\") since the last warning; "+
				"the swarms held are served as before (trakx.refused.out_of_memory)", n)
		}
	})
}
