// This file holds StartPostgres, which gives a test its own throwaway
// PostgreSQL 15 server:
//
//	pg := testutil.StartPostgres(t)
//	conn, err := pgx.Connect(ctx, pg.DSN())
//
// The server is built from the binaries installed by the Debian package
// postgresql-15, listens only on 127.0.0.1 on a free port, requires SCRAM
// password authentication for every connection, offers TLS with a
// certificate made for it (TLSConfig and CACertPEM trust it; DSN connects
// without TLS), and is stopped and deleted by t.Cleanup, whether the test
// passed or failed. When the binaries are
// missing the test is skipped with a message saying what to install, unless
// SIGIL_REQUIRE_POSTGRES=1 is set (as it is in CI), in which case the test
// fails instead.
//
// Helpers in this package read environment variables and call t.Fatal; they
// are for tests only and must never be imported by production code.

package testutil

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresBinDir is where the Debian package postgresql-15 installs initdb
// and postgres. StartPostgres uses the binaries found there.
const PostgresBinDir = "/usr/lib/postgresql/15/bin"

// PostgresSuperuser is the name of the superuser role that StartPostgres
// creates in every server.
const PostgresSuperuser = "sigil_admin"

// requirePostgresEnv names the environment variable that turns a missing
// PostgreSQL installation from a skip into a failure. CI sets it to "1".
const requirePostgresEnv = "SIGIL_REQUIRE_POSTGRES"

// Limits on how long each phase of a server's life may take. They are
// generous because the machines running the tests have two shared cores;
// a healthy start takes well under two seconds.
const (
	initdbTimeout   = 2 * time.Minute
	readyTimeout    = time.Minute
	stopTimeout     = 15 * time.Second
	loginTimeout    = 2 * time.Second
	pollInterval    = 25 * time.Millisecond
	portAttempts    = 5
	logTailMaxBytes = 4 << 10
)

// Postgres is a running temporary PostgreSQL server, started by
// StartPostgres and owned by one test.
type Postgres struct {
	// Host is the address the server listens on; always "127.0.0.1".
	Host string
	// Port is the TCP port the server listens on, chosen at random.
	Port int
	// User is the superuser role, PostgresSuperuser.
	User string
	// Password is the superuser's password, random for every server. It is
	// test-only material, but String and LogValue still keep it out of logs.
	Password string
	// Database is the database the superuser connects to: "postgres", the
	// one initdb creates.
	Database string
	// Bin is the directory holding the PostgreSQL binaries (psql, pg_dump,
	// ...) the server was started from.
	Bin string
	// DataDir is the server's data directory. It exists only while the
	// server runs; t.Cleanup removes it.
	DataDir string
	// LogFile is the server's log. It lives next to DataDir and is removed
	// with it.
	LogFile string
	// CACertPEM is the server's self-signed certificate (for 127.0.0.1 and
	// localhost) in PEM: the one root a client needs to verify it.
	CACertPEM string

	caPool *x509.CertPool // holds the server's certificate

	// cred is who the server runs as; nil for the current user.
	cred *syscall.Credential
	// root is the private temporary directory holding DataDir and LogFile.
	root string
	// proc is the postmaster, nil once it has been stopped.
	proc *exec.Cmd
	// exited is closed when the postmaster has exited.
	exited chan struct{}
}

// DSN returns a postgres:// URL that logs in as the superuser over TCP,
// without TLS, to Database.
func (p *Postgres) DSN() string {
	return p.DSNFor(p.User, p.Password, p.Database)
}

// DSNFor returns a postgres:// URL for this server that logs in as user with
// password to database dbname, without TLS. Tests use it to log in as roles
// they created.
func (p *Postgres) DSNFor(user, password, dbname string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(user, password),
		Host:     net.JoinHostPort(p.Host, strconv.Itoa(p.Port)),
		Path:     "/" + dbname,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// TLSConfig returns a client TLS configuration that trusts the server's
// certificate and nothing else, for the name 127.0.0.1.
func (p *Postgres) TLSConfig() *tls.Config {
	return &tls.Config{RootCAs: p.caPool, ServerName: p.Host, MinVersion: tls.VersionTLS12}
}

// String describes the server without its password.
func (p *Postgres) String() string {
	return fmt.Sprintf("postgres://%s:REDACTED@%s/%s",
		p.User, net.JoinHostPort(p.Host, strconv.Itoa(p.Port)), p.Database)
}

// LogValue describes the server to log/slog without its password.
func (p *Postgres) LogValue() slog.Value {
	return slog.StringValue(p.String())
}

// StartPostgres starts a PostgreSQL 15 server for the duration of the test
// and returns it once it accepts a password login. t.Cleanup stops the
// server (immediate shutdown) and deletes its data directory.
//
// When the tests run as root, which PostgreSQL refuses, initdb and postgres
// run as the user "postgres" if it exists and "nobody" otherwise.
//
// If the binaries are not installed the test is skipped, or fails when
// SIGIL_REQUIRE_POSTGRES=1. If the server does not start, the test fails with
// the tail of the server log.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	return startPostgres(t, PostgresBinDir)
}

