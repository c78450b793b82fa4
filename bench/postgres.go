package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// The sigil-get-dynamic scenario needs a PostgreSQL server to issue users
// from. internal/testutil's StartPostgres cannot be used here: it takes a
// testing.TB and, as a test helper, must not be linked into a binary. This
// file starts one the same way (same binaries, same settings), with errors
// instead of t.Fatal.

// Where the Debian package postgresql-15 installs its binaries, and the
// superuser created in the throwaway server; both as in internal/testutil.
const (
	pgBinDir    = "/usr/lib/postgresql/15/bin"
	pgSuperuser = "sigil_admin"
)

// Bounds on the throwaway server's start and stop.
const (
	pgInitTimeout  = 2 * time.Minute
	pgReadyTimeout = time.Minute
	pgStopTimeout  = 10 * time.Second
)

// benchPostgres is a running throwaway PostgreSQL server on 127.0.0.1.
type benchPostgres struct {
	port     int
	password string
	root     string
	proc     *exec.Cmd
	exited   chan struct{}
	cred     *syscall.Credential
}

// startPostgres initialises a data directory under the system temporary
// directory and starts a server on a free port of 127.0.0.1 with SCRAM
// authentication and durability off (fsync=off: the data is thrown away).
// When the process runs as root, the server runs as "postgres" or
// "nobody", as PostgreSQL requires. stop ends it and removes the directory.
func startPostgres(ctx context.Context) (_ *benchPostgres, err error) {
	for _, name := range []string{"initdb", "postgres"} {
		if _, err := os.Stat(filepath.Join(pgBinDir, name)); err != nil {
			return nil, fmt.Errorf("this scenario needs PostgreSQL 15 (%v); install it with `apt-get install postgresql-15`", err)
		}
	}
	p := &benchPostgres{}
	if p.cred, err = pgCredential(); err != nil {
		return nil, err
	}
	if p.root, err = os.MkdirTemp("", "sigil-bench-pg-"); err != nil {
		return nil, fmt.Errorf("creating the postgres directory: %w", err)
	}
	defer func() {
		if err != nil {
			p.stop()
		}
	}()
	if p.cred != nil {
		// MkdirTemp makes the directory 0700 and owned by root; the
		// server's user must own it. Its parent (os.TempDir, /tmp) is
		// world-searchable on the machines this runs on.
		if err := os.Chown(p.root, int(p.cred.Uid), int(p.cred.Gid)); err != nil {
			return nil, fmt.Errorf("handing %s to uid %d: %w", p.root, p.cred.Uid, err)
		}
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	p.password = hex.EncodeToString(b)
	if err := p.initdb(); err != nil {
		return nil, err
	}
	// Another process may take the chosen port before the server binds
	// it; the server then exits and a new port is tried.
	for attempt := 1; ; attempt++ {
		if p.port, err = freeLocalPort(); err != nil {
			return nil, err
		}
		err = p.start(ctx)
		if err == nil {
			return p, nil
		}
		if p.proc != nil || attempt == 3 {
			return nil, err
		}
	}
}

// pgCredential returns who the server must run as: nil (this process's
// user) unless it is root.
func pgCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil || uid == 0 {
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, errors.New("running as root and no unprivileged user (postgres, nobody) to run postgres as")
}

// command prepares a PostgreSQL binary with a minimal environment, its
// output appended to the log in the server's directory.
func (p *benchPostgres) command(ctx context.Context, log *os.File, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(pgBinDir, name), args...)
	cmd.Dir = p.root
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C", "LANG=C", "TZ=UTC"}
	cmd.Stdout, cmd.Stderr = log, log
	// Its own process group, killed with this process.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred, Setpgid: true, Pdeathsig: syscall.SIGKILL}
	return cmd
}

func (p *benchPostgres) logFile() (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(p.root, "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the postgres log: %w", err)
	}
	if p.cred != nil {
		_ = f.Chown(int(p.cred.Uid), int(p.cred.Gid))
	}
	return f, nil
}

func (p *benchPostgres) initdb() error {
	pwfile := filepath.Join(p.root, "pwfile")
	if err := os.WriteFile(pwfile, []byte(p.password+"\n"), 0o600); err != nil {
		return fmt.Errorf("writing the password file: %w", err)
	}
	defer os.Remove(pwfile)
	if p.cred != nil {
		if err := os.Chown(pwfile, int(p.cred.Uid), int(p.cred.Gid)); err != nil {
			return fmt.Errorf("handing the password file to uid %d: %w", p.cred.Uid, err)
		}
	}
	log, err := p.logFile()
	if err != nil {
		return err
	}
	defer log.Close()
	ctx, cancel := context.WithTimeout(context.Background(), pgInitTimeout)
	defer cancel()
	cmd := p.command(ctx, log, "initdb", "--pgdata="+filepath.Join(p.root, "data"), "--username="+pgSuperuser,
		"--pwfile="+pwfile, "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions")
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("running initdb: %w\n--- postgres log ---\n%s", err, tail(log.Name()))
	}
	return nil
}

func (p *benchPostgres) start(ctx context.Context) error {
	log, err := p.logFile()
	if err != nil {
		return err
	}
	defer log.Close() // the server holds its own descriptor
	cmd := p.command(context.Background(), log, "postgres", "-D", filepath.Join(p.root, "data"), "-p", strconv.Itoa(p.port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", "-c", "password_encryption=scram-sha-256",
		// Throwaway data: durability off, as in internal/testutil.
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "shared_buffers=32MB", "-c", "logging_collector=off")
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting postgres: %w", err)
	}
	p.proc = cmd
	p.exited = make(chan struct{})
	exited := p.exited
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	deadline := time.Now().Add(pgReadyTimeout)
	for {
		lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		c, err := pgx.Connect(lctx, p.dsn())
		cancel()
		if err == nil {
			_ = c.Close(context.Background())
			return nil
		}
		select {
		case <-p.exited:
			p.proc = nil
			return fmt.Errorf("postgres exited before accepting connections\n--- postgres log ---\n%s", tail(log.Name()))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres did not accept a login within %v: %w", pgReadyTimeout, err)
		}
	}
}

// dsn logs in as the superuser, without TLS.
func (p *benchPostgres) dsn() string {
	return fmt.Sprintf("postgres://%s:%s@%s/postgres?sslmode=disable", pgSuperuser, p.password, net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)))
}

// stop ends the server with an immediate shutdown (SIGQUIT), kills its
// process group if it lingers, and removes its directory.
func (p *benchPostgres) stop() {
	if p.proc != nil {
		pid := p.proc.Process.Pid
		_ = syscall.Kill(pid, syscall.SIGQUIT)
		select {
		case <-p.exited:
		case <-time.After(pgStopTimeout):
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			<-p.exited
		}
		p.proc = nil
	}
	if p.root != "" {
		_ = os.RemoveAll(p.root)
	}
}

// freeLocalPort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freeLocalPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("choosing a port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
