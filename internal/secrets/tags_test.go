package secrets

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"sigil.dev/sigil/internal/iam"
)

func tagList(kv ...string) []map[string]string {
	var out []map[string]string
	for i := 0; i < len(kv); i += 2 {
		out = append(out, map[string]string{"Key": kv[i], "Value": kv[i+1]})
	}
	return out
}

func (e *env) tags(id string) string {
	e.t.Helper()
	var parts []string
	for _, t := range okAs[describeSecretOutput](e, "DescribeSecret", map[string]any{"SecretId": id}).Tags {
		parts = append(parts, t.Key+"="+t.Value)
	}
	return strings.Join(parts, ",")
}

func TestTagAndUntag(t *testing.T) {
	e := newEnv(t)
	e.ok("CreateSecret", map[string]any{"Name": "s", "SecretString": "v", "Tags": tagList("a", "1", "b", "2")})
	steps := []struct {
		op   string
		req  map[string]any
		want string
	}{
		{"TagResource", map[string]any{"Tags": tagList("b", "20", "c", "3")}, "a=1,b=20,c=3"},
		{"TagResource", map[string]any{"Tags": tagList("ü nicode", "wert ok")}, "a=1,b=20,c=3,ü nicode=wert ok"},
		{"UntagResource", map[string]any{"TagKeys": []string{"a", "absent"}}, "b=20,c=3,ü nicode=wert ok"},
		{"UntagResource", map[string]any{"TagKeys": []string{}}, "b=20,c=3,ü nicode=wert ok"},
	}
	for _, st := range steps {
		st.req["SecretId"] = "s"
		if out := e.ok(st.op, st.req); len(out) != 0 {
			t.Fatalf("%s returned %v, want {}", st.op, out)
		}
		if got := e.tags("s"); got != st.want {
			t.Fatalf("after %s: tags %q, want %q", st.op, got, st.want)
		}
	}
	var fifty []string
	for i := range 47 {
		fifty = append(fifty, fmt.Sprintf("k%02d", i), "v")
	}
	e.ok("TagResource", map[string]any{"SecretId": "s", "Tags": tagList(fifty...)}) // 3 + 47 = 50
	e.fail("TagResource", map[string]any{"SecretId": "s", "Tags": tagList("one-more", "v")}, codeLimitExceeded)

	bad := []struct {
		name string
		op   string
		req  map[string]any
	}{
		{"no tags", "TagResource", map[string]any{"SecretId": "s"}},
		{"reserved prefix", "TagResource", map[string]any{"SecretId": "s", "Tags": tagList("AWS:x", "v")}},
		{"key too long", "TagResource", map[string]any{"SecretId": "s", "Tags": tagList(strings.Repeat("k", 129), "v")}},
		{"bad character", "TagResource", map[string]any{"SecretId": "s", "Tags": tagList("k*", "v")}},
		{"51 in one call", "TagResource", map[string]any{"SecretId": "s", "Tags": tagList(strings.Split(strings.Repeat("k,v,", 51), ",")[:102]...)}},
		{"no keys", "UntagResource", map[string]any{"SecretId": "s"}},
		{"reserved key", "UntagResource", map[string]any{"SecretId": "s", "TagKeys": []string{"aws:cloudformation:stack-id"}}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			before := e.tags("s")
			e.fail(tc.op, tc.req, codeInvalidParameter)
			if after := e.tags("s"); after != before {
				t.Fatalf("tags changed from %q to %q", before, after)
			}
		})
	}
	e.fail("TagResource", map[string]any{"SecretId": "missing", "Tags": tagList("a", "b")}, codeResourceNotFound)
}

func TestTagLockout(t *testing.T) {
	// Allowed to tag only secrets tagged team=payments.
	authz := authorizerFunc(func(_ context.Context, r iam.Request) iam.Decision {
		if r.Principal.IsRoot() {
			return iam.Decision{Allowed: true, Reason: "root"}
		}
		if vals := r.Context["aws:ResourceTag/team"]; len(vals) == 1 && vals[0] == "payments" {
			return iam.Decision{Allowed: true, Reason: "allow"}
		}
		return iam.Decision{Reason: "implicit deny"}
	})
	e := newEnv(t, withAuthorizer(authz))
	e.ok("CreateSecret", map[string]any{"Name": "s", "SecretString": "v", "Tags": tagList("team", "payments")})
	e.principal = userPrincipal
	e.ok("TagResource", map[string]any{"SecretId": "s", "Tags": tagList("env", "prod")})
	e.fail("TagResource", map[string]any{"SecretId": "s", "Tags": tagList("team", "search")}, codeAccessDenied)
	e.fail("UntagResource", map[string]any{"SecretId": "s", "TagKeys": []string{"team"}}, codeAccessDenied)
	evs := e.audit.all()
	if last := evs[len(evs)-1]; last.Allowed || last.ErrorCode != codeAccessDenied || last.Action != "UntagResource" {
		t.Fatalf("lock-out audit event = %+v", *last)
	}
	if got := e.tagsAsRoot("s"); got != "team=payments,env=prod" {
		t.Fatalf("tags = %q", got)
	}
}

