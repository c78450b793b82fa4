package server_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/jackc/pgx/v5"

	"sigil.dev/sigil/internal/audit"
	"sigil.dev/sigil/internal/dynamic"
	"sigil.dev/sigil/internal/server"
	"sigil.dev/sigil/internal/testutil"
	"sigil.dev/sigil/internal/testutil/testserver"
)

// The crash test of dynamic credentials: a sigil server in a child process
// (this test binary re-executed in child mode) is stopped with SIGKILL in
// the middle of issuing a database user, at one of the two points the
// lease protocol must survive, and a server restarted on the same data
// directory must leave no user without a lease and no lease without a
// user.

// Environment of the child. The parent sets all three only in the child's
// environment; the child acts only if the test name matches, so a stray
// value in a developer's shell changes nothing.
const (
	dynCrashPointEnv = "SIGIL_DYNAMIC_CRASH_POINT"
	dynCrashDirEnv   = "SIGIL_DYNAMIC_CRASH_DIR"
	dynCrashTestEnv  = "SIGIL_DYNAMIC_CRASH_TEST"
)

// Where the child's engine stops, as named in dynCrashPointEnv.
const (
	// crashLeaseWritten stops Create before it calls the real engine: the
	// lease is recorded (state creating) and the user does not exist.
	crashLeaseWritten = "lease-written"
	// crashUserCreated stops Create after the real engine created the
	// user: the user exists and the lease is still creating.
	crashUserCreated = "user-created"
)

// Lines the child prints on stdout.
const (
	// dynCrashListening is followed by the child server's URL.
	dynCrashListening = "sigil-crash-listening "
	// dynCrashReached is followed by the crash point and the username
	// being created.
	dynCrashReached = "sigil-crash-reached "
)

const (
	// dynCrashChildLifetime bounds a child whose parent died without
	// killing it.
	dynCrashChildLifetime = 2 * time.Minute
)

// TestCrashDynamicLease kills a server with SIGKILL between "lease
// written" and "user created", and between "user created" and "lease
// active", and checks that after a restart the lease is found creating,
// the reaper undoes it once the grace period has passed (removing the user
// if it was created), the database's roles and the active leases then
// match exactly, the restarted server issues working users, and the audit
// log verifies.
func TestCrashDynamicLease(t *testing.T) {
	if point := os.Getenv(dynCrashPointEnv); point != "" && os.Getenv(dynCrashTestEnv) == t.Name() {
		runDynCrashChild(t, point, os.Getenv(dynCrashDirEnv))
		return
	}
	pg := testutil.StartPostgres(t)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, pg.DSN())
	mustOK(t, err)
	t.Cleanup(func() { _ = admin.Close(context.Background()) })
	_, err = admin.Exec(ctx, `CREATE TABLE products (id int PRIMARY KEY, name text); INSERT INTO products VALUES (1, 'lamp')`)
	mustOK(t, err)

	for _, tc := range []struct {
		name, point string
		// userBeforeKill is whether the database has the user when the
		// child is killed.
		userBeforeKill bool
		// prefix is the username prefix; each case has its own, so the
		// cases' roles in the shared database stay apart.
		prefix string
	}{
		{name: "between_lease_written_and_user_created", point: crashLeaseWritten, userBeforeKill: false, prefix: "written"},
		{name: "between_user_created_and_lease_active", point: crashUserCreated, userBeforeKill: true, prefix: "created"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testDynCrash(t, pg, admin, tc.point, tc.prefix, tc.userBeforeKill)
		})
	}
}

