#!/usr/bin/env bash
# Secrets Manager through the aws CLI against a running sigil (see
# scripts/e2e.sh, which sets SIGIL_ENDPOINT and the credentials).
set -euo pipefail
: "${SIGIL_ENDPOINT:?}" "${AWS:=aws}"
sm() { "$AWS" --endpoint-url "$SIGIL_ENDPOINT" --output json secretsmanager "$@"; }
fail() { echo "awscli: FAIL: $*" >&2; exit 1; }
jq_py() { /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

name="e2e/cli/db-$$"
arn=$(sm create-secret --name "$name" --description "e2e" --secret-string '{"password":"e2e-planted-s3cr3t-7d1f"}' \
  --tags Key=team,Value=payments | jq_py 'd["ARN"]')
case "$arn" in arn:aws:secretsmanager:us-east-1:*:secret:"$name"-??????) ;; *) fail "unexpected ARN $arn";; esac

got=$(sm get-secret-value --secret-id "$name" | jq_py 'd["SecretString"]')
[ "$got" = '{"password":"e2e-planted-s3cr3t-7d1f"}' ] || fail "get-secret-value returned the wrong value"

# By ARN, and a new version moves AWSCURRENT.
v2=$(sm put-secret-value --secret-id "$arn" --secret-string 'second' | jq_py 'd["VersionId"]')
cur=$(sm get-secret-value --secret-id "$arn" | jq_py 'd["VersionId"]')
[ "$cur" = "$v2" ] || fail "AWSCURRENT did not move to the new version"
prev=$(sm get-secret-value --secret-id "$name" --version-stage AWSPREVIOUS | jq_py 'd["SecretString"]')
[ "$prev" = '{"password":"e2e-planted-s3cr3t-7d1f"}' ] || fail "AWSPREVIOUS is not the first version"

n=$(sm list-secret-version-ids --secret-id "$name" | jq_py 'len(d["Versions"])')
[ "$n" = 2 ] || fail "want 2 versions, got $n"

desc=$(sm describe-secret --secret-id "$name" | jq_py 'd["Tags"][0]["Value"]')
[ "$desc" = payments ] || fail "describe-secret lost the tag"

found=$(sm list-secrets --filters Key=name,Values=e2e/cli/ | jq_py 'len(d["SecretList"])')
[ "$found" -ge 1 ] || fail "list-secrets did not find the secret"

pw=$(sm get-random-password --password-length 24 --exclude-punctuation | jq_py 'd["RandomPassword"]')
[ ${#pw} -eq 24 ] || fail "random password has length ${#pw}"

# Errors come back as the AWS exception names.
if out=$(sm get-secret-value --secret-id e2e/does-not-exist 2>&1); then fail "missing secret was readable"; fi
echo "$out" | grep -q ResourceNotFoundException || fail "want ResourceNotFoundException, got: $out"

sm delete-secret --secret-id "$name" --recovery-window-in-days 7 >/dev/null
if out=$(sm get-secret-value --secret-id "$name" 2>&1); then fail "deleted secret was readable"; fi
echo "$out" | grep -q InvalidRequestException || fail "want InvalidRequestException for a deleted secret, got: $out"
sm restore-secret --secret-id "$name" >/dev/null
sm get-secret-value --secret-id "$name" >/dev/null || fail "restored secret not readable"

# Rotation with the built-in random rotator: rotate-secret starts it at
# once; AWSCURRENT moves to a new random value, the old one is AWSPREVIOUS.
acct=$(echo "$arn" | cut -d: -f5)
rot=$(sm rotate-secret --secret-id "$name" \
  --rotation-lambda-arn "arn:aws:lambda:us-east-1:$acct:function:sigil-random" \
  --rotation-rules '{"AutomaticallyAfterDays": 30}' | jq_py 'd["VersionId"]')
for _ in $(seq 1 100); do
  cur=$(sm get-secret-value --secret-id "$name" | jq_py 'd["VersionId"]')
  [ "$cur" = "$rot" ] && break
  sleep 0.2
done
[ "$cur" = "$rot" ] || fail "rotate-secret did not move AWSCURRENT to $rot"
prev=$(sm get-secret-value --secret-id "$name" --version-stage AWSPREVIOUS | jq_py 'd["SecretString"]')
[ "$prev" = second ] || fail "AWSPREVIOUS after rotation is not the value before it"
enabled=$(sm describe-secret --secret-id "$name" | jq_py 'str(d["RotationEnabled"]) + " " + str("NextRotationDate" in d and "LastRotatedDate" in d)')
[ "$enabled" = "True True" ] || fail "describe-secret after rotation: $enabled"
sm cancel-rotate-secret --secret-id "$name" >/dev/null
enabled=$(sm describe-secret --secret-id "$name" | jq_py 'str(d.get("RotationEnabled"))')
[ "$enabled" = False ] || fail "cancel-rotate-secret left rotation enabled"

# A wrong secret key is refused.
if out=$(AWS_ACCESS_KEY_ID=AKIAAAAAAAAAAAAAAAAA AWS_SECRET_ACCESS_KEY=wrong AWS_SHARED_CREDENTIALS_FILE=/dev/null \
  "$AWS" --endpoint-url "$SIGIL_ENDPOINT" secretsmanager list-secrets 2>&1); then fail "unknown key accepted"; fi
echo "$out" | grep -q UnrecognizedClientException || fail "want UnrecognizedClientException, got: $out"
echo "awscli: ok"
