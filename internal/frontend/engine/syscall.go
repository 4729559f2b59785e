package engine

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Read and Write are read(2) and write(2) on a non-blocking descriptor,
// made as raw system calls: they never block, so the loop need not tell
// the scheduler it is entering a system call, and the scheduler does not
// hand the loop's processor to another thread each time one takes a few
// microseconds (a write on loopback does the receiver's work too). Errors
// are unix.Errno values, EAGAIN among them.
func Read(fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, errno := syscall.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if errno != 0 {
		return -1, errno
	}
	return int(n), nil
}

// Write: see Read.
func Write(fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, errno := syscall.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if errno != 0 {
		return -1, errno
	}
	return int(n), nil
}