func testDynCrash(t *testing.T, pg *testutil.Postgres, admin *pgx.Conn, point, prefix string, userBeforeKill bool) {
	ctx := context.Background()
	secret := "my-app/crash-" + prefix
	rolePrefix := prefix + "_"
	dataDir := filepath.Join(t.TempDir(), "data")

	child := startDynCrashChild(t, point, dataDir)
	url := child.waitLine(t, dynCrashListening, time.Minute)
	id, key := testserver.ReadCredentials(t, filepath.Join(dataDir, server.RootCredentialsFile))
	creds := aws.Credentials{AccessKeyID: id, SecretAccessKey: key}
	// The trusted copy of the audit key, taken before anything crashed.
	pub, err := audit.LoadPublicKey(filepath.Join(dataDir, audit.PublicKeyFile))
	mustOK(t, err)

	db := (&dynEnv{pg: pg}).database("shop")
	if code, body := signedNative(t, url, creds, "/v1/databases/put", db, nil); code != http.StatusOK {
		t.Fatalf("registering the database: %d %s\nchild log:\n%s", code, body, tailLog(child.stderr.String()))
	}
	if code, body := signedNative(t, url, creds, "/v1/dynamic-secrets/put", server.DynamicSecretRequest{
		Name: secret, Database: "shop", DefaultTTL: "1h", CreationStatements: grantProducts, UsernamePrefix: prefix,
	}, nil); code != http.StatusOK {
		t.Fatalf("creating the dynamic secret: %d %s\nchild log:\n%s", code, body, tailLog(child.stderr.String()))
	}

	// The read hangs in the engine until the child dies.
	type result struct {
		out *secretsmanager.GetSecretValueOutput
		err error
	}
	read := make(chan result, 1)
	go func() {
		sm := secretsmanager.NewFromConfig(testserver.AWSConfigFor(url, "us-east-1", id, key, ""))
		out, err := sm.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(secret)})
		read <- result{out, err}
	}()
	reached := child.waitLine(t, dynCrashReached+point+" ", time.Minute)
	username := strings.TrimSpace(reached)
	if !strings.HasPrefix(username, rolePrefix) {
		t.Fatalf("the engine was asked to create %q, want a name starting %q", username, rolePrefix)
	}
	if got := roleExists(t, admin, username); got != userBeforeKill {
		t.Fatalf("at crash point %s the database has user %s: %v, want %v", point, username, got, userBeforeKill)
	}
	child.kill(t)
	select {
	case r := <-read:
		if r.err == nil {
			t.Fatalf("GetSecretValue succeeded (user %s) although the server died before the lease was active", username)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("GetSecretValue did not return within 30s of the server's death")
	}
	// The child is race-instrumented when the parent is; it never exits
	// on its own, so its reports are looked for here.
	if log := child.stderr.String(); strings.Contains(log, "WARNING: DATA RACE") {
		t.Fatalf("the race detector reported a data race in the child server:\n%s", log)
	}

	// The log of the killed server verifies: at most a torn tail, and
	// the acknowledged administrative calls are recorded.
	auditDir := filepath.Join(dataDir, "audit")
	rep := verifyAuditLog(t, auditDir, pub, false)
	if len(rep.Abandoned) != 0 {
		t.Errorf("the killed server's log has abandoned batches before any recovery: %+v", rep.Abandoned)
	}
	for _, name := range []string{"PutDatabase", "PutDynamicSecret"} {
		if n := countAudit(t, auditDir, name, ""); n != 1 {
			t.Errorf("%d successful %s records after the crash, want the 1 acknowledged", n, name)
		}
	}

	// The final check runs after the restarted server has shut down
	// (cleanups run last-registered first): the log across the crash and
	// the restart verifies and ends sealed.
	t.Cleanup(func() {
		rep := verifyAuditLog(t, auditDir, pub, true)
		for _, a := range rep.Abandoned {
			if a.Reason != "recover" {
				t.Errorf("abandoned batch %+v: only the crash's torn tail, recovered at restart, may be abandoned", a)
			}
		}
	})

	if userBeforeKill {
		// The database itself stops the orphan at the lease's expiry (an
		// hour), even if no reaper ever ran.
		var until time.Time
		mustOK(t, admin.QueryRow(ctx, `SELECT rolvaliduntil FROM pg_roles WHERE rolname = $1`, username).Scan(&until))
		if d := time.Until(until); d < 58*time.Minute || d > 61*time.Minute {
			t.Errorf("the orphan's VALID UNTIL is %s, want about an hour from now", until)
		}
	}

	// Restart on the same data directory. The server keeps its replica id
	// there, so its reaper knows the lease left creating is its own from
	// before the restart and undoes it on the first pass, without the
	// minute of grace it gives other replicas' creations: the wait below
	// is shorter than that grace, and the clock is not moved.
	srv := testserver.StartServer(t,
		testserver.WithConfig(func(c *server.Config) { c.DataDir = dataDir; c.ReaperInterval = 50 * time.Millisecond }))
	e := &dynEnv{t: t, srv: srv, pg: pg, admin: admin, sm: secretsmanager.NewFromConfig(srv.AWSConfig())}
	testutil.WaitFor(t, 30*time.Second, func() bool {
		var ls server.LeasesResponse
		e.must("/v1/leases/list", server.LeaseRequest{Prefix: secret + "/", All: true}, &ls)
		return len(ls.Leases) == 1 && ls.Leases[0].State == string(dynamic.StateRevoked) && !roleExists(t, admin, username)
	})
	var ls server.LeasesResponse
	e.must("/v1/leases/list", server.LeaseRequest{Prefix: secret + "/", All: true}, &ls)
	if lease := ls.Leases[0]; lease.Username != username || lease.Secret != secret {
		t.Fatalf("the lease undone is %+v, want the one in flight for user %s", lease, username)
	}
	if active := leasesMatchRoles(t, e, secret, rolePrefix); len(active) != 0 {
		t.Fatalf("after the reaper undid the interrupted lease, active leases %v", active)
	}
	// The reaper's undo is audited as such.
	testutil.WaitFor(t, 10*time.Second, func() bool {
		return countAudit(t, auditDir, "RevokeLease", username, `"creation interrupted"`, `"state":"creating"`, `"eventType":"AwsServiceEvent"`) == 1
	})

	// The restarted server is healthy: it issues a working user, hands the
	// same session the same user again, and nothing else is left.
	c := getCred(t, e.sm, secret)
	if c.Username == username || !strings.HasPrefix(c.Username, rolePrefix) {
		t.Fatalf("after the restart the session got user %q (the interrupted one was %q)", c.Username, username)
	}
	conn, err := login(ctx, c)
	if err != nil {
		t.Fatalf("logging in with the user issued after the restart: %v", err)
	}
	mustOK(t, conn.Close(ctx))
	if again := getCred(t, e.sm, secret); again.Username != c.Username || again.versionID != c.versionID {
		t.Fatalf("the same session got %s, then %s", c.Username, again.Username)
	}
	if active := leasesMatchRoles(t, e, secret, rolePrefix); !slices.Equal(active, []string{c.Username}) {
		t.Fatalf("active leases %v, want only %s", active, c.Username)
	}
}

