package secrets

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"sigil.dev/sigil/internal/awsproto"
	"sigil.dev/sigil/internal/iam"
	"sigil.dev/sigil/internal/store"
)

// recorder is an Authorizer that allows everything and remembers requests.
type recorder struct {
	mu   sync.Mutex
	reqs []iam.Request
}

func (r *recorder) Authorize(_ context.Context, req iam.Request) iam.Decision {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = append(r.reqs, req)
	return iam.Decision{Allowed: true, Reason: "allow", Policy: "test", Statement: "All"}
}

func (r *recorder) take() []iam.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.reqs
	r.reqs = nil
	return out
}

// opCase is one call of every operation against the fixture secret "s".
type opCase struct {
	op       string
	req      map[string]any
	resource string // "s" for the secret's ARN, "*" or a literal
	readOnly bool
	secret   bool
}

func allOperations() []opCase {
	return []opCase{
		{"CreateSecret", map[string]any{"Name": "new", "SecretString": "v", "Tags": tagList("k", "v")}, "new", false, false},
		{"GetSecretValue", map[string]any{"SecretId": "s"}, "s", true, true},
		{"BatchGetSecretValue", map[string]any{"SecretIdList": []string{"s"}}, "*", true, true},
		{"PutSecretValue", map[string]any{"SecretId": "s", "SecretString": "v2"}, "s", false, false},
		{"UpdateSecret", map[string]any{"SecretId": "s", "Description": "d"}, "s", false, false},
		{"DescribeSecret", map[string]any{"SecretId": "s"}, "s", true, false},
		{"ListSecrets", map[string]any{}, "*", true, false},
		{"ListSecretVersionIds", map[string]any{"SecretId": "s"}, "s", true, false},
		{"UpdateSecretVersionStage", map[string]any{"SecretId": "s", "VersionStage": "blue", "MoveToVersionId": token("s")}, "s", false, false},
		{"TagResource", map[string]any{"SecretId": "s", "Tags": tagList("k2", "v")}, "s", false, false},
		{"UntagResource", map[string]any{"SecretId": "s", "TagKeys": []string{"k2"}}, "s", false, false},
		{"GetRandomPassword", map[string]any{}, "*", true, false},
		{"PutResourcePolicy", map[string]any{"SecretId": "s", "ResourcePolicy": testPolicy}, "s", false, false},
		{"GetResourcePolicy", map[string]any{"SecretId": "s"}, "s", true, false},
		{"ListResourcePolicies", map[string]any{"SecretId": "s"}, "s", true, false},
		{"ValidateResourcePolicy", map[string]any{"SecretId": "s", "ResourcePolicy": testPolicy}, "s", true, false},
		{"DeleteResourcePolicy", map[string]any{"SecretId": "s"}, "s", false, false},
		{"RotateSecret", map[string]any{"SecretId": "s", "RotationLambdaARN": testRotator, "RotationRules": map[string]any{"AutomaticallyAfterDays": 30}}, "s", false, false},
		{"CancelRotateSecret", map[string]any{"SecretId": "s"}, "s", false, false},
		{"DeleteSecret", map[string]any{"SecretId": "s"}, "s", false, false},
		{"RestoreSecret", map[string]any{"SecretId": "s"}, "s", false, false},
	}
}

func fixture(e *env) string {
	e.t.Helper()
	return e.ok("CreateSecret", map[string]any{"Name": "s", "SecretString": "v", "ClientRequestToken": token("s"),
		"Tags": tagList("team", "payments")})["ARN"].(string)
}

