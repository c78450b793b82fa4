#!/usr/bin/env bash
# End-to-end: build sigil, start `sigil server` on a free loopback port with a
# temporary data directory, and drive it with Debian's aws CLI and boto3
# (/usr/bin/aws, /usr/bin/python3), exactly as a user would.
set -euo pipefail
cd "$(dirname "$0")/.."

AWS=${AWS:-/usr/bin/aws}
PY=${PY:-/usr/bin/python3}
for tool in "$AWS" "$PY"; do
  if [ ! -x "$tool" ]; then
    echo "e2e: $tool missing: apt-get install awscli python3-boto3" >&2
    exit 1
  fi
done

work=$(mktemp -d)
bin="$work/sigil"
go build -o "$bin" ./cmd/sigil

port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
endpoint="http://127.0.0.1:$port"
"$bin" server --listen "127.0.0.1:$port" --data-dir "$work/data" --log-format json >"$work/server.log" 2>&1 &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

ready() { "$PY" -c 'import sys,urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$endpoint/readyz" >/dev/null 2>&1; }
for _ in $(seq 1 100); do
  if ready; then break; fi
  if ! kill -0 "$pid" 2>/dev/null; then echo "e2e: server exited:"; cat "$work/server.log"; exit 1; fi
  sleep 0.1
done
ready || { echo "e2e: server not ready"; cat "$work/server.log"; exit 1; }

export AWS_SHARED_CREDENTIALS_FILE="$work/data/root.credentials"
export AWS_CONFIG_FILE=/dev/null
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_PAGER="" AWS_RETRY_MODE=standard AWS_MAX_ATTEMPTS=1
export SIGIL_ENDPOINT="$endpoint"

echo "-- aws CLI $("$AWS" --version 2>&1)"
SIGIL_E2E_WORK="$work" AWS="$AWS" bash ./e2e/awscli.sh
echo "-- sigil operator"
"$bin" operator status --endpoint "$endpoint" | grep -q 'Sealed:       false' || { echo "e2e: operator status"; exit 1; }
"$bin" operator rotate-key --endpoint "$endpoint" --credentials-file "$AWS_SHARED_CREDENTIALS_FILE" | grep -q 'term 2' || { echo "e2e: rotate-key"; exit 1; }
echo "sigil operator: ok"
echo "-- boto3"
"$PY" ./e2e/boto3_test.py
echo "-- IAM: aws CLI and boto3 with a user's key"
AWS="$AWS" bash ./e2e/iam.sh
echo "-- STS: workload identity with the aws CLI and boto3"
SIGIL_E2E_WORK="$work" AWS="$AWS" bash ./e2e/sts.sh
echo "-- sealed image pipeline (its own server): seal, credential_process with the app and the aws CLI, revoke"
env -u SIGIL_ENDPOINT -u AWS_SHARED_CREDENTIALS_FILE AWS="$AWS" PY="$PY" bash ./examples/ecommerce/pipeline.sh

# The planted value must not appear anywhere on disk or in the server log.
if grep -rqa 'e2e-planted-s3cr3t-7d1f' "$work/data" "$work/server.log"; then
  echo "e2e: planted secret value found in the data directory or server log" >&2
  exit 1
fi
echo "e2e: 6 passed, 0 failed"
