#!/usr/bin/env bash
# IAM through the aws CLI, then boto3 with the new user's key (see
# scripts/e2e.sh, which sets SIGIL_ENDPOINT and root credentials).
set -euo pipefail
: "${SIGIL_ENDPOINT:?}" "${AWS:=aws}"
awsr() { "$AWS" --endpoint-url "$SIGIL_ENDPOINT" --output json "$@"; }
fail() { echo "iam: FAIL: $*" >&2; exit 1; }
py() { /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# GetUser without a name answers for the caller: root's ARN carries the account.
acct=$(awsr iam get-user | py 'd["User"]["Arn"].split(":")[4]')

awsr secretsmanager create-secret --name e2e/iam/app-db --secret-string 'reader-may-see' >/dev/null
awsr secretsmanager create-secret --name e2e/iam/other --secret-string 'reader-may-not' >/dev/null

awsr iam create-user --user-name e2e-reader >/dev/null
awsr iam put-user-policy --user-name e2e-reader --policy-name read-app --policy-document "{
  \"Version\":\"2012-10-17\",
  \"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"secretsmanager:GetSecretValue\",
    \"Resource\":\"arn:aws:secretsmanager:us-east-1:$acct:secret:e2e/iam/app-*\"}]}" >/dev/null
doc=$(awsr iam get-user-policy --user-name e2e-reader --policy-name read-app | py 'd["PolicyDocument"]')
echo "$doc" | grep -q 'e2e/iam/app-' || fail "get-user-policy lost the document: $doc"
key=$(awsr iam create-access-key --user-name e2e-reader)
export READER_KEY_ID=$(echo "$key" | py 'd["AccessKey"]["AccessKeyId"]')
export READER_SECRET=$(echo "$key" | py 'd["AccessKey"]["SecretAccessKey"]')
case "$READER_KEY_ID" in AKIA????????????????) ;; *) fail "access key id $READER_KEY_ID";; esac

# The scenario role: trusted by a cluster's OIDC provider, reading one secret family.
issuer=oidc.e2e.example.com/id/CLUSTER
awsr iam create-open-id-connect-provider --url "https://$issuer" --client-id-list sts.amazonaws.com \
  --thumbprint-list 9e99a48a9960b14926bb7f3b02e22da2b0ab7280 >/dev/null
awsr iam create-role --role-name application-role --assume-role-policy-document "{
  \"Version\":\"2012-10-17\",
  \"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"sts:AssumeRoleWithWebIdentity\",
    \"Principal\":{\"Federated\":\"arn:aws:iam::$acct:oidc-provider/$issuer\"},
    \"Condition\":{\"StringEquals\":{\"$issuer:sub\":\"system:serviceaccount:default:my-app\"}}}]}" >/dev/null
awsr iam put-role-policy --role-name application-role --policy-name secrets --policy-document "{
  \"Version\":\"2012-10-17\",
  \"Statement\":[{\"Effect\":\"Allow\",\"Action\":[\"secretsmanager:GetSecretValue\",\"secretsmanager:DescribeSecret\"],
    \"Resource\":\"arn:aws:secretsmanager:us-east-1:$acct:secret:my-app/database-credentials-*\"}]}" >/dev/null
awsr iam get-role --role-name application-role | py 'd["Role"]["Arn"]' | grep -q ':role/application-role' || fail "get-role"

# A malformed policy is refused with IAM's error.
if out=$(awsr iam put-role-policy --role-name application-role --policy-name bad --policy-document '{"Version":"2012-10-17","Statement":[{"Effect":"Maybe"}]}' 2>&1); then
  fail "malformed policy accepted"
fi
echo "$out" | grep -q MalformedPolicyDocument || fail "want MalformedPolicyDocument, got: $out"

/usr/bin/python3 ./e2e/boto3_iam.py
echo "iam: ok"
