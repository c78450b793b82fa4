package secrets

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"sigil.dev/sigil/internal/audit"
	"sigil.dev/sigil/internal/iam"
	"sigil.dev/sigil/internal/store"
)

func TestNewValidatesConfig(t *testing.T) {
	st := openTestStore(t)
	good := Config{Store: st, Authorizer: iam.RootOnly{}, Audit: audit.Discard{}, Region: "eu-west-2", AccountID: "000000000000"}
	tests := []struct {
		name string
		edit func(*Config)
	}{
		{"no store", func(c *Config) { c.Store = nil }},
		{"no authorizer", func(c *Config) { c.Authorizer = nil }},
		{"no audit", func(c *Config) { c.Audit = nil }},
		{"empty region", func(c *Config) { c.Region = "" }},
		{"region with spaces", func(c *Config) { c.Region = "us east" }},
		{"short account", func(c *Config) { c.AccountID = "12345" }},
		{"letters in account", func(c *Config) { c.AccountID = "12345678901a" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.edit(&cfg)
			if _, err := New(cfg); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("New = %v, want ErrInvalidConfig", err)
			}
		})
	}
	if _, err := New(good); err != nil {
		t.Fatalf("New(good) = %v", err)
	}
}

func TestHandleUnknownOperationAndBadJSON(t *testing.T) {
	e := newEnv(t)
	if ae := e.fail("ReplicateSecretToRegions", `{}`, "UnknownOperationException"); ae.Status != 400 {
		t.Errorf("status = %d, want 400", ae.Status)
	}
	e.fail("CreateSecret", `{"Name": 5}`, "SerializationException")
	e.fail("CreateSecret", `{"Name": "a"} trailing`, "SerializationException")
	e.fail("CreateSecret", `{"Name": "a", "SecretBinary": "!!"}`, "SerializationException")
	if n := len(e.audit.all()); n != 0 {
		t.Errorf("%d audit events for calls that never reached authorization", n)
	}
}

func TestCreateSecretValidation(t *testing.T) {
	long := strings.Repeat("a", 513)
	tests := []struct {
		name string
		req  string
		code string
	}{
		{"missing name", `{"SecretString":"x"}`, codeInvalidParameter},
		{"empty name", `{"Name":""}`, codeInvalidParameter},
		{"name too long", `{"Name":"` + long + `"}`, codeInvalidParameter},
		{"name with space", `{"Name":"a b"}`, codeInvalidParameter},
		{"name with colon", `{"Name":"a:b"}`, codeInvalidParameter},
		{"both values", `{"Name":"a","SecretString":"x","SecretBinary":"eA=="}`, codeInvalidParameter},
		{"oversized string", `{"Name":"a","SecretString":"` + strings.Repeat("x", 65537) + `"}`, codeInvalidParameter},
		{"short token", `{"Name":"a","SecretString":"x","ClientRequestToken":"short"}`, codeInvalidParameter},
		{"token with space", `{"Name":"a","SecretString":"x","ClientRequestToken":"` + strings.Repeat("a", 20) + " " + strings.Repeat("a", 20) + `"}`, codeInvalidParameter},
		{"description too long", `{"Name":"a","Description":"` + strings.Repeat("d", 2049) + `"}`, codeInvalidParameter},
		{"reserved tag", `{"Name":"a","Tags":[{"Key":"aws:owner","Value":"x"}]}`, codeInvalidParameter},
		{"empty tag key", `{"Name":"a","Tags":[{"Key":"","Value":"x"}]}`, codeInvalidParameter},
		{"duplicate tag", `{"Name":"a","Tags":[{"Key":"k","Value":"1"},{"Key":"k","Value":"2"}]}`, codeInvalidParameter},
		{"tag value too long", `{"Name":"a","Tags":[{"Key":"k","Value":"` + strings.Repeat("v", 257) + `"}]}`, codeInvalidParameter},
		{"type", `{"Name":"a","Type":"partner"}`, codeInvalidParameter},
		{"replicas", `{"Name":"a","AddReplicaRegions":[{"Region":"eu-west-1"}]}`, codeInvalidParameter},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.fail("CreateSecret", tc.req, tc.code)
			if n := len(dump(t, e.store)); n != 0 {
				t.Fatalf("a failed CreateSecret left %d keys in the store", n)
			}
		})
	}
}

