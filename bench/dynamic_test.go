package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigil.dev/sigil/internal/testutil"
)

func TestRunDynamic(t *testing.T) {
	if _, err := os.Stat(filepath.Join(testutil.PostgresBinDir, "postgres")); err != nil {
		if os.Getenv("SIGIL_REQUIRE_POSTGRES") == "1" {
			t.Fatalf("PostgreSQL 15 is required (SIGIL_REQUIRE_POSTGRES=1): %v", err)
		}
		t.Skipf("skipping: %v; install it with `apt-get install postgresql-15` (set SIGIL_REQUIRE_POSTGRES=1 to make this a failure)", err)
	}
	code, rep, stderr := runJSON(t, append([]string{"-scenarios", "sigil-get-dynamic"}, quick...)...)
	if code != 0 || !rep.OK || len(rep.Results) != 1 {
		t.Fatalf("exit %d, ok %v, %d results\n%s", code, rep.OK, len(rep.Results), stderr)
	}
	if r := rep.Results[0]; r.Scenario != "sigil-get-dynamic" || r.Requests <= 0 || r.Errors != 0 {
		t.Fatalf("result %+v", r)
	}
}

func TestDynamicScenarioIsNamedOnly(t *testing.T) {
	all, err := selectScenarios("all", scenarios())
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range all {
		if sc.name == "sigil-get-dynamic" {
			t.Fatal("all includes sigil-get-dynamic, which needs PostgreSQL")
		}
	}
	if _, ok := findScenario("sigil-get-dynamic", scenarios()); !ok {
		t.Fatal("sigil-get-dynamic is not registered")
	}
}

func TestCheckDynamicCredential(t *testing.T) {
	const name = "bench/dynamic-database-credentials"
	tests := []struct {
		name, body, wantErr string
	}{
		{"issued credential", `{"Name":"` + name + `","SecretString":"{\"engine\":\"postgres\",\"username\":\"v_x\",\"password\":\"p\"}"}`, ""},
		{"not JSON", `<html>`, "not JSON"},
		{"static value", `{"Name":"` + name + `","SecretString":"ssss"}`, "not a credential"},
		{"another secret", `{"Name":"other","SecretString":"{\"engine\":\"postgres\",\"username\":\"v_x\",\"password\":\"p\"}"}`, "unexpected"},
		{"no password", `{"Name":"` + name + `","SecretString":"{\"engine\":\"postgres\",\"username\":\"v_x\"}"}`, "unexpected"},
		{"another engine", `{"Name":"` + name + `","SecretString":"{\"engine\":\"mysql\",\"username\":\"v_x\",\"password\":\"p\"}"}`, "unexpected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkDynamicCredential(name, []byte(tt.body))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("check = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("check = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}
