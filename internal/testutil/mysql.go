// This file holds StartMySQL, which gives a test its own throwaway MariaDB
// 10.11 server, the MySQL-compatible database sigil's MySQL engine is tested
// against:
//
//	my := testutil.StartMySQL(t)
//	db := my.Open(t) // a *sql.DB logged in as the administrator
//
// The server is built from the binaries installed by the Debian package
// mariadb-server (mariadb-install-db and mariadbd); it is not the system
// service. It gets its own data directory, Unix socket and pid file in a
// private temporary directory, listens only on 127.0.0.1 on a free port,
// runs with the event scheduler on, offers TLS with a certificate made for
// it (TLSConfig trusts it), and has one password-authenticated
// administrator, MySQLAdmin, with every privilege. t.Cleanup stops it and
// deletes the directory, whether the test passed or failed. When the
// binaries are missing the test is skipped with a message saying what to
// install, unless SIGIL_REQUIRE_MYSQL=1 is set (as it is in CI), in which
// case the test fails instead.

package testutil

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Where the Debian package mariadb-server installs the binaries StartMySQL
// uses.
const (
	// MySQLServerBinary is the MariaDB server.
	MySQLServerBinary = "/usr/sbin/mariadbd"
	// MySQLInstallBinary creates a data directory with the system tables.
	MySQLInstallBinary = "/usr/bin/mariadb-install-db"
)

// MySQLAdmin is the name of the administrator account ('sigil_admin'@'%',
// all privileges with GRANT OPTION) that StartMySQL creates in every server.
const MySQLAdmin = "sigil_admin"

// MySQLDatabase is the empty database StartMySQL creates for tests to use.
const MySQLDatabase = "sigil_test"

// requireMySQLEnv names the environment variable that turns a missing
// MariaDB installation from a skip into a failure. CI sets it to "1".
const requireMySQLEnv = "SIGIL_REQUIRE_MYSQL"

// mysqlInstallTimeout bounds mariadb-install-db; it takes well under a
// second on a healthy machine. The other phases share the PostgreSQL
// helper's limits.
const mysqlInstallTimeout = 2 * time.Minute

// mysqlBinaries are the two programs a server is made from.
type mysqlBinaries struct {
	server  string // mariadbd
	install string // mariadb-install-db
}

// MySQL is a running temporary MariaDB server, started by StartMySQL and
// owned by one test.
type MySQL struct {
	// Host is the address the server listens on; always "127.0.0.1".
	Host string
	// Port is the TCP port the server listens on, chosen at random.
	Port int
	// User is the administrator, MySQLAdmin.
	User string
	// Password is the administrator's password, random for every server.
	// It is test-only material, but String and LogValue still keep it out
	// of logs.
	Password string
	// Database is MySQLDatabase, which exists and is empty when the server
	// starts.
	Database string
	// DataDir is the server's data directory. It exists only while the
	// server runs; t.Cleanup removes it.
	DataDir string
	// LogFile is the server's error log. It lives next to DataDir and is
	// removed with it.
	LogFile string

	caPool *x509.CertPool // holds the server's self-signed certificate
	bin    mysqlBinaries
	cred   *syscall.Credential // who the server runs as; nil for the current user
	root   string              // private directory holding everything
	socket string              // the server's own Unix socket, inside root
	proc   *exec.Cmd           // the server, nil once stopped
	exited chan struct{}       // closed when the server has exited
}

// Addr returns host:port.
func (m *MySQL) Addr() string { return net.JoinHostPort(m.Host, strconv.Itoa(m.Port)) }

// Config returns a go-sql-driver/mysql configuration that logs in over TCP,
// without TLS, as user with password to database dbname ("" for none). Tests
// use it to log in as users they created; unlike a DSN it needs no escaping
// whatever the name and password hold.
func (m *MySQL) Config(user, password, dbname string) *mysql.Config {
	c := mysql.NewConfig()
	c.User = user
	c.Passwd = password
	c.Net = "tcp"
	c.Addr = m.Addr()
	c.DBName = dbname
	c.Timeout = loginTimeout
	// The driver would print connection trouble (such as a session the
	// test killed on purpose) to stderr; the errors reach the test anyway.
	c.Logger = &mysql.NopLogger{}
	return c
}

// TLSConfig returns a client TLS configuration that trusts the server's
// certificate (self-signed for 127.0.0.1, made at start) and nothing else.
func (m *MySQL) TLSConfig() *tls.Config {
	return &tls.Config{RootCAs: m.caPool, ServerName: m.Host, MinVersion: tls.VersionTLS12}
}

