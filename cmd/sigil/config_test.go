package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// layered builds a command with three flags and applies the layers.
func layered(t *testing.T, args []string, env map[string]string, yaml string) (listen, dataDir string, timeout time.Duration, err error) {
	t.Helper()
	cmd := &cobra.Command{Use: "server", RunE: func(*cobra.Command, []string) error { return nil }}
	cmd.Flags().StringVar(&listen, "listen", "default-listen", "")
	cmd.Flags().StringVar(&dataDir, "data-dir", "default-dir", "")
	cmd.Flags().DurationVar(&timeout, "shutdown-timeout", time.Second, "")
	if err := cmd.Flags().Parse(args); err != nil {
		t.Fatal(err)
	}
	path := ""
	if yaml != "" {
		path = filepath.Join(t.TempDir(), "c.yaml")
		os.WriteFile(path, []byte(yaml), 0o600)
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	err = applyLayers(cmd, lookup, path)
	return
}

func TestConfigPrecedence(t *testing.T) {
	yaml := "listen: yaml-listen\ndata-dir: yaml-dir\nshutdown-timeout: 7s\n"
	tests := []struct {
		name                string
		args                []string
		env                 map[string]string
		yaml                string
		wantListen, wantDir string
		wantTimeout         time.Duration
	}{
		{"defaults", nil, nil, "", "default-listen", "default-dir", time.Second},
		{"file over defaults", nil, nil, yaml, "yaml-listen", "yaml-dir", 7 * time.Second},
		{"env over file", nil, map[string]string{"SIGIL_LISTEN": "env-listen", "SIGIL_SHUTDOWN_TIMEOUT": "9s"}, yaml, "env-listen", "yaml-dir", 9 * time.Second},
		{"flag over env", []string{"--listen", "flag-listen"}, map[string]string{"SIGIL_LISTEN": "env-listen"}, yaml, "flag-listen", "yaml-dir", 7 * time.Second},
		{"flag equal to default still wins", []string{"--listen=default-listen"}, map[string]string{"SIGIL_LISTEN": "env-listen"}, "", "default-listen", "default-dir", time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, d, to, err := layered(t, tc.args, tc.env, tc.yaml)
			if err != nil {
				t.Fatal(err)
			}
			if l != tc.wantListen || d != tc.wantDir || to != tc.wantTimeout {
				t.Errorf("got listen=%q dir=%q timeout=%s, want %q %q %s", l, d, to, tc.wantListen, tc.wantDir, tc.wantTimeout)
			}
		})
	}
}

func TestConfigFileErrors(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"unknown key", "listne: x\n", "unknown keys listne"},
		{"not a mapping", "- a\n- b\n", "not a YAML mapping"},
		{"nested value", "listen:\n  a: b\n", "want a single value"},
		{"bad duration", "shutdown-timeout: soon\n", "shutdown-timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, _, err := layered(t, nil, nil, tc.yaml)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestEnvErrorNeverEchoesValue(t *testing.T) {
	_, _, _, err := layered(t, nil, map[string]string{"SIGIL_SHUTDOWN_TIMEOUT": "hunter2-secret"}, "")
	if err == nil {
		t.Fatal("bad duration accepted")
	}
	if strings.Contains(err.Error(), "hunter2-secret") {
		t.Errorf("error echoes the value: %v", err)
	}
}

func TestServerHelpDocumentsEverySetting(t *testing.T) {
	cmd := newServerCmd()
	var out strings.Builder
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"--help"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, flag := range []string{"--listen", "--data-dir", "--storage", "--key-provider", "--key-file", "--key-env",
		"--account-id", "--region", "--log-level", "--log-format", "--tls-cert", "--tls-key", "--config", "SIGIL_"} {
		if !strings.Contains(out.String(), flag) {
			t.Errorf("sigil server --help does not mention %s", flag)
		}
	}
}