// leasesMatchRoles checks that no lease of secret is left creating or
// revoking and that the database's roles starting with rolePrefix are
// exactly the users of the secret's active leases, and returns those
// users sorted.
func leasesMatchRoles(t *testing.T, e *dynEnv, secret, rolePrefix string) []string {
	t.Helper()
	var ls server.LeasesResponse
	e.must("/v1/leases/list", server.LeaseRequest{Prefix: secret + "/", All: true}, &ls)
	active := map[string]bool{}
	for _, l := range ls.Leases {
		switch dynamic.State(l.State) {
		case dynamic.StateActive:
			active[l.Username] = true
		case dynamic.StateRevoked:
		default:
			t.Errorf("lease %s of user %s is %s", l.ID, l.Username, l.State)
		}
	}
	rows, err := e.admin.Query(context.Background(), `SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1)`, rolePrefix)
	mustOK(t, err)
	roles, err := pgx.CollectRows(rows, pgx.RowTo[string])
	mustOK(t, err)
	for _, r := range roles {
		if !active[r] {
			t.Errorf("database user %s has no active lease", r)
		}
	}
	for u := range active {
		if !slices.Contains(roles, u) {
			t.Errorf("active lease of user %s, but the database has no such user", u)
		}
	}
	return slices.Sorted(maps.Keys(active))
}

