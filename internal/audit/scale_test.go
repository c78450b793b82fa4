package audit

import (
	"testing"
	"time"
)

// writeFastLog writes n events through the real writer (chain, group
// commit, checkpoints, rotation, fsync) but skips per-event encoding:
// every record carries the same pre-encoded body, queued straight to the
// writer. It keeps generating a large log cheap.
func writeFastLog(tb testing.TB, dir string, keys *Keys, n int) {
	tb.Helper()
	l := openLog(tb, dir, Options{Keys: keys, Mode: ModeAsync, QueueSize: 1 << 15, MaxBatch: 1 << 15})
	ev := &Event{
		Time:      time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		RequestID: "0e4f3c2a-1b2c-4d5e-8f90-a1b2c3d4e5f6",
		SourceIP:  "10.0.0.7",
		UserAgent: "aws-sdk-go-v2/1.30",
		Principal: testPrincipal,
		Source:    "secretsmanager.amazonaws.com",
		Action:    "GetSecretValue",
		Resources: []string{"arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"},
		Allowed:   true,
		Reason:    "allow",
		ReadOnly:  true,
	}
	body, err := l.enc.encodeEvent(ev)
	if err != nil {
		tb.Fatal(err)
	}
	for range n {
		l.q <- &entry{body: body}
	}
	if err := l.Close(); err != nil {
		tb.Fatal(err)
	}
}

// TestVerifyMillionRecordLog writes a clean log of cleanLogRecords records
// (1,000,000 without -race) and verifies it.
func TestVerifyMillionRecordLog(t *testing.T) {
	dir := t.TempDir()
	keys := testKeys(t)
	start := time.Now()
	writeFastLog(t, dir, keys, cleanLogRecords)
	wrote := time.Since(start)
	start = time.Now()
	rep := mustVerify(t, dir, keys, true)
	took := time.Since(start)
	if !rep.OK() || rep.Records != cleanLogRecords || !rep.Sealed {
		t.Fatalf("report %+v, problem %v", rep, rep.Problem)
	}
	if rep.Checkpoints < cleanLogRecords/1000 {
		t.Fatalf("%d checkpoints for %d records", rep.Checkpoints, cleanLogRecords)
	}
	t.Logf("%d records in %d segments: written in %v, verified in %v (%.0f records/s)",
		rep.Records, rep.Segments, wrote, took, float64(rep.Records)/took.Seconds())
}

// BenchmarkVerify verifies a 100,000-record log per iteration and reports
// records/s.
func BenchmarkVerify(b *testing.B) {
	dir := b.TempDir()
	keys := testKeys(b)
	const n = 100_000
	writeFastLog(b, dir, keys, n)
	b.ResetTimer()
	for b.Loop() {
		rep, err := Verify(dir, VerifyOptions{PublicKey: keys.Public()})
		if err != nil || !rep.OK() || rep.Records != n {
			b.Fatalf("verify: %v %+v", err, rep)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
