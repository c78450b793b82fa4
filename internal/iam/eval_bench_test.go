package iam

import (
	"os"
	"path/filepath"
	"testing"

	"sigil.dev/sigil/internal/authn"
)

// scenario holds the e-commerce scenario: the app role's attached policy and
// trust policy, and a request as the secrets service builds it.
type scenario struct {
	roleDoc, trustDoc string
	set               *PolicySet
	trust             *Policy
	req               *Request
	webReq            *Request
	provider          PrincipalRef
}

func loadScenario(tb testing.TB) *scenario {
	tb.Helper()
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			tb.Fatal(err)
		}
		return string(b)
	}
	s := &scenario{roleDoc: read("scenario_role.json"), trustDoc: read("scenario_trust.json")}
	role, err := ParsePolicy(s.roleDoc, IdentityPolicy)
	if err != nil {
		tb.Fatal(err)
	}
	if s.trust, err = ParsePolicy(s.trustDoc, TrustPolicy); err != nil {
		tb.Fatal(err)
	}
	s.set = &PolicySet{Identity: []NamedPolicy{{Name: "arn:aws:iam::123456789012:policy/my-app-secrets", Policy: role}}}
	principal := &authn.Principal{
		Kind:      authn.KindAssumedRole,
		AccountID: "123456789012",
		ARN:       "arn:aws:sts::123456789012:assumed-role/my-app/pod-7f9c",
		ID:        "AROAEXAMPLEMYAPP:pod-7f9c",
	}
	s.req = &Request{
		Principal: principal,
		Action:    "secretsmanager:GetSecretValue",
		Resource:  "arn:aws:secretsmanager:us-east-1:123456789012:secret:my-app/database-credentials-AbCdEf",
		Context: map[string][]string{
			"aws:CurrentTime":                    {"2026-03-01T12:00:00Z"},
			"aws:EpochTime":                      {"1772366400"},
			"aws:SecureTransport":                {"true"},
			"aws:RequestedRegion":                {"us-east-1"},
			"aws:SourceIp":                       {"10.0.3.17"},
			"aws:UserAgent":                      {"aws-sdk-go-v2/1.30.0"},
			"aws:PrincipalArn":                   {"arn:aws:iam::123456789012:role/my-app"},
			"aws:PrincipalAccount":               {"123456789012"},
			"aws:userid":                         {"AROAEXAMPLEMYAPP:pod-7f9c"},
			"aws:PrincipalType":                  {"AssumedRole"},
			"secretsmanager:SecretId":            {"arn:aws:secretsmanager:us-east-1:123456789012:secret:my-app/database-credentials-AbCdEf"},
			"secretsmanager:Name":                {"my-app/database-credentials"},
			"secretsmanager:SecretPrimaryRegion": {"us-east-1"},
		},
	}
	s.provider = PrincipalRef{Type: PrincipalFederated, ID: "arn:aws:iam::123456789012:oidc-provider/oidc.example.com/cluster"}
	s.webReq = &Request{
		Action: "sts:AssumeRoleWithWebIdentity",
		Context: map[string][]string{
			"oidc.example.com/cluster:sub": {"system:serviceaccount:default:my-app"},
			"oidc.example.com/cluster:aud": {"sts.amazonaws.com"},
			"aws:SourceIp":                 {"10.0.3.17"},
		},
	}
	return s
}

func TestScenario(t *testing.T) {
	s := loadScenario(t)
	if d := Evaluate(s.req, s.set); !d.Allowed || d.Statement != "ReadAppSecret" {
		t.Errorf("scenario read: %+v", d)
	}
	if d := s.trust.AllowsPrincipal(s.webReq, s.provider); !d.Allowed {
		t.Errorf("scenario web identity: %+v", d)
	}
}

// TestEvaluateDoesNotAllocate holds the evaluator to its promise for
// policies without variables. It counts allocations, not time.
func TestEvaluateDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	s := loadScenario(t)
	denied := *s.req
	denied.Action = "secretsmanager:DeleteSecret"
	missing := *s.req
	missing.Context = map[string][]string{"AWS:SECURETRANSPORT": {"true"}, "aws:requestedregion": {"us-east-1"}}
	tests := map[string]func(){
		"allow":               func() { Evaluate(s.req, s.set) },
		"explicit deny":       func() { Evaluate(&denied, s.set) },
		"case-folded keys":    func() { Evaluate(&missing, s.set) },
		"trust web identity":  func() { s.trust.AllowsPrincipal(s.webReq, s.provider) },
		"trust wrong subject": func() { s.trust.AllowsPrincipal(&Request{Action: "sts:AssumeRoleWithWebIdentity"}, s.provider) },
	}
	for name, fn := range tests {
		if n := testing.AllocsPerRun(100, fn); n != 0 {
			t.Errorf("%s: %v allocations per evaluation, want 0", name, n)
		}
	}
}

func BenchmarkEvaluateScenarioRole(b *testing.B) {
	s := loadScenario(b)
	if d := Evaluate(s.req, s.set); !d.Allowed {
		b.Fatalf("scenario request denied: %+v", d)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		Evaluate(s.req, s.set)
	}
}

func BenchmarkEvaluateScenarioTrust(b *testing.B) {
	s := loadScenario(b)
	b.ReportAllocs()
	for b.Loop() {
		s.trust.AllowsPrincipal(s.webReq, s.provider)
	}
}

func BenchmarkParsePolicy(b *testing.B) {
	s := loadScenario(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(s.roleDoc)))
	for b.Loop() {
		if _, err := ParsePolicy(s.roleDoc, IdentityPolicy); err != nil {
			b.Fatal(err)
		}
	}
}
