//go:build linux

package offheap

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mapMemory maps size bytes of zeroed memory.
func mapMemory(size int) (unsafe.Pointer, error) {
	return withHeadroom(size, func() (unsafe.Pointer, error) {
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
	return withHeadroom(newSize-oldSize, remap)
}

// headroom is address space the store leaves to the Go runtime. Where the
// process's address space is limited (RLIMIT_AS, as prlimit or systemd's
// LimitAS= set it), the store and the runtime draw on one budget: a store
// that grew into the last of it would leave the garbage collector nothing,
// and a runtime that cannot allocate dies (fatal error: cannot allocate
// memory), with no chance to save. So the store grows only where
// headroomBytes would still be left beside it, by the limit and the
// address space the process has now (/proc/self/statm). Without a limit,
// growth is not checked at all.
//
// Two ways were tried before, and the runtime died under both: holding a
// reservation of headroomBytes between growths, given up only when a
// growth failed (a growth that succeeded could leave the runtime short
// until the next one failed); and taking the reservation for the duration
// of each growth only (the runtime, allocating meanwhile on another
// thread, found the room taken).
var headroom sync.Mutex // one growth at a time, so that two do not count the same room

// headroomBytes is what the runtime is left: room for a heap arena (64
// MiB) reserved twice over for its alignment, and for stacks and mark
// bits.
const headroomBytes = 192 << 20

var errNoHeadroom = errors.New("no headroom left for the Go runtime")

// withHeadroom runs grow, which maps growth bytes more, if headroomBytes
// would still be left under the address-space limit afterwards.
func withHeadroom(growth int, grow func() (unsafe.Pointer, error)) (unsafe.Pointer, error) {
	headroom.Lock()
	defer headroom.Unlock()
	var limit unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_AS, &limit); err == nil && limit.Cur != unix.RLIM_INFINITY {
		used, err := addressSpace()
		if err != nil || used+uint64(growth)+headroomBytes > limit.Cur {
			return nil, errNoHeadroom
		}
	}
	return grow()
}

// addressSpace is the process's address space now, in bytes: the first
// field of /proc/self/statm, in pages.
func addressSpace() (uint64, error) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, err
	}
	field, _, _ := bytes.Cut(b, []byte(" "))
	pages, err := strconv.ParseUint(string(field), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("/proc/self/statm: %w", err)
	}
	return pages * uint64(os.Getpagesize()), nil
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
