package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"sigil.dev/sigil/internal/server"
)

// benchSecretName is the secret every sigil scenario reads.
const benchSecretName = "bench/database-credentials"

// sigilGetScenario is sigil serving GetSecretValue of a 200-byte secret to
// the root key, with full SigV4 verification of every request. extra
// secrets are stored beside it first (for the RSS-with-many-secrets
// figure).
func sigilGetScenario(name string, extra int) scenario {
	about := "sigil GetSecretValue of a 200-byte secret, root key, full SigV4 check"
	if extra > 0 {
		about += fmt.Sprintf(", with %d other secrets stored", extra)
	}
	return scenario{
		name:  name,
		about: about,
		serve: func(ctx context.Context, ln net.Listener, ready func(map[string]string)) error {
			return serveSigil(ctx, ln, extra, ready)
		},
		prepare: prepareGetSecretValue,
	}
}

func serveSigil(ctx context.Context, ln net.Listener, extra int, ready func(map[string]string)) error {
	dir, err := os.MkdirTemp("", "sigil-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg := server.Config{Listen: ln.Addr().String(), DataDir: filepath.Join(dir, "data")}
	if err := cfg.Validate(); err != nil {
		return err
	}
	// Access logs are info; the benchmark measures the server, not its
	// log volume.
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := server.New(ctx, cfg, server.Options{Logger: log})
	if err != nil {
		return err
	}
	if err := srv.StartOn(ln); err != nil {
		return err
	}
	id, secret := readRootCredentials(filepath.Join(cfg.DataDir, server.RootCredentialsFile))
	sm := secretsmanager.NewFromConfig(aws.Config{
		Region:      cfg.Region,
		Credentials: credentials.NewStaticCredentialsProvider(id, secret, ""),
	}, func(o *secretsmanager.Options) { o.BaseEndpoint = aws.String(srv.URL()) })
	if err := preload(ctx, sm, extra); err != nil {
		return err
	}
	value := strings.Repeat("s", 200)
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(benchSecretName), SecretString: aws.String(value)}); err != nil {
		return fmt.Errorf("creating the bench secret: %w", err)
	}
	ready(map[string]string{"id": id, "secret": secret, "region": cfg.Region})
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// preload creates n secrets with 16 concurrent writers.
func preload(ctx context.Context, sm *secretsmanager.Client, n int) error {
	if n == 0 {
		return nil
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	next := make(chan int)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				name := "preload/app-" + strconv.Itoa(i)
				if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: &name, SecretString: aws.String(strings.Repeat("p", 200))}); err != nil {
					errs <- fmt.Errorf("preloading %s: %w", name, err)
					return
				}
			}
		}()
	}
	var err error
feed:
	for i := 0; i < n; i++ {
		select {
		case next <- i:
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
	return err
}

func readRootCredentials(path string) (id, secret string) {
	b, _ := os.ReadFile(path)
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "aws_access_key_id":
			id = strings.TrimSpace(v)
		case "aws_secret_access_key":
			secret = strings.TrimSpace(v)
		}
	}
	return id, secret
}

// prepareGetSecretValue signs one GetSecretValue request with the
// aws-sdk-go-v2 signer. The server verifies the signature in full on every
// replay; the signing time bounds the run to the 5-minute skew window.
func prepareGetSecretValue(addr string, info map[string]string) (*request, error) {
	body := []byte(`{"SecretId":"` + benchSecretName + `"}`)
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "secretsmanager.GetSecretValue")
	req.Header.Set("User-Agent", "sigil-bench")
	sum := sha256.Sum256(body)
	req.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
	creds := aws.Credentials{AccessKeyID: info["id"], SecretAccessKey: info["secret"]}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "secretsmanager", info["region"], time.Now()); err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	raw, err := encodeRequest(req)
	if err != nil {
		return nil, err
	}
	check := func(got []byte) error {
		var out struct{ Name, SecretString string }
		if err := json.Unmarshal(got, &out); err != nil {
			return fmt.Errorf("response is not JSON: %w", err)
		}
		if out.Name != benchSecretName || len(out.SecretString) != 200 {
			return fmt.Errorf("unexpected GetSecretValue response for %q (%d-byte value)", out.Name, len(out.SecretString))
		}
		return nil
	}
	return &request{raw: raw, check: check}, nil
}
