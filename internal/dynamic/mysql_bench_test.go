package dynamic

import (
	"context"
	"testing"
	"time"
)

// BenchmarkMySQLEngineCreateRevoke measures creating and revoking a MariaDB
// user with the default statements (CREATE USER and its expiry event; lock,
// kill, DROP USER and DROP EVENT), without leases. It reports users/s.
func BenchmarkMySQLEngineCreateRevoke(b *testing.B) {
	e := newMySQLEnv(b)
	ctx := context.Background()
	eng := e.engine(b, MySQLConfig{})
	start := time.Now()
	for b.Loop() {
		u, err := eng.Username("bench")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := eng.Create(ctx, Creation{Username: u, Expires: time.Now().Add(time.Hour)}); err != nil {
			b.Fatal(err)
		}
		if err := eng.Revoke(ctx, u); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "users/s")
}

// BenchmarkMySQLIssueRevoke measures issuing a lease-bound MariaDB user and
// revoking it again, end to end through Leases and a bolt store, as
// BenchmarkIssueRevoke does for PostgreSQL. It reports users/s.
func BenchmarkMySQLIssueRevoke(b *testing.B) {
	e := newMySQLEnv(b)
	ctx := context.Background()
	eng := e.engine(b, MySQLConfig{})
	l, err := NewLeases(Options{Store: e.st, Roles: RoleMap{"bench": {Engine: eng, TTL: time.Hour}}})
	if err != nil {
		b.Fatal(err)
	}
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
