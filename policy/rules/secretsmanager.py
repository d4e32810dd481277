"""Secrets Manager secrets (Custom.2: a customer-managed key; Security Hub has no control for it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import Rule, RuleContext, is_unknown

SECRET = "aws:secretsmanager/secret:Secret"
AWS_MANAGED_SECRETS_KEY = "alias/aws/secretsmanager"


def _check_secret_cmk(props: Mapping[str, Any], ctx: RuleContext) -> list[str]:
    key = props.get("kmsKeyId")
    if is_unknown(key):
        return []
    if not key or (isinstance(key, str) and key.strip().endswith(AWS_MANAGED_SECRETS_KEY)):
        return [
            "kmsKeyId is not set, so the secret uses the AWS-managed aws/secretsmanager key; use a "
            "customer-managed key (its policy, rotation and CloudTrail record are yours)"
        ]
    return []


CUSTOM_2 = Rule(
    id="Custom.2",
    name="secret-customer-managed-key",
    description="Secrets Manager secrets must be encrypted with a customer-managed KMS key.",
    resource_types=(SECRET,),
    check=_check_secret_cmk,
    severity="medium",
    remediation="Set kms_key_id to a customer-managed key (config kmsKeyArn, or let the stack create one).",
    url="https://docs.aws.amazon.com/secretsmanager/latest/userguide/security-encryption.html",
)
