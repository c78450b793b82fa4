package sigv4

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// BenchmarkVerify verifies a typical Secrets Manager GetSecretValue POST: a
// 71-byte JSON body and five signed headers (content-length, content-type,
// host, x-amz-date, x-amz-target), with the signing key cached, as in steady
// state.
func BenchmarkVerify(b *testing.B) {
	signedAt := time.Date(2026, 12, 4, 10, 15, 0, 0, time.UTC)
	r, body := signedGetSecret(b, exampleAWSCreds, signedAt, "us-east-1")
	if got := r.Header.Get("Authorization"); !strings.Contains(got, "SignedHeaders=content-length;content-type;host;x-amz-date;x-amz-target,") {
		b.Fatalf("unexpected signed headers in %q", got)
	}
	v := newTestVerifier(b, Options{Region: "us-east-1", Services: []string{"secretsmanager", "sts", "iam"}, Now: fixedClock(signedAt)})
	ctx := context.Background()
	if _, err := v.Verify(ctx, r, body); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, r, body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyColdKey is BenchmarkVerify with a signing-key cache miss on
// every request, the worst case: three keys take turns through a cache that
// holds two.
func BenchmarkVerifyColdKey(b *testing.B) {
	signedAt := time.Date(2026, 12, 4, 10, 15, 0, 0, time.UTC)
	creds := staticCreds{}
	type req struct {
		r    *http.Request
		body []byte
	}
	var reqs []req
	for i := 0; i < 3; i++ {
		id := "AKIDCOLD" + strconv.Itoa(i)
		creds[id] = "secret" + strconv.Itoa(i)
		r, body := signedGetSecret(b, aws.Credentials{AccessKeyID: id, SecretAccessKey: creds[id]}, signedAt, "us-east-1")
		reqs = append(reqs, req{r, body})
	}
	v := newTestVerifier(b, Options{Region: "us-east-1", Services: []string{"secretsmanager"}, Now: fixedClock(signedAt),
		Credentials: creds, CacheSize: 2})
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		q := reqs[i%3]
		i++
		if _, err := v.Verify(ctx, q.r, q.body); err != nil {
			b.Fatal(err)
		}
	}
}
