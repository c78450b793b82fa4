package server_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"sigil.dev/sigil/internal/testutil/testserver"
)

// TestEverySecretsManagerOperation drives every operation through the full
// server (SigV4, authorization, the barrier over bolt, audit) with the
// aws-sdk-go-v2 client, including the typed errors it must surface.
func TestEverySecretsManagerOperation(t *testing.T) {
	srv := testserver.StartServer(t)
	ctx := context.Background()
	sm := secretsmanager.NewFromConfig(srv.AWSConfig())
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	created, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("ops/db"), Description: aws.String("d"),
		SecretString: aws.String("v1"), ClientRequestToken: aws.String("11111111-1111-4111-8111-111111111111"),
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("pay")}}})
	must("CreateSecret", err)
	again, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("ops/db"), SecretString: aws.String("v1"),
		ClientRequestToken: aws.String("11111111-1111-4111-8111-111111111111")})
	var exists *types.ResourceExistsException
	if !errors.As(err, &exists) && (err != nil || aws.ToString(again.VersionId) != aws.ToString(created.VersionId)) {
		t.Fatalf("repeated CreateSecret: %v", err)
	}
	put, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: created.ARN, SecretBinary: []byte{0, 1, 2}})
	must("PutSecretValue", err)
	_, err = sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: created.ARN, SecretString: aws.String("other"),
		ClientRequestToken: put.VersionId})
	if !errors.As(err, &exists) {
		t.Fatalf("same token, different value: %v, want ResourceExistsException", err)
	}
	got, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("ops/db")})
	must("GetSecretValue", err)
	if string(got.SecretBinary) != "\x00\x01\x02" || aws.ToString(got.VersionId) != aws.ToString(put.VersionId) {
		t.Fatalf("GetSecretValue returned the wrong version")
	}
	prev, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("ops/db"), VersionStage: aws.String("AWSPREVIOUS")})
	must("GetSecretValue AWSPREVIOUS", err)
	if aws.ToString(prev.SecretString) != "v1" {
		t.Fatalf("AWSPREVIOUS is not the first value")
	}
	batch, err := sm.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{SecretIdList: []string{"ops/db", "ops/missing"}})
	must("BatchGetSecretValue", err)
	if len(batch.SecretValues) != 1 || len(batch.Errors) != 1 {
		t.Fatalf("BatchGetSecretValue: %d values, %d errors", len(batch.SecretValues), len(batch.Errors))
	}
	_, err = sm.UpdateSecret(ctx, &secretsmanager.UpdateSecretInput{SecretId: aws.String("ops/db"), Description: aws.String("new"), KmsKeyId: aws.String("alias/app")})
	must("UpdateSecret", err)
	desc, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("ops/db")})
	must("DescribeSecret", err)
	if aws.ToString(desc.Description) != "new" || aws.ToString(desc.KmsKeyId) != "alias/app" || len(desc.VersionIdsToStages) != 2 {
		t.Fatalf("DescribeSecret: %+v", desc)
	}
	versions, err := sm.ListSecretVersionIds(ctx, &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String("ops/db")})
	must("ListSecretVersionIds", err)
	if len(versions.Versions) != 2 {
		t.Fatalf("ListSecretVersionIds: %d", len(versions.Versions))
	}
	_, err = sm.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String("ops/db"),
		VersionStage: aws.String("AWSCURRENT"), MoveToVersionId: created.VersionId, RemoveFromVersionId: put.VersionId})
	must("UpdateSecretVersionStage", err)
	_, err = sm.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String("ops/db"),
		VersionStage: aws.String("AWSCURRENT"), RemoveFromVersionId: created.VersionId})
	var invalid *types.InvalidParameterException
	if !errors.As(err, &invalid) {
		t.Fatalf("removing AWSCURRENT without moving it: %v", err)
	}
	_, err = sm.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String("ops/db"), Tags: []types.Tag{{Key: aws.String("env"), Value: aws.String("prod")}}})
	must("TagResource", err)
	_, err = sm.UntagResource(ctx, &secretsmanager.UntagResourceInput{SecretId: aws.String("ops/db"), TagKeys: []string{"team"}})
	must("UntagResource", err)
	list, err := sm.ListSecrets(ctx, &secretsmanager.ListSecretsInput{Filters: []types.Filter{{Key: types.FilterNameStringTypeTagKey, Values: []string{"env"}}}})
	must("ListSecrets", err)
	if len(list.SecretList) != 1 || aws.ToString(list.SecretList[0].Name) != "ops/db" {
		t.Fatalf("ListSecrets by tag key: %+v", list.SecretList)
	}
	pw, err := sm.GetRandomPassword(ctx, &secretsmanager.GetRandomPasswordInput{PasswordLength: aws.Int64(40), ExcludePunctuation: aws.Bool(true)})
	must("GetRandomPassword", err)
	if len(aws.ToString(pw.RandomPassword)) != 40 || strings.ContainsAny(aws.ToString(pw.RandomPassword), "!#$%&*") {
		t.Fatalf("GetRandomPassword: %q", aws.ToString(pw.RandomPassword))
	}
	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"secretsmanager:GetSecretValue","Resource":"*"}]}`
	val, err := sm.ValidateResourcePolicy(ctx, &secretsmanager.ValidateResourcePolicyInput{ResourcePolicy: aws.String(policy)})
	must("ValidateResourcePolicy", err)
	if !val.PolicyValidationPassed {
		t.Fatalf("valid policy failed validation: %+v", val.ValidationErrors)
	}
	_, err = sm.PutResourcePolicy(ctx, &secretsmanager.PutResourcePolicyInput{SecretId: aws.String("ops/db"), ResourcePolicy: aws.String(policy)})
	must("PutResourcePolicy", err)
	gp, err := sm.GetResourcePolicy(ctx, &secretsmanager.GetResourcePolicyInput{SecretId: aws.String("ops/db")})
	must("GetResourcePolicy", err)
	if aws.ToString(gp.ResourcePolicy) != policy {
		t.Fatalf("GetResourcePolicy returned another document")
	}
	rp, err := sm.ListResourcePolicies(ctx, &secretsmanager.ListResourcePoliciesInput{SecretId: aws.String("ops/db")})
	must("ListResourcePolicies", err)
	if len(rp.ResourcePolicies) != 1 {
		t.Fatalf("ListResourcePolicies: %d", len(rp.ResourcePolicies))
	}
	_, err = sm.DeleteResourcePolicy(ctx, &secretsmanager.DeleteResourcePolicyInput{SecretId: aws.String("ops/db")})
	must("DeleteResourcePolicy", err)
	_, err = sm.PutResourcePolicy(ctx, &secretsmanager.PutResourcePolicyInput{SecretId: aws.String("ops/db"), ResourcePolicy: aws.String(`{"Version":"2012-10-17"}`)})
	var malformed *types.MalformedPolicyDocumentException
	if !errors.As(err, &malformed) {
		t.Fatalf("malformed policy: %v", err)
	}

	// Rotation on a schedule, not at once, so the value the checks below
	// read stays; the runner and rotators have their own tests.
	rot, err := sm.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String("ops/db"),
		RotationLambdaARN: aws.String("arn:aws:lambda:us-east-1:" + strings.Split(aws.ToString(created.ARN), ":")[4] + ":function:sigil-random"),
		RotationRules:     &types.RotationRulesType{ScheduleExpression: aws.String("rate(10 days)")}, RotateImmediately: aws.Bool(false)})
	must("RotateSecret", err)
	if aws.ToString(rot.ARN) != aws.ToString(created.ARN) {
		t.Fatalf("RotateSecret answered for %s", aws.ToString(rot.ARN))
	}
	rd, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("ops/db")})
	must("DescribeSecret", err)
	if !aws.ToBool(rd.RotationEnabled) || rd.NextRotationDate == nil || aws.ToString(rd.RotationRules.ScheduleExpression) != "rate(10 days)" {
		t.Fatalf("DescribeSecret after RotateSecret: enabled %v, next %v", aws.ToBool(rd.RotationEnabled), rd.NextRotationDate)
	}
	_, err = sm.CancelRotateSecret(ctx, &secretsmanager.CancelRotateSecretInput{SecretId: aws.String("ops/db")})
	must("CancelRotateSecret", err)
	if rd, err = sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("ops/db")}); err != nil || aws.ToBool(rd.RotationEnabled) {
		t.Fatalf("DescribeSecret after CancelRotateSecret: %v, %v", aws.ToBool(rd.RotationEnabled), err)
	}

	del, err := sm.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("ops/db"), RecoveryWindowInDays: aws.Int64(7)})
	must("DeleteSecret", err)
	if del.DeletionDate == nil {
		t.Fatal("DeleteSecret returned no DeletionDate")
	}
	_, err = sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("ops/db")})
	var invReq *types.InvalidRequestException
	if !errors.As(err, &invReq) {
		t.Fatalf("read of a deleted secret: %v", err)
	}
	_, err = sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("ops/db"), SecretString: aws.String("x")})
	if !errors.As(err, &invReq) && !errors.As(err, &exists) {
		t.Fatalf("name of a secret scheduled for deletion reused: %v", err)
	}
	_, err = sm.RestoreSecret(ctx, &secretsmanager.RestoreSecretInput{SecretId: aws.String("ops/db")})
	must("RestoreSecret", err)
	_, err = sm.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("ops/db"), RecoveryWindowInDays: aws.Int64(3)})
	if !errors.As(err, &invalid) {
		t.Fatalf("recovery window of 3 days: %v", err)
	}
	_, err = sm.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("ops/db"), ForceDeleteWithoutRecovery: aws.Bool(true)})
	must("DeleteSecret force", err)
	var nf *types.ResourceNotFoundException
	if _, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("ops/db")}); !errors.As(err, &nf) {
		t.Fatalf("force-deleted secret: %v", err)
	}
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("bad name with spaces"), SecretString: aws.String("x")}); !errors.As(err, &invalid) {
		t.Fatalf("invalid name: %v", err)
	}
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("ops/big"), SecretString: aws.String(strings.Repeat("x", 65537))}); !errors.As(err, &invalid) {
		t.Fatalf("oversized value: %v", err)
	}
}
