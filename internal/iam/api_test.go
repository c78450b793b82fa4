package iam

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	iamsdk "github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"sigil.dev/sigil/internal/audit"
	"sigil.dev/sigil/internal/authn"
	"sigil.dev/sigil/internal/awsproto"
)

func TestNewAPIConfig(t *testing.T) {
	ents, _ := newTestEntities(t, openTestStore(t), newTestClock(), 1)
	tests := []struct {
		name string
		cfg  APIConfig
	}{
		{"no entities", APIConfig{Authorizer: RootOnly{}, Audit: audit.Discard{}}},
		{"no authorizer", APIConfig{Entities: ents, Audit: audit.Discard{}}},
		{"no audit", APIConfig{Entities: ents, Authorizer: RootOnly{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewAPI(tt.cfg); !errors.Is(err, ErrInvalidEntitiesConfig) {
				t.Fatalf("err = %v", err)
			}
		})
	}
	if _, err := NewAPI(APIConfig{Entities: ents, Authorizer: RootOnly{}, Audit: audit.Discard{}}); err != nil {
		t.Fatal(err)
	}
	if _, err := NewEntities(EntitiesConfig{Store: openTestStore(t), AccountID: "12", Keys: authn.NewKeys(openTestStore(t), nil)}); !errors.Is(err, ErrInvalidEntitiesConfig) {
		t.Fatalf("bad account id: %v", err)
	}
}

// TestAuthorizationTargets checks the action and resource every kind of call
// is authorized on.
func TestAuthorizationTargets(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	c := e.client
	_, err := c.CreateRole(ctx, &iamsdk.CreateRoleInput{RoleName: aws.String("r"), Path: aws.String("/p/"), AssumeRolePolicyDocument: aws.String(trustEC2),
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("a")}}})
	mustNoErr(t, err)
	pol, err := c.CreatePolicy(ctx, &iamsdk.CreatePolicyInput{PolicyName: aws.String("pol"), PolicyDocument: aws.String(allowS3)})
	mustNoErr(t, err)
	_, err = c.CreateUser(ctx, &iamsdk.CreateUserInput{UserName: aws.String("u")})
	mustNoErr(t, err)
	oidc, err := c.CreateOpenIDConnectProvider(ctx, &iamsdk.CreateOpenIDConnectProviderInput{Url: aws.String("https://issuer.example.com")})
	mustNoErr(t, err)

	tests := []struct {
		name     string
		call     func() error
		action   string
		resource string
		ctxKey   string
		ctxValue string
	}{
		{"CreateRole with tags", func() error {
			_, err := c.CreateRole(ctx, &iamsdk.CreateRoleInput{RoleName: aws.String("n"), AssumeRolePolicyDocument: aws.String(trustEC2),
				Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
			return err
		}, "iam:CreateRole", "arn:aws:iam::123456789012:role/n", "aws:RequestTag/k", "v"},
		{"GetRole", func() error {
			_, err := c.GetRole(ctx, &iamsdk.GetRoleInput{RoleName: aws.String("r")})
			return err
		}, "iam:GetRole", "arn:aws:iam::123456789012:role/p/r", "aws:ResourceTag/team", "a"},
		{"AttachRolePolicy", func() error {
			_, err := c.AttachRolePolicy(ctx, &iamsdk.AttachRolePolicyInput{RoleName: aws.String("r"), PolicyArn: pol.Policy.Arn})
			return err
		}, "iam:AttachRolePolicy", "arn:aws:iam::123456789012:role/p/r", "iam:PolicyARN", aws.ToString(pol.Policy.Arn)},
		{"ListRoles", func() error {
			_, err := c.ListRoles(ctx, &iamsdk.ListRolesInput{})
			return err
		}, "iam:ListRoles", "*", "aws:SourceIp", "127.0.0.1"},
		{"GetPolicy", func() error {
			_, err := c.GetPolicy(ctx, &iamsdk.GetPolicyInput{PolicyArn: pol.Policy.Arn})
			return err
		}, "iam:GetPolicy", "arn:aws:iam::123456789012:policy/pol", "", ""},
		{"CreateAccessKey", func() error {
			_, err := c.CreateAccessKey(ctx, &iamsdk.CreateAccessKeyInput{UserName: aws.String("u")})
			return err
		}, "iam:CreateAccessKey", "arn:aws:iam::123456789012:user/u", "", ""},
		{"GetOpenIDConnectProvider", func() error {
			_, err := c.GetOpenIDConnectProvider(ctx, &iamsdk.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: oidc.OpenIDConnectProviderArn})
			return err
		}, "iam:GetOpenIDConnectProvider", "arn:aws:iam::123456789012:oidc-provider/issuer.example.com", "", ""},
		{"SimulatePrincipalPolicy", func() error {
			_, err := c.SimulatePrincipalPolicy(ctx, &iamsdk.SimulatePrincipalPolicyInput{PolicySourceArn: aws.String("arn:aws:iam::123456789012:user/u"), ActionNames: []string{"s3:GetObject"}})
			return err
		}, "iam:SimulatePrincipalPolicy", "arn:aws:iam::123456789012:user/u", "", ""},
		{"missing role is authorized before NoSuchEntity", func() error {
			_, err := c.DeleteRole(ctx, &iamsdk.DeleteRoleInput{RoleName: aws.String("ghost")})
			wantAPIError[*types.NoSuchEntityException](t, err, "NoSuchEntity")
			return nil
		}, "iam:DeleteRole", "arn:aws:iam::123456789012:role/ghost", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.authz.reset()
			mustNoErr(t, tt.call())
			reqs := e.authz.requests()
			if len(reqs) == 0 {
				t.Fatal("no authorization request")
			}
			r := reqs[0]
			if r.Action != tt.action || r.Resource != tt.resource || r.Principal == nil || !r.Principal.IsRoot() {
				t.Fatalf("authorized %s on %s as %+v; want %s on %s", r.Action, r.Resource, r.Principal, tt.action, tt.resource)
			}
			if tt.ctxKey != "" && (len(r.Context[tt.ctxKey]) != 1 || r.Context[tt.ctxKey][0] != tt.ctxValue) {
				t.Fatalf("context %s = %v, want %q", tt.ctxKey, r.Context[tt.ctxKey], tt.ctxValue)
			}
			ev := e.audit.last()
			if ev.Source != "iam.amazonaws.com" || "iam:"+ev.Action != tt.action || len(ev.Resources) == 0 || ev.Resources[0] != tt.resource || !ev.Allowed {
				t.Fatalf("audit event %+v", ev)
			}
		})
	}
	// Tagging on create also needs the tagging permission.
	e.authz.reset()
	_, err = c.CreateUser(ctx, &iamsdk.CreateUserInput{UserName: aws.String("tagged"), Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
	mustNoErr(t, err)
	if reqs := e.authz.requests(); len(reqs) != 2 || reqs[1].Action != "iam:TagUser" {
		t.Fatalf("CreateUser with tags authorized %+v", reqs)
	}
}

func TestAccessDenied(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	e.as(&authn.Principal{Kind: authn.KindIAMUser, AccountID: testAccount, ARN: "arn:aws:iam::123456789012:user/intruder", ID: "AIDAAAAAAAAAAAAAAAAAA", Name: "intruder"})
	_, err := e.client.CreateRole(ctx, &iamsdk.CreateRoleInput{RoleName: aws.String("r"), AssumeRolePolicyDocument: aws.String(trustEC2)})
	wantAPIError[smithy.APIError](t, err, "AccessDenied")
	var re *smithyhttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusForbidden {
		t.Fatalf("status of %v", err)
	}
	if !strings.Contains(err.Error(), "User: arn:aws:iam::123456789012:user/intruder is not authorized to perform: iam:CreateRole on resource: arn:aws:iam::123456789012:role/r") {
		t.Fatalf("message %v", err)
	}
	ev := e.audit.last()
	if ev.Allowed || ev.ErrorCode != "AccessDenied" || ev.Reason != "implicit deny" || ev.Principal.Name != "intruder" {
		t.Fatalf("audit event %+v", ev)
	}
	// Denied existence checks do not reveal whether the entity exists.
	_, err = e.client.GetRole(ctx, &iamsdk.GetRoleInput{RoleName: aws.String("nobody-has-this")})
	wantAPIError[smithy.APIError](t, err, "AccessDenied")

	e.as(rootPrincipal())
	if _, err := e.client.GetRole(ctx, &iamsdk.GetRoleInput{RoleName: aws.String("r")}); err == nil {
		t.Fatal("a denied CreateRole created the role")
	}
}

func TestAuditEvents(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	c := e.client
	_, err := c.CreateRole(ctx, &iamsdk.CreateRoleInput{RoleName: aws.String("r"), AssumeRolePolicyDocument: aws.String(trustEC2)})
	mustNoErr(t, err)
	ev := e.audit.last()
	if ev.Action != "CreateRole" || ev.ReadOnly || ev.ErrorCode != "" || ev.RequestID == "" || ev.SourceIP != "127.0.0.1" ||
		!ev.Time.Equal(e.clock.Now()) || ev.UserAgent == "" {
		t.Fatalf("CreateRole event %+v", ev)
	}
	_, err = c.GetRole(ctx, &iamsdk.GetRoleInput{RoleName: aws.String("r")})
	mustNoErr(t, err)
	if ev := e.audit.last(); !ev.ReadOnly || ev.Action != "GetRole" {
		t.Fatalf("GetRole event %+v", ev)
	}
	_, err = c.CreateRole(ctx, &iamsdk.CreateRoleInput{RoleName: aws.String("r"), AssumeRolePolicyDocument: aws.String(trustEC2)})
	wantAPIError[*types.EntityAlreadyExistsException](t, err, "EntityAlreadyExists")
	if ev := e.audit.last(); ev.ErrorCode != "EntityAlreadyExists" || !ev.Allowed {
		t.Fatalf("failed CreateRole event %+v", ev)
	}
	// Invalid input is audited too, as refused before authorization.
	_, err = c.CreateRole(ctx, &iamsdk.CreateRoleInput{RoleName: aws.String("bad name"), AssumeRolePolicyDocument: aws.String(trustEC2)})
	wantAPIError[smithy.APIError](t, err, "ValidationError")
	if ev := e.audit.last(); ev.ErrorCode != "ValidationError" || ev.Allowed || ev.Reason != "invalid request" || len(ev.Resources) != 0 {
		t.Fatalf("invalid CreateRole event %+v", ev)
	}

	// When the audit log fails, changes and secrets are withheld; reads go on.
	e.audit.fail.Store(true)
	_, err = c.CreateRole(ctx, &iamsdk.CreateRoleInput{RoleName: aws.String("r2"), AssumeRolePolicyDocument: aws.String(trustEC2)})
	wantAPIError[smithy.APIError](t, err, "ServiceUnavailable")
	_, err = c.CreateUser(ctx, &iamsdk.CreateUserInput{UserName: aws.String("u")})
	wantAPIError[smithy.APIError](t, err, "ServiceUnavailable")
	_, err = c.CreateAccessKey(ctx, &iamsdk.CreateAccessKeyInput{UserName: aws.String("u")})
	wantAPIError[smithy.APIError](t, err, "ServiceUnavailable")
	if _, err := c.GetRole(ctx, &iamsdk.GetRoleInput{RoleName: aws.String("r")}); err != nil {
		t.Fatalf("read with failing audit: %v", err)
	}
}

func TestProtocolErrors(t *testing.T) {
	e := newTestEnv(t)
	type errorResponse struct {
		XMLName xml.Name `xml:"ErrorResponse"`
		Xmlns   string   `xml:"xmlns,attr"`
		Type    string   `xml:"Error>Type"`
		Code    string   `xml:"Error>Code"`
		Message string   `xml:"Error>Message"`
		ReqID   string   `xml:"RequestId"`
	}
	tests := []struct {
		name   string
		form   url.Values
		status int
		code   string
	}{
		{"unknown action", url.Values{"Action": {"CreateGroup"}, "Version": {APIVersion}}, 400, "InvalidAction"},
		{"wrong version", url.Values{"Action": {"ListRoles"}, "Version": {"2011-06-15"}}, 400, "InvalidAction"},
		{"no action", url.Values{"Version": {APIVersion}}, 400, "MissingAction"},
		{"no such entity", url.Values{"Action": {"GetRole"}, "RoleName": {"x"}}, 404, "NoSuchEntity"},
		{"missing member", url.Values{"Action": {"GetRole"}}, 400, "ValidationError"},
		{"malformed policy", url.Values{"Action": {"CreatePolicy"}, "PolicyName": {"p"}, "PolicyDocument": {"{"}}, 400, "MalformedPolicyDocument"},
		{"gap in list", url.Values{"Action": {"UntagRole"}, "RoleName": {"x"}, "TagKeys.member.2": {"k"}}, 400, "ValidationError"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.post(tt.form)
			if resp.StatusCode != tt.status || resp.Header.Get("Content-Type") != "text/xml" {
				t.Fatalf("status %d (%s), want %d: %s", resp.StatusCode, resp.Header.Get("Content-Type"), tt.status, body)
			}
			var er errorResponse
			if err := xml.Unmarshal(body, &er); err != nil {
				t.Fatalf("%v: %s", err, body)
			}
			if er.Xmlns != awsproto.IAMNamespace || er.Type != "Sender" || er.Code != tt.code || er.Message == "" || er.ReqID == "" {
				t.Fatalf("error response %+v", er)
			}
		})
	}

	// A successful response has IAM's envelope.
	resp, body := e.post(url.Values{"Action": {"ListRoles"}, "Version": {APIVersion}})
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`<ListRolesResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><ListRolesResult><Roles></Roles><IsTruncated>false</IsTruncated></ListRolesResult><ResponseMetadata><RequestId>`)) {
		t.Fatalf("ListRoles response %d: %s", resp.StatusCode, body)
	}
	resp, body = e.post(url.Values{"Action": {"CreateRole"}, "RoleName": {"x"}, "AssumeRolePolicyDocument": {trustEC2}})
	if resp.StatusCode != 200 {
		t.Fatalf("CreateRole %s", body)
	}
	resp, body = e.post(url.Values{"Action": {"DeleteRole"}, "RoleName": {"x"}})
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`<DeleteRoleResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><ResponseMetadata>`)) {
		t.Fatalf("DeleteRole response %s", body)
	}
}