func TestCreateSecret(t *testing.T) {
	e := newEnv(t)
	out := e.ok("CreateSecret", map[string]any{"Name": "no-value"})
	if _, ok := out["VersionId"]; ok {
		t.Errorf("CreateSecret without a value returned a VersionId: %v", out)
	}
	e.fail("GetSecretValue", map[string]any{"SecretId": "no-value"}, codeResourceNotFound)
	d := e.ok("DescribeSecret", map[string]any{"SecretId": "no-value"})
	if _, ok := d["VersionIdsToStages"]; ok {
		t.Errorf("secret without a value has versions: %v", d)
	}
	// The first PutSecretValue becomes AWSCURRENT even with other labels.
	p := e.ok("PutSecretValue", map[string]any{"SecretId": "no-value", "SecretString": "v1", "VersionStages": []string{"AWSPENDING"}})
	if got := p["VersionStages"].([]any); len(got) != 2 {
		t.Errorf("first version stages = %v, want AWSCURRENT and AWSPENDING", got)
	}
	if v := e.value("no-value"); v != "v1" {
		t.Errorf("value = %q", v)
	}

	arn := e.ok("CreateSecret", map[string]any{"Name": "dup", "SecretString": "x"})["ARN"].(string)
	if !strings.HasPrefix(arn, "arn:aws:secretsmanager:us-east-1:123456789012:secret:dup-") || len(arn) != len("arn:aws:secretsmanager:us-east-1:123456789012:secret:dup-")+6 {
		t.Errorf("ARN %q", arn)
	}
	e.fail("CreateSecret", map[string]any{"Name": "dup", "SecretString": "y"}, codeResourceExists)
}

func TestCreateSecretIdempotentToken(t *testing.T) {
	e := newEnv(t)
	req := map[string]any{"Name": "idem", "SecretString": "v", "ClientRequestToken": token("a")}
	first := e.ok("CreateSecret", req)
	again := e.ok("CreateSecret", req)
	if first["ARN"] != again["ARN"] || first["VersionId"] != again["VersionId"] || again["VersionId"] != token("a") {
		t.Fatalf("retry = %v, first = %v", again, first)
	}
	e.fail("CreateSecret", map[string]any{"Name": "idem", "SecretString": "other", "ClientRequestToken": token("a")}, codeResourceExists)
	e.fail("CreateSecret", map[string]any{"Name": "idem", "SecretString": "v", "ClientRequestToken": token("b")}, codeResourceExists)
	vs := okAs[listSecretVersionIdsOutput](e, "ListSecretVersionIds", map[string]any{"SecretId": "idem", "IncludeDeprecated": true})
	if len(vs.Versions) != 1 {
		t.Fatalf("versions after retries = %d, want 1", len(vs.Versions))
	}
}

func TestLookupByNameAndARN(t *testing.T) {
	e := newEnv(t)
	arn := e.create("svc/api", "one")
	// A name that itself looks like name + suffix.
	trickyARN := e.create("svc/api-AbCdEf", "two")
	partial := strings.TrimSuffix(arn, arn[len(arn)-7:])
	tests := []struct {
		name string
		id   string
		want string // value, or "" for not found
	}{
		{"name", "svc/api", "one"},
		{"full ARN", arn, "one"},
		{"partial ARN", partial, "one"},
		{"name ending like a suffix", "svc/api-AbCdEf", "two"},
		{"full ARN of tricky name", trickyARN, "two"},
		{"partial ARN of tricky name", "arn:aws:secretsmanager:us-east-1:123456789012:secret:svc/api-AbCdEf", "two"},
		{"wrong suffix", arn[:len(arn)-6] + "zzzzzz", ""},
		{"other region", strings.Replace(arn, "us-east-1", "eu-west-1", 1), ""},
		{"other account", strings.Replace(arn, "123456789012", "210987654321", 1), ""},
		{"not a secret ARN", "arn:aws:s3:::bucket", ""},
		{"name is not a prefix match", "svc", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.want == "" {
				e.fail("GetSecretValue", map[string]any{"SecretId": tc.id}, codeResourceNotFound)
				return
			}
			if got := e.value(tc.id); got != tc.want {
				t.Fatalf("value(%q) = %q, want %q", tc.id, got, tc.want)
			}
		})
	}
}