func roleExists(t *testing.T, admin *pgx.Conn, username string) bool {
	t.Helper()
	var n int
	mustOK(t, admin.QueryRow(context.Background(), `SELECT count(*) FROM pg_roles WHERE rolname = $1`, username).Scan(&n))
	return n > 0
}

// verifyAuditLog fails the test unless the log in dir verifies with pub:
// no tampering, at most a torn tail (and with sealed, ending with the
// final checkpoint of a clean shutdown).
func verifyAuditLog(t *testing.T, dir string, pub ed25519.PublicKey, sealed bool) *audit.Report {
	t.Helper()
	rep, err := audit.Verify(dir, audit.VerifyOptions{PublicKey: pub, RequireSealed: sealed})
	if err != nil {
		t.Fatalf("verifying the audit log: %v", err)
	}
	if !rep.OK() {
		t.Fatalf("the audit log does not verify: %s", rep.Problem)
	}
	if rep.Records == 0 {
		t.Fatal("the audit log verifies but holds no records")
	}
	if rep.Torn != nil {
		t.Logf("audit log: torn tail %+v (a write cut by the kill)", *rep.Torn)
	}
	return rep
}

// countAudit counts the successful records named name whose line holds
// every one of needles.
func countAudit(t *testing.T, dir, name string, needles ...string) int {
	t.Helper()
	n := 0
	err := audit.Query(dir, audit.Filter{Action: name, Outcome: "success"}, func(r audit.Record) error {
		for _, s := range needles {
			if !bytes.Contains(r.Raw, []byte(s)) {
				return nil
			}
		}
		n++
		return nil
	})
	mustOK(t, err)
	return n
}

// signedNative sends a native API request to url signed with creds and
// returns the status and body; out, when not nil, receives a 200 answer.
func signedNative(t *testing.T, url string, creds aws.Credentials, path string, in, out any) (int, string) {
	t.Helper()
	body, err := json.Marshal(in)
	mustOK(t, err)
	req, err := http.NewRequest("POST", url+path, bytes.NewReader(body))
	mustOK(t, err)
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(body)
	mustOK(t, v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "sigil", server.DefaultRegion, time.Now()))
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	mustOK(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	mustOK(t, err)
	if out != nil && resp.StatusCode == http.StatusOK {
		mustOK(t, json.Unmarshal(b, out))
	}
	return resp.StatusCode, string(b)
}

// dynCrashChild is a running child server.
type dynCrashChild struct {
	cmd    *exec.Cmd
	lines  chan string
	stderr *testserver.LogBuffer
	once   sync.Once
}

// startDynCrashChild re-executes the test binary as a child server on
// dataDir whose engine stops at point; t.Cleanup kills it if the test has
// not.
func startDynCrashChild(t *testing.T, point, dataDir string) *dynCrashChild {
	t.Helper()
	top, _, _ := strings.Cut(t.Name(), "/")
	cmd := exec.Command(os.Args[0], "-test.run=^"+top+"$", "-test.count=1", "-test.timeout="+(dynCrashChildLifetime+time.Minute).String())
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, dynCrashPointEnv+"=") && !strings.HasPrefix(kv, dynCrashDirEnv+"=") && !strings.HasPrefix(kv, dynCrashTestEnv+"=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, dynCrashPointEnv+"="+point, dynCrashDirEnv+"="+dataDir, dynCrashTestEnv+"="+top)
	c := &dynCrashChild{cmd: cmd, lines: make(chan string, 64), stderr: &testserver.LogBuffer{}}
	cmd.Stderr = c.stderr
	stdout, err := cmd.StdoutPipe()
	mustOK(t, err)
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the child server: %v", err)
	}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() { c.kill(t) })
	return c
}

