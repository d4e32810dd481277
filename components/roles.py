"""Roles shared by components: a service's role with one AWS-managed policy attached.

The Lambda functions (probe, users bootstrap) and RDS enhanced monitoring (primary and DR standby) each need
one; the names they pass are their own, so these helpers never move a deployed resource.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components.iam import arn_part, assume_role_policy


def service_role(
    role_name: str,
    attachment_name: str,
    *,
    service: str,
    managed_policy: str,
    description: str,
    arn_in_partition: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
) -> tuple[aws.iam.Role, aws.iam.RolePolicyAttachment]:
    """A role `service` may assume, with the AWS-managed `managed_policy` (path after `policy/`) attached in
    the partition of `arn_in_partition` (any ARN of the stack's: aws, aws-cn, aws-us-gov)."""
    role = aws.iam.Role(
        role_name,
        description=description,
        assume_role_policy=pulumi.Output.json_dumps(assume_role_policy(service)),
        opts=opts,
    )
    partition = pulumi.Output.from_input(arn_in_partition).apply(lambda a: arn_part(a, 1))
    attachment = aws.iam.RolePolicyAttachment(
        attachment_name,
        role=role.name,
        policy_arn=partition.apply(lambda p: f"arn:{p}:iam::aws:policy/{managed_policy}"),
        opts=opts,
    )
    return role, attachment


def lambda_vpc_role(
    name: str, description: str, arn_in_partition: pulumi.Input[str], opts: pulumi.ResourceOptions
) -> tuple[aws.iam.Role, aws.iam.RolePolicyAttachment]:
    """`<name>-role` for a Lambda in the VPC, with `AWSLambdaVPCAccessExecutionRole` (`<name>-vpc-access`)."""
    return service_role(
        f"{name}-role",
        f"{name}-vpc-access",
        service="lambda.amazonaws.com",
        managed_policy="service-role/AWSLambdaVPCAccessExecutionRole",
        description=description,
        arn_in_partition=arn_in_partition,
        opts=opts,
    )


def enhanced_monitoring_role_arn(
    name: str, account_arn: pulumi.Input[str] | None, opts: pulumi.ResourceOptions
) -> pulumi.Output[str]:
    """The role RDS enhanced monitoring publishes with (`AmazonRDSEnhancedMonitoringRole`). The ARN resolves
    only once the policy is attached: RDS checks the role can publish when the instance is modified."""
    role, attachment = service_role(
        f"{name}-monitoring-role",
        f"{name}-monitoring-policy",
        service="monitoring.rds.amazonaws.com",
        managed_policy="service-role/AmazonRDSEnhancedMonitoringRole",
        description="Lets RDS enhanced monitoring publish OS metrics to CloudWatch Logs",
        arn_in_partition=account_arn or "arn:aws:",
        opts=opts,
    )
    return pulumi.Output.all(role.arn, attachment.id).apply(lambda a: a[0])
