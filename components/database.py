"""Database: one encrypted, private RDS MySQL instance, offered to the proxy as its target.

Vocabulary of the database (`DatabaseSettings`, the engine and its port) lives here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

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
    port: int = PORT


@dataclass(frozen=True, kw_only=True)
class DatabaseArgs:
    """Where the instance lives, its master password, and its own section."""

    subnet_group_name: pulumi.Input[str]
    security_group_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    username: str
    password: pulumi.Input[str]
    """Always from Credentials (a Pulumi secret), never a literal."""
    settings: DatabaseSettings


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

        instance = aws.rds.Instance(
            f"{name}-instance",
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
            opts=pulumi.ResourceOptions(parent=self, protect=s.deletion_protection),
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
