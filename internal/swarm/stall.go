package swarm

import "github.com/trakx/trakx/internal/bittorrent"

// Stall takes the lock that guards h's swarm and holds it until release is
// called: announces and scrapes of h wait meanwhile, as they would behind
// a deadlock. It exists for tests of what must notice a stalled request
// (the systemd watchdog), which have no other way to make one.
func (s *Store) Stall(h *bittorrent.InfoHash) (release func()) {
	sh := s.shardOf(s.hash(h))
	sh.mu.Lock()
	return sh.mu.Unlock
}
