package testutil

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

func TestStartMySQL(t *testing.T) {
	start := time.Now()
	my := StartMySQL(t)
	t.Logf("mariadb ready on port %d in %v", my.Port, time.Since(start).Round(time.Millisecond))
	db := my.Open(t)
	ctx := t.Context()

	t.Run("administrator has every privilege", func(t *testing.T) {
		var grants []string
		rows, err := db.QueryContext(ctx, "SHOW GRANTS")
		if err != nil {
			t.Fatalf("SHOW GRANTS: %v", err)
		}
		defer rows.Close()
		for rows.Next() {
			var g string
			if err := rows.Scan(&g); err != nil {
				t.Fatal(err)
			}
			grants = append(grants, g)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		all := strings.Join(grants, "\n")
		if !strings.Contains(all, "GRANT ALL PRIVILEGES ON *.*") || !strings.Contains(all, "WITH GRANT OPTION") {
			t.Fatalf("grants of %s:\n%s", my.User, all)
		}
	})

	t.Run("settings", func(t *testing.T) {
		tests := []struct {
			variable, want string
		}{
			{"@@GLOBAL.event_scheduler", "ON"},
			{"@@GLOBAL.bind_address", "127.0.0.1"},
			{"@@GLOBAL.port", strconv.Itoa(my.Port)},
			{"@@GLOBAL.skip_networking", "0"},
			{"@@GLOBAL.socket", my.socket},
			{"@@GLOBAL.datadir", my.DataDir + "/"},
			{"DATABASE()", MySQLDatabase},
			{"LEFT(VERSION(), 5)", "10.11"},
		}
		for _, tt := range tests {
			t.Run(tt.variable, func(t *testing.T) {
				var got string
				if err := db.QueryRowContext(ctx, "SELECT "+tt.variable).Scan(&got); err != nil {
					t.Fatalf("reading %s: %v", tt.variable, err)
				}
				if got != tt.want {
					t.Fatalf("%s = %q, want %q", tt.variable, got, tt.want)
				}
			})
		}
	})

	t.Run("server runs unprivileged", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("only meaningful when the tests run as root")
		}
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", my.proc.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(line, "Uid:") {
				if f := strings.Fields(line); len(f) < 2 || f[1] == "0" {
					t.Fatalf("mariadbd runs as %q", line)
				}
				return
			}
		}
		t.Fatal("no Uid line in /proc status")
	})

	t.Run("a new user logs in with its password", func(t *testing.T) {
		if _, err := db.ExecContext(ctx, "CREATE USER 'probe'@'%' IDENTIFIED BY 'probe-pw'"); err != nil {
			t.Fatal(err)
		}
		var user string
		if err := my.OpenAs(t, "probe", "probe-pw", "").QueryRowContext(ctx, "SELECT CURRENT_USER()").Scan(&user); err != nil {
			t.Fatalf("logging in as probe: %v", err)
		}
		if user != "probe@%" {
			t.Fatalf("CURRENT_USER() = %q", user)
		}
	})

	t.Run("bad credentials are refused", func(t *testing.T) {
		tests := []struct{ name, user, password string }{
			{"wrong password", my.User, my.Password + "x"},
			{"root over TCP", "root", ""},
			{"unknown user", "nobody-here", "x"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				err := my.OpenAs(t, tt.user, tt.password, "").PingContext(ctx)
				var me *mysql.MySQLError
				if !errors.As(err, &me) || string(me.SQLState[:]) != "28000" {
					t.Fatalf("login = %v, want access denied (SQLSTATE 28000)", err)
				}
			})
		}
	})

	t.Run("password stays out of descriptions", func(t *testing.T) {
		for _, s := range []string{my.String(), my.LogValue().String(), fmt.Sprint(my)} {
			if strings.Contains(s, my.Password) {
				t.Fatalf("description %q holds the password", s)
			}
		}
		if !strings.Contains(my.DSN(), my.Password) {
			t.Fatal("DSN lacks the password")
		}
		if _, err := os.Stat(filepath.Join(my.root, "init.sql")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("init file holding the password still exists: %v", err)
		}
	})

	t.Run("TLS with the server's certificate", func(t *testing.T) {
		open := func(tc *tls.Config) *sql.DB {
			cfg := my.Config(my.User, my.Password, "")
			cfg.TLS = tc
			conn, err := mysql.NewConnector(cfg)
			if err != nil {
				t.Fatal(err)
			}
			db := sql.OpenDB(conn)
			t.Cleanup(func() { _ = db.Close() })
			return db
		}
		var name, cipher string
		if err := open(my.TLSConfig()).QueryRowContext(ctx, "SHOW SESSION STATUS LIKE 'Ssl_cipher'").Scan(&name, &cipher); err != nil {
			t.Fatalf("TLS login: %v", err)
		}
		if cipher == "" {
			t.Fatal("the session is not encrypted")
		}
		var plainName, plain string
		if err := db.QueryRowContext(ctx, "SHOW SESSION STATUS LIKE 'Ssl_cipher'").Scan(&plainName, &plain); err != nil || plain != "" {
			t.Fatalf("plain session reports cipher %q (%v)", plain, err)
		}
		// Without the server's certificate as a root, verification fails.
		err := open(&tls.Config{MinVersion: tls.VersionTLS12}).PingContext(ctx)
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Fatalf("TLS login trusting only the system roots = %v, want an unknown authority", err)
		}
	})

	t.Run("DSN works with the driver", func(t *testing.T) {
		cfg, err := mysql.ParseDSN(my.DSN())
		if err != nil {
			t.Fatal(err)
		}
		if cfg.User != my.User || cfg.Passwd != my.Password || cfg.Addr != my.Addr() || cfg.DBName != MySQLDatabase {
			t.Fatalf("DSN parses to %s@%s/%s", cfg.User, cfg.Addr, cfg.DBName)
		}
		conn, err := mysql.NewConnector(cfg)
		if err != nil {
			t.Fatal(err)
		}
		dsnDB := sql.OpenDB(conn)
		defer dsnDB.Close()
		if err := dsnDB.PingContext(ctx); err != nil {
			t.Fatalf("ping through DSN: %v", err)
		}
	})
}

