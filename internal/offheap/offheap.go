// Package offheap hands out slices of pointer-free values whose memory lies
// outside the Go heap, for data structures that manage their own memory.
//
// Contract:
//   - T must hold no pointers (no pointer, slice, string, map, interface,
//     channel or func anywhere inside it). The garbage collector never
//     scans this memory, so a pointer stored there keeps nothing alive.
//   - Make returns a zeroed slice of exactly n elements (len and cap n).
//   - Resize returns a slice of n elements whose first min(n, len(s))
//     elements equal s's; the rest are zero. s must not be used after.
//   - Free gives the memory back at once. s must not be used after.
//   - Every slice given to Resize or Free must come from Make or Resize,
//     unchanged (not resliced).
//   - Release zeroes s[from:] and, where the platform allows, returns its
//     whole pages to the kernel, keeping the slice usable.
//
// Why: memory freed in the Go heap returns to the kernel only once the heap
// shrinks well below its goal, which with the default GOGC is twice the live
// heap. A store of tens of millions of records that keeps reallocating its
// arrays would keep up to twice its size resident. Here, memory is resident
// exactly while it is in use, and freeing it is immediate.
//
// Small slices (under one page) come from the Go heap, where they cost no
// more than their size; larger ones are anonymous private mappings on Linux,
// grown and shrunk with mremap so that growing never copies. Elsewhere every
// slice comes from the Go heap.
package offheap

import "unsafe"

// pageSize is the unit of mapped memory; slices smaller than one come from
// the Go heap.
const pageSize = 4096

// Make returns a zeroed slice of n values of T.
func Make[T any](n int) []T {
	if n == 0 {
		return nil
	}
	size := n * int(unsafe.Sizeof(*new(T)))
	if size < pageSize {
		return make([]T, n)
	}
	return unsafe.Slice((*T)(mapMemory(size)), n)
}

// Resize returns a slice of n values holding s's first values.
func Resize[T any](s []T, n int) []T {
	if n == len(s) {
		return s
	}
	elem := int(unsafe.Sizeof(*new(T)))
	oldSize, newSize := len(s)*elem, n*elem
	if oldSize >= pageSize && newSize >= pageSize {
		if n < len(s) {
			// The mapping keeps the page that holds the new end; what
			// lies past the end in that page must read as zero when the
			// slice grows again.
			pageEnd := (newSize + pageSize - 1) &^ (pageSize - 1)
			clear(s[n:min(len(s), (pageEnd+elem-1)/elem)])
		}
		return unsafe.Slice((*T)(remapMemory(unsafe.Pointer(unsafe.SliceData(s)), oldSize, newSize)), n)
	}
	grown := Make[T](n)
	copy(grown, s)
	Free(s)
	return grown
}

// Free gives s's memory back.
func Free[T any](s []T) {
	size := len(s) * int(unsafe.Sizeof(*new(T)))
	if size >= pageSize {
		unmapMemory(unsafe.Pointer(unsafe.SliceData(s)), size)
	}
}

// Release zeroes s[from:] and hands its whole pages back to the kernel,
// which maps them again, zeroed, when they are next written.
func Release[T any](s []T, from int) {
	if from >= len(s) {
		return
	}
	elem := int(unsafe.Sizeof(*new(T)))
	size := len(s) * elem
	// A mapping starts on a page boundary, so offsets into it tell pages.
	firstPage := (from*elem + pageSize - 1) &^ (pageSize - 1)
	if size < pageSize || firstPage >= size || !releasePages(unsafe.Add(unsafe.Pointer(unsafe.SliceData(s)), firstPage), size-firstPage) {
		clear(s[from:])
		return
	}
	// The released pages read as zero; clear what lies before them.
	clear(s[from:min(len(s), (firstPage+elem-1)/elem)])
}
