"""boto3 with an IAM user's key: allowed exactly what its policy says."""
import os
import sys

import boto3
import botocore.exceptions

sm = boto3.client(
    "secretsmanager",
    endpoint_url=os.environ["SIGIL_ENDPOINT"],
    region_name="us-east-1",
    aws_access_key_id=os.environ["READER_KEY_ID"],
    aws_secret_access_key=os.environ["READER_SECRET"],
)
if sm.get_secret_value(SecretId="e2e/iam/app-db")["SecretString"] != "reader-may-see":
    print("boto3 iam: FAIL: wrong value", file=sys.stderr)
    sys.exit(1)
try:
    sm.get_secret_value(SecretId="e2e/iam/other")
    print("boto3 iam: FAIL: read a secret outside the policy", file=sys.stderr)
    sys.exit(1)
except botocore.exceptions.ClientError as e:
    if e.response["Error"]["Code"] != "AccessDeniedException":
        print("boto3 iam: FAIL: " + e.response["Error"]["Code"], file=sys.stderr)
        sys.exit(1)
try:
    sm.create_secret(Name="e2e/iam/new", SecretString="x")
    print("boto3 iam: FAIL: created a secret without permission", file=sys.stderr)
    sys.exit(1)
except botocore.exceptions.ClientError as e:
    if e.response["Error"]["Code"] != "AccessDeniedException":
        print("boto3 iam: FAIL: " + e.response["Error"]["Code"], file=sys.stderr)
        sys.exit(1)
print("boto3 iam: ok")
