"""boto3: exchange a service-account token, read the allowed secret only."""
import os
import sys

import boto3
import botocore.exceptions
from botocore import UNSIGNED
from botocore.config import Config

endpoint = os.environ["SIGIL_ENDPOINT"]
sts = boto3.client("sts", endpoint_url=endpoint, region_name="us-east-1", config=Config(signature_version=UNSIGNED))
with open(os.environ["TOKEN_FILE"]) as f:
    token = f.read().strip()
creds = sts.assume_role_with_web_identity(RoleArn=os.environ["ROLE_ARN"], RoleSessionName="boto3-pod", WebIdentityToken=token)["Credentials"]
sm = boto3.client(
    "secretsmanager",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id=creds["AccessKeyId"],
    aws_secret_access_key=creds["SecretAccessKey"],
    aws_session_token=creds["SessionToken"],
)
if sm.get_secret_value(SecretId="sts-e2e/my-app")["SecretString"] != '{"password":"for-my-app"}':
    print("boto3 sts: FAIL: wrong value", file=sys.stderr)
    sys.exit(1)
try:
    sm.get_secret_value(SecretId="sts-e2e/other")
    print("boto3 sts: FAIL: read another secret", file=sys.stderr)
    sys.exit(1)
except botocore.exceptions.ClientError as e:
    if e.response["Error"]["Code"] != "AccessDeniedException":
        print("boto3 sts: FAIL: " + e.response["Error"]["Code"], file=sys.stderr)
        sys.exit(1)
print("boto3 sts: ok")
