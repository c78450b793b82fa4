#!/usr/bin/env bash
# The sealed-image pipeline of the e-commerce example, end to end, with no
# Docker daemon (see README.md, "Sealed images"):
#
#   1. start a sigil server (a throwaway one in a temporary directory, unless
#      SIGIL_ENDPOINT and SIGIL_ROOT_CREDENTIALS name an existing one), and a
#      throwaway PostgreSQL playing the shop database (e2e/postgres.sh);
#   2. apply sigil.yaml (pointed at that database) and sealed.yaml, rotate
#      the database's root password; give the CI user "sealer" an access
#      key (it may only register image keys for my-app's repository);
#   3. build my-app as a static Go binary and layer it on an empty base into
#      an OCI layout with go-containerregistry (imagetool build);
#   4. seal it as "sealer": sigil seal --image oci:... --out oci:...:sealed;
#   5. take the bootstrap file out of the sealed image (imagetool extract),
#      as the container runtime would present it at /var/run/sigil;
#   6. run the app binary outside a container with an AWS config whose
#      credential_process is `sigil credentials --bootstrap FILE`: unchanged
#      aws-sdk-go-v2 code reads the dynamic database secret and connects as
#      the user sigil created for it;
#   7. with the aws CLI (if installed), the same credential_process reads the
#      allowed secret and is denied another;
#   8. revoke the digest: the app can no longer get credentials.
#
# Run from the repository root:  bash examples/ecommerce/pipeline.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
work=$(mktemp -d)
pids=()
. e2e/postgres.sh
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; stop_postgres; rm -rf "$work"; }
trap cleanup EXIT
step() { echo "==> $*"; }
fail() { echo "pipeline: FAIL: $*" >&2; exit 1; }
AWS=${AWS:-aws}
PY=${PY:-python3}
json() { "$PY" -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
ready() { "$PY" -c 'import sys,urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$1" >/dev/null 2>&1; }

step "building sigil, my-app and imagetool"
go build -o "$work/sigil" ./cmd/sigil
CGO_ENABLED=0 go build -o "$work/app" ./examples/ecommerce/app
go build -o "$work/imagetool" ./examples/ecommerce/imagetool
sigil="$work/sigil"

if [ -z "${SIGIL_ENDPOINT:-}" ]; then
  port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  SIGIL_ENDPOINT="http://127.0.0.1:$port"
  SIGIL_ROOT_CREDENTIALS="$work/data/root.credentials" SIGIL_ACCOUNT=123456789012
  step "starting a throwaway sigil server at $SIGIL_ENDPOINT"
  "$sigil" server --listen "127.0.0.1:$port" --data-dir "$work/data" --account-id "$SIGIL_ACCOUNT" --log-level warn >"$work/server.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 200); do
    [ -s "$SIGIL_ROOT_CREDENTIALS" ] && ready "$SIGIL_ENDPOINT/readyz" && break
    sleep 0.05
  done
  [ -s "$SIGIL_ROOT_CREDENTIALS" ] || { cat "$work/server.log"; fail "server did not start"; }
fi
: "${SIGIL_ROOT_CREDENTIALS:?set it to the root.credentials file of the server}"
export AWS_REGION=${AWS_REGION:-us-east-1}
export AWS_DEFAULT_REGION=$AWS_REGION AWS_CONFIG_FILE="$work/none" AWS_EC2_METADATA_DISABLED=true
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE
root=(--endpoint "$SIGIL_ENDPOINT" --credentials-file "$SIGIL_ROOT_CREDENTIALS")

step "starting a throwaway PostgreSQL as the shop database"
start_postgres
psql_su -d postgres -c "CREATE DATABASE shop"
admin_pw=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
psql_su -d shop -c "CREATE ROLE sigil WITH LOGIN CREATEROLE PASSWORD '$admin_pw'; GRANT pg_signal_backend TO sigil;
  CREATE TABLE products (id int PRIMARY KEY, name text); INSERT INTO products VALUES (1, 'lamp'), (2, 'chair');
  GRANT SELECT ON products TO sigil WITH GRANT OPTION"

step "applying sigil.yaml (its database pointed at 127.0.0.1:$PG_PORT) and sealed.yaml"
mkdir "$work/config"
cp examples/ecommerce/bootstrap.json "$work/config/"
sed -e "s/host: db.example.internal/host: 127.0.0.1/" -e "s/port: 5432/port: $PG_PORT/" -e "s/mode: verify-full/mode: disable/" \
  examples/ecommerce/sigil.yaml >"$work/config/sigil.yaml"
SHOP_DB_ADMIN_PASSWORD=$admin_pw "$sigil" apply -f "$work/config/sigil.yaml" "${root[@]}" >/dev/null
"$sigil" apply -f examples/ecommerce/sealed.yaml "${root[@]}" >/dev/null
"$sigil" db rotate-root shop "${root[@]}"
if PGPASSWORD=$admin_pw psql -X -q -h 127.0.0.1 -p "$PG_PORT" -U sigil -d shop -c "SELECT 1" >/dev/null 2>&1; then
  fail "the database's root password still works after rotate-root"
fi

sealer_creds="$SIGIL_ROOT_CREDENTIALS"
if command -v "$AWS" >/dev/null; then
  key=$(AWS_SHARED_CREDENTIALS_FILE="$SIGIL_ROOT_CREDENTIALS" "$AWS" --endpoint-url "$SIGIL_ENDPOINT" --output json \
    iam create-access-key --user-name sealer)
  printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
    "$(echo "$key" | json 'd["AccessKey"]["AccessKeyId"]')" "$(echo "$key" | json 'd["AccessKey"]["SecretAccessKey"]')" >"$work/sealer.credentials"
  chmod 0600 "$work/sealer.credentials"
  sealer_creds="$work/sealer.credentials"
  step "sealing as the CI user sealer (sigil:RegisterImageKey on my-app's repository only)"
else
  step "aws CLI not found: sealing with the root credentials instead of the sealer user"
fi
if [ -z "${SIGIL_ACCOUNT:-}" ] && command -v "$AWS" >/dev/null; then
  SIGIL_ACCOUNT=$(AWS_SHARED_CREDENTIALS_FILE="$SIGIL_ROOT_CREDENTIALS" "$AWS" --endpoint-url "$SIGIL_ENDPOINT" \
    --output text sts get-caller-identity --query Account)
fi
acct=${SIGIL_ACCOUNT:-}
[ -n "$acct" ] || fail "cannot tell the account id: set SIGIL_ACCOUNT or install the aws CLI"
role="arn:aws:iam::$acct:role/sealed-app-role"

step "building the my-app image (static binary on an empty base) into oci:$work/image:1.0"
"$work/imagetool" build -binary "$work/app" -layout "$work/image" -tag 1.0

step "sealing it"
"$sigil" seal --image "oci:$work/image:1.0" --out "oci:$work/image:1.0-sealed" \
  --repository registry.example.com/shop/my-app --role "$role" --ttl 24h \
  --endpoint "$SIGIL_ENDPOINT" --credentials-file "$sealer_creds" --json --quiet | tee "$work/seal.json"
digest=$(json 'd["digest"]' <"$work/seal.json")

step "extracting /var/run/sigil/bootstrap.json from the sealed image"
"$work/imagetool" extract -layout "$work/image" -tag 1.0-sealed -to "$work/bootstrap.json"

cat >"$work/aws-config" <<CONF
[default]
region = $AWS_REGION
endpoint_url = $SIGIL_ENDPOINT
credential_process = $sigil credentials --bootstrap $work/bootstrap.json
CONF
app_env=(env -u AWS_SHARED_CREDENTIALS_FILE AWS_CONFIG_FILE="$work/aws-config" AWS_SHARED_CREDENTIALS_FILE="$work/none")

step "running my-app outside a container with credential_process"
"${app_env[@]}" "$work/app" | tee "$work/app.out"
grep -q "database credentials read: my_app_.*@127.0.0.1:$PG_PORT/shop" "$work/app.out" || fail "my-app did not read its dynamic secret"
grep -q "connected to shop as my_app_.*: 2 products" "$work/app.out" || fail "my-app did not connect as its own user"
user=$(sed -n 's/.*connected to shop as \(my_app_[a-z0-9_]*\):.*/\1/p' "$work/app.out")
n=$(psql_su -d shop -tA -c "SELECT count(*) FROM pg_roles WHERE rolname = '$user' AND rolvaliduntil > now()")
[ "$n" = 1 ] || fail "the issued user $user is not a PostgreSQL role with an expiry"
"$sigil" lease list my-app/database-credentials/ "${root[@]}"

if command -v "$AWS" >/dev/null; then
  step "the aws CLI with the same credential_process: allowed secret, then another"
  AWS_SHARED_CREDENTIALS_FILE="$SIGIL_ROOT_CREDENTIALS" "$AWS" --endpoint-url "$SIGIL_ENDPOINT" \
    secretsmanager create-secret --name other/secret --secret-string not-for-my-app >/dev/null
  "${app_env[@]}" "$AWS" --endpoint-url "$SIGIL_ENDPOINT" secretsmanager get-secret-value --secret-id my-app/bootstrap --query Name --output text
  if out=$("${app_env[@]}" "$AWS" --endpoint-url "$SIGIL_ENDPOINT" secretsmanager get-secret-value --secret-id other/secret 2>&1); then
    fail "the sealed identity read another secret"
  fi
  echo "$out" | grep -q "AccessDeniedException" || fail "want AccessDeniedException, got: $out"
  echo "denied: $(echo "$out" | tail -1)"
fi

step "revoking $digest"
"$sigil" image revoke "$digest" --reason "pipeline demo" "${root[@]}"
if "${app_env[@]}" "$work/app" >"$work/app2.out" 2>&1; then fail "my-app still works after revocation"; fi
echo "my-app after revocation: $(tail -1 "$work/app2.out")"
step "done"
