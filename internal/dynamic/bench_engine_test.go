package dynamic

import (
	"context"
	"testing"
	"time"
)

// BenchmarkEngineCreateRevoke measures the database's share of
// BenchmarkIssueRevoke: creating and revoking a PostgreSQL user without
// leases.
func BenchmarkEngineCreateRevoke(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	eng := e.engine(b, PostgresConfig{})
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
