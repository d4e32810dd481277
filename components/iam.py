"""IAM documents as data: trust policies, secret reads, `rds-db:connect`. Built from inputs, never wildcards."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

VERSION = "2012-10-17"


def arn_part(arn: str, index: int) -> str:
    """Field `index` of an ARN (`arn:partition:service:region:account:resource…`)."""
    return arn.split(":", 6)[index]


def assume_role_policy(service: str, condition: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Trust policy letting one AWS service assume a role (only under `condition`, when given)."""
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    }
    if condition:
        statement["Condition"] = dict(condition)
    return {"Version": VERSION, "Statement": [statement]}


def secret_read_policy(secret_arns: Sequence[str], kms_key_arns: Iterable[str | None] = ()) -> dict[str, Any]:
    """Read exactly these secrets; decrypt with a customer key only through Secrets Manager.

    `kms:ViaService` limits the key to Secrets Manager in the secrets' own regions (what RDS Proxy needs:
    RDS Proxy user guide, "Setting up AWS Identity and Access Management (IAM) policies").
    """
    statements: list[dict[str, Any]] = [
        {
            "Sid": "ReadProxySecrets",
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
            "Resource": list(dict.fromkeys(secret_arns)),
        }
    ]
    keys = sorted({k for k in kms_key_arns if k})
    if keys:
        regions = sorted({arn_part(a, 3) for a in secret_arns})
        statements.append(
            {
                "Sid": "DecryptProxySecrets",
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": keys[0] if len(keys) == 1 else keys,
                "Condition": {
                    "StringEquals": {"kms:ViaService": [f"secretsmanager.{r}.amazonaws.com" for r in regions]}
                },
            }
        )
    return {"Version": VERSION, "Statement": statements}


def db_user_arn(resource_arn: str, db_user: str, resource_id: str | None = None) -> str:
    """The `rds-db:connect` resource for one user of a proxy (`prx-…`) or database (`db-…`/`cluster-…`).

    `resource_arn` is the proxy's ARN (its last field is the prx-… id), or a database's ARN with its
    `resource_id` (DbiResourceId / DbClusterResourceId) given apart, since a database ARN names its
    identifier instead. The dbuser ARN keeps the partition, region and account.
    """
    partition, region, account = (
        arn_part(resource_arn, 1),
        arn_part(resource_arn, 3),
        arn_part(resource_arn, 4),
    )
    resource_id = resource_id or resource_arn.rsplit(":", 1)[1]
    return f"arn:{partition}:rds-db:{region}:{account}:dbuser:{resource_id}/{db_user}"


def db_connect_policy(
    proxy_arn: str, db_users: Sequence[str], sid: str = "ConnectThroughProxy"
) -> dict[str, Any]:
    """`rds-db:connect` as exactly these users through one proxy; the ARNs are built from the proxy's ARN."""
    arns = [db_user_arn(proxy_arn, u) for u in db_users]
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": sid,
                "Effect": "Allow",
                "Action": "rds-db:connect",
                "Resource": arns[0] if len(arns) == 1 else arns,
            }
        ],
    }


def sns_publisher_statements(
    partition: str, account: str, region: str, alarm_prefix: str
) -> list[dict[str, Any]]:
    """Key-policy statements letting CloudWatch alarms and RDS event notifications publish to a topic that the
    key encrypts (SNS developer guide, "Enable compatibility between event sources from AWS services and
    encrypted topics"). CloudWatch only for this stack's alarms (`aws:SourceArn` = the alarm ARNs under
    `<alarm_prefix>-`), RDS only for events of this account and region; both only on behalf of this account
    (`aws:SourceAccount`), the guide's confused-deputy step. The RDS condition names the account's RDS ARNs
    rather than one resource: which ARN RDS presents for the KMS call is not documented, and a condition that
    doesn't match drops every event silently."""
    actions = ["kms:Decrypt", "kms:GenerateDataKey*"]
    return [
        {
            "Sid": "CloudWatchAlarmsPublish",
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": actions,
            "Resource": "*",
            "Condition": {
                "StringEquals": {"aws:SourceAccount": account},
                "ArnLike": {
                    "aws:SourceArn": f"arn:{partition}:cloudwatch:{region}:{account}:alarm:{alarm_prefix}-*"
                },
            },
        },
        {
            "Sid": "RdsEventsPublish",
            "Effect": "Allow",
            "Principal": {"Service": "events.rds.amazonaws.com"},
            "Action": actions,
            "Resource": "*",
            "Condition": {
                "StringEquals": {"aws:SourceAccount": account},
                "ArnLike": {"aws:SourceArn": f"arn:{partition}:rds:{region}:{account}:*"},
            },
        },
    ]
