package audit

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// BenchmarkRecordSync measures sync-mode Record from 64 goroutines per
// core, each waiting for its fsync: group commit shares one fsync among
// the records queued meanwhile. It reports records/s and records per
// fsync.
func BenchmarkRecordSync(b *testing.B) {
	benchmarkRecord(b, ModeSync, 64)
}

// BenchmarkRecordAsync measures async-mode Record, which returns once the
// record is queued, from one goroutine per core (async callers never
// block, so more would only starve the writer); dropped/op is the share
// lost to a full queue.
func BenchmarkRecordAsync(b *testing.B) {
	benchmarkRecord(b, ModeAsync, 1)
}

func benchmarkRecord(b *testing.B, mode Mode, parallelism int) {
	ffs := &faultyFS{}
	l := openLog(b, b.TempDir(), Options{Mode: mode, OpenFile: ffs.open, QueueSize: 1 << 16})
	ev := sampleEvent(1)
	before := ffs.Syncs()
	b.SetParallelism(parallelism)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := l.Record(context.Background(), ev); err != nil {
				b.Error(err)
				return
			}
		}
	})
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	syncs := ffs.Syncs() - before
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	if syncs > 0 {
		b.ReportMetric(float64(b.N)/float64(syncs), "records/fsync")
	}
	// Async producers can outrun the disk; what they lose is counted.
	b.ReportMetric(testutilDropped(l)/float64(b.N), "dropped/op")
}

func testutilDropped(l *Log) float64 {
	return testutil.ToFloat64(l.m.dropped.WithLabelValues("queue_full")) + testutil.ToFloat64(l.m.dropped.WithLabelValues("unavailable"))
}

// BenchmarkEncodeGetSecretValue measures what a request pays to turn a
// GetSecretValue event into a record body before it queues it: the
// redaction of both payloads (with the HMAC of a 200-byte SecretString)
// and the encoding of the record, with no I/O.
func BenchmarkEncodeGetSecretValue(b *testing.B) {
	keys := testKeys(b)
	e := &encoder{hmacKey: keys.HMAC, region: "us-east-1", accountID: "123456789012", now: time.Now,
		uuid: func() (string, error) { return newUUID(rand.Reader) }}
	ev := sampleEvent(1)
	ev.Time = time.Time{}
	ev.RequestParameters = json.RawMessage(`{"SecretId":"bench/database-credentials"}`)
	ev.ResponseElements = json.RawMessage(`{"ARN":"arn:aws:secretsmanager:us-east-1:123456789012:secret:bench/database-credentials-Sa5LXe",` +
		`"Name":"bench/database-credentials","VersionId":"35ec9274-ea42-4526-b95b-38c6e1d8f900",` +
		`"SecretString":"` + strings.Repeat("s", 200) + `","VersionStages":["AWSCURRENT"],"CreatedDate":1796410049.033}`)
	ev.ReturnsSecret = true
	var buf recordBuf
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.encodeInto(&buf, ev); err != nil {
			b.Fatal(err)
		}
	}
}
