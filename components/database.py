"""Database: one encrypted, private RDS MySQL instance, offered to the proxy as its target.

Vocabulary of the database (`DatabaseSettings`, the engine and its port) lives here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.iam import arn_part, assume_role_policy
from components.target import DatabaseTarget, EngineFamily, InstanceTarget

RDS_SERVICE_LINKED_ROLE = "AWSServiceRoleForRDS"
ENGINE = "mysql"
ENGINE_FAMILY = EngineFamily.MYSQL
PORT = 3306


def require_rds_service_linked_role(opts: pulumi.InvokeOptions | None = None) -> None:
    """Stop before anything is created when the account has no RDS service-linked role.

    RDS creates `AWSServiceRoleForRDS` on the first DB instance of an account, but only if the caller may
    `iam:CreateServiceLinkedRole`; otherwise the instance fails late with "RDS is not authorized to assume
    service-linked role AWSServiceRoleForRDS" (RDS user guide, "Using service-linked roles for Amazon RDS").
    Creating it once per account is one command, so say it up front.
    """
    try:
        aws.iam.get_role(name=RDS_SERVICE_LINKED_ROLE, opts=opts)
    except Exception as exc:  # the provider's not-found and access errors arrive as plain exceptions
        text = str(exc)
        if not any(m in text for m in ("NoSuchEntity", "couldn't find resource", "not found")):
            pulumi.warn(f"could not check for the RDS service-linked role {RDS_SERVICE_LINKED_ROLE}: {text}")
            return
        raise pulumi.RunError(
            f"this AWS account has no {RDS_SERVICE_LINKED_ROLE} service-linked role, and RDS fails to create "
            "a database without it unless the deploying identity may iam:CreateServiceLinkedRole. Create it "
            "once for the account, then run `pulumi up` again:\n"
            "    aws iam create-service-linked-role --aws-service-name rds.amazonaws.com"
        ) from exc


@dataclass(frozen=True, kw_only=True)
class DatabaseSettings:
    """The database's section of the stack config."""

    instance_class: str
    engine_version: str
    allocated_storage: int
    db_name: str
    backup_retention_days: int
    multi_az: bool
    deletion_protection: bool
    """Also marks the instance (and the master secret) `protect=True` in Pulumi."""
    skip_final_snapshot: bool
    final_snapshot_prefix: str
    """Final snapshot name before its per-instance suffix; used only when skip_final_snapshot is False."""
    identifier: str
    """The instance identifier a new stack gets, known before create so its log groups can exist first.
    Stacks deployed before it keep their auto-generated identifier (`ignore_changes`, see Database)."""
    log_exports: tuple[str, ...] = ()
    """`dbLogExports`: logs RDS exports to `/aws/rds/instance/<identifier>/<log>`."""
    log_retention_days: int = 30
    monitoring_interval: int = 0
    """`dbMonitoringInterval`: enhanced monitoring seconds, 0 off."""
    password_rotated: bool = False
    """Secrets Manager rotates the master password: Pulumi must not set it again."""
    port: int = PORT

    @property
    def parameter_group_family(self) -> str:
        return f"{ENGINE}{'.'.join(self.engine_version.split('.')[:2])}"

    @property
    def log_group_names(self) -> list[str]:
        return [f"/aws/rds/instance/{self.identifier}/{log}" for log in self.log_exports]


@dataclass(frozen=True, kw_only=True)
class DatabaseArgs:
    """Where the instance lives, its master password, and its own section."""

    subnet_group_name: pulumi.Input[str]
    security_group_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    username: str
    password: pulumi.Input[str]
    """Always from Credentials (a Pulumi secret), never a literal."""
    settings: DatabaseSettings
    kms_key_arn: pulumi.Input[str] | None = None
    """Customer-managed key of the exported logs' log groups."""
    account_arn: pulumi.Input[str] | None = None
    """Any ARN of this stack's account (its partition names the AWS-managed monitoring policy)."""