func TestAuthorizationRequests(t *testing.T) {
	rec := &recorder{}
	e := newEnv(t, withAuthorizer(rec))
	arn := fixture(e)
	for _, tc := range allOperations() {
		t.Run(tc.op, func(t *testing.T) {
			rec.take()
			e.ok(tc.op, tc.req)
			reqs := rec.take()
			if len(reqs) == 0 {
				t.Fatal("Authorizer not asked")
			}
			r := reqs[0]
			want := tc.resource
			switch want {
			case "s":
				want = arn
			case "new":
				want = "arn:aws:secretsmanager:us-east-1:123456789012:secret:new-"
			}
			if r.Action != "secretsmanager:"+tc.op || !strings.HasPrefix(r.Resource, want) || r.Principal != rootPrincipal {
				t.Fatalf("request = %s on %s by %v", r.Action, r.Resource, r.Principal)
			}
			ctx := r.Context
			for k, v := range map[string]string{
				"aws:SourceIp": "192.0.2.10", "aws:SecureTransport": "true", "aws:UserAgent": "sigil-test/1.0",
				"aws:CurrentTime": "2025-03-14T15:09:26Z", "aws:EpochTime": "1741964966",
				"aws:PrincipalArn": rootPrincipal.ARN, "aws:PrincipalType": "Account",
			} {
				if got := ctx[k]; len(got) != 1 || got[0] != v {
					t.Errorf("context %s = %v, want %q", k, got, v)
				}
			}
			if tc.resource == "s" {
				if got := ctx["secretsmanager:SecretId"]; len(got) != 1 || got[0] != arn {
					t.Errorf("secretsmanager:SecretId = %v", got)
				}
				if got := ctx["secretsmanager:Name"]; len(got) != 1 || got[0] != "s" {
					t.Errorf("secretsmanager:Name = %v", got)
				}
				if ctx["secretsmanager:ResourceTag/team"] == nil || ctx["aws:ResourceTag/team"] == nil {
					if tc.op != "CreateSecret" {
						t.Errorf("resource tags missing from %v", ctx)
					}
				}
			}
			switch tc.op {
			case "CreateSecret":
				if !slices.Equal(ctx["aws:TagKeys"], []string{"k"}) || !slices.Equal(ctx["aws:RequestTag/k"], []string{"v"}) ||
					!slices.Equal(ctx["secretsmanager:Name"], []string{"new"}) {
					t.Errorf("CreateSecret context = %v", ctx)
				}
				if len(reqs) != 2 || reqs[1].Action != "secretsmanager:TagResource" {
					t.Errorf("CreateSecret with tags asked %d requests", len(reqs))
				}
			case "TagResource":
				if !slices.Equal(ctx["aws:TagKeys"], []string{"k2"}) || !slices.Equal(ctx["aws:RequestTag/k2"], []string{"v"}) {
					t.Errorf("TagResource context = %v", ctx)
				}
			case "UntagResource":
				if !slices.Equal(ctx["aws:TagKeys"], []string{"k2"}) {
					t.Errorf("UntagResource context = %v", ctx)
				}
			case "BatchGetSecretValue":
				if len(reqs) != 2 || reqs[1].Action != "secretsmanager:GetSecretValue" || reqs[1].Resource != arn {
					t.Errorf("BatchGetSecretValue asked %+v", reqs)
				}
			case "DeleteResourcePolicy", "GetResourcePolicy", "ListResourcePolicies", "DeleteSecret", "RestoreSecret":
				if r.ResourcePolicy != testPolicy && tc.op != "DeleteSecret" && tc.op != "RestoreSecret" {
					t.Errorf("%s: ResourcePolicy = %q", tc.op, r.ResourcePolicy)
				}
			}
		})
	}
}

func TestAccessDenied(t *testing.T) {
	e := newEnv(t) // iam.RootOnly
	arn := fixture(e)
	before := dump(t, e.store)
	e.principal = userPrincipal
	for _, tc := range allOperations() {
		t.Run(tc.op, func(t *testing.T) {
			e.audit.reset()
			ae := e.fail(tc.op, tc.req, codeAccessDenied)
			want := "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: secretsmanager:" + tc.op + " on resource: "
			if !strings.HasPrefix(ae.Message, want) || !strings.HasSuffix(ae.Message, "because no identity-based policy allows the secretsmanager:"+tc.op+" action") {
				t.Fatalf("message %q", ae.Message)
			}
			if tc.resource == "s" && !strings.Contains(ae.Message, arn) {
				t.Fatalf("message %q does not name %s", ae.Message, arn)
			}
			evs := e.audit.all()
			if len(evs) != 1 || evs[0].Allowed || evs[0].ErrorCode != codeAccessDenied || evs[0].Reason != "implicit deny" ||
				evs[0].Principal != userPrincipal || evs[0].ReturnsSecret {
				t.Fatalf("audit events = %+v", evs)
			}
		})
	}
	if after := dump(t, e.store); len(after) != len(before) {
		t.Fatalf("denied calls changed the store: %d keys before, %d after", len(before), len(after))
	}
}

