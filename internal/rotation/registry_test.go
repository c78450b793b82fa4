package rotation_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"sigil.dev/sigil/internal/rotation"
	"sigil.dev/sigil/internal/secrets"
)

func TestParseRotatorARN(t *testing.T) {
	tests := []struct {
		arn  string
		want rotation.RotatorARN
		ok   bool
	}{
		{"arn:aws:lambda:us-east-1:123456789012:function:sigil-random", rotation.RotatorARN{Partition: "aws", Region: "us-east-1", AccountID: "123456789012", Name: "sigil-random"}, true},
		{"arn:aws-cn:lambda:cn-north-1:123456789012:function:my_hook-2", rotation.RotatorARN{Partition: "aws-cn", Region: "cn-north-1", AccountID: "123456789012", Name: "my_hook-2"}, true},
		{"arn:aws:lambda:us-east-1:123456789012:function:name:alias", rotation.RotatorARN{}, false},
		{"arn:aws:lambda:us-east-1:12345678901:function:x", rotation.RotatorARN{}, false},
		{"arn:aws:s3:us-east-1:123456789012:function:x", rotation.RotatorARN{}, false},
		{"arn:aws:lambda:us-east-1:123456789012:layer:x", rotation.RotatorARN{}, false},
		{"arn:aws:lambda:us-east-1:123456789012:function:", rotation.RotatorARN{}, false},
		{"arn:aws:lambda:us-east-1:123456789012:function:has space", rotation.RotatorARN{}, false},
		{"sigil-random", rotation.RotatorARN{}, false},
		{"", rotation.RotatorARN{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.arn, func(t *testing.T) {
			got, err := rotation.ParseRotatorARN(tc.arn)
			if !tc.ok {
				if !errors.Is(err, rotation.ErrInvalidARN) {
					t.Fatalf("ParseRotatorARN = %+v, %v; want ErrInvalidARN", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseRotatorARN = %+v, %v; want %+v", got, err, tc.want)
			}
			if back := rotation.RotatorARNFor(got.Region, got.AccountID, got.Name); got.Partition == "aws" && back != tc.arn {
				t.Fatalf("RotatorARNFor = %q", back)
			}
		})
	}
}

func newRegistry(t *testing.T) *rotation.Registry {
	t.Helper()
	reg, err := rotation.NewRegistry(rotation.RegistryConfig{
		Store: openStore(t), Region: testRegion, AccountID: testAccount,
		Now: func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) },
	})
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func TestRegistryResolve(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t)
	if _, err := reg.Put(ctx, rotation.RotatorSpec{Name: "api-key", Type: rotation.TypeRandom, Random: &rotation.RandomSpec{Field: "key"}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		arn  string
		want error
	}{
		{"postgres built-in", rotatorARN(rotation.BuiltinPostgreSQL), nil},
		{"mysql built-in", rotatorARN(rotation.BuiltinMySQL), nil},
		{"random built-in", rotatorARN(rotation.BuiltinRandom), nil},
		{"registered", rotatorARN("api-key"), nil},
		{"unknown", rotatorARN("nope"), rotation.ErrUnknownRotator},
		{"other account", rotation.RotatorARNFor(testRegion, "999999999999", rotation.BuiltinRandom), rotation.ErrInvalidARN},
		{"other region", rotation.RotatorARNFor("eu-west-1", testAccount, rotation.BuiltinRandom), rotation.ErrInvalidARN},
		{"malformed", "arn:aws:lambda:x", rotation.ErrInvalidARN},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rot, err := reg.Resolve(ctx, tc.arn)
			if tc.want == nil {
				if err != nil || rot == nil {
					t.Fatalf("Resolve = %v, %v", rot, err)
				}
			} else if !errors.Is(err, tc.want) {
				t.Fatalf("Resolve = %v, want %v", err, tc.want)
			}
			cerr := reg.Check(ctx, tc.arn)
			if (cerr == nil) != (tc.want == nil) || (cerr != nil && !errors.Is(cerr, secrets.ErrUnknownRotator)) {
				t.Fatalf("Check = %v, want nil or secrets.ErrUnknownRotator (Resolve = %v)", cerr, err)
			}
		})
	}
}

