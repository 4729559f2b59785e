package trackertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// Tests that need something outside Go and the README's prerequisites
// (Go, make, git, gcc) — a real BitTorrent client, promtool, a Python
// module, Node.js, systemd's tools, a pseudo-terminal — check for the exact
// thing they use with the helpers below before using it. When it is
// missing, the test skips with a message naming it and the Debian package
// that brings it, so that `make test` passes on a fresh machine. With
// TRAKX_REQUIRE_CLIENTS set, as .ci/run sets it after installing them all,
// the test fails instead: CI never passes by skipping.

// RequireEnv is the environment variable that turns a missing tool from a
// skip into a failure.
const RequireEnv = "TRAKX_REQUIRE_CLIENTS"

// Python is the interpreter the tests run: Debian's, which is the one
// Debian's python3-* packages install modules for.
const Python = "/usr/bin/python3"

// Unavailable skips t because what is missing (err says how it was found
// missing), or fails t when RequireEnv is set.
func Unavailable(t testing.TB, what string, err error) {
	t.Helper()
	if os.Getenv(RequireEnv) != "" {
		t.Fatalf("%s is missing, and %s is set: %v", what, RequireEnv, err)
	}
	t.Skipf("%s is missing (%v); %s=1 makes this a failure", what, err, RequireEnv)
}

// NeedCommand returns the path of the program name, found in PATH, or
// skips t (see Unavailable). pkg is the Debian package that installs it.
func NeedCommand(t testing.TB, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		Unavailable(t, fmt.Sprintf("%s (Debian package %s)", name, pkg), err)
	}
	return path
}

// NeedPython returns Python when it can import module, or skips t (see
// Unavailable): the interpreter alone is not enough. pkg is the Debian
// package that installs the module.
func NeedPython(t testing.TB, module, pkg string) string {
	t.Helper()
	if err := pythonImports(module); err != nil {
		Unavailable(t, fmt.Sprintf("the Python module %s for %s (Debian package %s)", module, Python, pkg), err)
	}
	return Python
}

// NeedFile skips t (see Unavailable) unless path exists; what says what
// it is and how to get it.
func NeedFile(t testing.TB, path, what string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		Unavailable(t, what, err)
	}
}

// Imports already tried, by module name: a package's tests ask once.
var imports sync.Map // module -> func() error

func pythonImports(module string) error {
	try, _ := imports.LoadOrStore(module, sync.OnceValue(func() error {
		if _, err := os.Stat(Python); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, Python, "-c", "import "+module).CombinedOutput()
		if err == nil {
			return nil
		}
		// The last line of the traceback says why, e.g.
		// "ModuleNotFoundError: No module named 'prometheus_client'".
		lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
		if last := bytes.TrimSpace(lines[len(lines)-1]); len(last) > 0 {
			return errors.New(string(last))
		}
		return err
	}))
	return try.(func() error)()
}

// WaitFor waits up to 10 s for cond, checking every millisecond, and fails
// the test naming what it waited for.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
	}
}

// OpenDescriptors counts the process's open descriptors (skipping the test
// where /proc is not there to count them).
func OpenDescriptors(t testing.TB) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(entries)
}
