package secrets

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"

	"sigil.dev/sigil/internal/awsproto"
)

// This file runs the real aws-sdk-go-v2 Secrets Manager client against
// Handle behind an httptest server that does what the sigil edge does
// (without SigV4): route by X-Amz-Target, write awsproto.WriteJSON or
// awsproto.WriteJSONError. It checks wire compatibility: member names,
// timestamps, blobs, pagination tokens and typed exceptions.

func newSDKClient(t *testing.T, e *env) *secretsmanager.Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		service, op, ok := awsproto.TargetOperation(r.Header.Get("X-Amz-Target"))
		if !ok || service != "secretsmanager" {
			awsproto.WriteJSONError(w, awsproto.Errorf("UnknownOperationException", http.StatusBadRequest, "bad target"))
			return
		}
		b, err := io.ReadAll(r.Body)
		if err != nil {
			awsproto.WriteJSONError(w, awsproto.Internal())
			return
		}
		resp, err := e.svc.Handle(r.Context(), &Call{
			Operation: op, Body: b, Principal: e.principal, RequestID: "sdk",
			SourceIP: "127.0.0.1", UserAgent: r.UserAgent(), Start: e.clock.Now(),
		})
		if err != nil {
			ae, _ := awsproto.As(err)
			awsproto.WriteJSONError(w, ae)
			return
		}
		if err := awsproto.WriteJSON(w, resp); err != nil {
			t.Errorf("writing response: %v", err)
		}
	}))
	t.Cleanup(srv.Close)
	return secretsmanager.NewFromConfig(aws.Config{
		Region:      testRegion,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""),
		HTTPClient:  srv.Client(),
		Retryer:     func() aws.Retryer { return aws.NopRetryer{} },
	}, func(o *secretsmanager.Options) { o.BaseEndpoint = aws.String(srv.URL) })
}

// wantAPIError asserts err is the typed exception T.
func wantAPIError[T error](t *testing.T, what string, err error) T {
	t.Helper()
	var target T
	if !errors.As(err, &target) {
		t.Fatalf("%s: error %v (%T), want %T", what, err, err, target)
	}
	return target
}

