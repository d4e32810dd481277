"""Database: one encrypted, private RDS MySQL instance, offered to the proxy as its target.

Vocabulary of the database (`DatabaseSettings`, the engine and its port) lives here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.target import DatabaseTarget, EngineFamily, InstanceTarget

ENGINE = "mysql"
ENGINE_FAMILY = EngineFamily.MYSQL
PORT = 3306


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
    final_snapshot_identifier: str
    """Used only when skip_final_snapshot is False."""
    iam_database_authentication: bool = False
    """IAM database authentication (proxyDefaultAuthScheme IAM_AUTH: the proxy logs in with IAM tokens)."""
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
            # Left out rather than false when off, so stacks deployed before this option plan unchanged.
            iam_database_authentication_enabled=True if s.iam_database_authentication else None,
            skip_final_snapshot=s.skip_final_snapshot,
            final_snapshot_identifier=None if s.skip_final_snapshot else s.final_snapshot_identifier,
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
