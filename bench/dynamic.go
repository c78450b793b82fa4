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
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"sigil.dev/sigil/internal/dynamic"
	"sigil.dev/sigil/internal/server"
	"sigil.dev/sigil/internal/testutil"
)

// benchDynamicName is the dynamic secret sigil-get-dynamic reads.
const benchDynamicName = "bench/dynamic-database-credentials"

// dynamicScenario is sigil serving GetSecretValue of a dynamic PostgreSQL
// secret to one session (the root key): the first read issues a database
// user, and every later one is answered from that session's lease, the
// path the issue wants at static-secret speed. Its set-up starts a
// throwaway PostgreSQL, so it runs only when named.
func dynamicScenario() scenario {
	return slowSetup(scenario{
		name:  "sigil-get-dynamic",
		about: "sigil GetSecretValue of a dynamic PostgreSQL secret, the session's cached lease, root key, sync audit (starts PostgreSQL 15)",
		serve: serveSigilDynamic,
		prepare: func(addr string, info map[string]string) (*request, error) {
			return prepareGet(addr, info, benchDynamicName, checkDynamicCredential)
		},
	}, 2*time.Minute)
}

// serveSigilDynamic starts PostgreSQL and a sigil server, registers the
// database and a dynamic secret through the native API as root, and serves
// until ctx ends. The harness's probe request issues the session's user;
// the warmup and the measured load read it back from the lease.
func serveSigilDynamic(ctx context.Context, ln net.Listener, ready func(map[string]string)) error {
	pg, err := testutil.LaunchPostgres(ctx)
	if err != nil {
		return fmt.Errorf("this scenario needs PostgreSQL 15: %w", err)
	}
	defer pg.Close()
	dir, err := os.MkdirTemp("", "sigil-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg := server.Config{Listen: ln.Addr().String(), DataDir: filepath.Join(dir, "data")}
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := server.New(ctx, cfg, server.Options{Logger: log})
	if err != nil {
		return err
	}
	if err := srv.StartOn(ln); err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	id, secret := readRootCredentials(filepath.Join(cfg.DataDir, server.RootCredentialsFile))
	root := aws.Credentials{AccessKeyID: id, SecretAccessKey: secret}
	native := func(path string, in any) error {
		return callNative(ctx, srv.URL()+path, cfg.Region, root, in)
	}
	if err := native("/v1/databases/put", server.DatabaseRequest{Database: dynamic.Database{
		Name: "bench", Engine: dynamic.EnginePostgres, Host: pg.Host, Port: pg.Port, DBName: pg.Database,
		Username: pg.User, Password: pg.Password, TLS: dynamic.TLS{Mode: dynamic.TLSDisable},
	}, Verify: true}); err != nil {
		return fmt.Errorf("registering the database: %w", err)
	}
	if err := native("/v1/dynamic-secrets/put", server.DynamicSecretRequest{
		Name: benchDynamicName, Database: "bench", DefaultTTL: "1h",
	}); err != nil {
		return fmt.Errorf("creating the dynamic secret: %w", err)
	}
	ready(map[string]string{"id": id, "secret": secret, "region": cfg.Region})
	<-ctx.Done()
	return nil
}

// callNative POSTs in as JSON to the native API at url, signed with creds,
// and fails unless the answer is 200.
func callNative(ctx context.Context, url, region string, creds aws.Credentials, in any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "sigil", region, time.Now()); err != nil {
		return fmt.Errorf("signing: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", url, resp.Status, strings.TrimSpace(string(b)))
	}
	return nil
}

// prepareGet signs one GetSecretValue request of secret, like
// prepareGetSecretValue, with check applied to the probe's answer.
func prepareGet(addr string, info map[string]string, secret string, check func(secret string, body []byte) error) (*request, error) {
	body := []byte(`{"SecretId":"` + secret + `"}`)
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "secretsmanager.GetSecretValue")
	req.Header.Set("User-Agent", "sigil-bench")
	sum := sha256.Sum256(body)
	req.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
	creds := aws.Credentials{AccessKeyID: info["id"], SecretAccessKey: info["secret"], SessionToken: info["token"]}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "secretsmanager", info["region"], time.Now()); err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	raw, err := encodeRequest(req)
	if err != nil {
		return nil, err
	}
	return &request{raw: raw, check: func(got []byte) error { return check(secret, got) }}, nil
}

// checkDynamicCredential accepts a GetSecretValue answer whose
// SecretString is an issued PostgreSQL credential.
func checkDynamicCredential(secret string, got []byte) error {
	var out struct{ Name, SecretString string }
	if err := json.Unmarshal(got, &out); err != nil {
		return fmt.Errorf("response is not JSON: %w", err)
	}
	var cred server.DynamicCredential
	if err := json.Unmarshal([]byte(out.SecretString), &cred); err != nil {
		return fmt.Errorf("SecretString of %q is not a credential: %w", out.Name, err)
	}
	if out.Name != secret || cred.Engine != "postgres" || cred.Username == "" || cred.Password == "" {
		return fmt.Errorf("unexpected GetSecretValue response for %q (engine %q, user %q)", out.Name, cred.Engine, cred.Username)
	}
	return nil
}