// DSN returns a go-sql-driver/mysql data source name that logs in as the
// administrator to Database.
func (m *MySQL) DSN() string { return m.DSNFor(m.User, m.Password, m.Database) }

// DSNFor returns a go-sql-driver/mysql data source name for this server
// that logs in as user with password to dbname. The DSN is not escaped, so
// for a user or password holding ':', '@' or '/' use Config instead.
func (m *MySQL) DSNFor(user, password, dbname string) string {
	return m.Config(user, password, dbname).FormatDSN()
}

// Open returns a *sql.DB logged in as the administrator to Database. It is
// closed by t.Cleanup.
func (m *MySQL) Open(t testing.TB) *sql.DB {
	t.Helper()
	return m.OpenAs(t, m.User, m.Password, m.Database)
}

// OpenAs returns a *sql.DB for user with password and database dbname,
// closed by t.Cleanup. Like sql.Open it does not connect yet.
func (m *MySQL) OpenAs(t testing.TB, user, password, dbname string) *sql.DB {
	t.Helper()
	conn, err := mysql.NewConnector(m.Config(user, password, dbname))
	if err != nil {
		t.Fatalf("configuring mysql connection: %v", err)
	}
	db := sql.OpenDB(conn)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// String describes the server without its password.
func (m *MySQL) String() string {
	return fmt.Sprintf("mysql://%s:REDACTED@%s/%s", m.User, m.Addr(), m.Database)
}

// LogValue describes the server to log/slog without its password.
func (m *MySQL) LogValue() slog.Value { return slog.StringValue(m.String()) }

// StartMySQL starts a MariaDB server for the duration of the test and
// returns it once the administrator can log in and run a query. t.Cleanup
// kills the server and deletes its directory; the data is thrown away, so
// no clean shutdown is needed.
//
// When the tests run as root, the server runs as the user "mysql" (created
// by the package) if it exists and "nobody" otherwise, as the PostgreSQL
// helper does.
//
// If the binaries are not installed the test is skipped, or fails when
// SIGIL_REQUIRE_MYSQL=1. If the server does not start, the test fails with
// the tail of the server log.
func StartMySQL(t testing.TB) *MySQL {
	t.Helper()
	return startMySQL(t, mysqlBinaries{server: MySQLServerBinary, install: MySQLInstallBinary})
}

// startMySQL is StartMySQL with the binaries taken from bin.
func startMySQL(t testing.TB, bin mysqlBinaries) *MySQL {
	t.Helper()
	if err := checkMySQLBinaries(bin); err != nil {
		if os.Getenv(requireMySQLEnv) == "1" {
			t.Fatalf("%v; %s=1 requires a real MariaDB: install it with `apt-get install mariadb-server`", err, requireMySQLEnv)
		}
		t.Skipf("skipping: %v; install it with `apt-get install mariadb-server` (set %s=1 to make this a failure)", err, requireMySQLEnv)
	}
	cred, err := credentialFor("mysql", "nobody")
	if err != nil {
		t.Fatalf("starting mariadb: %v", err)
	}
	root, err := makeServerRoot("sigil-mysql-", cred)
	if err != nil {
		t.Fatalf("starting mariadb: %v", err)
	}
	password, err := randomPassword()
	if err != nil {
		t.Fatalf("starting mariadb: %v", err)
	}
	m := &MySQL{
		Host:     "127.0.0.1",
		User:     MySQLAdmin,
		Password: password,
		Database: MySQLDatabase,
		DataDir:  filepath.Join(root, "data"),
		LogFile:  filepath.Join(root, "mariadb.log"),
		bin:      bin,
		cred:     cred,
		root:     root,
		socket:   filepath.Join(root, "mysql.sock"),
	}
	// Registered before anything is started so that a failure at any later
	// step still stops the server and removes the directory.
	t.Cleanup(func() {
		if err := m.stop(); err != nil {
			t.Errorf("stopping mariadb: %v", err)
		}
		if err := os.RemoveAll(root); err != nil {
			t.Errorf("removing mariadb directory: %v", err)
		}
	})

	if err := m.writeCertificate(); err != nil {
		t.Fatalf("starting mariadb: %v", err)
	}
	if err := m.install(); err != nil {
		t.Fatalf("starting mariadb: %v", err)
	}
	if err := startOnFreePort(t.Context(), "mariadb", m.LogFile, m.start); err != nil {
		t.Fatalf("%v", err)
	}
	return m
}

// checkMySQLBinaries reports which of the binaries in bin are missing or
// not executable.
func checkMySQLBinaries(bin mysqlBinaries) error {
	for _, path := range []string{bin.install, bin.server} {
		info, err := os.Stat(path)
		if err != nil {
			return fmt.Errorf("mariadb binary %s not found: %w", path, err)
		}
		if info.IsDir() || info.Mode().Perm()&0o111 == 0 {
			return fmt.Errorf("mariadb binary %s is not executable", path)
		}
	}
	return nil
}

// credentialFor returns the identity a database server must run as: nil
// (the current user) unless the process is root, and then the first of
// names that exists and is not root itself.
func credentialFor(names ...string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	var errs []error
	for _, name := range names {
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
	return nil, fmt.Errorf("running as root and no unprivileged user (%s) to run the server as: %w",
		strings.Join(names, ", "), errors.Join(errs...))
}

// makeServerRoot creates a private directory (mode 0700) named with
// prefix, owned by the server's user, under os.TempDir(). It is not
// t.TempDir(), which belongs to root and is closed to the server's user.
func makeServerRoot(prefix string, cred *syscall.Credential) (string, error) {
	base := os.TempDir()
	if cred != nil {
		if err := checkTraversable(base, cred); err != nil {
			return "", err
		}
	}
	root, err := os.MkdirTemp(base, prefix)
	if err != nil {
		return "", fmt.Errorf("creating server directory: %w", err)
	}
	if cred != nil {
		if err := os.Chown(root, int(cred.Uid), int(cred.Gid)); err != nil {
			_ = os.RemoveAll(root)
			return "", fmt.Errorf("handing %q to uid %d: %w", root, cred.Uid, err)
		}
	}
	return root, nil
}

// command prepares a MariaDB program to run as the server's user, with a
// minimal environment (so MYSQL_* variables and ~/.my.cnf of the caller
// cannot change it) and its output appended to out.
func (m *MySQL) command(ctx context.Context, out *os.File, path string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = m.root
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + m.root, "LC_ALL=C", "LANG=C", "TZ=UTC"}
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: m.cred,
		Setpgid:    true,
		// A test binary killed by its timeout must not leave a server behind.
		Pdeathsig: syscall.SIGKILL,
	}
	return cmd
}

