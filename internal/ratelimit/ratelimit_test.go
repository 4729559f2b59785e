package ratelimit

import (
	"fmt"
	"math/rand"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

var t0 = time.Unix(1_700_000_000, 0)

func newAt(cfg Config) *Limiter {
	l := New(cfg)
	l.epoch = t0
	return l
}

func addr4(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
}

func TestBurstThenRefill(t *testing.T) {
	l := newAt(Config{Rate: 10, Burst: 5, Tracked: 100})
	a := netip.MustParseAddr("192.0.2.1")
	for i := range 5 {
		if !l.Allow(a, t0) {
			t.Fatalf("request %d of a burst of 5 refused", i+1)
		}
	}
	if l.Allow(a, t0) {
		t.Fatal("the 6th request at the same instant was allowed")
	}
	if l.Allow(a, t0.Add(99*time.Millisecond)) {
		t.Fatal("allowed before a token came back (100 ms at 10/s)")
	}
	if !l.Allow(a, t0.Add(100*time.Millisecond)) {
		t.Fatal("refused once a token came back")
	}
	// Refused requests take nothing: a source that keeps trying is served
	// again as soon as its rate allows.
	for range 1000 {
		l.Allow(a, t0.Add(150*time.Millisecond))
	}
	if !l.Allow(a, t0.Add(200*time.Millisecond)) {
		t.Fatal("refused requests were charged")
	}
	if !l.Allow(netip.MustParseAddr("192.0.2.2"), t0) {
		t.Fatal("another address was refused")
	}
}

// TestAgainstXTimeRate runs one source's random request times through the
// limiter and through golang.org/x/time/rate, an independent token bucket,
// and wants the same decisions.
func TestAgainstXTimeRate(t *testing.T) {
	for _, r := range []float64{0.5, 1, 4, 10, 100, 1000} {
		for _, burst := range []int{1, 3, 20} {
			t.Run(fmt.Sprintf("rate%v_burst%d", r, burst), func(t *testing.T) {
				l := newAt(Config{Rate: r, Burst: burst, Tracked: 16})
				oracle := rate.NewLimiter(rate.Limit(r), burst)
				rng := rand.New(rand.NewSource(int64(r*1000) + int64(burst)))
				now := t0
				a := netip.MustParseAddr("2001:db8::1")
				mean := time.Duration(float64(time.Second) / r)
				allowed := 0
				for i := range 5000 {
					now = now.Add(time.Duration(rng.ExpFloat64()*float64(mean)/2) + time.Duration(rng.Intn(1000)))
					got, want := l.Allow(a, now), oracle.AllowN(now, 1)
					if got != want {
						t.Fatalf("request %d at +%v: limiter says %v, x/time/rate says %v", i, now.Sub(t0), got, want)
					}
					if got {
						allowed++
					}
				}
				if allowed == 0 || allowed == 5000 {
					t.Fatalf("%d of 5000 allowed: the test exercises nothing", allowed)
				}
			})
		}
	}
}

func TestIPv6SharesABudgetPerSlash64(t *testing.T) {
	l := newAt(Config{Rate: 1, Burst: 2, Tracked: 100})
	if !l.Allow(netip.MustParseAddr("2001:db8:1:2::1"), t0) || !l.Allow(netip.MustParseAddr("2001:db8:1:2:ffff::9"), t0) {
		t.Fatal("refused within the burst")
	}
	if l.Allow(netip.MustParseAddr("2001:db8:1:2:aaaa::1"), t0) {
		t.Fatal("a third address of the same /64 was allowed past the /64's burst")
	}
	if !l.Allow(netip.MustParseAddr("2001:db8:1:3::1"), t0) {
		t.Fatal("the next /64 was refused")
	}
	// IPv4 and its mapped form are one source; no IPv6 /64 shares it.
	v4 := netip.MustParseAddr("192.0.2.7")
	l.Allow(v4, t0)
	l.Allow(v4, t0)
	if l.Allow(netip.MustParseAddr("::ffff:192.0.2.7"), t0) {
		t.Fatal("the IPv4-mapped form escaped its address's budget")
	}
	if sourceKey(v4) == sourceKey(netip.MustParseAddr("::1")) || sourceKey(v4)>>32 != 0xffff_ffff {
		t.Fatal("IPv4 keys are not apart from IPv6 ones")
	}
}

func TestTrackedIsABound(t *testing.T) {
	for _, tracked := range []int{1, 3, 8, 100, 1000} {
		l := newAt(Config{Rate: 1, Burst: 1, Tracked: tracked})
		for i := range 10 * tracked {
			l.Allow(addr4(i), t0)
		}
		if n := l.Tracked(); n > tracked || n < tracked*3/4 {
			t.Errorf("tracked_ips %d: %d sources remembered", tracked, n)
		}
	}
}

func TestLeastRecentlySeenIsForgotten(t *testing.T) {
	// With 8 tracked there is one set: eviction is exact LRU.
	l := newAt(Config{Rate: 1, Burst: 1, Tracked: 8})
	old := addr4(1000)
	if !l.Allow(old, t0) || l.Allow(old, t0) {
		t.Fatal("burst of 1 not applied")
	}
	for i := range 7 {
		l.Allow(addr4(i), t0)
	}
	l.Allow(old, t0) // seen again (and refused): now the most recent
	l.Allow(addr4(7), t0)
	if l.Allow(old, t0) {
		t.Fatal("a recently seen source was forgotten")
	}
	for i := 8; i < 16; i++ {
		l.Allow(addr4(i), t0)
	}
	if !l.Allow(old, t0) {
		t.Fatal("the least recently seen source was not forgotten")
	}
}

func TestConfigureKeepsBuckets(t *testing.T) {
	l := newAt(Config{Rate: 1, Burst: 3, Tracked: 1000})
	a := netip.MustParseAddr("198.51.100.1")
	for range 3 {
		l.Allow(a, t0)
	}
	l.Configure(Config{Rate: 2, Burst: 3, Tracked: 1000})
	if l.Allow(a, t0) {
		t.Fatal("a reload refilled an empty bucket")
	}
	l.Configure(Config{Rate: 2, Burst: 3, Tracked: 5000}) // a new table
	if l.Allow(a, t0) {
		t.Fatal("resizing forgot a bucket")
	}
	if !l.Allow(a, t0.Add(500*time.Millisecond)) {
		t.Fatal("the new rate (2/s) was not applied")
	}
	l.Configure(Config{Rate: 0, Burst: 3, Tracked: 5000})
	for range 100 {
		if !l.Allow(a, t0) {
			t.Fatal("rate 0 did not turn the budget off")
		}
	}
	l.Configure(Config{Rate: 2, Burst: 3, Tracked: 5000})
	if l.Allow(a, t0) {
		t.Fatal("turning the budget off and on forgot a bucket")
	}
}

func TestOffAllocatesNothingAndRemembersNothing(t *testing.T) {
	l := New(Config{Rate: 0, Burst: 20, Tracked: 1_000_000})
	if l.table.Load() != nil {
		t.Fatal("a table was made for a budget that is off")
	}
	if !l.Allow(addr4(1), time.Now()) || l.Tracked() != 0 {
		t.Fatal("an off budget refused or remembered")
	}
}

func TestAllowDoesNotAllocate(t *testing.T) {
	l := New(Config{Rate: 1000, Burst: 20, Tracked: 1 << 16})
	v6 := netip.MustParseAddr("2001:db8::1")
	i := 0
	now := time.Now()
	if n := testing.AllocsPerRun(1000, func() {
		i++
		l.Allow(addr4(i), now)
		l.Allow(v6, now)
	}); n != 0 {
		t.Fatalf("Allow allocates %v times per call", n)
	}
}

func TestConcurrentUseKeepsTheBudget(t *testing.T) {
	l := newAt(Config{Rate: 1, Burst: 50, Tracked: 64})
	a := netip.MustParseAddr("203.0.113.9")
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			for i := range 500 {
				if l.Allow(a, t0) {
					n++
				}
				l.Allow(addr4(g*1000+i), t0) // churn through the table
			}
			mu.Lock()
			allowed += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	// Churn may evict the source, which then comes back with a full
	// bucket; without eviction exactly the burst is allowed.
	if allowed < 50 {
		t.Fatalf("%d allowed, fewer than the burst of 50", allowed)
	}
	l2 := newAt(Config{Rate: 1, Burst: 50, Tracked: 64})
	allowed = 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 500 {
				if l2.Allow(a, t0) {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if allowed != 50 {
		t.Fatalf("8 goroutines at one instant got %d requests through a burst of 50", allowed)
	}
}

func BenchmarkAllow(b *testing.B) {
	l := New(Config{Rate: 100, Burst: 20, Tracked: 1_000_000})
	addrs := make([]netip.Addr, 4096)
	for i := range addrs {
		addrs[i] = addr4(i * 7919)
	}
	now := time.Now()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		l.Allow(addrs[i&4095], now)
		i++
	}
}

func BenchmarkAllowParallel(b *testing.B) {
	l := New(Config{Rate: 100, Burst: 20, Tracked: 1_000_000})
	now := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.Int()
		for pb.Next() {
			l.Allow(addr4(i&0xfffff), now)
			i++
		}
	})
}

