package rotation_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"sigil.dev/sigil/internal/rotation"
	"sigil.dev/sigil/internal/testutil"
)

// flakyTest wraps a database rotator and fails its testSecret while
// fail is set, keeping the rotator's Revert.
type flakyTest struct {
	rotation.Rotator
	rotation.Reverter
	fail bool
}

func (f *flakyTest) Step(ctx context.Context, step rotation.Step, job rotation.Job) error {
	if step == rotation.StepTest && f.fail {
		return fmt.Errorf("injected testSecret failure")
	}
	return f.Rotator.Step(ctx, step, job)
}

func dbSecretJSON(t *testing.T, engine, host string, port int, user, password, dbname string) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"engine": engine, "host": host, "port": port, "username": user, "password": password, "dbname": dbname})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// password returns the password member of a database secret.
func password(t *testing.T, value string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(value), &m); err != nil {
		t.Fatal(err)
	}
	return m["password"].(string)
}

func TestPostgreSQLRotation(t *testing.T) {
	pg := testutil.StartPostgres(t)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, pg.DSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Close(context.Background()) })
	exec := func(sql string) {
		t.Helper()
		if _, err := admin.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	canLogin := func(user, pw string) bool {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, pg.DSNFor(user, pw, pg.Database))
		if err != nil {
			return false
		}
		defer c.Close(ctx)
		var one int
		return c.QueryRow(ctx, "SELECT 1").Scan(&one) == nil && one == 1
	}

	flaky := &flakyTest{Rotator: &rotation.PostgreSQLRotator{}, Reverter: &rotation.PostgreSQLRotator{}}
	e := newServiceEnv(t, map[string]rotation.Rotator{"pg-flaky": flaky})
	r := e.runner("a")

	// A role whose name needs quoting, with a password holding a quote.
	const role = `app "rw"`
	const oldPW = `old-pa'ss`
	exec(`CREATE ROLE "app ""rw""" LOGIN PASSWORD 'old-pa''ss'`)
	e.create("db/app", dbSecretJSON(t, "postgres", pg.Host, pg.Port, role, oldPW, pg.Database))

	t.Run("rotation", func(t *testing.T) {
		token := e.rotate("db/app", rotation.BuiltinPostgreSQL, true)["VersionId"].(string)
		if res := pass(t, r); res.Succeeded != 1 {
			t.Fatalf("pass = %+v, status %v", res, e.describe("db/app")["SigilRotationStatus"])
		}
		id, cur := e.value("db/app", rotation.StageCurrent)
		newPW := password(t, cur)
		if id != token || newPW == oldPW {
			t.Fatalf("AWSCURRENT = %s, want a new password under %s", id, token)
		}
		if !canLogin(role, newPW) {
			t.Fatal("the new password does not log in")
		}
		if canLogin(role, oldPW) {
			t.Fatal("the old password still logs in")
		}
		var stored string
		if err := admin.QueryRow(ctx, "SELECT rolpassword FROM pg_authid WHERE rolname = $1", role).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(stored, "SCRAM-SHA-256$4096:") {
			t.Fatalf("stored password is %.14s..., want a SCRAM verifier", stored)
		}
		if _, prev := e.value("db/app", rotation.StagePrevious); password(t, prev) != oldPW {
			t.Fatal("AWSPREVIOUS is not the old value")
		}
	})

	t.Run("falls back to AWSPREVIOUS", func(t *testing.T) {
		// Someone set the database back to the previous password.
		exec(`ALTER ROLE "app ""rw""" PASSWORD 'old-pa''ss'`)
		e.rotate("db/app", rotation.BuiltinPostgreSQL, true)
		if res := pass(t, r); res.Succeeded != 1 {
			t.Fatalf("pass = %+v, status %v", res, e.describe("db/app")["SigilRotationStatus"])
		}
		_, cur := e.value("db/app", rotation.StageCurrent)
		if !canLogin(role, password(t, cur)) {
			t.Fatal("the new password does not log in")
		}
	})

	t.Run("failing setSecret", func(t *testing.T) {
		oldID, old := e.value("db/app", rotation.StageCurrent)
		oldPW := password(t, old)
		// The role may not log in at all for now, so setSecret can log
		// in with neither AWSPENDING nor AWSCURRENT.
		exec(`ALTER ROLE "app ""rw""" CONNECTION LIMIT 0`)
		token := e.rotate("db/app", rotation.BuiltinPostgreSQL, true)["VersionId"].(string)
		if res := pass(t, r); res.Failed != 1 {
			t.Fatalf("pass = %+v", res)
		}
		step, cause := e.status("db/app")
		if step != "setSecret" || !strings.Contains(cause, "neither AWSCURRENT nor AWSPREVIOUS logs in") {
			t.Fatalf("status = %q %q", step, cause)
		}
		_, pend := e.value("db/app", rotation.StagePending)
		newPW := password(t, pend)
		if strings.Contains(cause, oldPW) || strings.Contains(cause, newPW) {
			t.Fatal("the failure cause holds a password")
		}
		for _, ev := range e.audit.all() {
			if strings.Contains(ev.ErrorMessage, oldPW) || strings.Contains(ev.ErrorMessage, newPW) {
				t.Fatal("an audit event holds a password")
			}
		}
		if id, _ := e.value("db/app", rotation.StageCurrent); id != oldID {
			t.Fatalf("AWSCURRENT moved to %s", id)
		}
		exec(`ALTER ROLE "app ""rw""" CONNECTION LIMIT -1`)
		if !canLogin(role, oldPW) || canLogin(role, newPW) {
			t.Fatal("after a failed setSecret the old password must still be the one that works")
		}
		e.clock.Advance(time.Minute)
		if res := pass(t, r); res.Succeeded != 1 {
			t.Fatalf("retry = %+v, status %v", res, e.describe("db/app")["SigilRotationStatus"])
		}
		id, cur := e.value("db/app", rotation.StageCurrent)
		if id != token || password(t, cur) != newPW || !canLogin(role, newPW) || canLogin(role, oldPW) {
			t.Fatalf("after the retry AWSCURRENT = %s, want %s with the pending password working", id, token)
		}
	})

	t.Run("failing testSecret", func(t *testing.T) {
		oldID, old := e.value("db/app", rotation.StageCurrent)
		oldPW := password(t, old)
		flaky.fail = true
		token := e.rotate("db/app", "pg-flaky", true)["VersionId"].(string)
		if res := pass(t, r); res.Failed != 1 {
			t.Fatalf("pass = %+v", res)
		}
		if step, _ := e.status("db/app"); step != "testSecret" {
			t.Fatalf("status step = %q", step)
		}
		if id, _ := e.value("db/app", rotation.StageCurrent); id != oldID {
			t.Fatalf("AWSCURRENT moved to %s", id)
		}
		pendID, pend := e.value("db/app", rotation.StagePending)
		newPW := password(t, pend)
		if pendID != token {
			t.Fatalf("AWSPENDING = %s, want kept on %s", pendID, token)
		}
		// setSecret had changed the password; the runner undid it.
		if !canLogin(role, oldPW) || canLogin(role, newPW) {
			t.Fatal("after a failed testSecret the old password must work again")
		}
		flaky.fail = false
		e.clock.Advance(time.Minute)
		if res := pass(t, r); res.Succeeded != 1 {
			t.Fatalf("retry = %+v, status %v", res, e.describe("db/app")["SigilRotationStatus"])
		}
		if id, cur := e.value("db/app", rotation.StageCurrent); id != token || password(t, cur) != newPW {
			t.Fatalf("after the retry AWSCURRENT = %s, want %s", id, token)
		}
		if !canLogin(role, newPW) || canLogin(role, oldPW) {
			t.Fatal("after the retry only the new password must work")
		}
	})

	t.Run("no password in logs or audit", func(t *testing.T) {
		seen := []string{oldPW}
		for _, stage := range []string{rotation.StageCurrent, rotation.StagePrevious} {
			if _, v := e.value("db/app", stage); v != "" {
				seen = append(seen, password(t, v))
			}
		}
		logs := e.logs.String()
		if !strings.Contains(logs, "rotation failed") {
			t.Fatalf("the runner logged no failure: %s", logs)
		}
		for _, pw := range seen {
			if strings.Contains(logs, pw) {
				t.Fatal("a password appears in the runner's log")
			}
			for _, ev := range e.audit.all() {
				if ev.Action == "RotationFailed" && strings.Contains(ev.ErrorMessage, pw) {
					t.Fatal("a password appears in an audit event")
				}
			}
		}
	})

	t.Run("wrong host", func(t *testing.T) {
		e.create("db/nowhere", dbSecretJSON(t, "postgres", "127.0.0.1", 1, role, "x", pg.Database))
		e.rotate("db/nowhere", rotation.BuiltinPostgreSQL, true)
		if res := pass(t, r); res.Failed != 1 {
			t.Fatalf("pass = %+v", res)
		}
		if step, cause := e.status("db/nowhere"); step != "setSecret" || !strings.Contains(cause, "127.0.0.1:1") {
			t.Fatalf("status = %q %q", step, cause)
		}
		if _, cur := e.value("db/nowhere", rotation.StageCurrent); password(t, cur) != "x" {
			t.Fatal("AWSCURRENT changed")
		}
	})
}