func TestUpdateSecret(t *testing.T) {
	e := newEnv(t)
	e.ok("CreateSecret", map[string]any{"Name": "u", "SecretString": "v1", "Description": "old", "KmsKeyId": "alias/a"})
	before := okAs[describeSecretOutput](e, "DescribeSecret", map[string]any{"SecretId": "u"})
	e.clock.Advance(time.Hour)

	out := e.ok("UpdateSecret", map[string]any{"SecretId": "u", "Description": "new"})
	if _, ok := out["VersionId"]; ok {
		t.Errorf("metadata-only UpdateSecret returned a VersionId: %v", out)
	}
	d := okAs[describeSecretOutput](e, "DescribeSecret", map[string]any{"SecretId": "u"})
	if d.Description != "new" || d.KmsKeyId != "alias/a" || !time.Time(*d.LastChangedDate).After(time.Time(*before.LastChangedDate)) {
		t.Fatalf("after UpdateSecret: %+v", d)
	}

	tok := token("c")
	v := e.ok("UpdateSecret", map[string]any{"SecretId": "u", "SecretString": "v2", "ClientRequestToken": tok, "KmsKeyId": ""})
	if v["VersionId"] != tok || e.value("u") != "v2" {
		t.Fatalf("UpdateSecret with value = %v", v)
	}
	if d := okAs[describeSecretOutput](e, "DescribeSecret", map[string]any{"SecretId": "u"}); d.KmsKeyId != "" {
		t.Errorf("KmsKeyId \"\" did not reset to the default key: %q", d.KmsKeyId)
	}
	// Same token and value: idempotent; different value: refused.
	if again := e.ok("UpdateSecret", map[string]any{"SecretId": "u", "SecretString": "v2", "ClientRequestToken": tok}); again["VersionId"] != tok {
		t.Fatalf("idempotent UpdateSecret = %v", again)
	}
	e.fail("UpdateSecret", map[string]any{"SecretId": "u", "SecretString": "v3", "ClientRequestToken": tok}, codeResourceExists)
	if got := e.value("u"); got != "v2" {
		t.Fatalf("value after refused update = %q", got)
	}
	e.fail("UpdateSecret", map[string]any{"SecretId": "missing", "Description": "x"}, codeResourceNotFound)
	e.fail("UpdateSecret", map[string]any{"Description": "x"}, codeInvalidParameter)
}