func TestInternalErrorsAreVague(t *testing.T) {
	e := newTestEnv(t)
	var logs bytes.Buffer
	e.api.log = slog.New(slog.NewTextHandler(&logs, nil))
	ctx := context.Background()
	if _, err := e.store.Put(ctx, rolesPrefix+"broken", []byte("not json")); err != nil {
		t.Fatal(err)
	}
	_, err := e.client.GetRole(ctx, &iamsdk.GetRoleInput{RoleName: aws.String("broken")})
	wantAPIError[*types.ServiceFailureException](t, err, "ServiceFailure")
	if strings.Contains(err.Error(), "corrupt") || strings.Contains(err.Error(), "json") {
		t.Fatalf("client sees the cause: %v", err)
	}
	if !strings.Contains(logs.String(), "corrupt record") || !strings.Contains(logs.String(), "request_id=req-") {
		t.Fatalf("server log lacks the cause: %s", logs.String())
	}

	// A closed store is a retryable unavailability.
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.ListRoles(ctx, &iamsdk.ListRolesInput{})
	wantAPIError[smithy.APIError](t, err, "ServiceUnavailable")
}

func TestKnownAction(t *testing.T) {
	for _, a := range []string{"CreateRole", "SimulatePrincipalPolicy", "ListOpenIDConnectProviders", "GetAccessKeyLastUsed"} {
		if !KnownAction(a) {
			t.Errorf("KnownAction(%q) = false", a)
		}
	}
	for _, a := range []string{"", "AssumeRole", "createrole", "CreateGroup"} {
		if KnownAction(a) {
			t.Errorf("KnownAction(%q) = true", a)
		}
	}
}
