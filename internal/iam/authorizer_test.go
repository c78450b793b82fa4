package iam

import (
	"context"
	"testing"

	"sigil.dev/sigil/internal/authn"
)

type fixedSource struct{ account string }

func (fixedSource) IdentityPolicies(context.Context, *authn.Principal) ([]NamedPolicy, error) {
	return nil, nil
}
func (fixedSource) PermissionsBoundary(context.Context, *authn.Principal) (*NamedPolicy, error) {
	return nil, nil
}
func (f fixedSource) AccountID() string { return f.account }

func TestEngineRootOfThisAccountOnly(t *testing.T) {
	e := NewEngine(fixedSource{account: "111122223333"}, nil)
	req := func(acct string) Request {
		return Request{Principal: &authn.Principal{Kind: authn.KindRoot, AccountID: acct, ARN: "arn:aws:iam::" + acct + ":root"},
			Action: "secretsmanager:GetSecretValue", Resource: "*"}
	}
	if d := e.Authorize(context.Background(), req("111122223333")); !d.Allowed {
		t.Fatalf("this account's root denied: %+v", d)
	}
	if d := e.Authorize(context.Background(), req("444455556666")); d.Allowed {
		t.Fatalf("another account's root allowed")
	}
}
