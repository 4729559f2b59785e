package offheap

import (
	"errors"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// rec is shaped like an IPv6 peer record: 20 bytes, 2-byte aligned.
type rec struct {
	_    [16]byte
	b, c uint16
}

// TestMakeResizeFree checks the contract on both sides of the page
// threshold: zeroed memory, contents kept across a resize, zero after.
func TestMakeResizeFree(t *testing.T) {
	for _, n := range []int{1, 100, 204, 205, 5000, 100_000} {
		s := mustMake[rec](t, n)
		if len(s) != n || cap(s) != n {
			t.Fatalf("Make(%d): len %d cap %d", n, len(s), cap(s))
		}
		for i := range s {
			if s[i] != (rec{}) {
				t.Fatalf("Make(%d): element %d not zero", n, i)
			}
			s[i] = rec{b: uint16(i), c: 7}
		}
		for _, m := range []int{n * 3, n / 2, n} {
			old := min(len(s), m)
			var err error
			if s, err = Resize(s, m); err != nil {
				t.Fatal(err)
			}
			for i := range s {
				want := rec{}
				if i < old {
					want = rec{b: uint16(i), c: 7}
				}
				if s[i] != want {
					t.Fatalf("Resize(%d -> %d): element %d is %+v", n, m, i, s[i])
				}
			}
		}
		Release(s, n/3)
		for i := range s {
			if (i < n/3) != (s[i] != rec{}) {
				t.Fatalf("Release(%d of %d): element %d is %+v", n/3, n, i, s[i])
			}
		}
		Free(s)
	}
}

// TestFreeReturnsMemory checks the reason the package exists: freed
// memory leaves the process's resident set at once.
func TestFreeReturnsMemory(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("resident memory is read from /proc")
	}
	before := rssKB(t)
	s := mustMake[uint64](t, 64<<20/8) // 64 MiB
	for i := range s {
		s[i] = uint64(i)
	}
	if grown := rssKB(t) - before; grown < 60<<10 {
		t.Fatalf("64 MiB written, resident set grew by %d KiB", grown)
	}
	Release(s, len(s)/2)
	if s[len(s)/2-1] != uint64(len(s)/2-1) || s[len(s)-1] != 0 {
		t.Fatal("Release changed what it should keep, or kept what it should drop")
	}
	Free(s)
	if after := rssKB(t) - before; after > 8<<10 {
		t.Fatalf("after Free the resident set is still %d KiB above where it started", after)
	}
}

func mustMake[T any](t *testing.T, n int) []T {
	t.Helper()
	s, err := Make[T](n)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRefusalIsAnError checks that memory the kernel will not give is an
// error that leaves the slice being resized as it was, never a crash:
// 64 TiB is past any machine's RAM and swap, which the kernel's default
// overcommit heuristic refuses.
func TestRefusalIsAnError(t *testing.T) {
	if b, err := os.ReadFile("/proc/sys/vm/overcommit_memory"); err != nil || strings.TrimSpace(string(b)) == "1" {
		t.Skip("the kernel grants any mapping here (vm.overcommit_memory = 1), or this is not Linux")
	}
	const huge = 64 << 40
	if s, err := Make[byte](huge); !errors.Is(err, ErrNoMemory) || s != nil {
		t.Fatalf("Make(64 TiB): %v, %d bytes", err, len(s))
	}
	for _, n := range []int{100, 100_000} { // from the heap and mapped
		s := mustMake[uint64](t, n)
		s[n-1] = 42
		got, err := Resize(s, huge/8)
		if !errors.Is(err, ErrNoMemory) || len(got) != n || got[n-1] != 42 {
			t.Fatalf("Resize(%d -> 64 TiB): %v, len %d", n, err, len(got))
		}
		Free(got)
	}
	if _, err := Make[uint64](-1); !errors.Is(err, ErrNoMemory) {
		t.Fatalf("Make(-1): %v", err)
	}
}

// TestInjectedFaults checks the test hook: refused sizes fail, the rest
// succeed, and undo restores the kernel's word.
func TestInjectedFaults(t *testing.T) {
	undo := InjectFaults(func(bytes int) bool { return bytes > 1000 })
	if _, err := Make[byte](1001); !errors.Is(err, ErrNoMemory) {
		t.Fatalf("Make(1001) under a fault: %v", err)
	}
	s := mustMake[byte](t, 1000)
	if got, err := Resize(s, 5000); !errors.Is(err, ErrNoMemory) || len(got) != 1000 {
		t.Fatalf("Resize(1000 -> 5000) under a fault: %v, len %d", err, len(got))
	}
	if got, err := Resize(s, 10); err != nil || len(got) != 10 { // shrinking is never refused
		t.Fatalf("Resize(1000 -> 10) under a fault: %v, len %d", err, len(got))
	} else {
		s = got
	}
	undo()
	Free(s)
	Free(mustMake[byte](t, 1<<20))
}

func rssKB(t *testing.T) int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}
