"""Lambda functions (Security Hub Lambda.*, and Custom.1 for credentials in environment variables)."""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from typing import Any

from .base import Rule, RuleContext, is_unknown, security_hub_url

SUPPORTED_PYTHON_RUNTIMES: frozenset[str] = frozenset(
    {"python3.10", "python3.11", "python3.12", "python3.13", "python3.14"}
)
"""Python runtimes Lambda still supports (creates and patches).

Source: "Supported runtimes" in the AWS Lambda Developer Guide
(https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html), which Security Hub's Lambda.2
follows. python3.14 was added in November 2025; python3.9 reached deprecation on 15 December 2025.
When AWS deprecates a version, remove it here; when it adds one, add it (pulumi_aws's
``lambda_.Runtime`` enum lists the identifiers the provider knows).
"""


LAMBDA_FUNCTION = "aws:lambda/function:Function"

# Name fragments that mean "this variable holds a credential". Matched against the upper-cased name
# split on anything that isn't a letter or digit, and (for the long ones) as substrings, so that
# DBPASSWORD and MYSQL_PWD both count.
_SECRET_SUBSTRINGS = ("PASSWORD", "PASSWD", "SECRET", "PRIVATEKEY", "APIKEY", "CREDENTIAL")
_SECRET_WORDS = frozenset({"PWD", "PASS", "PASSPHRASE", "TOKEN", "APIKEY", "AUTHTOKEN"})
_SECRET_WORD_PAIRS = frozenset({("PRIVATE", "KEY"), ("API", "KEY"), ("ACCESS", "KEY"), ("SECRET", "KEY")})
# A name ending in one of these points at a secret instead of holding one
# (DB_SECRET_ARN, TOKEN_SSM_PARAMETER).
_REFERENCE_SUFFIXES = frozenset(
    {"ARN", "ID", "NAME", "PATH", "PARAM", "PARAMETER", "SSM", "REF", "FILE", "URI", "URL"}
)
# Values that are references, not secrets.
_REFERENCE_VALUE = re.compile(r"^(arn:aws[a-z-]*:(secretsmanager|ssm|kms):|\{\{resolve:)", re.IGNORECASE)


def secret_like_env_name(name: str) -> bool:
    """Whether an environment variable name looks like it carries a credential."""
    words = [w for w in re.split(r"[^A-Z0-9]+", name.upper()) if w]
    if not words or words[-1] in _REFERENCE_SUFFIXES:
        return False
    squashed = "".join(words)
    if any(s in squashed for s in _SECRET_SUBSTRINGS):
        return True
    if any(w in _SECRET_WORDS for w in words):
        return True
    return any(pair in _SECRET_WORD_PAIRS for pair in itertools.pairwise(words))


def _check_lambda_env_secrets(props: Mapping[str, Any], ctx: RuleContext) -> list[str]:
    environment = props.get("environment")
    if not isinstance(environment, Mapping):
        return []
    variables = environment.get("variables")
    if not isinstance(variables, Mapping):
        return []
    messages = []
    for name, value in variables.items():
        if not secret_like_env_name(name):
            continue
        if isinstance(value, str) and _REFERENCE_VALUE.match(value):
            continue
        messages.append(
            f"environment variable {name} looks like a credential; Lambda environment variables are "
            "readable by anyone with lambda:GetFunctionConfiguration. Store it in Secrets Manager "
            "(pass its ARN), or use IAM authentication"
        )
    return messages


CUSTOM_1 = Rule(
    id="Custom.1",
    name="lambda-no-secret-env",
    description="Lambda environment variables must not hold passwords, tokens or keys (no Security Hub "
    "control; same intent as Checkov CKV_AWS_45).",
    resource_types=(LAMBDA_FUNCTION,),
    check=_check_lambda_env_secrets,
    severity="high",
    remediation="Keep the secret in Secrets Manager and pass its ARN, or use IAM database authentication.",
    url="https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html",
)


def _check_lambda_runtime(props: Mapping[str, Any], ctx: RuleContext) -> list[str]:
    if props.get("packageType") == "Image":
        return []  # the runtime lives in the image
    runtime = props.get("runtime")
    if runtime is None or is_unknown(runtime):
        return []
    if runtime not in SUPPORTED_PYTHON_RUNTIMES:
        supported = ", ".join(
            sorted(SUPPORTED_PYTHON_RUNTIMES, key=lambda r: [int(x) for x in r[6:].split(".")])
        )
        return [f"runtime {runtime!r} is not a supported Python runtime ({supported})"]
    return []


LAMBDA_2 = Rule(
    id="Lambda.2",
    name="lambda-supported-runtime",
    description="Lambda functions must use a Python runtime AWS still supports.",
    resource_types=(LAMBDA_FUNCTION,),
    check=_check_lambda_runtime,
    severity="medium",
    remediation="Move the function to a runtime in SUPPORTED_PYTHON_RUNTIMES (policy/rules/awslambda.py).",
    url=security_hub_url("lambda", 2),
)
