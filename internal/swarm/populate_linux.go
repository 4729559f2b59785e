//go:build linux

package swarm

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// populate maps in, writable, the pages that s lies on, in one call, for
// memory about to be written all over: one page fault for each would cost
// more (much more on some virtual machines). It is only a hint: memory
// that cannot be had now is asked for again as it is touched.
func populate[T any](s []T) {
	if len(s) == 0 {
		return
	}
	b := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s)*int(unsafe.Sizeof(s[0])))
	unix.Madvise(b, unix.MADV_POPULATE_WRITE)
}
