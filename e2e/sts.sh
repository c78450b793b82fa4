#!/usr/bin/env bash
# The workload-identity scenario with the aws CLI and boto3: a cluster's OIDC
# issuer (e2e/oidcissuer, https with a self-signed certificate pinned by
# thumbprint), application-role trusting default/my-app, a pod's token
# exchanged for session credentials that read exactly one secret.
set -euo pipefail
: "${SIGIL_ENDPOINT:?}" "${SIGIL_E2E_WORK:?}" "${AWS:=aws}"
awsr() { "$AWS" --endpoint-url "$SIGIL_ENDPOINT" --output json "$@"; }
fail() { echo "sts: FAIL: $*" >&2; exit 1; }
py() { /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

dir="$SIGIL_E2E_WORK/oidc"
mkdir -p "$dir"
go build -o "$SIGIL_E2E_WORK/oidcissuer" ./e2e/oidcissuer
"$SIGIL_E2E_WORK/oidcissuer" -out "$dir" -lifetime 10m &
issuer_pid=$!
trap 'kill $issuer_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do [ -s "$dir/issuer.env" ] && break; sleep 0.05; done
# shellcheck disable=SC1091
. "$dir/issuer.env"

acct=$(awsr iam get-user | py 'd["User"]["Arn"].split(":")[4]')
prov=$(awsr iam create-open-id-connect-provider --url "$ISSUER_URL" --client-id-list sts.amazonaws.com \
  --thumbprint-list "$ISSUER_THUMBPRINT" | py 'd["OpenIDConnectProviderArn"]')
awsr iam create-role --role-name workload-role --assume-role-policy-document "{
  \"Version\":\"2012-10-17\",
  \"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"sts:AssumeRoleWithWebIdentity\",
    \"Principal\":{\"Federated\":\"$prov\"},
    \"Condition\":{\"StringEquals\":{\"$ISSUER_HOST:sub\":\"system:serviceaccount:default:my-app\"}}}]}" >/dev/null
awsr iam put-role-policy --role-name workload-role --policy-name db --policy-document "{
  \"Version\":\"2012-10-17\",
  \"Statement\":[{\"Effect\":\"Allow\",\"Action\":[\"secretsmanager:GetSecretValue\",\"secretsmanager:DescribeSecret\"],
    \"Resource\":\"arn:aws:secretsmanager:us-east-1:$acct:secret:sts-e2e/my-app-*\"}]}" >/dev/null
awsr secretsmanager create-secret --name sts-e2e/my-app --secret-string '{"password":"for-my-app"}' >/dev/null
awsr secretsmanager create-secret --name sts-e2e/other --secret-string 'not-for-my-app' >/dev/null
role_arn="arn:aws:iam::$acct:role/workload-role"

# The exchange is unsigned, as at AWS: --no-sign-request.
creds=$("$AWS" --endpoint-url "$SIGIL_ENDPOINT" --output json --no-sign-request sts assume-role-with-web-identity \
  --role-arn "$role_arn" --role-session-name cli-pod --web-identity-token "$(cat "$dir/token-my-app.jwt")")
export AWS_ACCESS_KEY_ID=$(echo "$creds" | py 'd["Credentials"]["AccessKeyId"]')
export AWS_SECRET_ACCESS_KEY=$(echo "$creds" | py 'd["Credentials"]["SecretAccessKey"]')
export AWS_SESSION_TOKEN=$(echo "$creds" | py 'd["Credentials"]["SessionToken"]')
case "$AWS_ACCESS_KEY_ID" in ASIA*) ;; *) fail "not session credentials: $AWS_ACCESS_KEY_ID";; esac
(
  unset AWS_SHARED_CREDENTIALS_FILE
  awsr sts get-caller-identity | py 'd["Arn"]' | grep -q ':assumed-role/workload-role/cli-pod' || fail "get-caller-identity"
  got=$(awsr secretsmanager get-secret-value --secret-id sts-e2e/my-app | py 'd["SecretString"]')
  [ "$got" = '{"password":"for-my-app"}' ] || fail "session read the wrong value"
  if out=$(awsr secretsmanager get-secret-value --secret-id sts-e2e/other 2>&1); then fail "session read another secret"; fi
  echo "$out" | grep -q AccessDeniedException || fail "want AccessDeniedException, got: $out"
)
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN

# Another service account gets nothing.
if out=$("$AWS" --endpoint-url "$SIGIL_ENDPOINT" --no-sign-request sts assume-role-with-web-identity \
  --role-arn "$role_arn" --role-session-name bad --web-identity-token "$(cat "$dir/token-intruder.jwt")" 2>&1); then
  fail "another service account assumed the role"
fi
echo "$out" | grep -q AccessDenied || fail "want AccessDenied, got: $out"

ROLE_ARN="$role_arn" TOKEN_FILE="$dir/token-my-app.jwt" /usr/bin/python3 ./e2e/boto3_sts.py
echo "sts: ok"