// storageOptions are the server options that shape the data files; they
// are given to mariadb-install-db and mariadbd alike. Durability is not
// needed for throwaway test data, so flushing is off: never copy these to a
// real server.
var storageOptions = []string{
	"--innodb-log-file-size=8M",
	"--innodb-buffer-pool-size=16M",
	"--innodb-flush-log-at-trx-commit=0",
	"--innodb-doublewrite=0",
	"--skip-name-resolve",
	"--character-set-server=utf8mb4",
	"--collation-server=utf8mb4_unicode_ci",
}

// install creates the data directory with the system tables. root@localhost
// authenticates only through the Unix socket (as the server's own user), so
// the administrator created at start is the only password login.
func (m *MySQL) install() error {
	logPath := filepath.Join(m.root, "install.log")
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("creating install log: %w", err)
	}
	defer out.Close()
	ctx, cancel := context.WithTimeout(context.Background(), mysqlInstallTimeout)
	defer cancel()
	args := append([]string{
		"--no-defaults", // must come first
		"--datadir=" + m.DataDir,
		"--auth-root-authentication-method=socket",
		"--skip-test-db",
	}, storageOptions...)
	if err := m.command(ctx, out, m.bin.install, args...).Run(); err != nil {
		return fmt.Errorf("running mariadb-install-db: %w\n--- %s ---\n%s", err, logPath, logTail(logPath))
	}
	return nil
}

// writeCertificate makes the server's self-signed certificate for
// 127.0.0.1 (see writeServerCertificate) and keeps it as the only root of
// TLSConfig.
func (m *MySQL) writeCertificate() error {
	cert, err := writeServerCertificate(m.root, m.Host, "sigil test mariadb", m.cred)
	if err != nil {
		return err
	}
	m.caPool = x509.NewCertPool()
	m.caPool.AddCert(cert)
	return nil
}

// initSQL is run by the server at start-up (--init-file): it creates the
// administrator and the test database. %s is the password, hex digits.
const initSQL = `CREATE USER IF NOT EXISTS '` + MySQLAdmin + `'@'%%' IDENTIFIED BY '%s';
GRANT ALL PRIVILEGES ON *.* TO '` + MySQLAdmin + `'@'%%' WITH GRANT OPTION;
CREATE DATABASE IF NOT EXISTS ` + MySQLDatabase + `;
`

