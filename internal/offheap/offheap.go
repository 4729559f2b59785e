// Package offheap hands out slices of pointer-free values whose memory lies
// outside the Go heap, for data structures that manage their own memory.
//
// Contract:
//   - T must hold no pointers (no pointer, slice, string, map, interface,
//     channel or func anywhere inside it). The garbage collector never
//     scans this memory, so a pointer stored there keeps nothing alive.
//   - Make returns a zeroed slice of exactly n elements (len and cap n),
//     or ErrNoMemory, having allocated nothing.
//   - Resize returns a slice of n elements whose first min(n, len(s))
//     elements equal s's; the rest are zero. s must not be used after.
//     When it returns ErrNoMemory, s is unchanged and still valid.
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
//
// The kernel may refuse a mapping (an address-space limit, RLIMIT_AS, or
// the commit limit with vm.overcommit_memory = 2): that is an error the
// caller handles, not a crash, so that a store that cannot grow refuses
// newcomers and goes on serving what it holds. A cgroup's memory.max is
// not such a refusal: it is enforced when pages are touched, by the OOM
// killer; the store's own limits (max_peers, max_torrents) are what keeps
// it below one.
package offheap

import (
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"
)

// ErrNoMemory is what Make and Resize return when memory cannot be had.
var ErrNoMemory = errors.New("offheap: out of memory")

// fault, when set, is asked before every Make and Resize and fails those
// it answers true for, as if the kernel had refused them.
var fault atomic.Pointer[func(bytes int) bool]

// InjectFaults makes every Make and Resize of a size for which fail returns
// true fail with ErrNoMemory, until the returned undo is called. It exists
// for tests of code that must survive running out of memory, which have no
// other way to make a kernel refuse; it applies to the whole process.
func InjectFaults(fail func(bytes int) bool) (undo func()) {
	fault.Store(&fail)
	return func() { fault.Store(nil) }
}

func refused(bytes int) bool {
	f := fault.Load()
	return f != nil && (*f)(bytes)
}

func noMemory(what string, bytes int, err error) error {
	return fmt.Errorf("%w: %s %d bytes: %v", ErrNoMemory, what, bytes, err)
}

// pageSize is the unit of mapped memory; slices smaller than one come from
// the Go heap.
const pageSize = 4096

// Make returns a zeroed slice of n values of T.
func Make[T any](n int) ([]T, error) {
	if n == 0 {
		return nil, nil
	}
	elem := int(unsafe.Sizeof(*new(T)))
	if n < 0 || n > maxBytes/elem {
		return nil, noMemory("making", n, errors.New("too many elements"))
	}
	size := n * elem
	if refused(size) {
		return nil, noMemory("making", size, errors.New("fault injected"))
	}
	if size < pageSize {
		return make([]T, n), nil
	}
	p, err := mapMemory(size)
	if err != nil {
		return nil, noMemory("mapping", size, err)
	}
	return unsafe.Slice((*T)(p), n), nil
}

// maxBytes bounds one slice, so that sizes never overflow an int.
const maxBytes = 1<<(31+(^uint(0)>>63)*31) - pageSize

// Resize returns a slice of n values holding s's first values.
func Resize[T any](s []T, n int) ([]T, error) {
	if n == len(s) {
		return s, nil
	}
	elem := int(unsafe.Sizeof(*new(T)))
	if n < 0 || n > maxBytes/elem {
		return s, noMemory("resizing to", n, errors.New("too many elements"))
	}
	oldSize, newSize := len(s)*elem, n*elem
	if n > len(s) && refused(newSize) {
		return s, noMemory("resizing to", newSize, errors.New("fault injected"))
	}
	if oldSize >= pageSize && newSize >= pageSize {
		return remap(s, n, elem)
	}
	grown, err := Make[T](n)
	if err != nil {
		return s, err
	}
	copy(grown, s)
	Free(s)
	return grown, nil
}

// remap resizes a mapped slice in place or by moving its pages.
func remap[T any](s []T, n, elem int) ([]T, error) {
	oldSize, newSize := len(s)*elem, n*elem
	if n < len(s) {
		// The mapping keeps the page that holds the new end; what lies
		// past the end in that page must read as zero when the slice
		// grows again. Clearing it first is harmless if the remap fails:
		// those elements are being given up.
		pageEnd := (newSize + pageSize - 1) &^ (pageSize - 1)
		clear(s[n:min(len(s), (pageEnd+elem-1)/elem)])
	}
	p, err := remapMemory(unsafe.Pointer(unsafe.SliceData(s)), oldSize, newSize)
	if err != nil {
		return s, noMemory("remapping to", newSize, err)
	}
	return unsafe.Slice((*T)(p), n), nil
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