func TestDeletionLifecycle(t *testing.T) {
	e := newEnv(t)
	arn := e.create("gone", "v")
	e.fail("DeleteSecret", map[string]any{"SecretId": "gone", "RecoveryWindowInDays": 6}, codeInvalidParameter)
	e.fail("DeleteSecret", map[string]any{"SecretId": "gone", "RecoveryWindowInDays": 31}, codeInvalidParameter)
	e.fail("DeleteSecret", map[string]any{"SecretId": "gone", "RecoveryWindowInDays": 7, "ForceDeleteWithoutRecovery": true}, codeInvalidParameter)

	del := okAs[deleteSecretOutput](e, "DeleteSecret", map[string]any{"SecretId": "gone", "RecoveryWindowInDays": 7})
	if want := e.clock.Now().Add(7 * 24 * time.Hour); !time.Time(*del.DeletionDate).Equal(want) || del.ARN != arn {
		t.Fatalf("DeleteSecret = %+v, want deletion at %v", del, want)
	}
	// Refused while scheduled; describable; name taken.
	for _, op := range []struct {
		op  string
		req map[string]any
	}{
		{"GetSecretValue", map[string]any{"SecretId": "gone"}},
		{"PutSecretValue", map[string]any{"SecretId": "gone", "SecretString": "x"}},
		{"UpdateSecret", map[string]any{"SecretId": "gone", "Description": "x"}},
		{"TagResource", map[string]any{"SecretId": "gone", "Tags": []map[string]string{{"Key": "k", "Value": "v"}}}},
		{"UntagResource", map[string]any{"SecretId": "gone", "TagKeys": []string{"k"}}},
		{"PutResourcePolicy", map[string]any{"SecretId": "gone", "ResourcePolicy": testPolicy}},
		{"DeleteResourcePolicy", map[string]any{"SecretId": "gone"}},
		{"UpdateSecretVersionStage", map[string]any{"SecretId": "gone", "VersionStage": "X", "RemoveFromVersionId": token("x")}},
		{"DeleteSecret", map[string]any{"SecretId": "gone"}},
	} {
		if ae := e.fail(op.op, op.req, codeInvalidRequest); ae.Message != msgMarkedForDeletion {
			t.Errorf("%s: message %q", op.op, ae.Message)
		}
	}
	e.fail("CreateSecret", map[string]any{"Name": "gone", "SecretString": "new"}, codeInvalidRequest)
	d := okAs[describeSecretOutput](e, "DescribeSecret", map[string]any{"SecretId": "gone"})
	if d.DeletedDate == nil || !time.Time(*d.DeletedDate).Equal(e.clock.Now()) {
		t.Fatalf("DeletedDate = %v", d.DeletedDate)
	}
	if l := okAs[listSecretsOutput](e, "ListSecrets", map[string]any{}); len(l.SecretList) != 0 {
		t.Fatalf("ListSecrets shows a scheduled secret: %+v", l.SecretList)
	}
	if l := okAs[listSecretsOutput](e, "ListSecrets", map[string]any{"IncludePlannedDeletion": true}); len(l.SecretList) != 1 {
		t.Fatalf("ListSecrets IncludePlannedDeletion = %+v", l.SecretList)
	}

	// Restore brings it back unchanged.
	e.ok("RestoreSecret", map[string]any{"SecretId": arn})
	if v := e.value(arn); v != "v" {
		t.Fatalf("value after restore = %q", v)
	}
	if d := okAs[describeSecretOutput](e, "DescribeSecret", map[string]any{"SecretId": "gone"}); d.DeletedDate != nil {
		t.Fatalf("DeletedDate after restore = %v", d.DeletedDate)
	}
	e.ok("RestoreSecret", map[string]any{"SecretId": arn}) // not scheduled: a no-op

	// Schedule again and let the window pass: it is gone, the name is free.
	e.ok("DeleteSecret", map[string]any{"SecretId": arn})
	e.clock.Advance(30*24*time.Hour - time.Second)
	e.fail("GetSecretValue", map[string]any{"SecretId": arn}, codeInvalidRequest)
	e.clock.Advance(time.Second)
	e.fail("DescribeSecret", map[string]any{"SecretId": arn}, codeResourceNotFound)
	e.fail("RestoreSecret", map[string]any{"SecretId": arn}, codeResourceNotFound)
	for _, en := range dump(t, e.store) { // the lazy purge removed everything
		if en.Key != keyTokenKey {
			t.Fatalf("purged secret left key %q", en.Key)
		}
	}
	newARN := e.create("gone", "reborn")
	if newARN == arn {
		t.Fatalf("recreated secret reuses the old ARN %s", arn)
	}
	e.fail("GetSecretValue", map[string]any{"SecretId": arn}, codeResourceNotFound)
	if v := e.value(newARN); v != "reborn" {
		t.Fatalf("recreated value = %q", v)
	}
}

