//go:build linux

package offheap

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mapMemory maps size bytes of zeroed memory.
func mapMemory(size int) (unsafe.Pointer, error) {
	return unix.MmapPtr(-1, 0, nil, uintptr(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
}

// remapMemory resizes a mapping, moving it if need be: the kernel moves
// page table entries, not the data. On failure the mapping is unchanged.
func remapMemory(p unsafe.Pointer, oldSize, newSize int) (unsafe.Pointer, error) {
	return unix.MremapPtr(p, uintptr(oldSize), nil, uintptr(newSize), unix.MREMAP_MAYMOVE)
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
