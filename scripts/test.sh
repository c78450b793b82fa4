#!/usr/bin/env bash
# The whole test suite: formatting, vet, unit and integration tests with the
# race detector, short fuzz runs of every fuzz target, and the end-to-end run
# with the aws CLI and boto3 against a real `sigil server`.
#
# It needs PostgreSQL 15 binaries (/usr/lib/postgresql/15/bin), MariaDB's
# server binaries (mariadb-server), Debian's awscli and python3-boto3. Run as
# root, it installs what is missing with apt-get (without starting any
# service: tests start their own servers on random ports); otherwise it says
# what to install. With CI=true a missing dependency fails.
set -euo pipefail
cd "$(dirname "$0")/.."

# A count, not a duration: with a duration, Go 1.26's fuzz coordinator can
# report a spurious "context deadline exceeded" failure when the time runs
# out while a worker is mid-input (golang/go#75804, fixed in Go 1.27). A
# count has no deadline to race.
FUZZTIME=${FUZZTIME:-20000x}
need_pkgs=()
[ -x /usr/lib/postgresql/15/bin/initdb ] || need_pkgs+=(postgresql-15)
[ -x /usr/sbin/mariadbd ] && [ -x /usr/bin/mariadb-install-db ] || need_pkgs+=(mariadb-server)
[ -x /usr/bin/aws ] || need_pkgs+=(awscli)
/usr/bin/python3 -c 'import boto3' 2>/dev/null || need_pkgs+=(python3-boto3)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "== installing ${need_pkgs[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # Package scripts must not start mariadb (or postgresql) as a service.
    policy=/usr/sbin/policy-rc.d
    made_policy=
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 0755 "$policy" && made_policy=1
      trap 'rm -f "$policy"' EXIT
    fi
    apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
    if [ -n "$made_policy" ]; then rm -f "$policy"; trap - EXIT; fi
  else
    echo "missing: ${need_pkgs[*]}; install them with: sudo apt-get install ${need_pkgs[*]}" >&2
    if [ "${CI:-}" = true ]; then exit 1; fi
  fi
fi

# Tests that need PostgreSQL fail instead of skipping when it is required.
if [ "${CI:-}" = true ]; then export SIGIL_REQUIRE_POSTGRES=1 SIGIL_REQUIRE_MYSQL=1; fi

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then echo "gofmt needed:"; echo "$unformatted"; exit 1; fi

echo "== go vet"
go vet ./...

echo "== go test -race"
go test -race -count=1 -timeout 20m ./...

# The race detector makes the million-record audit log too slow to write
# (it uses 200,000 records there); run the full million once without it.
echo "== audit: verify a clean 1,000,000-record log (no race detector)"
go test -count=1 -run '^TestVerifyMillionRecordLog$' ./internal/audit

echo "== fuzz (each target for $FUZZTIME executions)"
grep -rl --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' . | sort | while read -r file; do
  pkg="./$(dirname "${file#./}")"
  for fn in $(grep -oE '^func Fuzz[A-Za-z0-9_]*' "$file" | sed 's/^func //'); do
    echo "-- $pkg $fn"
    if ! out=$(go test -run '^$' -fuzz "^${fn}\$" -fuzztime "$FUZZTIME" "$pkg" 2>&1); then
      echo "$out"
      echo "fuzz target $fn in $pkg failed; a crasher, if any, is in $pkg/testdata/fuzz/$fn/" >&2
      exit 1
    fi
    echo "$out" | tail -n 2
  done
done

echo "== end to end (aws CLI and boto3 against sigil server)"
./scripts/e2e.sh

echo "== all tests passed"