func TestRegistryPutGetListDelete(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t)

	key, err := reg.Put(ctx, rotation.RotatorSpec{Name: "hook", Type: rotation.TypeWebhook, Webhook: &rotation.WebhookSpec{URL: "https://rotate.example/hook", Timeout: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	if len(key) != 32 {
		t.Fatalf("generated key has %d bytes, want 32", len(key))
	}
	given := bytes.Repeat([]byte{7}, 24)
	key2, err := reg.Put(ctx, rotation.RotatorSpec{Name: "hook2", Type: rotation.TypeWebhook, Webhook: &rotation.WebhookSpec{URL: "http://127.0.0.1:9/x", Key: given}})
	if err != nil || !bytes.Equal(key2, given) {
		t.Fatalf("Put with a key = %x, %v", key2, err)
	}
	if key, err := reg.Put(ctx, rotation.RotatorSpec{Name: "rnd", Type: rotation.TypeRandom, Random: &rotation.RandomSpec{Field: "k", PasswordPolicy: rotation.PasswordPolicy{Length: 64}}}); err != nil || key != nil {
		t.Fatalf("Put random = %x, %v", key, err)
	}

	got, err := reg.Get(ctx, "hook")
	if err != nil {
		t.Fatal(err)
	}
	if got.Type != rotation.TypeWebhook || got.Webhook.URL != "https://rotate.example/hook" || got.Webhook.Timeout != 5*time.Second || got.Webhook.Key != nil || got.Created.IsZero() {
		t.Fatalf("Get = %+v %+v", got, got.Webhook)
	}
	list, err := reg.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range list {
		names = append(names, s.Name)
		if s.Webhook != nil && s.Webhook.Key != nil {
			t.Fatalf("List returned the key of %s", s.Name)
		}
		b, _ := json.Marshal(s)
		if bytes.Contains(b, []byte("webhookKey")) {
			t.Fatalf("JSON of a listed spec holds the key: %s", b)
		}
	}
	if len(names) != 3 || names[0] != "hook" || names[1] != "hook2" || names[2] != "rnd" {
		t.Fatalf("List = %v", names)
	}
	// The stored key is the one webhooks are signed with.
	rot, err := reg.Resolve(ctx, rotatorARN("hook2"))
	if err != nil {
		t.Fatal(err)
	}
	if w, ok := rot.(*rotation.WebhookRotator); !ok || !bytes.Equal(w.Key, given) {
		t.Fatalf("resolved %T without the stored key", rot)
	}

	if err := reg.Delete(ctx, "hook"); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Resolve(ctx, rotatorARN("hook")); !errors.Is(err, rotation.ErrUnknownRotator) {
		t.Fatalf("Resolve after Delete = %v", err)
	}
	if err := reg.Delete(ctx, "hook"); !errors.Is(err, rotation.ErrUnknownRotator) {
		t.Fatalf("second Delete = %v", err)
	}
}

func TestRegistryRejectsBadSpecs(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t)
	hook := func(u string) *rotation.WebhookSpec { return &rotation.WebhookSpec{URL: u} }
	tests := []struct {
		name string
		spec rotation.RotatorSpec
	}{
		{"reserved name", rotation.RotatorSpec{Name: "sigil-mine", Type: rotation.TypeRandom, Random: &rotation.RandomSpec{}}},
		{"bad name", rotation.RotatorSpec{Name: "a/b", Type: rotation.TypeRandom, Random: &rotation.RandomSpec{}}},
		{"empty name", rotation.RotatorSpec{Type: rotation.TypeRandom, Random: &rotation.RandomSpec{}}},
		{"unknown type", rotation.RotatorSpec{Name: "x", Type: "lambda"}},
		{"random without options", rotation.RotatorSpec{Name: "x", Type: rotation.TypeRandom}},
		{"random with webhook", rotation.RotatorSpec{Name: "x", Type: rotation.TypeRandom, Random: &rotation.RandomSpec{}, Webhook: hook("https://h/")}},
		{"bad policy", rotation.RotatorSpec{Name: "x", Type: rotation.TypeRandom, Random: &rotation.RandomSpec{PasswordPolicy: rotation.PasswordPolicy{Length: 3}}}},
		{"webhook without options", rotation.RotatorSpec{Name: "x", Type: rotation.TypeWebhook}},
		{"relative url", rotation.RotatorSpec{Name: "x", Type: rotation.TypeWebhook, Webhook: hook("/hook")}},
		{"ftp url", rotation.RotatorSpec{Name: "x", Type: rotation.TypeWebhook, Webhook: hook("ftp://h/")}},
		{"url with user info", rotation.RotatorSpec{Name: "x", Type: rotation.TypeWebhook, Webhook: hook("https://u:p@h/")}},
		{"url with a query", rotation.RotatorSpec{Name: "x", Type: rotation.TypeWebhook, Webhook: hook("https://h/hook?token=abc")}},
		{"url with an empty query", rotation.RotatorSpec{Name: "x", Type: rotation.TypeWebhook, Webhook: hook("https://h/hook?")}},
		{"short key", rotation.RotatorSpec{Name: "x", Type: rotation.TypeWebhook, Webhook: &rotation.WebhookSpec{URL: "https://h/", Key: []byte("short")}}},
		{"negative timeout", rotation.RotatorSpec{Name: "x", Type: rotation.TypeWebhook, Webhook: &rotation.WebhookSpec{URL: "https://h/", Timeout: -1}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := reg.Put(ctx, tc.spec); !errors.Is(err, rotation.ErrInvalidRotator) {
				t.Fatalf("Put = %v, want ErrInvalidRotator", err)
			}
		})
	}
	if list, err := reg.List(ctx); err != nil || len(list) != 0 {
		t.Fatalf("List after refused puts = %v, %v", list, err)
	}
}

func TestRegistryCorruptRecord(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	reg, err := rotation.NewRegistry(rotation.RegistryConfig{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Put(ctx, "rotation/rotators/broken", []byte(`{"name":"broken","type":"webhook","webhook":{"url":"https://h/"}}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Resolve(ctx, rotatorARN("broken")); !errors.Is(err, rotation.ErrCorruptRotator) {
		t.Fatalf("Resolve of a keyless webhook = %v, want ErrCorruptRotator", err)
	}
}

func TestWebhookKeyNeverPrinted(t *testing.T) {
	key := []byte("super-secret-hmac-key-0123456789")
	spec := rotation.WebhookSpec{URL: "https://h/hook?sig=abc", Key: key}
	rot := &rotation.WebhookRotator{URL: spec.URL, Key: key}
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("x", "spec", spec, "rot", rot)
	for _, s := range []string{fmt.Sprint(spec), fmt.Sprintf("%+v", spec), fmt.Sprintf("%#v", spec),
		fmt.Sprint(rot), fmt.Sprintf("%+v", rot), fmt.Sprintf("%#v", rot), b.String()} {
		if strings.Contains(s, "super-secret") || strings.Contains(s, fmt.Sprint(key)) || strings.Contains(s, "sig=abc") || !strings.Contains(s, "REDACTED") {
			t.Fatalf("printed as %q", s)
		}
	}
}
