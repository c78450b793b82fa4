"""Secrets Manager through boto3 against a running sigil (see scripts/e2e.sh).

Debian's boto3/botocore are older than the current SDKs and ignore
AWS_ENDPOINT_URL, so endpoint_url is passed explicitly.
"""
import json
import os
import sys

import boto3
import botocore.exceptions

endpoint = os.environ["SIGIL_ENDPOINT"]
sm = boto3.client("secretsmanager", endpoint_url=endpoint, region_name="us-east-1")
name = "e2e/boto3/db-%d" % os.getpid()


def check(cond, msg):
    if not cond:
        print("boto3: FAIL: " + msg, file=sys.stderr)
        sys.exit(1)


created = sm.create_secret(Name=name, SecretString=json.dumps({"username": "app", "password": "e2e-planted-s3cr3t-7d1f"}))
arn = created["ARN"]
# The article's application code, unchanged: read the secret, parse the JSON.
db = json.loads(sm.get_secret_value(SecretId=arn)["SecretString"])
check(db["username"] == "app", "wrong username")

sm.put_secret_value(SecretId=name, SecretBinary=b"\x00\x01binary")
check(sm.get_secret_value(SecretId=name)["SecretBinary"] == b"\x00\x01binary", "binary value changed on the wire")

try:
    sm.get_secret_value(SecretId="e2e/boto3/missing")
    check(False, "missing secret was readable")
except sm.exceptions.ResourceNotFoundException:
    pass

try:
    sm.create_secret(Name=name, SecretString="again")
    check(False, "duplicate name accepted")
except sm.exceptions.ResourceExistsException:
    pass

try:
    sm.create_secret(Name="x" * 600, SecretString="v")
    check(False, "overlong name accepted")
except botocore.exceptions.ClientError as e:
    check(e.response["Error"]["Code"] in ("InvalidParameterException", "ValidationException"), "wrong code " + e.response["Error"]["Code"])

pages = sm.get_paginator("list_secrets").paginate(PaginationConfig={"PageSize": 1})
names = [s["Name"] for p in pages for s in p["SecretList"]]
check(name in names, "paginated list-secrets missed the secret")

sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
try:
    sm.describe_secret(SecretId=name)
    check(False, "force-deleted secret still there")
except sm.exceptions.ResourceNotFoundException:
    pass
print("boto3: ok")
