//go:build linux

package database

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// hugePages asks for s to be backed by huge pages, where the kernel has
// them for the asking (transparent_hugepage "madvise" or "always"): a file
// read into memory whole is written once, sequentially, and one page
// fault per 4 KiB of it costs more than the read (far more on some
// virtual machines). It is only a hint.
func hugePages[T any](s []T) {
	if len(s) == 0 {
		return
	}
	unix.Madvise(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s)*int(unsafe.Sizeof(s[0]))), unix.MADV_HUGEPAGE)
}