func TestAccessDeniedDoesNotRevealExistence(t *testing.T) {
	e := newEnv(t)
	e.create("exists", "v")
	e.principal = userPrincipal
	missing := e.fail("GetSecretValue", map[string]any{"SecretId": "missing"}, codeAccessDenied)
	if !strings.Contains(missing.Message, "on resource: arn:aws:secretsmanager:us-east-1:123456789012:secret:missing-??????") {
		t.Fatalf("message %q", missing.Message)
	}
	e.fail("GetSecretValue", map[string]any{"SecretId": "exists"}, codeAccessDenied)
	arnGiven := "arn:aws:secretsmanager:us-east-1:123456789012:secret:missing-AbCdEf"
	if ae := e.fail("DescribeSecret", map[string]any{"SecretId": arnGiven}, codeAccessDenied); !strings.Contains(ae.Message, arnGiven) {
		t.Fatalf("message %q", ae.Message)
	}
	// Allowed callers learn that it does not exist.
	e.principal = rootPrincipal
	e.fail("GetSecretValue", map[string]any{"SecretId": "missing"}, codeResourceNotFound)
}

func TestExplicitDenyMessage(t *testing.T) {
	e := newEnv(t, withAuthorizer(authorizerFunc(func(context.Context, iam.Request) iam.Decision {
		return iam.Decision{Reason: "explicit deny", Policy: "guard", Statement: "NoSecrets"}
	})))
	ae := e.fail("ListSecrets", map[string]any{}, codeAccessDenied)
	if !strings.HasSuffix(ae.Message, "on resource: * with an explicit deny") {
		t.Fatalf("message %q", ae.Message)
	}
	if ev := e.audit.all()[0]; ev.Policy != "guard" || ev.Statement != "NoSecrets" || ev.Reason != "explicit deny" {
		t.Fatalf("audit event = %+v", *ev)
	}
}

func TestAuditEvents(t *testing.T) {
	e := newEnv(t)
	arn := fixture(e)
	for _, tc := range allOperations() {
		t.Run(tc.op, func(t *testing.T) {
			e.audit.reset()
			start := e.clock.Now()
			e.clock.Advance(5 * time.Millisecond)
			resp, err := e.svc.Handle(context.Background(), &Call{Operation: tc.op, Body: body(t, tc.req), Principal: rootPrincipal,
				RequestID: "req-" + tc.op, SourceIP: "198.51.100.7", UserAgent: "ua/1", Start: start})
			if err != nil || resp == nil {
				t.Fatalf("%s: %v", tc.op, err)
			}
			evs := e.audit.all()
			own := evs[len(evs)-1]
			if tc.op == "BatchGetSecretValue" {
				if len(evs) != 2 || evs[0].Action != "GetSecretValue" || evs[0].Resources[0] != arn {
					t.Fatalf("batch events = %+v", evs)
				}
			} else if len(evs) != 1 {
				t.Fatalf("%d events, want 1", len(evs))
			}
			if own.Source != "secretsmanager.amazonaws.com" || own.Action != tc.op || !own.Allowed || own.Reason != "root" ||
				own.RequestID != "req-"+tc.op || own.SourceIP != "198.51.100.7" || own.UserAgent != "ua/1" ||
				own.ReadOnly != tc.readOnly || own.ReturnsSecret != tc.secret || own.ErrorCode != "" ||
				own.Latency != 5*time.Millisecond || own.Principal != rootPrincipal || len(own.Resources) != 1 {
				t.Fatalf("event = %+v", *own)
			}
			if tc.resource == "s" && own.Resources[0] != arn {
				t.Fatalf("resources = %v", own.Resources)
			}
		})
	}
	// Failures after authorization are audited with their code.
	e.audit.reset()
	e.fail("GetSecretValue", map[string]any{"SecretId": "missing"}, codeResourceNotFound)
	if evs := e.audit.all(); len(evs) != 1 || evs[0].ErrorCode != codeResourceNotFound || !evs[0].Allowed || evs[0].ReturnsSecret {
		t.Fatalf("events = %+v", evs)
	}
	// Bad input never reaches authorization and is not audited.
	e.audit.reset()
	e.fail("GetSecretValue", map[string]any{}, codeInvalidParameter)
	if n := len(e.audit.all()); n != 0 {
		t.Fatalf("%d events for a request refused before authorization", n)
	}
}

