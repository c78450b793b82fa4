package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"sigil.dev/sigil/internal/server"
	"sigil.dev/sigil/internal/testutil/testserver"
)

// BenchmarkGetSecretValueHandler measures the server side of one signed
// GetSecretValue (SigV4 verification, authorization, two store reads and
// barrier opens, JSON) through the full handler, without the network.
func BenchmarkGetSecretValueHandler(b *testing.B) {
	srv := testserver.StartServer(b, func(c *server.Config, o *server.Options) {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
	})
	ctx := context.Background()
	sm := secretsmanager.NewFromConfig(srv.AWSConfig())
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("bench/db"), SecretString: aws.String(strings.Repeat("s", 200))}); err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"SecretId":"bench/db"}`)
	req, _ := http.NewRequest("POST", srv.URL()+"/", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "secretsmanager.GetSecretValue")
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, aws.Credentials{AccessKeyID: srv.AccessKeyID, SecretAccessKey: srv.SecretAccessKey},
		req, hex.EncodeToString(sum[:]), "secretsmanager", "us-east-1", time.Now()); err != nil {
		b.Fatal(err)
	}
	req.RequestURI = "/"
	h := srv.Handler()
	b.ReportAllocs()
	// Many requests in flight, as under real load, so the audit log's
	// group commit can share one fsync among them.
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := req.Clone(ctx)
		for pb.Next() {
			r.Body = io.NopCloser(bytes.NewReader(body))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != 200 {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
		}
	})
}

// BenchmarkBareHandler is the baseline for BenchmarkGetSecretValueHandler:
// a net/http handler writing a fixed 200-byte JSON body, driven the same
// way, so the two can be compared within one run.
func BenchmarkBareHandler(b *testing.B) {
	body := []byte(`{"ARN":"arn:aws:secretsmanager:us-east-1:000000000000:secret:bench-AbCdEf","Name":"bench","SecretString":"` + strings.Repeat("x", 200-107) + `"}`)
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	req := httptest.NewRequest("POST", "/", nil)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
		}
	})
}
