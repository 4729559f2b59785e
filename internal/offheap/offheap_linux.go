//go:build linux

package offheap

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mapMemory maps size bytes of zeroed memory. Running out of address space
// is as fatal as running out of heap.
func mapMemory(size int) unsafe.Pointer {
	p, err := unix.MmapPtr(-1, 0, nil, uintptr(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		panic(fmt.Sprintf("offheap: mapping %d bytes: %v", size, err))
	}
	return p
}

// remapMemory resizes a mapping, moving it if need be: the kernel moves
// page table entries, not the data.
func remapMemory(p unsafe.Pointer, oldSize, newSize int) unsafe.Pointer {
	q, err := unix.MremapPtr(p, uintptr(oldSize), nil, uintptr(newSize), unix.MREMAP_MAYMOVE)
	if err != nil {
		panic(fmt.Sprintf("offheap: resizing a mapping from %d to %d bytes: %v", oldSize, newSize, err))
	}
	return q
}

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
