"""Rotation: AWS's single-user MySQL rotation function (Serverless Application Repository) rotating the stack's
secrets every N days, in the private subnets, reaching only the database and Secrets Manager.

Why this function and not Secrets Manager's managed rotation: managed rotation for RDS exists only for
RDS-managed master passwords (`manage_master_user_password`), which blue/green deployments (issue 11) do not
support. The SAR application is AWS's own, maintained Lambda for exactly this secret shape.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.iam import arn_part

# AWS's application (Secrets Manager user guide, "Rotation function templates": "Amazon RDS MySQL single user").
ROTATION_APPLICATION_ID = (
    "arn:aws:serverlessrepo:us-east-1:297356227824:applications/SecretsManagerRDSMySQLRotationSingleUser"
)
# Pinned, as AWS CDK pins it (aws-secretsmanager `SecretRotationApplication.MYSQL_ROTATION_SINGLE_USER`,
# commercial partition): an unpinned stack takes whatever is latest at create time, and differs per stack.
ROTATION_APPLICATION_VERSION = "1.1.671"
# The template creates the function's role (CAPABILITY_IAM) and the Lambda permission that lets Secrets
# Manager invoke it (CAPABILITY_RESOURCE_POLICY).
ROTATION_CAPABILITIES = ("CAPABILITY_IAM", "CAPABILITY_RESOURCE_POLICY")
HTTPS = 443


@dataclass(frozen=True, kw_only=True)
class RotationSettings:
    """`secretRotationDays` > 0: the rotation section."""

    days: int
    function_name: str
    log_retention_days: int

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"


@dataclass(frozen=True, kw_only=True)
class RotationArgs:
    """The secrets to rotate, where the function runs and what it may reach."""

    secret_arns: Sequence[pulumi.Input[str]]
    """The master secret (first) and any other secret rotated the same way."""
    user_secret_arns: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """The database users' secrets (issue 8), by user: each rotates itself (single-user rotation) on the same
    schedule; named by user so adding or removing one never renames another's schedule."""
    vpc_id: pulumi.Input[str]
    vpc_arn: pulumi.Input[str]
    subnet_ids: pulumi.Input[Sequence[str]]
    db_security_group_id: pulumi.Input[str]
    db_port: int
    endpoint_security_group_id: pulumi.Input[str]
    """The Secrets Manager interface endpoint's group."""
    endpoint: pulumi.Resource
    """The endpoint itself: rotation must not be configured before the function can reach Secrets Manager."""
    kms_key_arn: pulumi.Input[str]
    settings: RotationSettings


class Rotation(pulumi.ComponentResource):
    """Single-user rotation of each secret every `days` days."""

    function_arn: pulumi.Output[str]
    security_group_id: pulumi.Output[str]

    def __init__(self, name: str, args: RotationArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rdsproxy:index:Rotation", name, None, opts)
        s = args.settings
        child = pulumi.ResourceOptions(parent=self)

        group = aws.ec2.SecurityGroup(
            f"{name}-sg", vpc_id=args.vpc_id, description="Secret rotation function", opts=child
        )
        # (from, to, port, why): the function opens the database directly (never the proxy: it must test the
        # new password on the database itself) and Secrets Manager through the endpoint; nothing else.
        hops = (
            (
                group.id,
                args.db_security_group_id,
                args.db_port,
                "db",
                "Secret rotation function to the database",
            ),
            (
                group.id,
                args.endpoint_security_group_id,
                HTTPS,
                "secretsmanager",
                "Secret rotation to Secrets Manager",
            ),
        )
        rules: list[pulumi.Resource] = []
        for source, target, port, role, why in hops:
            rules.append(
                aws.vpc.SecurityGroupEgressRule(
                    f"{name}-to-{role}",
                    security_group_id=source,
                    referenced_security_group_id=target,
                    ip_protocol="tcp",
                    from_port=port,
                    to_port=port,
                    description=why,
                    opts=child,
                )
            )
            rules.append(
                aws.vpc.SecurityGroupIngressRule(
                    f"{name}-{role}-from-rotation",
                    security_group_id=target,
                    referenced_security_group_id=source,
                    ip_protocol="tcp",
                    from_port=port,
                    to_port=port,
                    description=why,
                    opts=child,
                )
            )
        # Before the function exists, so Lambda never auto-creates a never-expiring group for it.
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=s.log_group_name,
            retention_in_days=s.log_retention_days,
            kms_key_id=args.kms_key_arn,
            opts=child,
        )
        vpc_arn = pulumi.Output.from_input(args.vpc_arn)
        app = aws.serverlessrepository.CloudFormationStack(
            f"{name}-function",
            name=s.function_name,
            application_id=ROTATION_APPLICATION_ID,
            semantic_version=ROTATION_APPLICATION_VERSION,
            capabilities=list(ROTATION_CAPABILITIES),
            parameters={
                # The endpoint's private DNS name is the service's own, so this URL reaches the endpoint.
                "endpoint": vpc_arn.apply(lambda a: f"https://secretsmanager.{arn_part(a, 3)}.amazonaws.com"),
                "functionName": s.function_name,
                "vpcSubnetIds": pulumi.Output.from_input(args.subnet_ids).apply(lambda ids: ",".join(ids)),
                "vpcSecurityGroupIds": group.id,
                "kmsKeyArn": args.kms_key_arn,
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[log_group]),
        )
        function_arn = app.outputs.apply(lambda o: o["RotationLambdaARN"])
        # The master's schedule keeps its first name; users' schedules are named by user, so adding or
        # removing a user never renames (replaces) another's.
        schedules = [
            (f"{name}-schedule-{i + 1}" if i else f"{name}-schedule", arn)
            for i, arn in enumerate(args.secret_arns)
        ] + [(f"{name}-{user}-schedule", arn) for user, arn in sorted(args.user_secret_arns.items())]
        for schedule, secret_arn in schedules:
            aws.secretsmanager.SecretRotation(
                schedule,
                secret_id=secret_arn,
                rotation_lambda_arn=function_arn,
                rotation_rules=aws.secretsmanager.SecretRotationRotationRulesArgs(
                    automatically_after_days=s.days
                ),
                # Configuring rotation runs only the function's testSecret step (the provider's docs); the first
                # password change happens on the schedule, not in the middle of a deploy.
                rotate_immediately=False,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[*rules, args.endpoint]),
            )
        self.function_arn = function_arn
        self.security_group_id = group.id
        self.register_outputs({"function_arn": self.function_arn})
