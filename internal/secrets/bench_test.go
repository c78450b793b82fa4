package secrets

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Benchmarks run over the real bolt store (fsync on every commit), with the
// root principal and iam.RootOnly. Rerun with:
//
//	go test -run '^$' -bench . -benchtime 2s ./internal/secrets/

func BenchmarkGetSecretValue(b *testing.B) {
	e := newEnv(b)
	arn := e.create("bench/db", `{"username":"app","password":"0123456789abcdef"}`)
	e.value(arn)
	call := &Call{Operation: "GetSecretValue", Body: []byte(`{"SecretId":"bench/db"}`), Principal: rootPrincipal}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.svc.Handle(ctx, call); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPutSecretValue(b *testing.B) {
	e := newEnv(b)
	e.create("bench/rotating", "v0")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		// A day per put: the secret settles at 100 versions, pruning one
		// on every put.
		e.clock.Advance(25 * time.Hour)
		call := &Call{Operation: "PutSecretValue", Body: []byte(`{"SecretId":"bench/rotating","SecretString":"next"}`), Principal: rootPrincipal}
		if _, err := e.svc.Handle(ctx, call); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkListSecretsPage(b *testing.B) {
	e := newEnv(b)
	for i := range 1000 {
		e.create(fmt.Sprintf("bench/%04d", i), "v")
	}
	call := &Call{Operation: "ListSecrets", Body: []byte(`{"MaxResults":100}`), Principal: rootPrincipal}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.svc.Handle(ctx, call); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetRandomPassword(b *testing.B) {
	e := newEnv(b)
	call := &Call{Operation: "GetRandomPassword", Body: []byte(`{}`), Principal: rootPrincipal}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.svc.Handle(ctx, call); err != nil {
			b.Fatal(err)
		}
	}
}