func (e *env) tagsAsRoot(id string) string {
	p := e.principal
	e.principal = rootPrincipal
	defer func() { e.principal = p }()
	return e.tags(id)
}

func TestResourcePolicies(t *testing.T) {
	e := newEnv(t)
	e.create("s", "v")
	if out := e.ok("GetResourcePolicy", map[string]any{"SecretId": "s"}); out["ResourcePolicy"] != nil || out["PolicyName"] != "default" {
		t.Fatalf("GetResourcePolicy without a policy = %v", out)
	}
	if out := e.ok("ListResourcePolicies", map[string]any{"SecretId": "s"}); len(out["ResourcePolicies"].([]any)) != 0 {
		t.Fatalf("ListResourcePolicies without a policy = %v", out)
	}
	e.ok("PutResourcePolicy", map[string]any{"SecretId": "s", "ResourcePolicy": testPolicy})
	if out := e.ok("GetResourcePolicy", map[string]any{"SecretId": "s"}); out["ResourcePolicy"] != testPolicy {
		t.Fatalf("GetResourcePolicy = %v", out)
	}
	if out := e.ok("ListResourcePolicies", map[string]any{"SecretId": "s"}); len(out["ResourcePolicies"].([]any)) != 1 {
		t.Fatalf("ListResourcePolicies = %v", out)
	}
	e.fail("GetResourcePolicy", map[string]any{"SecretId": "s", "PolicyName": "other"}, codeResourceNotFound)
	e.fail("PutResourcePolicy", map[string]any{"SecretId": "s", "ResourcePolicy": testPolicy, "PolicyName": "other"}, codeInvalidParameter)
	e.fail("DeleteResourcePolicy", map[string]any{"SecretId": "s", "PolicyName": "other"}, codeInvalidParameter)
	e.fail("PutResourcePolicy", map[string]any{"SecretId": "s"}, codeInvalidParameter)
	e.fail("ListResourcePolicies", map[string]any{"SecretId": "s", "NextToken": "x"}, codeInvalidNextToken)

	public := `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"secretsmanager:GetSecretValue"}}`
	e.fail("PutResourcePolicy", map[string]any{"SecretId": "s", "ResourcePolicy": public, "BlockPublicPolicy": true}, codePublicPolicy)
	e.ok("PutResourcePolicy", map[string]any{"SecretId": "s", "ResourcePolicy": public}) // not blocked by default
	conditioned := `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"secretsmanager:GetSecretValue","Condition":{"StringEquals":{"aws:PrincipalAccount":"123456789012"}}}}`
	e.ok("PutResourcePolicy", map[string]any{"SecretId": "s", "ResourcePolicy": conditioned, "BlockPublicPolicy": true})

	e.ok("DeleteResourcePolicy", map[string]any{"SecretId": "s"})
	if out := e.ok("GetResourcePolicy", map[string]any{"SecretId": "s"}); out["ResourcePolicy"] != nil {
		t.Fatalf("policy after delete = %v", out)
	}
	e.ok("DeleteResourcePolicy", map[string]any{"SecretId": "s"}) // idempotent

	// ValidateResourcePolicy.
	v := okAs[validateResourcePolicyOutput](e, "ValidateResourcePolicy", map[string]any{"ResourcePolicy": testPolicy, "SecretId": "s"})
	if !v.PolicyValidationPassed || len(v.ValidationErrors) != 0 {
		t.Fatalf("valid policy = %+v", v)
	}
	v = okAs[validateResourcePolicyOutput](e, "ValidateResourcePolicy", map[string]any{"ResourcePolicy": `{"Statement":[{"Effect":"Maybe","Principal":"*","Action":"x"}]}`})
	if v.PolicyValidationPassed || len(v.ValidationErrors) < 2 {
		t.Fatalf("invalid policy = %+v", v)
	}
	e.fail("ValidateResourcePolicy", map[string]any{"ResourcePolicy": "not json"}, codeMalformedPolicy)
	e.fail("ValidateResourcePolicy", map[string]any{"ResourcePolicy": testPolicy, "SecretId": "missing"}, codeResourceNotFound)
	e.fail("ValidateResourcePolicy", map[string]any{}, codeInvalidParameter)
}

func TestResourcePolicyReachesAuthorizer(t *testing.T) {
	var got []string
	authz := authorizerFunc(func(_ context.Context, r iam.Request) iam.Decision {
		got = append(got, r.ResourcePolicy)
		return iam.Decision{Allowed: true, Reason: "allow"}
	})
	e := newEnv(t, withAuthorizer(authz))
	e.create("s", "v")
	e.ok("PutResourcePolicy", map[string]any{"SecretId": "s", "ResourcePolicy": testPolicy})
	got = nil
	e.value("s")
	if len(got) != 1 || got[0] != testPolicy {
		t.Fatalf("authorizer saw policies %q", got)
	}
}