func TestSDKWireCompatibility(t *testing.T) {
	e := newEnv(t)
	c := newSDKClient(t, e)
	ctx := context.Background()
	created := e.clock.Now()

	// CreateSecret with a string, tags, description and KMS key.
	cs, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String("prod/db"), SecretString: aws.String(`{"password":"p1"}`),
		Description: aws.String("primary database"), KmsKeyId: aws.String("alias/app"),
		Tags: []types.Tag{{Key: aws.String("env"), Value: aws.String("prod")}},
	})
	if err != nil {
		t.Fatalf("CreateSecret: %v", err)
	}
	if !strings.HasPrefix(aws.ToString(cs.ARN), "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-") || aws.ToString(cs.VersionId) == "" {
		t.Fatalf("CreateSecret = ARN %q version %q", aws.ToString(cs.ARN), aws.ToString(cs.VersionId))
	}
	firstVersion := aws.ToString(cs.VersionId)

	// The SDK's idempotency token makes the version id a UUID.
	if len(firstVersion) != 36 {
		t.Errorf("VersionId %q is not the SDK's UUID token", firstVersion)
	}

	// A binary secret round-trips as bytes.
	bin := []byte{0, 1, 2, 0xfe, 0xff}
	if _, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("blob"), SecretBinary: bin}); err != nil {
		t.Fatalf("CreateSecret binary: %v", err)
	}
	gb, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("blob")})
	if err != nil || !bytes.Equal(gb.SecretBinary, bin) || gb.SecretString != nil {
		t.Fatalf("GetSecretValue binary = %v, %v", gb, err)
	}

	// GetSecretValue by name, full ARN and partial ARN.
	partial := strings.TrimSuffix(aws.ToString(cs.ARN), aws.ToString(cs.ARN)[len(aws.ToString(cs.ARN))-7:])
	for _, id := range []string{"prod/db", aws.ToString(cs.ARN), partial} {
		g, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
		if err != nil {
			t.Fatalf("GetSecretValue(%s): %v", id, err)
		}
		if aws.ToString(g.SecretString) != `{"password":"p1"}` || aws.ToString(g.VersionId) != firstVersion ||
			len(g.VersionStages) != 1 || g.VersionStages[0] != "AWSCURRENT" {
			t.Fatalf("GetSecretValue(%s) = %q %q %v", id, aws.ToString(g.SecretString), aws.ToString(g.VersionId), g.VersionStages)
		}
		if g.CreatedDate == nil || !g.CreatedDate.Equal(created.Truncate(time.Millisecond)) {
			t.Fatalf("CreatedDate = %v, want %v", g.CreatedDate, created)
		}
	}

	// PutSecretValue moves AWSCURRENT and AWSPREVIOUS.
	e.clock.Advance(time.Minute)
	pv, err := c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("prod/db"), SecretString: aws.String(`{"password":"p2"}`)})
	if err != nil || len(pv.VersionStages) != 1 || pv.VersionStages[0] != "AWSCURRENT" {
		t.Fatalf("PutSecretValue = %v, %v", pv, err)
	}
	prev, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("prod/db"), VersionStage: aws.String("AWSPREVIOUS")})
	if err != nil || aws.ToString(prev.VersionId) != firstVersion || aws.ToString(prev.SecretString) != `{"password":"p1"}` {
		t.Fatalf("GetSecretValue AWSPREVIOUS = %v, %v", prev, err)
	}

	// UpdateSecret changes the description and adds a version.
	us, err := c.UpdateSecret(ctx, &secretsmanager.UpdateSecretInput{SecretId: aws.String("prod/db"), Description: aws.String("db v2"), SecretString: aws.String(`{"password":"p3"}`)})
	if err != nil || aws.ToString(us.VersionId) == "" {
		t.Fatalf("UpdateSecret = %v, %v", us, err)
	}

	// DescribeSecret parses every timestamp and map.
	d, err := c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("prod/db")})
	if err != nil {
		t.Fatalf("DescribeSecret: %v", err)
	}
	if aws.ToString(d.Description) != "db v2" || aws.ToString(d.KmsKeyId) != "alias/app" || len(d.Tags) != 1 ||
		aws.ToString(d.Tags[0].Key) != "env" || len(d.VersionIdsToStages) != 2 || aws.ToString(d.PrimaryRegion) != testRegion {
		t.Fatalf("DescribeSecret = %+v", d)
	}
	if d.CreatedDate == nil || !d.CreatedDate.Equal(created.Truncate(time.Millisecond)) || d.LastChangedDate == nil ||
		!d.LastChangedDate.After(*d.CreatedDate) || d.LastAccessedDate == nil || d.DeletedDate != nil {
		t.Fatalf("DescribeSecret dates = created %v changed %v accessed %v deleted %v", d.CreatedDate, d.LastChangedDate, d.LastAccessedDate, d.DeletedDate)
	}
	if want := created.Truncate(24 * time.Hour); !d.LastAccessedDate.Equal(want) {
		t.Errorf("LastAccessedDate = %v, want the day %v", d.LastAccessedDate, want)
	}

	// UpdateSecretVersionStage: roll back to the first version.
	cur := aws.ToString(us.VersionId)
	if _, err := c.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String("prod/db"), VersionStage: aws.String("AWSCURRENT"),
		MoveToVersionId: aws.String(firstVersion), RemoveFromVersionId: aws.String(cur),
	}); err != nil {
		t.Fatalf("UpdateSecretVersionStage: %v", err)
	}
	if g, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("prod/db")}); err != nil || aws.ToString(g.VersionId) != firstVersion {
		t.Fatalf("after rollback GetSecretValue = %v, %v", g, err)
	}

	// ListSecretVersionIds with the SDK paginator, including deprecated.
	var versions []string
	vp := secretsmanager.NewListSecretVersionIdsPaginator(c, &secretsmanager.ListSecretVersionIdsInput{
		SecretId: aws.String("prod/db"), IncludeDeprecated: aws.Bool(true), MaxResults: aws.Int32(1)})
	for vp.HasMorePages() {
		page, err := vp.NextPage(ctx)
		if err != nil {
			t.Fatalf("ListSecretVersionIds page: %v", err)
		}
		for _, v := range page.Versions {
			versions = append(versions, aws.ToString(v.VersionId))
			if v.CreatedDate == nil {
				t.Errorf("version %s has no CreatedDate", aws.ToString(v.VersionId))
			}
		}
	}
	if len(versions) != 3 {
		t.Fatalf("ListSecretVersionIds = %v, want 3 versions", versions)
	}

	// ListSecrets with the paginator and a filter.
	for i := range 5 {
		if _, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("app/" + string(rune('a'+i))), SecretString: aws.String("x")}); err != nil {
			t.Fatalf("CreateSecret app: %v", err)
		}
	}
	var names []string
	lp := secretsmanager.NewListSecretsPaginator(c, &secretsmanager.ListSecretsInput{
		MaxResults: aws.Int32(2), Filters: []types.Filter{{Key: types.FilterNameStringTypeName, Values: []string{"app/"}}}})
	for lp.HasMorePages() {
		page, err := lp.NextPage(ctx)
		if err != nil {
			t.Fatalf("ListSecrets page: %v", err)
		}
		for _, s := range page.SecretList {
			names = append(names, aws.ToString(s.Name))
		}
	}
	if strings.Join(names, ",") != "app/a,app/b,app/c,app/d,app/e" {
		t.Fatalf("ListSecrets = %v", names)
	}

	// BatchGetSecretValue reports a missing secret in Errors.
	bg, err := c.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{SecretIdList: []string{"app/a", "blob", "nope"}})
	if err != nil || len(bg.SecretValues) != 2 || len(bg.Errors) != 1 ||
		aws.ToString(bg.Errors[0].ErrorCode) != "ResourceNotFoundException" || aws.ToString(bg.Errors[0].SecretId) != "nope" {
		t.Fatalf("BatchGetSecretValue = %+v, %v", bg, err)
	}

	// Tags.
	if _, err := c.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String("blob"), Tags: []types.Tag{{Key: aws.String("a"), Value: aws.String("1")}, {Key: aws.String("b"), Value: aws.String("2")}}}); err != nil {
		t.Fatalf("TagResource: %v", err)
	}
	if _, err := c.UntagResource(ctx, &secretsmanager.UntagResourceInput{SecretId: aws.String("blob"), TagKeys: []string{"a"}}); err != nil {
		t.Fatalf("UntagResource: %v", err)
	}
	if d, err := c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("blob")}); err != nil || len(d.Tags) != 1 || aws.ToString(d.Tags[0].Key) != "b" {
		t.Fatalf("tags after untag = %+v, %v", d, err)
	}

	// Resource policies.
	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:role/app"},"Action":"secretsmanager:GetSecretValue","Resource":"*"}]}`
	if pr, err := c.PutResourcePolicy(ctx, &secretsmanager.PutResourcePolicyInput{SecretId: aws.String("blob"), ResourcePolicy: aws.String(policy), BlockPublicPolicy: aws.Bool(true)}); err != nil || aws.ToString(pr.PolicyName) != "default" {
		t.Fatalf("PutResourcePolicy = %v, %v", pr, err)
	}
	if gp, err := c.GetResourcePolicy(ctx, &secretsmanager.GetResourcePolicyInput{SecretId: aws.String("blob")}); err != nil || aws.ToString(gp.ResourcePolicy) != policy {
		t.Fatalf("GetResourcePolicy = %v, %v", gp, err)
	}
	if lr, err := c.ListResourcePolicies(ctx, &secretsmanager.ListResourcePoliciesInput{SecretId: aws.String("blob")}); err != nil || len(lr.ResourcePolicies) != 1 {
		t.Fatalf("ListResourcePolicies = %v, %v", lr, err)
	}
	public := `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"secretsmanager:*"}}`
	vr, err := c.ValidateResourcePolicy(ctx, &secretsmanager.ValidateResourcePolicyInput{ResourcePolicy: aws.String(public)})
	if err != nil || vr.PolicyValidationPassed || len(vr.ValidationErrors) != 1 {
		t.Fatalf("ValidateResourcePolicy(public) = %+v, %v", vr, err)
	}
	_, err = c.PutResourcePolicy(ctx, &secretsmanager.PutResourcePolicyInput{SecretId: aws.String("blob"), ResourcePolicy: aws.String(public), BlockPublicPolicy: aws.Bool(true)})
	wantAPIError[*types.PublicPolicyException](t, "PutResourcePolicy public", err)
	_, err = c.PutResourcePolicy(ctx, &secretsmanager.PutResourcePolicyInput{SecretId: aws.String("blob"), ResourcePolicy: aws.String(`{"Statement":`)})
	wantAPIError[*types.MalformedPolicyDocumentException](t, "PutResourcePolicy malformed", err)
	if _, err := c.DeleteResourcePolicy(ctx, &secretsmanager.DeleteResourcePolicyInput{SecretId: aws.String("blob")}); err != nil {
		t.Fatalf("DeleteResourcePolicy: %v", err)
	}

	// GetRandomPassword.
	rp, err := c.GetRandomPassword(ctx, &secretsmanager.GetRandomPasswordInput{PasswordLength: aws.Int64(20), ExcludePunctuation: aws.Bool(true)})
	if err != nil || len(aws.ToString(rp.RandomPassword)) != 20 {
		t.Fatalf("GetRandomPassword = %v, %v", rp, err)
	}

	// DeleteSecret, reads refused, RestoreSecret.
	ds, err := c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("blob"), RecoveryWindowInDays: aws.Int64(7)})
	if err != nil || ds.DeletionDate == nil || !ds.DeletionDate.Equal(e.clock.Now().Add(7*24*time.Hour).Truncate(time.Millisecond)) {
		t.Fatalf("DeleteSecret = %+v, %v", ds, err)
	}
	_, err = c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("blob")})
	wantAPIError[*types.InvalidRequestException](t, "GetSecretValue deleted", err)
	if d, err := c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("blob")}); err != nil || d.DeletedDate == nil {
		t.Fatalf("DescribeSecret deleted = %+v, %v", d, err)
	}
	if _, err := c.RestoreSecret(ctx, &secretsmanager.RestoreSecretInput{SecretId: aws.String("blob")}); err != nil {
		t.Fatalf("RestoreSecret: %v", err)
	}
	if _, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("blob")}); err != nil {
		t.Fatalf("GetSecretValue restored: %v", err)
	}
	if _, err := c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("blob"), ForceDeleteWithoutRecovery: aws.Bool(true)}); err != nil {
		t.Fatalf("DeleteSecret force: %v", err)
	}

	// Typed exceptions.
	_, err = c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("blob")})
	wantAPIError[*types.ResourceNotFoundException](t, "GetSecretValue purged", err)
	_, err = c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("prod/db"), SecretString: aws.String("x")})
	wantAPIError[*types.ResourceExistsException](t, "CreateSecret duplicate", err)
	_, err = c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("bad name!")})
	wantAPIError[*types.InvalidParameterException](t, "CreateSecret bad name", err)
	_, err = c.ListSecrets(ctx, &secretsmanager.ListSecretsInput{NextToken: aws.String("forged")})
	wantAPIError[*types.InvalidNextTokenException](t, "ListSecrets forged token", err)
	_, err = c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("prod/db"), ClientRequestToken: aws.String(firstVersion), SecretString: aws.String("other")})
	wantAPIError[*types.ResourceExistsException](t, "PutSecretValue reused token", err)
	_, err = c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("prod/db"), SecretString: aws.String(strings.Repeat("x", 65537))})
	wantAPIError[*types.InvalidParameterException](t, "PutSecretValue oversized", err)

	e.principal = userPrincipal
	_, err = c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("prod/db")})
	ae := wantAPIError[smithy.APIError](t, "GetSecretValue denied", err)
	if ae.ErrorCode() != "AccessDeniedException" || !strings.Contains(ae.ErrorMessage(), "user/ci is not authorized to perform: secretsmanager:GetSecretValue") {
		t.Fatalf("denied = %s: %s", ae.ErrorCode(), ae.ErrorMessage())
	}
}
