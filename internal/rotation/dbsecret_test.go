package rotation_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigil.dev/sigil/internal/rotation"
)

func dbSecretFiles(t testing.TB) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "dbsecret", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no database secret samples: %v", err)
	}
	out := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = string(b)
	}
	return out
}

func TestParseDatabaseSecretFiles(t *testing.T) {
	want := map[string]rotation.DatabaseSecret{
		"good_aws.json":         {Engine: "postgres", Host: "db.internal", Port: 5432, Username: "app", Password: "old", DBName: "shop"},
		"good_port_string.json": {Engine: "mysql", Host: "10.0.0.5", Port: 3307, Username: "app", Password: "p", DBName: "shop"},
		"good_minimal.json":     {Host: "db", Port: 1234, Username: "app"},
	}
	for name, src := range dbSecretFiles(t) {
		t.Run(name, func(t *testing.T) {
			d, err := rotation.ParseDatabaseSecret(src, 1234)
			if strings.HasPrefix(name, "bad_") {
				if !errors.Is(err, rotation.ErrInvalidSecretValue) {
					t.Fatalf("Parse = %v, want ErrInvalidSecretValue", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			w := want[name]
			if d.Engine != w.Engine || d.Host != w.Host || d.Port != w.Port || d.Username != w.Username || d.Password != w.Password || d.DBName != w.DBName {
				t.Fatalf("Parse = %s %s %d %s %s, want %+v", d.Engine, d.Host, d.Port, d.Username, d.DBName, w)
			}
		})
	}
}

func TestDatabaseSecretWithPasswordKeepsMembers(t *testing.T) {
	d, err := rotation.ParseDatabaseSecret(`{"engine":"mysql","host":"h","port":"3307","username":"u","password":"old","dbname":"d","proxy":{"a":[1,2]}}`, 3306)
	if err != nil {
		t.Fatal(err)
	}
	out, err := d.WithPassword(`new"pw`)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatal(err)
	}
	if m["password"] != `new"pw` || m["port"] != "3307" || m["host"] != "h" || fmt.Sprint(m["proxy"]) != "map[a:[1 2]]" {
		t.Fatalf("WithPassword = %s", out)
	}
}

func TestDatabaseSecretPrintsWithoutPassword(t *testing.T) {
	d, err := rotation.ParseDatabaseSecret(`{"engine":"postgres","host":"h","username":"u","password":"hunter2-s3cret"}`, 5432)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("x", "db", d)
	for _, s := range []string{fmt.Sprint(d), fmt.Sprintf("%+v", d), fmt.Sprintf("%#v", d), fmt.Sprintf("%s", d), b.String()} {
		if strings.Contains(s, "hunter2") || !strings.Contains(s, "REDACTED") {
			t.Fatalf("printed as %q", s)
		}
	}
}

func FuzzParseDatabaseSecret(f *testing.F) {
	for _, src := range dbSecretFiles(f) {
		f.Add(src)
	}
	f.Fuzz(func(t *testing.T, src string) {
		d, err := rotation.ParseDatabaseSecret(src, 5432)
		if err != nil {
			if !errors.Is(err, rotation.ErrInvalidSecretValue) {
				t.Fatalf("error %v is not ErrInvalidSecretValue", err)
			}
			return
		}
		if d.Host == "" || d.Username == "" || d.Port < 1 || d.Port > 65535 {
			t.Fatalf("accepted %q as %s", src, d)
		}
		out, err := d.WithPassword("pw")
		if err != nil {
			t.Fatal(err)
		}
		back, err := rotation.ParseDatabaseSecret(out, 5432)
		if err != nil || back.Password != "pw" || back.Host != d.Host || back.Username != d.Username || back.Port != d.Port {
			t.Fatalf("round trip of %q: %v", src, err)
		}
	})
}
