//go:build linux

package offheap

import (
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mapMemory maps size bytes of zeroed memory.
func mapMemory(size int) (unsafe.Pointer, error) {
	return withHeadroom(func() (unsafe.Pointer, error) {
		return unix.MmapPtr(-1, 0, nil, uintptr(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	})
}

// remapMemory resizes a mapping, moving it if need be: the kernel moves
// page table entries, not the data. On failure the mapping is unchanged.
func remapMemory(p unsafe.Pointer, oldSize, newSize int) (unsafe.Pointer, error) {
	remap := func() (unsafe.Pointer, error) {
		return unix.MremapPtr(p, uintptr(oldSize), nil, uintptr(newSize), unix.MREMAP_MAYMOVE)
	}
	if newSize <= oldSize {
		return remap()
	}
	return withHeadroom(remap)
}

// headroom is address space the store leaves to the Go runtime. Where the
// process's address space is limited (RLIMIT_AS, as prlimit or systemd's
// LimitAS= set it), the store and the runtime draw on one budget: a store
// that grew into the last of it would leave the garbage collector nothing,
// and a runtime that cannot allocate dies (fatal error: cannot allocate
// memory), with no chance to save. So the store grows only where
// headroomBytes more could be mapped beside it: a reservation —
// inaccessible, never touched, costing no memory — is taken for the
// duration of the growth and given back at once. The runtime, never
// limited by the store, always has what the store left, and the store never
// takes the last headroomBytes.
//
// (Holding the reservation between growths and giving it up only when a
// growth failed was tried: a growth that succeeded could leave the runtime
// less than it needed until the next one failed, and the runtime died in
// between.)
var headroom sync.Mutex // one growth at a time, so that two do not count the same room

// headroomBytes is what the runtime is left: more than one heap arena (64
// MiB), with room for stacks and mark bits.
const headroomBytes = 192 << 20

var errNoHeadroom = errors.New("no headroom left for the Go runtime")

// withHeadroom runs grow, which maps memory, with headroomBytes reserved
// beside it, and gives the reservation back.
func withHeadroom(grow func() (unsafe.Pointer, error)) (unsafe.Pointer, error) {
	headroom.Lock()
	defer headroom.Unlock()
	room, err := unix.MmapPtr(-1, 0, nil, headroomBytes, unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return nil, errNoHeadroom
	}
	defer unix.MunmapPtr(room, headroomBytes)
	return grow()
}

// unmapMemory unmaps a whole mapping, which the kernel cannot refuse short
// of a bad address: a failure here is a bug in this package.
func unmapMemory(p unsafe.Pointer, size int) {
	if err := unix.MunmapPtr(p, uintptr(size)); err != nil {
		panic(fmt.Sprintf("offheap: unmapping %d bytes: %v", size, err))
	}
}

// releasePages drops whole pages of a private anonymous mapping; they read
// as zero afterwards.
func releasePages(start unsafe.Pointer, length int) bool {
	return unix.Madvise(unsafe.Slice((*byte)(start), length), unix.MADV_DONTNEED) == nil
}
