package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// stopWithGoRun makes a tracker started by `go run` stop when go run does.
// go run ignores SIGINT (Ctrl-C reaches the whole process group, so the
// tracker stops anyway) but dies of SIGTERM, which would leave the tracker
// running, orphaned, with its ports taken. Only a binary that go run built
// (in a go-build directory) asks the kernel for SIGTERM at its parent's
// death: an installed trakx must outlive the shell that started it.
func stopWithGoRun() {
	exe, err := os.Executable()
	if err != nil || !strings.Contains(exe, string(filepath.Separator)+"go-build") {
		return
	}
	unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGTERM), 0, 0, 0)
	if os.Getppid() == 1 { // go run died before the request took
		syscall.Kill(os.Getpid(), syscall.SIGTERM)
	}
}