func TestAuditFailureFailsClosed(t *testing.T) {
	e := newEnv(t)
	fixture(e)
	e.audit.setFail(true)
	for _, tc := range allOperations() {
		t.Run(tc.op, func(t *testing.T) {
			resp, err := e.call(tc.op, tc.req)
			withheld := !tc.readOnly || tc.secret || tc.op == "GetRandomPassword"
			if !withheld {
				if err != nil || resp == nil {
					t.Fatalf("metadata read failed with the audit log down: %v", err)
				}
				return
			}
			var ae *awsproto.Error
			if !errors.As(err, &ae) || ae.Code != "ServiceUnavailable" || ae.Status != http.StatusServiceUnavailable || resp != nil {
				t.Fatalf("got %v, %v; want ServiceUnavailable and no response", resp, err)
			}
		})
	}
	// The write happened even though its response was withheld.
	e.audit.setFail(false)
	if d := okAs[describeSecretOutput](e, "DescribeSecret", map[string]any{"SecretId": "s"}); d.Description != "d" || d.DeletedDate != nil {
		t.Fatalf("withheld writes not applied: %+v", d)
	}
	if e.value("s") != "v2" {
		t.Fatal("withheld PutSecretValue not applied")
	}
	// A denied call stays AccessDenied when the audit log is down.
	e.audit.setFail(true)
	e.principal = userPrincipal
	e.fail("GetSecretValue", map[string]any{"SecretId": "s"}, codeAccessDenied)
	if !strings.Contains(e.logs.String(), "recording audit event failed") {
		t.Fatal("audit failures are not logged")
	}
}

// faultyStore wraps a store and fails chosen calls.
type faultyStore struct {
	store.Store
	mu      sync.Mutex
	failGet error
	failTxn error
}

func (f *faultyStore) Get(ctx context.Context, key string) (store.Entry, error) {
	f.mu.Lock()
	err := f.failGet
	f.mu.Unlock()
	if err != nil {
		return store.Entry{}, err
	}
	return f.Store.Get(ctx, key)
}

func (f *faultyStore) Txn(ctx context.Context, cmps []store.Compare, ops []store.Op) (int64, error) {
	f.mu.Lock()
	err := f.failTxn
	f.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return f.Store.Txn(ctx, cmps, ops)
}

func TestStoreFailures(t *testing.T) {
	fs := &faultyStore{Store: openTestStore(t)}
	e := newEnvOn(t, fs)
	e.create("s", "v")
	tests := []struct {
		name     string
		get, txn error
		op       string
		req      map[string]any
		code     string // "" for an internal (non-AWS) error
	}{
		{"unavailable read", fmt.Errorf("etcd: %w", store.ErrUnavailable), nil, "GetSecretValue", map[string]any{"SecretId": "s"}, "ServiceUnavailable"},
		{"closed store", store.ErrClosed, nil, "DescribeSecret", map[string]any{"SecretId": "s"}, "ServiceUnavailable"},
		{"conflict", nil, fmt.Errorf("%w: busy", store.ErrConflict), "PutSecretValue", map[string]any{"SecretId": "s", "SecretString": "x"}, "ServiceUnavailable"},
		{"broken disk", nil, errors.New("disk on fire"), "PutSecretValue", map[string]any{"SecretId": "s", "SecretString": "x"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs.mu.Lock()
			fs.failGet, fs.failTxn = tc.get, tc.txn
			fs.mu.Unlock()
			defer func() {
				fs.mu.Lock()
				fs.failGet, fs.failTxn = nil, nil
				fs.mu.Unlock()
			}()
			_, err := e.call(tc.op, tc.req)
			var ae *awsproto.Error
			isAWS := errors.As(err, &ae)
			switch {
			case err == nil:
				t.Fatal("succeeded")
			case tc.code == "" && isAWS:
				t.Fatalf("internal failure surfaced as %v", ae)
			case tc.code != "" && (!isAWS || ae.Code != tc.code):
				t.Fatalf("error %v, want %s", err, tc.code)
			}
		})
	}
	if !strings.Contains(e.logs.String(), "disk on fire") {
		t.Fatal("internal error not logged")
	}
	if v := e.value("s"); v != "v" {
		t.Fatalf("value = %q after failed writes", v)
	}
}
