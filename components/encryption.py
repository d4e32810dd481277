"""Encryption: the stack's customer-managed KMS key and the security section of the config.

One key serves the secrets (through Secrets Manager), this stack's log groups (through CloudWatch Logs) and
the alarm topic (through SNS, and for CloudWatch alarms and RDS events). Its policy is data
(`key_policy`), built from the names of exactly those log groups. With `kmsKeyArn` set the stack uses that
key instead and creates none; its policy is then the key owner's business (README, "Security").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.iam import VERSION, arn_part, sns_publisher_statements

# CloudWatch Logs' allowed retentions (PutRetentionPolicy `retentionInDays`; the same list is in the
# provider's LogGroup docs). 0 ("never expire") is deliberately not offered.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
                      2922, 3288, 3653)  # fmt: skip
# RDS MonitoringInterval values (CreateDBInstance API reference); 0 turns enhanced monitoring off.
MONITORING_INTERVALS = (0, 1, 5, 10, 15, 30, 60)
# RDS for MySQL's CloudWatch Logs exports we accept. `audit` is valid for the API but RDS for MySQL writes an
# audit log only with the MARIADB_AUDIT_PLUGIN option in an option group, which this stack does not create:
# exporting it would export nothing, so it is refused rather than silently empty.
DB_LOG_EXPORTS = ("error", "slowquery", "general")
ROTATION_MAX_DAYS = 365  # Secrets Manager's AutomaticallyAfterDays upper bound


@dataclass(frozen=True, kw_only=True)
class SecuritySettings:
    """The security section of the stack config (kmsKeyArn … secretRotationDays)."""

    kms_key_arn: str | None
    """`kmsKeyArn`; None: the stack creates its own key."""
    log_retention_days: int
    db_monitoring_interval: int
    db_log_exports: tuple[str, ...]
    secret_rotation_days: int
    """0: no rotation."""
    key_alias: str
    alarm_prefix: str
    """Alarms named `<alarm_prefix>-…` may publish to the topic the key encrypts (the proxy's name)."""

    @property
    def rotation(self) -> bool:
        return self.secret_rotation_days > 0


def log_group_arn(partition: str, region: str, account: str, name: str) -> str:
    return f"arn:{partition}:logs:{region}:{account}:log-group:{name}"


def key_policy(
    *, partition: str, region: str, account: str, log_group_names: Sequence[str], alarm_prefix: str
) -> dict[str, Any]:
    """The stack key's policy: the account administers it; services use it only for this stack.

    - The account root may administer the key (IAM policies then decide who), but not use it: usage comes
      only through the services below.
    - Secrets Manager: any principal of this account, only through Secrets Manager in this region
      (`kms:ViaService` + `kms:CallerAccount`, the statement of the AWS-managed aws/secretsmanager key).
    - CloudWatch Logs: the regional service principal, only for this stack's log groups: CloudWatch Logs
      passes the log group's ARN as encryption context `aws:logs:arn` (CloudWatch Logs user guide,
      "Encrypt log data in CloudWatch Logs using AWS KMS", step 2).
    - SNS: CloudWatch alarms and RDS event notifications publish to the encrypted alarm topic as service
      principals and need Decrypt + GenerateDataKey* (SNS developer guide, "Enable compatibility between
      event sources from AWS services and encrypted topics"); people and roles of this account publish only
      through SNS.
    """
    root = f"arn:{partition}:iam::{account}:root"
    usage = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "AccountAdministersTheKey",
                "Effect": "Allow",
                "Principal": {"AWS": root},
                "Action": [
                    "kms:Create*",
                    "kms:Describe*",
                    "kms:Enable*",
                    "kms:List*",
                    "kms:Put*",
                    "kms:Update*",
                    "kms:Revoke*",
                    "kms:Disable*",
                    "kms:Get*",
                    "kms:Delete*",
                    "kms:TagResource",
                    "kms:UntagResource",
                    "kms:ScheduleKeyDeletion",
                    "kms:CancelKeyDeletion",
                    "kms:RotateKeyOnDemand",
                ],
                "Resource": "*",
            },
            {
                "Sid": "SecretsThroughSecretsManager",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": usage,
                "Resource": "*",
                "Condition": {
                    "StringEquals": {
                        "kms:ViaService": f"secretsmanager.{region}.amazonaws.com",
                        "kms:CallerAccount": account,
                    }
                },
            },
            {
                "Sid": "ThisStacksLogGroups",
                "Effect": "Allow",
                "Principal": {"Service": f"logs.{region}.amazonaws.com"},
                "Action": [
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*",
                ],
                "Resource": "*",
                "Condition": {
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": [
                            log_group_arn(partition, region, account, n) for n in log_group_names
                        ]
                    }
                },
            },
            *sns_publisher_statements(partition, account, region, alarm_prefix),
            {
                "Sid": "AlarmTopicThroughSns",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                "Resource": "*",
                "Condition": {
                    "StringEquals": {
                        "kms:ViaService": f"sns.{region}.amazonaws.com",
                        "kms:CallerAccount": account,
                    }
                },
            },
        ],
    }


@dataclass(frozen=True, kw_only=True)
class EncryptionArgs:
    """Which log groups may use the key, where the stack lives, and the security section."""

    log_group_names: Sequence[str]
    """Every log group this stack creates (exact names)."""
    account_arn: pulumi.Input[str]
    """Any ARN of this stack's account and region (the VPC's): partition, region and account come from it,
    so no extra lookup (invoke) is needed."""
    settings: SecuritySettings


class Encryption(pulumi.ComponentResource):
    """The stack's customer-managed KMS key (rotation on), or the one `kmsKeyArn` names."""

    key_arn: pulumi.Output[str]
    """ARN of the key every secret, log group and the alarm topic use."""

    def __init__(self, name: str, args: EncryptionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rdsproxy:index:Encryption", name, None, opts)
        s = args.settings
        if s.kms_key_arn:
            self.key_arn = pulumi.Output.from_input(s.kms_key_arn)
        else:
            names = list(args.log_group_names)
            policy = pulumi.Output.from_input(args.account_arn).apply(
                lambda arn: key_policy(
                    partition=arn_part(arn, 1),
                    region=arn_part(arn, 3),
                    account=arn_part(arn, 4),
                    log_group_names=names,
                    alarm_prefix=args.settings.alarm_prefix,
                )
            )
            key = aws.kms.Key(
                f"{name}-key",
                description="Secrets, log groups and alarm topic of this RDS Proxy stack",
                enable_key_rotation=True,
                deletion_window_in_days=30,
                policy=pulumi.Output.json_dumps(policy),
                opts=pulumi.ResourceOptions(parent=self),
            )
            aws.kms.Alias(
                f"{name}-alias",
                name=s.key_alias,
                target_key_id=key.key_id,
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.key_arn = key.arn
        self.register_outputs({"key_arn": self.key_arn})