// startPostgres is StartPostgres with the binaries taken from bin.
func startPostgres(t testing.TB, bin string) *Postgres {
	t.Helper()
	if err := checkBinaries(bin); err != nil {
		if os.Getenv(requirePostgresEnv) == "1" {
			t.Fatalf("%v; %s=1 requires a real PostgreSQL: install it with `apt-get install postgresql-15`", err, requirePostgresEnv)
		}
		t.Skipf("skipping: %v; install it with `apt-get install postgresql-15` (set %s=1 to make this a failure)", err, requirePostgresEnv)
	}

	p, err := launchPostgres(t.Context(), bin)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("%v", err)
		}
	})
	return p
}

// LaunchPostgres starts a temporary PostgreSQL server as StartPostgres
// does, for programs that are not tests (the benchmark harness): it
// returns an error where StartPostgres fails or skips the test, and the
// caller stops the server and removes its directory with Close. ctx bounds
// the start only.
func LaunchPostgres(ctx context.Context) (*Postgres, error) {
	if err := checkBinaries(PostgresBinDir); err != nil {
		return nil, fmt.Errorf("%w; install it with `apt-get install postgresql-15`", err)
	}
	return launchPostgres(context.WithoutCancel(ctx), PostgresBinDir)
}

// launchPostgres initialises and starts a server from the binaries in bin.
// On failure it has stopped the server and removed its directory.
func launchPostgres(ctx context.Context, bin string) (_ *Postgres, err error) {
	cred, err := serverCredential()
	if err != nil {
		return nil, fmt.Errorf("starting postgres: %w", err)
	}
	root, err := makeRoot(cred)
	if err != nil {
		return nil, fmt.Errorf("starting postgres: %w", err)
	}
	password, err := randomPassword()
	if err != nil {
		_ = os.RemoveAll(root)
		return nil, fmt.Errorf("starting postgres: %w", err)
	}
	p := &Postgres{
		Host:     "127.0.0.1",
		User:     PostgresSuperuser,
		Password: password,
		Database: "postgres",
		Bin:      bin,
		DataDir:  filepath.Join(root, "data"),
		LogFile:  filepath.Join(root, "postgres.log"),
		root:     root,
		cred:     cred,
	}
	defer func() {
		if err != nil {
			if cerr := p.Close(); cerr != nil {
				err = errors.Join(err, cerr)
			}
		}
	}()
	if err := p.initdb(); err != nil {
		return nil, fmt.Errorf("starting postgres: %w", err)
	}
	cert, err := writeServerCertificate(root, p.Host, "sigil test postgres", cred)
	if err != nil {
		return nil, fmt.Errorf("starting postgres: %w", err)
	}
	p.caPool = x509.NewCertPool()
	p.caPool.AddCert(cert)
	p.CACertPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))
	if err := startOnFreePort(ctx, "postgres", p.LogFile, p.start); err != nil {
		return nil, err
	}
	return p, nil
}

// Close stops the server and removes its directory. Calling it again does
// nothing.
func (p *Postgres) Close() error {
	if err := p.stop(); err != nil {
		return fmt.Errorf("stopping postgres: %w", err)
	}
	if err := os.RemoveAll(p.root); err != nil {
		return fmt.Errorf("removing postgres directory: %w", err)
	}
	return nil
}

// startOnFreePort calls start with a free loopback port until it works,
// choosing another port when a process took the chosen one first
// (errPortInUse), at most portAttempts times. Its error holds the tail of
// logFile.
func startOnFreePort(ctx context.Context, what, logFile string, start func(ctx context.Context, port int) error) error {
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return fmt.Errorf("starting %s: %w", what, err)
		}
		err = start(ctx, port)
		if err == nil {
			return nil
		}
		if !errors.Is(err, errPortInUse) || attempt == portAttempts {
			return fmt.Errorf("starting %s (attempt %d): %w\n--- tail of %s ---\n%s", what, attempt, err, logFile, logTail(logFile))
		}
	}
}

// errPortInUse means the postmaster exited because another process took
// the port between choosing it and binding it; a new port may work.
var errPortInUse = errors.New("port already in use")

