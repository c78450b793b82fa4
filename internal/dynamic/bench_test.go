package dynamic

import (
	"context"
	"testing"
	"time"
)

// BenchmarkIssueRevoke measures issuing a lease-bound PostgreSQL user and
// revoking it again, end to end through Leases and a bolt store. It reports
// users/s (the issue's target is at least 100).
func BenchmarkIssueRevoke(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	eng := e.engine(b, PostgresConfig{})
	l, err := NewLeases(Options{Store: e.st, Roles: RoleMap{"bench": {Engine: eng, TTL: time.Hour}}})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		lease, _, err := l.Issue(ctx, "bench", "")
		if err != nil {
			b.Fatal(err)
		}
		if err := l.Revoke(ctx, lease.ID); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "users/s")
}