func TestForceDelete(t *testing.T) {
	e := newEnv(t)
	e.create("f", "v")
	for range 3 {
		e.ok("PutSecretValue", map[string]any{"SecretId": "f", "SecretString": "more"})
	}
	out := okAs[deleteSecretOutput](e, "DeleteSecret", map[string]any{"SecretId": "f", "ForceDeleteWithoutRecovery": true})
	if out.Name != "f" || !time.Time(*out.DeletionDate).Equal(e.clock.Now()) {
		t.Fatalf("force DeleteSecret = %+v", out)
	}
	if keys := dump(t, e.store); len(keys) != 0 {
		t.Fatalf("force delete left %d keys, e.g. %q", len(keys), keys[0].Key)
	}
	// Force-deleting what does not exist succeeds.
	if out := e.ok("DeleteSecret", map[string]any{"SecretId": "never", "ForceDeleteWithoutRecovery": true}); out["Name"] != "never" {
		t.Fatalf("force delete of a missing secret = %v", out)
	}
	e.fail("DeleteSecret", map[string]any{"SecretId": "never"}, codeResourceNotFound)
	// A scheduled secret can still be force-deleted.
	e.create("s", "v")
	e.ok("DeleteSecret", map[string]any{"SecretId": "s"})
	e.ok("DeleteSecret", map[string]any{"SecretId": "s", "ForceDeleteWithoutRecovery": true})
	e.create("s", "again")
}

func TestPurgeExpired(t *testing.T) {
	e := newEnv(t)
	for _, n := range []string{"a", "b", "c", "keep"} {
		e.create(n, "v")
	}
	for _, n := range []string{"a", "b"} {
		e.ok("DeleteSecret", map[string]any{"SecretId": n, "RecoveryWindowInDays": 7})
	}
	e.ok("DeleteSecret", map[string]any{"SecretId": "c", "RecoveryWindowInDays": 30})
	ctx := context.Background()
	if n, err := e.svc.PurgeExpired(ctx); err != nil || n != 0 {
		t.Fatalf("PurgeExpired before any window ended = %d, %v", n, err)
	}
	e.clock.Advance(8 * 24 * time.Hour)
	if n, err := e.svc.PurgeExpired(ctx); err != nil || n != 2 {
		t.Fatalf("PurgeExpired = %d, %v; want 2", n, err)
	}
	if n, err := e.svc.PurgeExpired(ctx); err != nil || n != 0 {
		t.Fatalf("second PurgeExpired = %d, %v; want 0", n, err)
	}
	for _, en := range dump(t, e.store) {
		if strings.Contains(en.Key, "/a") && strings.HasPrefix(en.Key, prefixName) {
			t.Fatalf("secret a still stored at %q", en.Key)
		}
	}
	e.ok("DescribeSecret", map[string]any{"SecretId": "c"})
	e.ok("DescribeSecret", map[string]any{"SecretId": "keep"})
	e.fail("DescribeSecret", map[string]any{"SecretId": "a"}, codeResourceNotFound)
}

func TestPurgeFinishesInterruptedPurge(t *testing.T) {
	e := newEnv(t)
	e.create("half", "v")
	rec, err := e.svc.getRecord(context.Background(), "half")
	if err != nil || rec == nil {
		t.Fatalf("getRecord = %v, %v", rec, err)
	}
	// Simulate a crash after the first purge transaction: record and
	// indexes gone, tombstone written, version values left behind.
	_, err = store.Update(context.Background(), e.store, func(v *store.View) error {
		v.Delete(nameKey("half"))
		deleteIndexes(v, rec)
		v.Put(tombstoneKey(rec.ID), encode(&tombstone{V: formatVersion, Secret: rec.ID, Name: rec.Name}))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(dump(t, e.store)) == 0 {
		t.Fatal("simulation removed everything")
	}
	if _, err := e.svc.PurgeExpired(context.Background()); err != nil {
		t.Fatalf("PurgeExpired: %v", err)
	}
	if keys := dump(t, e.store); len(keys) != 0 {
		t.Fatalf("interrupted purge left %q", keys[0].Key)
	}
}

const testPolicy = `{"Version":"2012-10-17","Statement":[{"Sid":"App","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:role/app"},"Action":"secretsmanager:GetSecretValue","Resource":"*"}]}`
