package apply

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

func TestUpdateValues(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	dir := t.TempDir()
	const first, second = "planted-first-4f0e9a", "planted-second-b27c51"
	src := "version: 1\nsecrets:\n  - name: app/token\n    valueEnv: TOKEN\n"
	var out bytes.Buffer
	record := func(p *PlanResult, r *Result, err error) {
		_ = p.WriteText(&out)
		js, _ := json.Marshal(p)
		out.Write(js)
		if r != nil {
			_ = r.WriteText(&out)
			js, _ = json.Marshal(r)
			out.Write(js)
		}
		if err != nil {
			out.WriteString(err.Error())
		}
	}
	value := func() string {
		t.Helper()
		v, err := e.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("app/token")})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(v.SecretString)
	}
	p, r := e.apply(t, parse(t, src, dir, map[string]string{"TOKEN": first}), Options{})
	record(p, r, nil)

	// Without --update-values a changed source leaves the value alone.
	f := parse(t, src, dir, map[string]string{"TOKEN": second})
	p, r = e.apply(t, f, Options{})
	record(p, r, nil)
	if p.HasChanges() || !slices.Contains(p.Changes[0].Notes, noteValueLeft) {
		t.Errorf("plan without UpdateValues: %+v", p.Changes[0])
	}
	if value() != first {
		t.Fatal("the value was overwritten without UpdateValues")
	}

	p, r = e.apply(t, f, Options{UpdateValues: true})
	record(p, r, nil)
	if want := []string{"put a new value from environment variable TOKEN"}; !slices.Equal(p.Changes[0].Steps, want) {
		t.Errorf("plan with UpdateValues: %q", p.Changes[0].Steps)
	}
	if value() != second {
		t.Fatal("UpdateValues did not write the new value")
	}
	p, r = e.apply(t, f, Options{UpdateValues: true})
	record(p, r, nil)
	if p.HasChanges() || !slices.Contains(p.Changes[0].Notes, noteValueSame) {
		t.Errorf("plan with an equal value: %+v", p.Changes[0])
	}
	ids, err := e.sm.ListSecretVersionIds(ctx, &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String("app/token")})
	if err != nil {
		t.Fatal(err)
	}
	if len(ids.Versions) != 2 {
		t.Errorf("%d versions, want 2 (an equal value writes none)", len(ids.Versions))
	}

	// A failing create must not leak the value either.
	bad := "version: 1\nsecrets:\n  - name: app/other\n    valueEnv: TOKEN\n    resourcePolicy: '{\"Statement\": 5}'\n"
	p = e.plan(t, parse(t, bad, dir, map[string]string{"TOKEN": second}), Options{UpdateValues: true})
	r, err = Apply(ctx, e.c, p)
	if err == nil {
		t.Fatal("apply of a rejected resource policy succeeded")
	}
	record(p, r, err)

	for _, v := range []string{first, second} {
		if strings.Contains(out.String(), v) {
			t.Fatalf("value %q appears in the output:\n%s", v, out.String())
		}
		if strings.Contains(e.srv.Logs.String(), v) {
			t.Fatalf("value %q appears in the server log", v)
		}
	}
}

func TestBinaryValue(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	dir := t.TempDir()
	bin := []byte{0xff, 0x00, 0xfe, 'k', 0x80}
	if err := os.WriteFile(filepath.Join(dir, "key.bin"), bin, 0o600); err != nil {
		t.Fatal(err)
	}
	src := "version: 1\nsecrets:\n  - name: app/key\n    valueFile: key.bin\n"
	e.apply(t, parse(t, src, dir, nil), Options{})
	v, err := e.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("app/key")})
	if err != nil {
		t.Fatal(err)
	}
	if v.SecretString != nil || !bytes.Equal(v.SecretBinary, bin) {
		t.Fatalf("stored %q / %x, want SecretBinary %x", aws.ToString(v.SecretString), v.SecretBinary, bin)
	}
	if p := e.plan(t, parse(t, src, dir, nil), Options{UpdateValues: true}); p.HasChanges() || !slices.Contains(p.Changes[0].Notes, noteValueSame) {
		t.Errorf("plan of an equal binary value: %+v", p.Changes[0])
	}
	bin[0] = 0xfd
	if err := os.WriteFile(filepath.Join(dir, "key.bin"), bin, 0o600); err != nil {
		t.Fatal(err)
	}
	if p := e.plan(t, parse(t, src, dir, nil), Options{UpdateValues: true}); !p.HasChanges() {
		t.Errorf("plan of a changed binary value: %+v", p.Changes[0])
	}
}