func BenchmarkAllowOff(b *testing.B) {
	l := New(Config{Rate: 0, Burst: 20, Tracked: 1_000_000})
	now := time.Now()
	a := addr4(1)
	for b.Loop() {
		l.Allow(a, now)
	}
}

// A request that AllowRest charges costs a whole burst: allowed only from
// a full bucket, and refused, it takes nothing more.
func TestAllowRestTakesTheWholeBurst(t *testing.T) {
	l := newAt(Config{Rate: 10, Burst: 5, Tracked: 100})
	a, b := addr4(1), addr4(2)
	if !l.Allow(a, t0) || !l.AllowRest(a, t0) {
		t.Fatal("a full bucket refused a whole burst")
	}
	if l.Allow(a, t0) {
		t.Fatal("a request allowed after a whole burst")
	}
	if !l.Allow(a, t0.Add(100*time.Millisecond)) {
		t.Fatal("no token came back")
	}
	l.Allow(b, t0)
	if !l.Allow(b, t0) || l.AllowRest(b, t0) {
		t.Fatal("a whole burst allowed from a bucket two short of full")
	}
	for i := range 3 { // the refusal took nothing
		if !l.Allow(b, t0) {
			t.Fatalf("request %d refused after a refused whole burst", i+3)
		}
	}
	var off *Limiter
	if !off.AllowRest(a, t0) || !New(Config{}).AllowRest(a, t0) {
		t.Fatal("no budget refused")
	}
}
