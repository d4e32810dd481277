"""SNS topics (Security Hub SNS.*)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import Rule, RuleContext, is_unknown, security_hub_url

SNS_TOPIC = "aws:sns/topic:Topic"

AWS_MANAGED_SNS_KEY = "alias/aws/sns"
"""The AWS-managed key: its policy can't be edited, so CloudWatch alarms and RDS events can't use it and
their deliveries to a topic encrypted with it fail silently (SNS developer guide, "Managing Amazon SNS
encryption keys": event sources need a customer-managed key)."""


def _check_topic_key(props: Mapping[str, Any], ctx: RuleContext) -> list[str]:
    key = props.get("kmsMasterKeyId")
    if is_unknown(key):
        return []
    if not isinstance(key, str) or not key.strip():
        return ["kmsMasterKeyId is not set, so the topic is not encrypted; use a customer-managed KMS key"]
    # The alias may be given by name or as an alias ARN (arn:aws:kms:<region>:<account>:alias/aws/sns).
    if key.strip() == AWS_MANAGED_SNS_KEY or key.strip().endswith(f":{AWS_MANAGED_SNS_KEY}"):
        return [
            f"kmsMasterKeyId is the AWS-managed {AWS_MANAGED_SNS_KEY}: CloudWatch alarms and RDS events "
            "cannot use it, so their notifications are silently lost; use a customer-managed KMS key"
        ]
    return []


SNS_1 = Rule(
    id="SNS.1",
    name="sns-topic-customer-managed-key",
    description="SNS topics must be encrypted with a customer-managed KMS key (stricter than the control, "
    "which accepts any KMS key: the AWS-managed alias/aws/sns breaks alarm and RDS event delivery).",
    resource_types=(SNS_TOPIC,),
    check=_check_topic_key,
    severity="high",
    remediation="Set kms_master_key_id to a customer-managed key whose policy lets the publishing services "
    "(cloudwatch.amazonaws.com, events.rds.amazonaws.com) use it.",
    url=security_hub_url("sns", 1),
)
