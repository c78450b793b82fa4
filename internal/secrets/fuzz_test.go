package secrets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigil.dev/sigil/internal/awsproto"
)

// opNames lists every operation Handle serves, in a fixed order, for the
// fuzz target.
var opNames = func() []string {
	names := make([]string, 0, len(operations))
	for name := range operations {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}()

// requestSeeds reads testdata/requests: <Operation>_*.json and
// bad_<Operation>_*.json.
func requestSeeds(t testing.TB) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "requests", "*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no request testdata: %v", err)
	}
	out := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(p)] = b
	}
	return out
}

// seedOp returns the operation a seed file is for.
func seedOp(t testing.TB, name string) string {
	t.Helper()
	op, _, _ := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(name, "bad_"), ".json"), "_")
	if !slices.Contains(opNames, op) {
		t.Fatalf("seed %s names unknown operation %q", name, op)
	}
	return op
}

// storeState is every key with its revision, to detect changes.
func storeState(t testing.TB, e *env) string {
	t.Helper()
	var b strings.Builder
	for _, en := range dump(t, e.store) {
		fmt.Fprintf(&b, "%s@%d\n", en.Key, en.Revision)
	}
	return b.String()
}

func TestRequestTestdata(t *testing.T) {
	e := newEnv(t)
	e.ok("CreateSecret", map[string]any{"Name": "seed", "SecretString": "v"})
	for name, b := range requestSeeds(t) {
		t.Run(name, func(t *testing.T) {
			op := seedOp(t, name)
			before := storeState(t, e)
			_, err := e.svc.Handle(context.Background(), &Call{Operation: op, Body: b, Principal: rootPrincipal})
			if !strings.HasPrefix(name, "bad_") {
				var ae *awsproto.Error
				if err != nil && !errors.As(err, &ae) {
					t.Fatalf("internal error: %v", err)
				}
				return
			}
			var ae *awsproto.Error
			if !errors.As(err, &ae) || (ae.Code != "SerializationException" && ae.Code != codeInvalidParameter) {
				t.Fatalf("malformed request: %v, want SerializationException or InvalidParameterException", err)
			}
			if after := storeState(t, e); after != before {
				t.Fatal("a malformed request changed the store")
			}
		})
	}
}

// FuzzHandle feeds arbitrary bodies to every operation: Handle must never
// panic, every error must be an AWS error, every failed call must leave the
// store untouched, and every response must encode.
func FuzzHandle(f *testing.F) {
	for name, b := range requestSeeds(f) {
		f.Add(uint8(slices.Index(opNames, seedOp(f, name))), b)
	}
	e := newEnv(f)
	e.ok("CreateSecret", map[string]any{"Name": "seed", "SecretString": "v", "ClientRequestToken": token("aaaaaaaa")})
	f.Fuzz(func(t *testing.T, opIndex uint8, b []byte) {
		op := opNames[int(opIndex)%len(opNames)]
		before := storeState(t, e)
		resp, err := e.svc.Handle(context.Background(), &Call{Operation: op, Body: b, Principal: rootPrincipal})
		if err != nil {
			var ae *awsproto.Error
			if !errors.As(err, &ae) {
				t.Fatalf("%s(%q): non-AWS error %v", op, b, err)
			}
			if ae.Code == "" || ae.Message == "" || ae.Status < 400 || ae.Status > 599 {
				t.Fatalf("%s(%q): malformed error %+v", op, b, ae)
			}
			if after := storeState(t, e); after != before && ae.Code != "ServiceUnavailable" {
				t.Fatalf("%s(%q) failed with %s but changed the store", op, b, ae.Code)
			}
			return
		}
		if _, err := json.Marshal(resp); err != nil {
			t.Fatalf("%s(%q): response does not encode: %v", op, b, err)
		}
	})
}
