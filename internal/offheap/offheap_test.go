package offheap

import (
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
		s := Make[rec](n)
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
			s = Resize(s, m)
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
	s := Make[uint64](64 << 20 / 8) // 64 MiB
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