func TestMySQLRotation(t *testing.T) {
	my := testutil.StartMySQL(t)
	ctx := context.Background()
	admin := my.Open(t)
	exec := func(q string) {
		t.Helper()
		if _, err := admin.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	canLogin := func(user, pw string) bool {
		t.Helper()
		db := my.OpenAs(t, user, pw, "")
		defer db.Close()
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		var one int
		return db.QueryRowContext(ctx, "SELECT 1").Scan(&one) == nil && one == 1
	}
	flaky := &flakyTest{Rotator: &rotation.MySQLRotator{}, Reverter: &rotation.MySQLRotator{}}
	e := newServiceEnv(t, map[string]rotation.Rotator{"mysql-flaky": flaky})
	r := e.runner("a")

	const user = "app_rw"
	const oldPW = "old-pa'ss"
	exec("CREATE USER 'app_rw'@'%' IDENTIFIED BY 'old-pa''ss'")
	// sslmode=disable: the test server has no certificate.
	secret := fmt.Sprintf(`{"engine":"mysql","host":%q,"port":%d,"username":%q,"password":%q,"dbname":"","sslmode":"disable"}`, my.Host, my.Port, user, oldPW)
	e.create("db/my", secret)

	t.Run("rotation", func(t *testing.T) {
		token := e.rotate("db/my", rotation.BuiltinMySQL, true)["VersionId"].(string)
		if res := pass(t, r); res.Succeeded != 1 {
			t.Fatalf("pass = %+v, status %v", res, e.describe("db/my")["SigilRotationStatus"])
		}
		id, cur := e.value("db/my", rotation.StageCurrent)
		newPW := password(t, cur)
		if id != token || !canLogin(user, newPW) || canLogin(user, oldPW) {
			t.Fatalf("after the rotation: version %s, new works %v, old works %v", id, canLogin(user, newPW), canLogin(user, oldPW))
		}
	})

	t.Run("failing testSecret", func(t *testing.T) {
		oldID, old := e.value("db/my", rotation.StageCurrent)
		oldPW := password(t, old)
		flaky.fail = true
		token := e.rotate("db/my", "mysql-flaky", true)["VersionId"].(string)
		if res := pass(t, r); res.Failed != 1 {
			t.Fatalf("pass = %+v", res)
		}
		if id, _ := e.value("db/my", rotation.StageCurrent); id != oldID {
			t.Fatalf("AWSCURRENT moved to %s", id)
		}
		_, pend := e.value("db/my", rotation.StagePending)
		newPW := password(t, pend)
		if !canLogin(user, oldPW) || canLogin(user, newPW) {
			t.Fatal("after a failed testSecret the old password must work again")
		}
		flaky.fail = false
		e.clock.Advance(time.Minute)
		if res := pass(t, r); res.Succeeded != 1 {
			t.Fatalf("retry = %+v, status %v", res, e.describe("db/my")["SigilRotationStatus"])
		}
		if id, _ := e.value("db/my", rotation.StageCurrent); id != token || !canLogin(user, newPW) || canLogin(user, oldPW) {
			t.Fatalf("after the retry AWSCURRENT = %s, want %s with only the new password working", id, token)
		}
	})

	t.Run("failing setSecret", func(t *testing.T) {
		oldID, old := e.value("db/my", rotation.StageCurrent)
		oldPW := password(t, old)
		exec("ALTER USER 'app_rw'@'%' ACCOUNT LOCK")
		e.rotate("db/my", rotation.BuiltinMySQL, true)
		if res := pass(t, r); res.Failed != 1 {
			t.Fatalf("pass = %+v", res)
		}
		if step, _ := e.status("db/my"); step != "setSecret" {
			t.Fatalf("status step = %q", step)
		}
		exec("ALTER USER 'app_rw'@'%' ACCOUNT UNLOCK")
		_, pend := e.value("db/my", rotation.StagePending)
		if id, _ := e.value("db/my", rotation.StageCurrent); id != oldID || !canLogin(user, oldPW) || canLogin(user, password(t, pend)) {
			t.Fatal("after a failed setSecret AWSCURRENT and the old password must be unchanged")
		}
		e.clock.Advance(time.Minute)
		if res := pass(t, r); res.Succeeded != 1 {
			t.Fatalf("retry = %+v, status %v", res, e.describe("db/my")["SigilRotationStatus"])
		}
	})
}
