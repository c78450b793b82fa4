package secrets

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"sigil.dev/sigil/internal/awsproto"
)

func TestConcurrentCreateSameName(t *testing.T) {
	e := newEnv(t)
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = e.call("CreateSecret", map[string]any{"Name": "race", "SecretString": fmt.Sprintf("value-%d", i)})
		})
	}
	wg.Wait()
	winners := 0
	for i, err := range errs {
		var ae *awsproto.Error
		switch {
		case err == nil:
			winners++
		case errors.As(err, &ae) && ae.Code == codeResourceExists:
		default:
			t.Errorf("call %d: %v", i, err)
		}
	}
	if winners != 1 {
		t.Fatalf("%d CreateSecret calls won, want exactly 1", winners)
	}
	// One record, one version index, one version.
	records, indexes, versions := 0, 0, 0
	for _, en := range dump(t, e.store) {
		switch {
		case en.Key == nameKey("race"):
			records++
		case len(en.Key) > len(prefixVerIndex) && en.Key[:len(prefixVerIndex)] == prefixVerIndex:
			indexes++
		case len(en.Key) > len(prefixVersion) && en.Key[:len(prefixVersion)] == prefixVersion:
			versions++
		}
	}
	if records != 1 || indexes != 1 || versions != 1 {
		t.Fatalf("store holds %d records, %d version indexes, %d versions", records, indexes, versions)
	}
}

func TestConcurrentPutSecretValue(t *testing.T) {
	e := newEnv(t)
	e.create("hot", "initial")
	const n = 8
	var wg sync.WaitGroup
	ids := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			tok := token(fmt.Sprintf("w%d", i))
			ids[i] = tok
			_, errs[i] = e.call("PutSecretValue", map[string]any{"SecretId": "hot", "SecretString": fmt.Sprintf("value-%d", i), "ClientRequestToken": tok})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("PutSecretValue %d: %v", i, err)
		}
	}
	stages := e.stagesByVersion("hot")
	current, previous := 0, 0
	for _, st := range stages {
		if slices.Contains(st, "AWSCURRENT") {
			current++
		}
		if slices.Contains(st, "AWSPREVIOUS") {
			previous++
		}
	}
	if current != 1 || previous != 1 {
		t.Fatalf("AWSCURRENT on %d versions, AWSPREVIOUS on %d: %v", current, previous, stages)
	}
	all := e.allVersions("hot", true)
	if len(all) != n+1 {
		t.Fatalf("%d versions recorded, want %d", len(all), n+1)
	}
	for i, id := range ids {
		out := okAs[getSecretValueOutput](e, "GetSecretValue", map[string]any{"SecretId": "hot", "VersionId": id})
		if deref(out.SecretString) != fmt.Sprintf("value-%d", i) {
			t.Fatalf("version %s holds %q", id, deref(out.SecretString))
		}
	}
	// AWSCURRENT holds one writer's value, AWSPREVIOUS another's.
	values := make([]string, n)
	for i := range values {
		values[i] = fmt.Sprintf("value-%d", i)
	}
	cur := e.value("hot")
	prev := deref(okAs[getSecretValueOutput](e, "GetSecretValue", map[string]any{"SecretId": "hot", "VersionStage": "AWSPREVIOUS"}).SecretString)
	if !slices.Contains(values, cur) || !slices.Contains(values, prev) || cur == prev {
		t.Fatalf("AWSCURRENT = %q, AWSPREVIOUS = %q", cur, prev)
	}
}

func TestConcurrentReadsAndWrites(t *testing.T) {
	e := newEnv(t)
	e.create("mixed", "v0")
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 5 {
				if _, err := e.call("PutSecretValue", map[string]any{"SecretId": "mixed", "SecretString": fmt.Sprintf("v%d-%d", i, j)}); err != nil {
					t.Errorf("put: %v", err)
				}
			}
		})
		wg.Go(func() {
			for range 10 {
				if _, err := e.call("GetSecretValue", map[string]any{"SecretId": "mixed"}); err != nil {
					t.Errorf("get: %v", err)
				}
			}
		})
	}
	wg.Wait()
	if n := len(e.allVersions("mixed", true)); n != 21 {
		t.Fatalf("%d versions, want 21", n)
	}
}
