//go:build !linux

package offheap

import "unsafe"

// Without mremap and madvise, "mapped" memory is a Go heap allocation that
// the slices keep alive; Free leaves it to the garbage collector.

func mapMemory(size int) (unsafe.Pointer, error) {
	return unsafe.Pointer(unsafe.SliceData(make([]uint64, (size+7)/8))), nil
}

func remapMemory(p unsafe.Pointer, oldSize, newSize int) (unsafe.Pointer, error) {
	q, _ := mapMemory(newSize)
	copy(unsafe.Slice((*byte)(q), newSize), unsafe.Slice((*byte)(p), min(oldSize, newSize)))
	return q, nil
}

func unmapMemory(unsafe.Pointer, int) {}

func releasePages(unsafe.Pointer, int) bool { return false }