func TestStartMySQLCleanup(t *testing.T) {
	var (
		root string
		cfg  *mysql.Config
		pid  int
	)
	t.Run("server", func(t *testing.T) {
		my := StartMySQL(t)
		root, cfg, pid = my.root, my.Config(my.User, my.Password, ""), my.proc.Process.Pid
		if err := my.Open(t).PingContext(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
	if t.Failed() {
		return
	}
	if _, err := os.Stat(root); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("directory %s still there after cleanup: %v", root, err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if bytes.Contains(cmdline, []byte(root)) {
			t.Errorf("mariadbd %d still running after cleanup", pid)
		}
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err == nil {
		t.Error("server still accepts logins after cleanup")
	}
}

func TestStartMySQLPortTaken(t *testing.T) {
	my := StartMySQL(t)
	if err := my.stop(); err != nil {
		t.Fatalf("stopping: %v", err)
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	err = my.start(t.Context(), taken.Addr().(*net.TCPAddr).Port)
	if !errors.Is(err, errPortInUse) {
		t.Fatalf("start on a taken port = %v, want errPortInUse\n%s", err, logTail(my.LogFile))
	}
	if my.proc != nil {
		t.Fatal("failed start left a server behind")
	}
	fresh, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	if err := my.start(t.Context(), fresh); err != nil {
		t.Fatalf("restart on port %d: %v\n%s", fresh, err, logTail(my.LogFile))
	}
	var one int
	if err := my.Open(t).QueryRowContext(t.Context(), "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1 after restart = %d, %v", one, err)
	}
}

func TestStartMySQLMissingBinaries(t *testing.T) {
	tests := []struct {
		require string
		want    string
	}{
		{"", "skip"},
		{"0", "skip"},
		{"1", "fatal"},
	}
	for _, tt := range tests {
		t.Run("require="+tt.require, func(t *testing.T) {
			t.Setenv(requireMySQLEnv, tt.require)
			rec := &recordingTB{TB: t}
			dir := t.TempDir()
			done := make(chan struct{})
			go func() {
				defer close(done)
				startMySQL(rec, mysqlBinaries{server: filepath.Join(dir, "mariadbd"), install: filepath.Join(dir, "mariadb-install-db")})
			}()
			<-done
			if rec.outcome != tt.want {
				t.Fatalf("outcome %q (%s), want %q", rec.outcome, rec.message, tt.want)
			}
			if !strings.Contains(rec.message, "apt-get install mariadb-server") {
				t.Fatalf("message %q does not say what to install", rec.message)
			}
		})
	}
}

func TestCheckMySQLBinaries(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "exe")
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(plain, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		bin     mysqlBinaries
		wantErr string
	}{
		{"both missing", mysqlBinaries{server: filepath.Join(dir, "a"), install: filepath.Join(dir, "b")}, "not found"},
		{"server missing", mysqlBinaries{server: filepath.Join(dir, "a"), install: exe}, filepath.Join(dir, "a") + " not found"},
		{"not executable", mysqlBinaries{server: plain, install: exe}, "is not executable"},
		{"directory", mysqlBinaries{server: dir, install: exe}, "is not executable"},
		{"complete", mysqlBinaries{server: exe, install: exe}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkMySQLBinaries(tt.bin)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("checkMySQLBinaries: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("checkMySQLBinaries = %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}