// checkBinaries reports which of the binaries StartPostgres needs are
// missing from dir.
func checkBinaries(dir string) error {
	for _, name := range []string{"initdb", "postgres"} {
		path := filepath.Join(dir, name)
		info, err := os.Stat(path)
		if err != nil {
			return fmt.Errorf("postgresql 15 binary %s not found: %w", path, err)
		}
		if info.IsDir() || info.Mode().Perm()&0o111 == 0 {
			return fmt.Errorf("postgresql 15 binary %s is not executable", path)
		}
	}
	return nil
}

// serverCredential returns the identity initdb and postgres must run as:
// nil (the current user) unless the process is root, and then the user
// "postgres" or, failing that, "nobody".
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	var errs []error
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		uid, err := strconv.ParseUint(u.Uid, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("parsing uid of user %q: %w", name, err)
		}
		gid, err := strconv.ParseUint(u.Gid, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("parsing gid of user %q: %w", name, err)
		}
		if uid == 0 {
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, fmt.Errorf("running as root and no unprivileged user to run postgres as: %w", errors.Join(errs...))
}

// makeRoot creates the private directory that holds the data directory and
// the log, owned by the server's user with mode 0700. It is not
// t.TempDir(): the testing package creates that with mode 0700 owned by
// root, which the unprivileged server user cannot enter.
func makeRoot(cred *syscall.Credential) (string, error) {
	base := os.TempDir()
	if cred != nil {
		if err := checkTraversable(base, cred); err != nil {
			return "", err
		}
	}
	root, err := os.MkdirTemp(base, "sigil-pg-")
	if err != nil {
		return "", fmt.Errorf("creating postgres directory: %w", err)
	}
	if cred != nil {
		if err := os.Chown(root, int(cred.Uid), int(cred.Gid)); err != nil {
			_ = os.RemoveAll(root)
			return "", fmt.Errorf("handing %q to uid %d: %w", root, cred.Uid, err)
		}
	}
	return root, nil
}

// checkTraversable reports an error unless the user in cred may search every
// directory from / down to dir, judged from the permission bits.
func checkTraversable(dir string, cred *syscall.Credential) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("resolving %q: %w", dir, err)
	}
	for d := abs; ; d = filepath.Dir(d) {
		info, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("checking %q: %w", d, err)
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("checking %q: no owner information", d)
		}
		perm := info.Mode().Perm()
		var searchable bool
		switch {
		case st.Uid == cred.Uid:
			searchable = perm&0o100 != 0
		case st.Gid == cred.Gid:
			searchable = perm&0o010 != 0
		default:
			searchable = perm&0o001 != 0
		}
		if !searchable {
			return fmt.Errorf("directory %q (mode %v) is not searchable by uid %d, which postgres runs as; point TMPDIR at a directory it can reach", d, perm, cred.Uid)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// randomPassword returns 32 hex digits from crypto/rand.
func randomPassword() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating password: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// command prepares one of the PostgreSQL binaries to run as cred, with a
// minimal environment so that PG* variables of the caller cannot change its
// behaviour, and with its output appended to out.
func (p *Postgres) command(ctx context.Context, out *os.File, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(p.Bin, name), args...)
	cmd.Dir = p.root
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C", "LANG=C", "TZ=UTC"}
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: p.cred,
		// Its own process group, so that stopping can reach every backend.
		Setpgid: true,
		// A test binary killed by its timeout must not leave a server behind.
		Pdeathsig: syscall.SIGKILL,
	}
	return cmd
}

// initdb creates the data directory with the superuser and its password,
// and SCRAM-SHA-256 required for every local and TCP connection.
func (p *Postgres) initdb() error {
	pwfile := filepath.Join(p.root, "pwfile")
	if err := os.WriteFile(pwfile, []byte(p.Password+"\n"), 0o600); err != nil {
		return fmt.Errorf("writing password file: %w", err)
	}
	defer os.Remove(pwfile)
	if p.cred != nil {
		if err := os.Chown(pwfile, int(p.cred.Uid), int(p.cred.Gid)); err != nil {
			return fmt.Errorf("handing password file to uid %d: %w", p.cred.Uid, err)
		}
	}
	logPath := filepath.Join(p.root, "initdb.log")
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("creating initdb log: %w", err)
	}
	defer out.Close()

	ctx, cancel := context.WithTimeout(context.Background(), initdbTimeout)
	defer cancel()
	cmd := p.command(ctx, out, "initdb",
		"--pgdata="+p.DataDir,
		"--username="+p.User,
		"--pwfile="+pwfile,
		"--auth=scram-sha-256",
		"--encoding=UTF8",
		"--locale=C",
		// Test data need not survive a power failure; skipping the fsync of
		// the new cluster saves most of initdb's time.
		"--no-sync",
		"--no-instructions",
	)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("running initdb: %w\n--- %s ---\n%s", err, logPath, logTail(logPath))
	}
	return nil
}

