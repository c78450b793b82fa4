package main

import (
	"bytes"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// envName is the environment variable that sets a flag: SIGIL_ and the flag
// name in upper case with dashes as underscores (--data-dir: SIGIL_DATA_DIR).
func envName(flag string) string {
	return "SIGIL_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// applyLayers fills every flag the user did not set on the command line from
// the environment, then from the YAML config file, leaving the flag's
// default otherwise: flags > SIGIL_* environment > config file > defaults.
// Flags listed in skip (such as --config itself) are left alone.
func applyLayers(cmd *cobra.Command, lookupEnv func(string) (string, bool), configPath string, skip ...string) error {
	file, err := readConfigFile(configPath)
	if err != nil {
		return err
	}
	known := map[string]bool{}
	var firstErr error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		known[f.Name] = true
		if firstErr != nil || f.Changed || contains(skip, f.Name) {
			return
		}
		if v, ok := lookupEnv(envName(f.Name)); ok {
			if err := f.Value.Set(v); err != nil {
				firstErr = fmt.Errorf("environment %s: %w", envName(f.Name), scrub(err, v))
			}
			return
		}
		if v, ok := file[f.Name]; ok {
			if err := f.Value.Set(v); err != nil {
				firstErr = fmt.Errorf("config file %s: key %q: %w", configPath, f.Name, scrub(err, v))
			}
		}
	})
	if firstErr != nil {
		return firstErr
	}
	var unknown []string
	for k := range file {
		if !known[k] || contains(skip, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("config file %s: unknown keys %s: keys are the flag names of `sigil %s --help`",
			configPath, strings.Join(unknown, ", "), cmd.Name())
	}
	return nil
}

// readConfigFile reads a flat YAML mapping of flag names to scalar values.
func readConfigFile(path string) (map[string]string, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config file: %w", err)
	}
	var raw map[string]yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("config file %s: not a YAML mapping of settings: %w", path, err)
	}
	out := make(map[string]string, len(raw))
	for k, n := range raw {
		if n.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("config file %s: key %q (line %d): want a single value", path, k, n.Line)
		}
		out[k] = n.Value
	}
	return out, nil
}

// scrub removes a value from an error message, so a mistyped secret never
// lands on a terminal or in a log.
func scrub(err error, value string) error {
	if value == "" || !strings.Contains(err.Error(), value) {
		return err
	}
	return fmt.Errorf("%s", strings.ReplaceAll(err.Error(), value, "<value>"))
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