// start launches mariadbd on port and waits until the administrator can log
// in. It returns errPortInUse when the port was taken.
func (m *MySQL) start(ctx context.Context, port int) error {
	m.Port = port
	initFile := filepath.Join(m.root, "init.sql")
	if err := os.WriteFile(initFile, fmt.Appendf(nil, initSQL, m.Password), 0o600); err != nil {
		return fmt.Errorf("writing init file: %w", err)
	}
	// The password is on disk only until the server has read it.
	defer os.Remove(initFile)
	if m.cred != nil {
		if err := os.Chown(initFile, int(m.cred.Uid), int(m.cred.Gid)); err != nil {
			return fmt.Errorf("handing init file to uid %d: %w", m.cred.Uid, err)
		}
	}
	out, err := os.OpenFile(m.LogFile, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("creating server log: %w", err)
	}
	defer out.Close() // the child holds its own descriptor
	if m.cred != nil {
		if err := os.Chown(m.LogFile, int(m.cred.Uid), int(m.cred.Gid)); err != nil {
			return fmt.Errorf("handing server log to uid %d: %w", m.cred.Uid, err)
		}
	}

	args := append([]string{
		"--no-defaults", // must come first
		"--datadir=" + m.DataDir,
		"--socket=" + m.socket,
		"--pid-file=" + filepath.Join(m.root, "mariadb.pid"),
		"--log-error=" + m.LogFile,
		"--port=" + strconv.Itoa(port),
		"--bind-address=127.0.0.1",
		"--skip-networking=0",
		"--event-scheduler=ON",
		"--init-file=" + initFile,
		"--ssl-cert=" + filepath.Join(m.root, serverCertFile),
		"--ssl-key=" + filepath.Join(m.root, serverKeyFile),
		"--skip-log-bin",
		"--max-connections=200",
	}, storageOptions...)
	// The server's lifetime is managed by stop, not by a context.
	cmd := m.command(context.Background(), out, m.bin.server, args...)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("running mariadbd: %w", err)
	}
	// The goroutines below use exited, not m.exited, which a later start
	// replaces.
	exited := make(chan struct{})
	m.proc = cmd
	m.exited = exited
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()

	// A login attempt must not outlive the server: if another process holds
	// the port, the attempt would wait on that process instead.
	loginCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-exited:
			cancel()
		case <-loginCtx.Done():
		}
	}()

	deadline := time.Now().Add(readyTimeout)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			m.proc = nil
			log := readFile(m.LogFile)
			if bytes.Contains(log, []byte("Address already in use")) || bytes.Contains(log, []byte("Do you already have another server running")) {
				return fmt.Errorf("mariadb on port %d: %w", port, errPortInUse)
			}
			return fmt.Errorf("mariadbd exited before accepting connections: %s", cmd.ProcessState)
		case <-ctx.Done():
			return fmt.Errorf("waiting for mariadb: %w", ctx.Err())
		default:
		}
		lastErr = m.tryLogin(loginCtx)
		if lastErr == nil {
			return nil
		}
		timer := time.NewTimer(pollInterval)
		select {
		case <-timer.C:
		case <-exited:
			timer.Stop()
		case <-ctx.Done():
			timer.Stop()
		}
	}
	return fmt.Errorf("mariadb did not accept a login within %v: %w", readyTimeout, lastErr)
}

// tryLogin checks that the server accepts TCP connections and that the
// administrator can log in with its password and run a query.
func (m *MySQL) tryLogin(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, loginTimeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", m.Addr())
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", m.Addr(), err)
	}
	_ = c.Close()
	conn, err := mysql.NewConnector(m.Config(m.User, m.Password, m.Database))
	if err != nil {
		return fmt.Errorf("configuring connection: %w", err)
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	var one int
	if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("logging in as %s: %w", m.User, err)
	}
	if one != 1 {
		return fmt.Errorf("SELECT 1 returned %d", one)
	}
	return nil
}

// stop kills the server and waits for it to exit. The data directory is
// deleted afterwards, so a clean shutdown would only cost time. Calling
// stop again does nothing.
func (m *MySQL) stop() error {
	if m.proc == nil {
		return nil
	}
	proc := m.proc
	m.proc = nil
	pid := proc.Process.Pid
	// The server is not yet reaped, so its pid still names its process
	// group, which holds nothing else.
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("killing mariadbd %d: %w", pid, err)
	}
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-m.exited:
		return nil
	case <-timer.C:
		return fmt.Errorf("mariadbd %d did not exit within %v of SIGKILL", pid, stopTimeout)
	}
}
