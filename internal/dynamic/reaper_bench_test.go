package dynamic

import (
	"context"
	"flag"
	"fmt"
	"sync"
	"testing"
	"time"
)

// reaperBenchLeases is how many leases BenchmarkReaper10k creates; the
// issue's target is 10,000 revoked within 60 s. Smaller values are for
// trying the benchmark out.
var reaperBenchLeases = flag.Int("reaper-leases", 10_000, "leases BenchmarkReaper10k creates and reaps")

// timedEngine is a real engine that records how long its Revoke calls
// take: busy is the wall time during which at least one was in flight
// (the database's share of a pass, as seen from sigil), calls their sum.
type timedEngine struct {
	Engine
	mu       sync.Mutex
	inFlight int
	since    time.Time
	busy     time.Duration
	calls    time.Duration
}

func (e *timedEngine) Revoke(ctx context.Context, username string) error {
	start := time.Now()
	e.mu.Lock()
	if e.inFlight == 0 {
		e.since = start
	}
	e.inFlight++
	e.mu.Unlock()
	err := e.Engine.Revoke(ctx, username)
	end := time.Now()
	e.mu.Lock()
	e.inFlight--
	e.calls += end.Sub(start)
	if e.inFlight == 0 {
		e.busy += end.Sub(e.since)
	}
	e.mu.Unlock()
	return err
}

func (e *timedEngine) reset() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.busy, e.calls = 0, 0
}

// BenchmarkReaper10k creates 10,000 (-reaper-leases) real PostgreSQL users
// as active leases through Leases.Issue, lets them expire on a fake clock,
// and times one Reaper.Pass that revokes them all, for reaper concurrency
// 1 and the default (8). Creating the users is not timed (about a minute per
// sub-benchmark); run it with -benchtime=1x:
//
//	go test -run '^$' -bench BenchmarkReaper10k -benchtime=1x -timeout 30m ./internal/dynamic/
//
// It reports s/pass (the issue's target is at most 60), leases/s, and
// db-s/pass: the wall time during which at least one PostgreSQL
// revocation was in flight, the database's share of the pass.
func BenchmarkReaper10k(b *testing.B) {
	ctx := context.Background()
	for _, workers := range []int{1, defaultConcurrency} {
		b.Run(fmt.Sprintf("concurrency=%d", workers), func(b *testing.B) {
			// A server of its own: the catalog bloat of 10,000 dropped
			// roles would slow whichever sub-benchmark came second.
			e := newEnv(b)
			eng := &timedEngine{Engine: e.engine(b, PostgresConfig{})}
			clock := newFakeClock()
			l, err := NewLeases(Options{Store: openStore(b), Roles: RoleMap{"bench": {Engine: eng, TTL: time.Hour}}, Now: clock.Now})
			if err != nil {
				b.Fatal(err)
			}
			r, err := NewReaper(ReaperOptions{Leases: l, ID: "bench", Interval: time.Second, LockTTL: 10 * time.Minute, Concurrency: workers})
			if err != nil {
				b.Fatal(err)
			}
			n := *reaperBenchLeases
			var total, busy time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				issueConcurrently(b, l, "bench", n)
				clock.Advance(time.Hour)
				eng.reset()
				b.StartTimer()
				start := time.Now()
				res, err := r.Pass(ctx)
				total += time.Since(start)
				if err != nil || res.Revoked != n || res.Failed != 0 {
					b.Fatalf("pass = %+v, %v; want %d revoked", res, err, n)
				}
				busy += eng.busy
			}
			b.StopTimer()
			if left := e.dynamicRoles(b, "v_bench"); len(left) != 0 {
				b.Fatalf("%d users left after the pass", len(left))
			}
			passes := float64(b.N)
			b.ReportMetric(total.Seconds()/passes, "s/pass")
			b.ReportMetric(float64(n)*passes/total.Seconds(), "leases/s")
			b.ReportMetric(busy.Seconds()/passes, "db-s/pass")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// issueConcurrently issues n leases of secret with eight concurrent
// callers (the default creation statements touch no shared object, so
// PostgreSQL takes them in parallel).
func issueConcurrently(b *testing.B, l *Leases, secret string, n int) {
	b.Helper()
	ctx := context.Background()
	next := make(chan struct{})
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range next {
				if _, _, err := l.Issue(ctx, secret, ""); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	var err error
feed:
	for range n {
		select {
		case next <- struct{}{}:
		case err = <-errs:
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	if err != nil {
		b.Fatalf("issuing leases: %v", err)
	}
}
