"""Database: one encrypted, private RDS MySQL instance."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True, kw_only=True)
class DatabaseArgs:
    """Where the instance lives, who its master user is, and how much of it survives mistakes."""

    subnet_group_name: pulumi.Input[str]
    security_group_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    username: str
    password: pulumi.Input[str]
    """Always from Credentials (a Pulumi secret), never a literal."""
    db_name: str
    instance_class: str
    engine_version: str
    allocated_storage: int
    backup_retention_days: int
    multi_az: bool
    deletion_protection: bool
    skip_final_snapshot: bool
    final_snapshot_identifier: str
    """Used only when skip_final_snapshot is False."""
    port: int = 3306


class Database(pulumi.ComponentResource):
    """RDS MySQL: gp3, encrypted, never public, backed up, in the private subnets behind the DB security group.

    With deletion protection on, the instance is also `protect=True`, so neither AWS nor Pulumi deletes it.
    """

    instance_id: pulumi.Output[str]
    """The DB instance identifier (what ProxyTarget registers)."""
    address: pulumi.Output[str]
    """The instance's hostname (private)."""

    def __init__(self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rdsproxy:index:Database", name, None, opts)

        instance = aws.rds.Instance(
            f"{name}-instance",
            engine="mysql",
            engine_version=args.engine_version,
            instance_class=args.instance_class,
            allocated_storage=args.allocated_storage,
            storage_type="gp3",
            storage_encrypted=True,
            publicly_accessible=False,
            db_subnet_group_name=args.subnet_group_name,
            vpc_security_group_ids=args.security_group_ids,
            port=args.port,
            db_name=args.db_name,
            username=args.username,
            password=args.password,
            backup_retention_period=args.backup_retention_days,
            copy_tags_to_snapshot=True,
            auto_minor_version_upgrade=True,
            multi_az=args.multi_az,
            deletion_protection=args.deletion_protection,
            skip_final_snapshot=args.skip_final_snapshot,
            final_snapshot_identifier=None if args.skip_final_snapshot else args.final_snapshot_identifier,
            opts=pulumi.ResourceOptions(parent=self, protect=args.deletion_protection),
        )

        self.instance_id = instance.identifier
        self.address = instance.address
        self.register_outputs({"instance_id": self.instance_id, "address": self.address})