// waitLine returns the rest of the first line the child prints that
// starts with prefix, failing the test if none comes within timeout.
func (c *dynCrashChild) waitLine(t *testing.T, prefix string, timeout time.Duration) string {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var other []string
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				c.kill(t)
				t.Fatalf("the child exited (%v) before printing %q\nstdout:\n%s\nstderr:\n%s",
					c.cmd.ProcessState, prefix, strings.Join(other, "\n"), tailLog(c.stderr.String()))
			}
			if rest, found := strings.CutPrefix(line, prefix); found {
				return rest
			}
			if len(other) < 40 {
				other = append(other, line)
			}
		case <-timer.C:
			c.kill(t)
			t.Fatalf("the child did not print %q within %s\nstdout:\n%s\nstderr:\n%s",
				prefix, timeout, strings.Join(other, "\n"), tailLog(c.stderr.String()))
		}
	}
}

// kill sends SIGKILL to the child and waits for it; later calls do
// nothing.
func (c *dynCrashChild) kill(t *testing.T) {
	t.Helper()
	c.once.Do(func() {
		if err := c.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			t.Errorf("killing the child server: %v", err)
		}
		// Wait closes stdout: read it to the end first.
		for range c.lines {
		}
		_ = c.cmd.Wait()
	})
}

// runDynCrashChild is the child: a sigil server on dir whose engine stops
// at point and announces it on stdout. It runs until it is killed, or for
// dynCrashChildLifetime if the parent is gone.
func runDynCrashChild(t *testing.T, point, dir string) {
	if point != crashLeaseWritten && point != crashUserCreated {
		t.Fatalf("child: unknown crash point %q", point)
	}
	if dir == "" {
		t.Fatal("child: no data directory")
	}
	hang := make(chan struct{})
	lifetime := time.AfterFunc(dynCrashChildLifetime, func() { close(hang) })
	defer lifetime.Stop()
	cfg := server.Config{Listen: "127.0.0.1:0", DataDir: dir}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("child: %v", err)
	}
	opts := server.Options{
		Logger: slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})),
		DynamicEngines: func(db dynamic.Database, sc dynamic.SecretConfig, rnd io.Reader) (dynamic.Engine, error) {
			e, err := dynamic.DefaultEngine(db, sc, rnd)
			if err != nil {
				return nil, err
			}
			return &stallingEngine{Engine: e, point: point, hang: hang, out: os.Stdout}, nil
		},
	}
	srv, err := server.New(context.Background(), cfg, opts)
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("child: %v", err)
	}
	fmt.Fprintf(os.Stdout, "%s%s\n", dynCrashListening, srv.URL())
	<-hang
	t.Log("child: the parent did not kill this server within its lifetime")
	_ = srv.Close()
}

// stallingEngine is a real engine whose Create stops for good at a crash
// point, after announcing it.
type stallingEngine struct {
	dynamic.Engine
	point string
	hang  <-chan struct{}
	out   io.Writer
}

// errChildLifetime is what a stalled Create returns if the child outlives
// its parent.
var errChildLifetime = errors.New("crash child: lifetime over")

func (e *stallingEngine) Create(ctx context.Context, c dynamic.Creation) (dynamic.Credential, error) {
	if e.point == crashUserCreated {
		if _, err := e.Engine.Create(ctx, c); err != nil {
			return dynamic.Credential{}, err
		}
	}
	fmt.Fprintf(e.out, "%s%s %s\n", dynCrashReached, e.point, c.Username)
	<-e.hang
	return dynamic.Credential{}, errChildLifetime
}

// Close closes the wrapped engine's connections, as the catalog expects
// of every engine that holds any.
func (e *stallingEngine) Close() {
	if cl, ok := e.Engine.(interface{ Close() }); ok {
		cl.Close()
	}
}
