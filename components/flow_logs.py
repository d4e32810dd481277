"""FlowLogs: the VPC's flow log, into its own encrypted log group with a retention, through a role that may
write only there."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.iam import VERSION, arn_part, assume_role_policy


class FlowLogTraffic(enum.Enum):
    """VPC flow log `TrafficType`; `vpcFlowLogs: NONE` is no flow log at all (no section)."""

    ALL = "ALL"
    REJECT = "REJECT"


@dataclass(frozen=True, kw_only=True)
class FlowLogSettings:
    """What to log (`vpcFlowLogs`) and where."""

    traffic: FlowLogTraffic
    log_group_name: str
    log_retention_days: int


@dataclass(frozen=True, kw_only=True)
class FlowLogsArgs:
    """The VPC, the key of the log group, and the flow log section."""

    vpc_id: pulumi.Input[str]
    vpc_arn: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    settings: FlowLogSettings


def flow_log_trust_policy(vpc_arn: str) -> dict[str, Any]:
    """vpc-flow-logs.amazonaws.com may assume the role only for flow logs of this account and region
    (confused-deputy conditions from the VPC user guide, "IAM role for publishing flow logs to CloudWatch
    Logs")."""
    partition, region, account = arn_part(vpc_arn, 1), arn_part(vpc_arn, 3), arn_part(vpc_arn, 4)
    return assume_role_policy(
        "vpc-flow-logs.amazonaws.com",
        {
            "StringEquals": {"aws:SourceAccount": account},
            "ArnLike": {"aws:SourceArn": f"arn:{partition}:ec2:{region}:{account}:vpc-flow-log/*"},
        },
    )


def flow_log_write_policy(log_group_arn: str) -> dict[str, Any]:
    """Write to this one log group: its streams are named by network interface, so the stream part is the
    only wildcard (`<group ARN>:log-stream:*`)."""
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "WriteFlowLogs",
                "Effect": "Allow",
                "Action": [
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:DescribeLogGroups",
                    "logs:DescribeLogStreams",
                ],
                "Resource": [log_group_arn, f"{log_group_arn}:log-stream:*"],
            }
        ],
    }


class FlowLogs(pulumi.ComponentResource):
    """A flow log of the VPC (`ALL` or `REJECT` traffic) to CloudWatch Logs."""

    log_group_name: pulumi.Output[str]

    def __init__(self, name: str, args: FlowLogsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rdsproxy:index:FlowLogs", name, None, opts)
        s = args.settings
        child = pulumi.ResourceOptions(parent=self)

        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=s.log_group_name,
            retention_in_days=s.log_retention_days,
            kms_key_id=args.kms_key_arn,
            opts=child,
        )
        role = aws.iam.Role(
            f"{name}-role",
            description="Lets VPC Flow Logs write to the stack's flow log group",
            assume_role_policy=pulumi.Output.json_dumps(
                pulumi.Output.from_input(args.vpc_arn).apply(flow_log_trust_policy)
            ),
            opts=child,
        )
        policy = aws.iam.RolePolicy(
            f"{name}-write",
            role=role.id,
            policy=pulumi.Output.json_dumps(log_group.arn.apply(flow_log_write_policy)),
            opts=child,
        )
        aws.ec2.FlowLog(
            f"{name}-flow-log",
            vpc_id=args.vpc_id,
            traffic_type=s.traffic.value,
            log_destination_type="cloud-watch-logs",
            log_destination=log_group.arn,
            # The flow log takes the role once it may write: no delivery errors at start.
            iam_role_arn=pulumi.Output.all(role.arn, policy.id).apply(lambda a: a[0]),
            max_aggregation_interval=600,
            opts=child,
        )
        self.log_group_name = log_group.name
        self.register_outputs({"log_group_name": self.log_group_name})
