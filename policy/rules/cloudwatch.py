"""CloudWatch Logs (Security Hub CloudWatch.*, and Custom.3 for a customer-managed key)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import Rule, RuleContext, as_number, fmt_num, is_unknown, security_hub_url

DEFAULT_MIN_LOG_RETENTION_DAYS = 1
"""CloudWatch.16 minimum. Security Hub's default is 365 days; we require an explicit, finite
retention (never-expire is a violation) and let the setting raise the floor."""


LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"


def _check_log_retention(props: Mapping[str, Any], ctx: RuleContext) -> list[str]:
    raw = props.get("retentionInDays")
    if is_unknown(raw):
        return []
    minimum = as_number(ctx.config.get("minRetentionDays")) or DEFAULT_MIN_LOG_RETENTION_DAYS
    days = as_number(raw)
    if days is None or days <= 0:
        return ["retentionInDays is not set, so the log group never expires; set a retention period"]
    if days < minimum:
        return [f"retentionInDays is {fmt_num(days)}; at least {fmt_num(minimum)} is required"]
    return []


CLOUDWATCH_16 = Rule(
    id="CloudWatch.16",
    name="log-group-retention",
    description="CloudWatch log groups must have a finite retention period (never-expire is a violation).",
    resource_types=(LOG_GROUP,),
    check=_check_log_retention,
    severity="medium",
    config_schema={
        "minRetentionDays": {
            "type": "integer",
            "minimum": 1,
            "default": DEFAULT_MIN_LOG_RETENTION_DAYS,
            "description": "Smallest accepted retentionInDays (Security Hub's default is 365).",
        }
    },
    remediation="Set retention_in_days (e.g. 14 for dev, 90+ for prod).",
    url=security_hub_url("cloudwatch", 16),
)


def _check_log_group_cmk(props: Mapping[str, Any], ctx: RuleContext) -> list[str]:
    key = props.get("kmsKeyId")
    if is_unknown(key):
        return []
    if not key:
        return ["kmsKeyId is not set; encrypt the log group with a customer-managed KMS key"]
    return []


CUSTOM_3 = Rule(
    id="Custom.3",
    name="log-group-customer-managed-key",
    description="CloudWatch log groups must be encrypted with a customer-managed KMS key (no Security Hub "
    "control covers it; CloudWatch Logs otherwise uses its own service-owned keys).",
    resource_types=(LOG_GROUP,),
    check=_check_log_group_cmk,
    severity="medium",
    remediation="Set kms_key_id (config kmsKeyArn, or let the stack create its key).",
    url="https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html",
)


METRIC_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


def _check_alarm_actions(props: Mapping[str, Any], ctx: RuleContext) -> list[str]:
    problems = []
    for key, state in (("alarmActions", "ALARM"), ("okActions", "OK")):
        value = props.get(key)
        if is_unknown(value) or (isinstance(value, list) and any(is_unknown(v) for v in value)):
            continue
        if not (isinstance(value, list) and any(isinstance(v, str) and v for v in value)):
            problems.append(
                f"{key} is empty: nobody hears when the alarm goes to {state}; add the alarm topic"
            )
    return problems


CLOUDWATCH_15 = Rule(
    id="CloudWatch.15",
    name="alarm-has-actions",
    description="CloudWatch alarms must notify someone: alarm actions and OK actions both set (stricter than "
    "the control, which requires alarm actions only).",
    resource_types=(METRIC_ALARM,),
    check=_check_alarm_actions,
    severity="high",
    remediation="Set alarm_actions and ok_actions to the alarm SNS topic.",
    url=security_hub_url("cloudwatch", 15),
)
