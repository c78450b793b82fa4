package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"sigil.dev/sigil/internal/audit"
	"sigil.dev/sigil/internal/testutil"
	"sigil.dev/sigil/internal/testutil/testserver"
)

// buildSigil builds the real binary once per test.
func buildSigil(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sigil")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startSigil starts `sigil server` on a free port with dataDir and waits
// until it is ready.
func startSigil(t *testing.T, bin, dataDir string) (*exec.Cmd, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "server", "--listen", addr, "--data-dir", dataDir, "--log-level", "warn")
	logf, _ := os.Create(filepath.Join(t.TempDir(), "server.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	url := "http://" + addr
	testutil.WaitFor(t, 20*time.Second, func() bool {
		resp, err := http.Get(url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return cmd, url
}

// TestCrashKeepsEveryAcknowledgedAuditRecord kills a loaded server with
// SIGKILL and checks that every secret read a client saw succeed has its
// audit record, that the log verifies (a torn tail at most), and that the
// chain continues across the restart.
func TestCrashKeepsEveryAcknowledgedAuditRecord(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the binary")
	}
	bin := buildSigil(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	cmd, url := startSigil(t, bin, dataDir)
	id, secret := testserver.ReadCredentials(t, filepath.Join(dataDir, "root.credentials"))
	sm := secretsmanager.NewFromConfig(testserver.AWSConfigFor(url, "us-east-1", id, secret, ""))
	ctx := context.Background()
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("crash/db"), SecretString: aws.String("v")}); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var acked []string // request ids of reads the client saw succeed
	stopLoad := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100000; i++ {
				select {
				case <-stopLoad:
					return
				default:
				}
				out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("crash/db")})
				if err != nil {
					continue // the server is gone
				}
				if rid, ok := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata); ok {
					mu.Lock()
					acked = append(acked, rid)
					mu.Unlock()
				}
			}
		}()
	}
	testutil.WaitFor(t, 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 300
	})
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	close(stopLoad)
	wg.Wait()

	auditDir := filepath.Join(dataDir, "audit")
	if out, err := exec.Command(bin, "audit", "verify", auditDir).CombinedOutput(); err != nil {
		t.Fatalf("verify after kill -9: %v\n%s", err, out)
	}
	seen := map[string]bool{}
	if err := audit.Query(auditDir, audit.Filter{}, func(r audit.Record) error {
		if r.EventName == "GetSecretValue" && r.ErrorCode == "" {
			seen[r.RequestID] = true
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	missing := 0
	for _, rid := range acked {
		if !seen[rid] {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged secret reads have no audit record", missing, len(acked))
	}

	// The restarted server continues the chain, and the whole log verifies.
	cmd2, url2 := startSigil(t, bin, dataDir)
	sm2 := secretsmanager.NewFromConfig(testserver.AWSConfigFor(url2, "us-east-1", id, secret, ""))
	if _, err := sm2.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("crash/db")}); err != nil {
		t.Fatal(err)
	}
	cmd2.Process.Signal(os.Interrupt)
	cmd2.Wait()
	out, err := exec.Command(bin, "audit", "verify", auditDir).CombinedOutput()
	if err != nil {
		t.Fatalf("verify across the restart: %v\n%s", err, out)
	}
	if !strings.Contains(strings.ToLower(string(out)), "ok") {
		t.Errorf("verify output does not say OK:\n%s", out)
	}
	t.Logf("%d acknowledged reads, all recorded; %s", len(acked), strings.TrimSpace(fmt.Sprint(string(out))))
}
