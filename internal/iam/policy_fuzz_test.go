package iam

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"sigil.dev/sigil/internal/authn"
)

// fuzzRequests are evaluated against every document the fuzzer manages to
// parse: principals of each kind and none, contexts with every operator
// family's keys, wrong types and multivalued keys.
var fuzzRequests = []*Request{
	{
		Principal: &authn.Principal{Kind: authn.KindIAMUser, AccountID: "123456789012", ARN: "arn:aws:iam::123456789012:user/alice", ID: "AIDAALICE", Name: "alice", Tags: map[string]string{"team": "payments"}},
		Action:    "secretsmanager:GetSecretValue",
		Resource:  "arn:aws:secretsmanager:us-east-1:123456789012:secret:my-app/database-credentials-AbCdEf",
		Context: map[string][]string{
			"aws:SourceIp": {"203.0.113.9"}, "aws:CurrentTime": {"2026-03-01T12:00:00Z"}, "aws:EpochTime": {"1772366400"},
			"aws:SecureTransport": {"true"}, "aws:TagKeys": {"env", "team"}, "aws:SourceArn": {"arn:aws:s3:::bucket"},
			"sigil:Blob": {"aGVsbG8="}, "sigil:N": {"10"},
		},
	},
	{
		Principal: &authn.Principal{Kind: authn.KindAssumedRole, AccountID: "123456789012", ARN: "arn:aws:sts::123456789012:assumed-role/app-role/pod-1", ID: "AROA1:pod-1"},
		Action:    "sts:AssumeRoleWithWebIdentity",
		Resource:  "*",
		Context: map[string][]string{
			"oidc.example.com/cluster:sub": {"system:serviceaccount:default:my-app"}, "aws:SourceIp": {"not-an-ip"},
			"aws:CurrentTime": {"garbage"}, "sigil:N": {"abc"}, "aws:TagKeys": {}, "aws:SourceArn": {"x"},
		},
	},
	{Action: "s3:GetObject", Resource: "arn:aws:s3:::b/${aws:username}/*"},
	{Principal: &authn.Principal{Kind: authn.KindIAMUser, AccountID: "210987654321", ARN: "arn:aws:iam::210987654321:user/mallory", Name: "mallory"}, Action: "*", Resource: "*"},
}

var fuzzRefs = []PrincipalRef{
	{Type: PrincipalFederated, ID: "arn:aws:iam::123456789012:oidc-provider/oidc.example.com/cluster"},
	{Type: PrincipalAWS, ID: "arn:aws:iam::123456789012:user/alice"},
	{Type: PrincipalService, ID: "ec2.amazonaws.com"},
}

func FuzzParsePolicy(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		if filepath.Base(name) == "decisions.json" {
			// Seed with the table's policies rather than the table.
			var df struct {
				Policies map[string]struct {
					Doc json.RawMessage `json:"doc"`
				} `json:"policies"`
			}
			if err := json.Unmarshal(b, &df); err != nil {
				f.Fatal(err)
			}
			for _, p := range df.Policies {
				for k := range 3 {
					f.Add(string(p.Doc), uint8(k))
				}
			}
			continue
		}
		for k := range 3 {
			f.Add(string(b), uint8(k))
		}
	}
	f.Fuzz(func(t *testing.T, doc string, k uint8) {
		kind := PolicyKind(k%3) + IdentityPolicy
		p, err := ParsePolicy(doc, kind)
		if err != nil {
			if _, ok := err.(*PolicyError); !ok {
				t.Fatalf("error %T is not a *PolicyError: %v", err, err)
			}
			return
		}
		again, err := ParsePolicy(p.Document(), kind)
		if err != nil {
			t.Fatalf("reparsing an accepted document: %v", err)
		}
		for _, req := range fuzzRequests {
			sets := []*PolicySet{
				{Identity: []NamedPolicy{{Name: "a", Policy: p}}},
				{Resource: &NamedPolicy{Name: "r", Policy: p}},
				{Identity: []NamedPolicy{{Name: "a", Policy: p}}, Session: []NamedPolicy{{Name: "s", Policy: p}}, Boundary: &NamedPolicy{Name: "b", Policy: p}},
			}
			for _, set := range sets {
				d1 := Evaluate(req, set)
				d2 := Evaluate(req, set)
				if d1 != d2 {
					t.Fatalf("evaluation is not deterministic: %+v then %+v", d1, d2)
				}
				if d1.Allowed != (d1.Reason == reasonAllow) {
					t.Fatalf("decision %+v contradicts itself", d1)
				}
				other := *set
				for i := range other.Identity {
					other.Identity[i].Policy = again
				}
				if d3 := Evaluate(req, &other); d3 != d1 {
					t.Fatalf("a reparsed policy decides differently: %+v vs %+v", d3, d1)
				}
			}
			for _, ref := range fuzzRefs {
				if d1, d2 := p.AllowsPrincipal(req, ref), p.AllowsPrincipal(req, ref); d1 != d2 {
					t.Fatalf("trust evaluation is not deterministic: %+v then %+v", d1, d2)
				}
			}
		}
	})
}