class Database(pulumi.ComponentResource):
    """RDS MySQL: gp3, encrypted, never public, backed up, in the private subnets behind the DB security group.

    With deletion protection on, the instance is also `protect=True`, so neither AWS nor Pulumi deletes it.
    """

    instance_id: pulumi.Output[str]
    """The DB instance identifier."""
    address: pulumi.Output[str]
    """The instance's hostname (private)."""
    target: DatabaseTarget
    """What the proxy registers: this instance, with the engine family it speaks."""
    db_name: str
    """The database created on the instance."""
    port: int

    def __init__(self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rdsproxy:index:Database", name, None, opts)
        s = args.settings
        child = pulumi.ResourceOptions(parent=self)

        final_snapshot: pulumi.Input[str] | None = None
        if not s.skip_final_snapshot:
            # Unique per instance lifetime: created with the stack, destroyed with it, so a second teardown
            # of a re-created stack doesn't collide with the first one's snapshot (RDS refuses a duplicate
            # snapshot identifier and the delete fails).
            suffix = random.RandomId(f"{name}-final-snapshot-suffix", byte_length=4, opts=child)
            final_snapshot = suffix.hex.apply(lambda h: f"{s.final_snapshot_prefix}-{h}")

        # Created before the instance with retention and the key, so RDS writes into them instead of
        # creating never-expiring, unencrypted groups on first export (RDS user guide, "Publishing MySQL logs
        # to Amazon CloudWatch Logs": RDS uses an existing group of that name).
        log_groups = [
            aws.cloudwatch.LogGroup(
                f"{name}-{log}-logs",
                name=group,
                retention_in_days=s.log_retention_days,
                kms_key_id=args.kms_key_arn,
                opts=child,
            )
            for log, group in zip(s.log_exports, s.log_group_names, strict=True)
        ]
        monitoring_role_arn: pulumi.Output[str] | None = None
        if s.monitoring_interval:
            role = aws.iam.Role(
                f"{name}-monitoring-role",
                description="Lets RDS enhanced monitoring publish OS metrics to CloudWatch Logs",
                assume_role_policy=pulumi.Output.json_dumps(
                    assume_role_policy("monitoring.rds.amazonaws.com")
                ),
                opts=child,
            )
            partition = pulumi.Output.from_input(args.account_arn or "arn:aws:").apply(
                lambda a: arn_part(a, 1)
            )
            attachment = aws.iam.RolePolicyAttachment(
                f"{name}-monitoring-policy",
                role=role.name,
                policy_arn=partition.apply(
                    lambda p: f"arn:{p}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
                ),
                opts=child,
            )
            # RDS checks the role can publish when the instance is modified: attach the policy first.
            monitoring_role_arn = pulumi.Output.all(role.arn, attachment.id).apply(lambda a: a[0])
        # A custom group from the start (RDS offers no way to change default.mysql8.0), named by Pulumi so a
        # family change (major upgrade, blue/green) can create the new group before dropping the old one.
        # Associating it with a deployed instance is an in-place modify; RDS applies the association at the
        # next reboot (RDS user guide, "Associating a DB parameter group with a DB instance"). Its parameters
        # are the family defaults, so until then nothing differs.
        parameters = aws.rds.ParameterGroup(
            f"{name}-params",
            family=s.parameter_group_family,
            description="MySQL parameters of the RDS Proxy stack's database",
            opts=child,
        )

        instance = aws.rds.Instance(
            f"{name}-instance",
            identifier=s.identifier,
            engine=ENGINE,
            engine_version=s.engine_version,
            instance_class=s.instance_class,
            allocated_storage=s.allocated_storage,
            storage_type="gp3",
            storage_encrypted=True,
            publicly_accessible=False,
            db_subnet_group_name=args.subnet_group_name,
            vpc_security_group_ids=args.security_group_ids,
            port=s.port,
            db_name=s.db_name,
            username=args.username,
            password=args.password,
            backup_retention_period=s.backup_retention_days,
            copy_tags_to_snapshot=True,
            auto_minor_version_upgrade=True,
            multi_az=s.multi_az,
            deletion_protection=s.deletion_protection,
            skip_final_snapshot=s.skip_final_snapshot,
            final_snapshot_identifier=final_snapshot,
            parameter_group_name=parameters.name,
            enabled_cloudwatch_logs_exports=list(s.log_exports) or None,
            monitoring_interval=s.monitoring_interval,
            monitoring_role_arn=monitoring_role_arn,
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=s.deletion_protection,
                depends_on=log_groups,
                # identifier: a new identifier would replace a deployed instance (a new, empty database);
                # stacks created before it keep their auto-generated one. password: once Secrets Manager
                # rotates it, the generated one in the program is stale and must never be set again.
                ignore_changes=["identifier", *(["password"] if s.password_rotated else [])],
            ),
        )

        self.instance_id = instance.identifier
        self.address = instance.address
        self.db_name = s.db_name
        self.port = s.port
        self.target = InstanceTarget(
            instance_id=instance.identifier,
            engine_family=ENGINE_FAMILY,
            resource_arn=instance.arn,
            resource_id=instance.resource_id,
        )
        self.register_outputs({"instance_id": self.instance_id, "address": self.address})