// start launches the postmaster on port and waits until the superuser can
// log in. It returns errPortInUse when the port was taken.
func (p *Postgres) start(ctx context.Context, port int) error {
	p.Port = port
	out, err := os.OpenFile(p.LogFile, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("creating server log: %w", err)
	}
	defer out.Close() // the child holds its own descriptor

	// The postmaster's lifetime is managed by stop, not by a context.
	cmd := p.command(context.Background(), out, "postgres",
		"-D", p.DataDir,
		"-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1",
		// No Unix socket: every connection goes over TCP and through SCRAM.
		"-c", "unix_socket_directories=",
		"-c", "password_encryption=scram-sha-256",
		"-c", "ssl=on",
		"-c", "ssl_cert_file="+filepath.Join(p.root, serverCertFile),
		"-c", "ssl_key_file="+filepath.Join(p.root, serverKeyFile),
		// Durability is not needed for throwaway test data: fsync=off and
		// friends make the server much faster on a shared disk. Never copy
		// these settings to a real server.
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "shared_buffers=32MB",
		"-c", "logging_collector=off",
	)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("running postgres: %w", err)
	}
	p.proc = cmd
	p.exited = make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()

	// A login attempt must not outlive the postmaster: if another process
	// holds the port, the attempt would wait on that process instead.
	loginCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-p.exited:
			cancel()
		case <-loginCtx.Done():
		}
	}()

	deadline := time.Now().Add(readyTimeout)
	addr := net.JoinHostPort(p.Host, strconv.Itoa(port))
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			p.proc = nil
			if bytes.Contains(readFile(p.LogFile), []byte("Address already in use")) {
				return fmt.Errorf("postgres on port %d: %w", port, errPortInUse)
			}
			return fmt.Errorf("postgres exited before accepting connections: %s", cmd.ProcessState)
		case <-ctx.Done():
			return fmt.Errorf("waiting for postgres: %w", ctx.Err())
		default:
		}
		lastErr = p.tryLogin(loginCtx, addr)
		if lastErr == nil {
			return nil
		}
		timer := time.NewTimer(pollInterval)
		select {
		case <-timer.C:
		case <-p.exited:
			timer.Stop()
		case <-ctx.Done():
			timer.Stop()
		}
	}
	return fmt.Errorf("postgres did not accept a login within %v: %w", readyTimeout, lastErr)
}

// tryLogin checks that the server accepts TCP connections and then that the
// superuser can log in with its password and run a query.
func (p *Postgres) tryLogin(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, loginTimeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", addr, err)
	}
	_ = c.Close()
	conn, err := pgx.Connect(ctx, p.DSN())
	if err != nil {
		return fmt.Errorf("logging in as %s: %w", p.User, err)
	}
	defer conn.Close(context.Background())
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("querying as %s: %w", p.User, err)
	}
	if one != 1 {
		return fmt.Errorf("SELECT 1 returned %d", one)
	}
	return nil
}

// stop ends the postmaster with an immediate shutdown (SIGQUIT) and waits
// for it; if it is still running after stopTimeout, its whole process group
// is killed. Calling stop again does nothing. The data directory is deleted afterwards, so skipping the
// checkpoint that a clean shutdown would write loses nothing.
func (p *Postgres) stop() error {
	if p.proc == nil {
		return nil
	}
	proc := p.proc
	p.proc = nil
	pid := proc.Process.Pid
	if err := syscall.Kill(pid, syscall.SIGQUIT); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signalling postmaster %d: %w", pid, err)
	}
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-p.exited:
		// An immediate shutdown makes the postmaster kill its backends and
		// wait for them before it exits, so nothing of the server is left.
		return nil
	case <-timer.C:
	}
	// The postmaster is stuck but not yet reaped, so its pid still names
	// its process group: kill the whole server.
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("killing process group %d: %w", pid, err)
	}
	<-p.exited
	return nil
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
// Another process may take it before postgres binds it; start detects that
// and StartPostgres retries with a new port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("choosing a port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("releasing port %d: %w", port, err)
	}
	return port, nil
}

// readFile returns the contents of path, or nothing if it cannot be read.
func readFile(path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	return b
}

// logTail returns the last few kilobytes of the log at path, starting at a
// line boundary, for failure messages.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "(no log written)"
	}
	if err != nil {
		return fmt.Sprintf("(reading log: %v)", err)
	}
	if len(b) > logTailMaxBytes {
		b = b[len(b)-logTailMaxBytes:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	if s := strings.TrimSpace(string(b)); s != "" {
		return s
	}
	return "(log is empty)"
}
