"""Database: the proxy's target, in one of three topologies, encrypted, private and backed up.

- `instance`: one RDS MySQL instance (the proxy pools the writer only), plus `dbReadReplicas` read replicas
  that clients reach directly (RDS Proxy cannot target a read replica).
- `aurora`: an Aurora MySQL 3 cluster, one writer and `dbReaderCount` reader instances (provisioned or
  Serverless v2); the proxy registers the cluster and can route reads to the readers.
- `multi-az-cluster`: an RDS Multi-AZ DB cluster (engine `mysql`): one writer and two readable standbys in
  three Availability Zones, which RDS creates itself.

Vocabulary of the database (`Topology`, `TOPOLOGY_DEFAULTS`, `DatabaseSettings`, the engine and its port)
lives here; `settings.py` parses config into it.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.roles import enhanced_monitoring_role_arn
from components.target import ClusterTarget, DatabaseTarget, EngineFamily, InstanceTarget

ENGINE = "mysql"
AURORA_ENGINE = "aurora-mysql"
ENGINE_FAMILY = EngineFamily.MYSQL
PORT = 3306


RDS_SERVICE_LINKED_ROLE = "AWSServiceRoleForRDS"


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


class Topology(enum.Enum):
    """`dbTopology`: what the proxy fronts, and so what it can do with reads."""

    INSTANCE = "instance"
    AURORA = "aurora"
    MULTI_AZ_CLUSTER = "multi-az-cluster"


@dataclass(frozen=True)
class TopologyDefaults:
    """What `dbInstanceClass`, `dbEngineVersion` and `dbReaderCount` mean when left to the topology."""

    instance_class: str
    engine_version: str
    reader_count: int


# The only place these defaults are written; Pulumi.yaml declares the keys with "" / -1 ("the topology's
# own") so that dev and prod, which set neither, keep planning exactly as before this table existed.
TOPOLOGY_DEFAULTS: Mapping[Topology, TopologyDefaults] = {
    # As the project always had: the AWS recipe's free-tier class, MySQL 8.0 (RDS picks the minor version).
    Topology.INSTANCE: TopologyDefaults("db.t3.micro", "8.0", 0),
    # The smallest current Aurora MySQL 3 class (burstable Graviton2; Aurora offers T classes only in
    # medium/large), and Aurora MySQL 3.10.0, the long-term-support release of 2025-07-31 (Aurora MySQL
    # release notes, "version 3.10.0, compatible with MySQL 8.0.42"; LTS list in the Aurora user guide,
    # "Long-term support (LTS) and beta releases for Amazon Aurora MySQL").
    Topology.AURORA: TopologyDefaults("db.t4g.medium", "8.0.mysql_aurora.3.10.0", 1),
    # db.c6gd.medium (1 vCPU, 2 GiB, local NVMe) is the smallest class in RDS's list for Multi-AZ DB
    # clusters (RDS user guide, "Instance class availability for Multi-AZ DB clusters"); not offered in every
    # region. A Multi-AZ DB cluster always has exactly two readers.
    Topology.MULTI_AZ_CLUSTER: TopologyDefaults("db.c6gd.medium", "8.0", 2),
}

# Aurora MySQL 3 engine versions ("8.0.mysql_aurora.3.<minor>.<patch>", Aurora user guide, "Aurora MySQL
# version numbers"); the patch may be left out where the API accepts a partial version (provider docs).
AURORA_VERSION = re.compile(r"8\.0\.mysql_aurora\.3\.\d{2}(\.\d+)?")
# Aurora MySQL offers memory-optimized R and X classes, burstable T classes in medium/large only, and
# Serverless v2 (Aurora user guide, "Supported DB engines for DB instance classes").
AURORA_CLASS = re.compile(r"db\.(r\d+[a-z]*\.[a-z0-9]+|x2g\.[a-z0-9]+|t(3|4g)\.(medium|large)|serverless)")
# Families in RDS's list for Multi-AZ DB clusters (RDS user guide, "Instance class availability for Multi-AZ
# DB clusters"); which sizes a region offers is asked with `aws rds describe-orderable-db-instance-options`.
MULTI_AZ_CLUSTER_FAMILIES = (
    "c6gd", "m5d", "m6gd", "m6id", "m6idn", "m6i", "m7g",
    "r5d", "r6gd", "r6id", "r6idn", "r6i", "r7g", "x2iedn",
)  # fmt: skip
# Multi-AZ DB clusters for RDS for MySQL start at 8.0.28 ("Supported Regions and DB engines for Multi-AZ DB
# clusters", RDS user guide); 8.4 versions are supported too.
MULTI_AZ_CLUSTER_VERSION = re.compile(r"8\.(0|4)(\.(\d+))?")
MIN_MULTI_AZ_CLUSTER_PATCH = 28

SERVERLESS_CLASS = "db.serverless"
"""Aurora Serverless v2 instance class: capacity in ACUs from `serverlessv2_scaling_configuration`."""
MAX_AURORA_READERS = 15
"""An Aurora cluster holds one writer and up to 15 Aurora Replicas (Aurora user guide, "Aurora Replicas")."""
MAX_READ_REPLICAS = 5
"""Same-region read replicas offered for `instance` (RDS allows more; five keeps the bill visible)."""
MULTI_AZ_CLUSTER_STORAGE_TYPE = "gp3"
"""Multi-AZ DB clusters take io1, io2 or gp3 (provider docs of `aws.rds.Cluster.storage_type`; the RDS
user guide's "Creating a Multi-AZ DB cluster"). gp3 is the one billed by GiB only: below 400 GiB RDS for
MySQL gives it a fixed 3,000 IOPS baseline and no provisioned IOPS (RDS user guide, "gp3 storage"), so no
`iops` is sent (io1/io2 would need `iops` and at least 100 GiB, billed per provisioned IOPS)."""


@dataclass(frozen=True, kw_only=True)
class ServerlessCapacity:
    """Aurora Serverless v2 capacity range, in ACUs (0.5 steps)."""

    min_acu: float
    max_acu: float


@dataclass(frozen=True, kw_only=True)
class DatabaseSettings:
    """The database's section of the stack config."""

    instance_class: str
    """The writer's class (for a Multi-AZ DB cluster, every member's), the topology's own unless set."""
    engine_version: str
    allocated_storage: int
    """GiB per instance (`instance`, `multi-az-cluster`); Aurora storage grows by itself."""
    db_name: str
    backup_retention_days: int
    multi_az: bool
    deletion_protection: bool
    """Also marks the database resources (and the master secret) `protect=True` in Pulumi."""
    skip_final_snapshot: bool
    final_snapshot_prefix: str
    """Final snapshot name before its per-lifetime suffix; used only when skip_final_snapshot is False."""
    iam_database_authentication: bool = False
    """IAM database authentication (proxyDefaultAuthScheme IAM_AUTH: the proxy logs in with IAM tokens)."""
    identifier: str
    """The instance identifier a new stack gets, known before create so its log groups can exist first.
    Stacks deployed before it keep their auto-generated identifier (`ignore_changes`, see Database)."""
    log_exports: tuple[str, ...] = ()
    """`dbLogExports`: logs RDS exports to `/aws/rds/<instance|cluster>/<identifier>/<log>`."""
    log_retention_days: int = 30
    monitoring_interval: int = 0
    """`dbMonitoringInterval`: enhanced monitoring seconds, 0 off."""
    password_rotated: bool = False
    """Secrets Manager rotates the master password: Pulumi must not set it again."""
    blue_green_update: bool = False
    """`dbBlueGreenUpdate`: changes that would restart or replace the instance go through an RDS blue/green
    deployment that the provider creates, switches over and deletes within `pulumi up`."""
    port: int = PORT
    topology: Topology = Topology.INSTANCE
    reader_count: int = 0
    """Aurora reader instances; 2 for a Multi-AZ DB cluster (RDS creates them); 0 for `instance`."""
    reader_instance_class: str | None = None
    """Aurora readers' class (None: the writer's)."""
    serverless: ServerlessCapacity | None = None
    """Set when an Aurora class is `db.serverless`."""
    read_replicas: int = 0
    """`instance` only: read replicas of the instance, reached directly."""

    @property
    def parameter_group_family(self) -> str:
        return f"{ENGINE}{'.'.join(self.engine_version.split('.')[:2])}"

    def log_groups_of(self, identifier: str) -> list[str]:
        """Where RDS exports each log of one instance, or of a cluster (both cluster topologies)."""
        kind = "instance" if self.topology is Topology.INSTANCE else "cluster"
        return [f"/aws/rds/{kind}/{identifier}/{log}" for log in self.log_exports]

    @property
    def replica_identifiers(self) -> list[str]:
        return [f"{self.identifier}-replica-{i + 1}" for i in range(self.read_replicas)]

    @property
    def log_group_names(self) -> list[str]:
        """Every log group the database exports to (the stack's key policy names each one)."""
        return [
            g for ident in [self.identifier, *self.replica_identifiers] for g in self.log_groups_of(ident)
        ]


@dataclass(frozen=True, kw_only=True)
class DatabaseArgs:
    """Where the database lives, its master password, and its own section."""

    subnet_group_name: pulumi.Input[str]
    security_group_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    username: str
    password: pulumi.Input[str]
    """Always from Credentials (a Pulumi secret), never a literal."""
    settings: DatabaseSettings
    replica_security_group_ids: pulumi.Input[Sequence[pulumi.Input[str]]] | None = None
    """The read replicas' own group (required when the settings ask for replicas): the database's group
    admits only the proxy, the replicas' group admits their direct readers."""
    kms_key_arn: pulumi.Input[str] | None = None
    """Customer-managed key of the exported logs' log groups."""
    account_arn: pulumi.Input[str] | None = None
    """Any ARN of this stack's account (its partition names the AWS-managed monitoring policy)."""


class Database(pulumi.ComponentResource):
    """The proxy's target: an RDS MySQL instance (with optional read replicas), an Aurora MySQL cluster, or a
    Multi-AZ DB cluster. Always encrypted, never public, backed up, in the private subnets.

    With deletion protection on, the instance or cluster (and its instances) are also `protect=True`, so
    neither AWS nor Pulumi deletes them.
    """

    address: pulumi.Output[str]
    """Direct (not proxied) hostname of the writer: the instance's address or the cluster's writer
    endpoint."""
    instance_id: pulumi.Output[str] | None
    """The DB instance identifier (`instance` only)."""
    replica_endpoints: pulumi.Output[list[str]] | None
    """Hostnames of the read replicas (`instance` with `dbReadReplicas` > 0 only)."""
    cluster_id: pulumi.Output[str] | None
    """The DB cluster identifier (cluster topologies only)."""
    reader_endpoint: pulumi.Output[str] | None
    """The cluster's own reader endpoint (cluster topologies only)."""
    target: DatabaseTarget
    """What the proxy registers: the instance, or the cluster and the instances it must wait for."""
    db_name: str
    """The database created on the instance or cluster."""
    port: int

    def __init__(self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rdsproxy:index:Database", name, None, opts)
        s = args.settings
        self._settings = s
        self.db_name = s.db_name
        self.port = s.port
        self.instance_id = None
        self.replica_endpoints = None
        self.cluster_id = None
        self.reader_endpoint = None
        if s.topology is Topology.INSTANCE:
            self._instance(name, args)
        else:
            self._cluster(name, args)
        outputs: dict[str, pulumi.Output | None] = {
            "address": self.address,
            "instance_id": self.instance_id,
            "replica_endpoints": self.replica_endpoints,
            "cluster_id": self.cluster_id,
            "reader_endpoint": self.reader_endpoint,
        }
        self.register_outputs({k: v for k, v in outputs.items() if v is not None})

    def _final_snapshot(self, name: str) -> pulumi.Output[str] | None:
        """The final snapshot's name, unique per database lifetime: its suffix is created with the database
        component and destroyed with it, so a second teardown of a re-created stack doesn't collide with the
        first one's snapshot (RDS refuses a duplicate snapshot identifier and the delete fails)."""
        s = self._settings
        if s.skip_final_snapshot:
            return None
        suffix = random.RandomId(
            f"{name}-final-snapshot-suffix", byte_length=4, opts=pulumi.ResourceOptions(parent=self)
        )
        return suffix.hex.apply(lambda h: f"{s.final_snapshot_prefix}-{h}")

    def _log_groups(
        self, name: str, args: DatabaseArgs, groups: Sequence[str] | None = None
    ) -> list[pulumi.Resource]:
        """The exported logs' groups, created before the database with retention and the key, so RDS writes
        into them instead of creating never-expiring, unencrypted groups on first export (RDS user guide,
        "Publishing MySQL logs to Amazon CloudWatch Logs": RDS uses an existing group of that name)."""
        s = args.settings
        return [
            aws.cloudwatch.LogGroup(
                f"{name}-{log}-logs",
                name=group,
                retention_in_days=s.log_retention_days,
                kms_key_id=args.kms_key_arn,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for log, group in zip(s.log_exports, groups or s.log_groups_of(s.identifier), strict=True)
        ]

    def _monitoring_role(self, name: str, args: DatabaseArgs) -> pulumi.Output[str] | None:
        """The enhanced monitoring role's ARN, or None when monitoring is off."""
        if not args.settings.monitoring_interval:
            return None
        return enhanced_monitoring_role_arn(name, args.account_arn, pulumi.ResourceOptions(parent=self))

    def _instance(self, name: str, args: DatabaseArgs) -> None:
        s = args.settings
        child = pulumi.ResourceOptions(parent=self)
        kept = pulumi.ResourceOptions(parent=self, protect=s.deletion_protection)
        log_groups = self._log_groups(name, args)
        monitoring_role_arn = self._monitoring_role(name, args)
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
            # Left out rather than false when off, so stacks deployed before this option plan unchanged.
            iam_database_authentication_enabled=True if s.iam_database_authentication else None,
            skip_final_snapshot=s.skip_final_snapshot,
            final_snapshot_identifier=self._final_snapshot(name),
            parameter_group_name=parameters.name,
            enabled_cloudwatch_logs_exports=list(s.log_exports) or None,
            monitoring_interval=s.monitoring_interval,
            monitoring_role_arn=monitoring_role_arn,
            # Blue/green (issue 11): the provider turns engine, class, parameter group and storage changes into a
            # blue/green deployment and switches over. A major version needs allow_major_version_upgrade and a
            # parameter group of the new family (a default group makes the deployment fail): the custom group
            # above follows the engine version's family, so a major change replaces it in the same update.
            blue_green_update=aws.rds.InstanceBlueGreenUpdateArgs(enabled=True)
            if s.blue_green_update
            else None,
            allow_major_version_upgrade=True if s.blue_green_update else None,
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
        if s.read_replicas:
            if args.replica_security_group_ids is None:
                raise ValueError("DatabaseArgs.replica_security_group_ids is required for read replicas")
            replicas = [
                aws.rds.Instance(
                    f"{name}-replica-{i + 1}",
                    # A known identifier (replicas are new with read scaling), so its log groups exist first.
                    identifier=replica_id,
                    enabled_cloudwatch_logs_exports=list(s.log_exports) or None,
                    # With db_subnet_group_name given, a same-region source is named by its ARN (provider
                    # docs of `replicate_source_db`). No username, password or db_name: a replica has its
                    # source's; its backups and final snapshot are the source's business.
                    replicate_source_db=instance.arn,
                    instance_class=s.instance_class,
                    storage_type="gp3",
                    # Same-region replicas of an encrypted source are encrypted with the source's key;
                    # saying so keeps the declared state equal to what RDS reports.
                    storage_encrypted=True,
                    publicly_accessible=False,
                    db_subnet_group_name=args.subnet_group_name,
                    vpc_security_group_ids=args.replica_security_group_ids,
                    port=s.port,
                    copy_tags_to_snapshot=True,
                    auto_minor_version_upgrade=True,
                    multi_az=s.multi_az,
                    deletion_protection=s.deletion_protection,
                    skip_final_snapshot=True,
                    monitoring_interval=s.monitoring_interval,
                    monitoring_role_arn=monitoring_role_arn,
                    opts=pulumi.ResourceOptions.merge(
                        kept,
                        pulumi.ResourceOptions(
                            depends_on=self._log_groups(
                                f"{name}-replica-{i + 1}", args, s.log_groups_of(replica_id)
                            )
                        ),
                    ),
                )
                for i, replica_id in enumerate(s.replica_identifiers)
            ]
            self.replica_endpoints = pulumi.Output.all(*[r.address for r in replicas])

        self.instance_id = instance.identifier
        self.address = instance.address
        self.target = InstanceTarget(
            instance_id=instance.identifier,
            engine_family=ENGINE_FAMILY,
            resource_arn=instance.arn,
            resource_id=instance.resource_id,
        )

    def _cluster(self, name: str, args: DatabaseArgs) -> None:
        s = args.settings
        aurora = s.topology is Topology.AURORA
        log_groups = self._log_groups(name, args)
        monitoring_role_arn = self._monitoring_role(name, args)
        # Clusters are new with read scaling: none is deployed under an auto-generated identifier, so they get
        # a known one from the start (their log groups need it before create).
        kept = pulumi.ResourceOptions(
            parent=self,
            protect=s.deletion_protection,
            depends_on=log_groups,
            # Once Secrets Manager rotates the master password, the generated one is stale: never set it again.
            ignore_changes=["master_password"] if s.password_rotated else None,
        )
        common = dict(
            cluster_identifier=s.identifier,
            enabled_cloudwatch_logs_exports=list(s.log_exports) or None,
            engine_version=s.engine_version,
            database_name=s.db_name,
            master_username=args.username,
            master_password=args.password,
            db_subnet_group_name=args.subnet_group_name,
            vpc_security_group_ids=args.security_group_ids,
            port=s.port,
            storage_encrypted=True,
            backup_retention_period=s.backup_retention_days,
            copy_tags_to_snapshot=True,
            deletion_protection=s.deletion_protection,
            skip_final_snapshot=s.skip_final_snapshot,
            final_snapshot_identifier=self._final_snapshot(name),
            iam_database_authentication_enabled=True if s.iam_database_authentication else None,
        )
        if aurora:
            cluster = aws.rds.Cluster(
                f"{name}-cluster",
                engine=AURORA_ENGINE,
                serverlessv2_scaling_configuration=None
                if s.serverless is None
                else aws.rds.ClusterServerlessv2ScalingConfigurationArgs(
                    min_capacity=s.serverless.min_acu, max_capacity=s.serverless.max_acu
                ),
                opts=kept,
                **common,  # type: ignore[arg-type]
            )
        else:
            cluster = aws.rds.Cluster(
                f"{name}-cluster",
                engine=ENGINE,
                db_cluster_instance_class=s.instance_class,
                storage_type=MULTI_AZ_CLUSTER_STORAGE_TYPE,
                allocated_storage=s.allocated_storage,
                publicly_accessible=False,
                auto_minor_version_upgrade=True,
                # A Multi-AZ DB cluster takes enhanced monitoring at the cluster level (provider docs of
                # `aws.rds.Cluster.monitoring_interval`: Multi-AZ DB clusters only).
                monitoring_interval=s.monitoring_interval,
                monitoring_role_arn=monitoring_role_arn,
                opts=kept,
                **common,  # type: ignore[arg-type]
            )

        members: list[pulumi.Resource] = []
        if aurora:

            def member(
                role: str, instance_class: str, after: list[pulumi.Resource]
            ) -> aws.rds.ClusterInstance:
                return aws.rds.ClusterInstance(
                    f"{name}-{role}",
                    cluster_identifier=cluster.id,
                    engine=aws.rds.EngineType.AURORA_MYSQL,
                    engine_version=s.engine_version,
                    instance_class=instance_class,
                    publicly_accessible=False,
                    db_subnet_group_name=args.subnet_group_name,
                    copy_tags_to_snapshot=True,
                    # AWS advises against automatic minor upgrades on LTS releases: they may move the cluster
                    # to a non-LTS version (Aurora MySQL release notes, 3.10.0).
                    auto_minor_version_upgrade=False,
                    monitoring_interval=s.monitoring_interval,
                    monitoring_role_arn=monitoring_role_arn,
                    opts=pulumi.ResourceOptions.merge(kept, pulumi.ResourceOptions(depends_on=after)),
                )

            # The first instance created in an Aurora cluster becomes its writer: readers wait for it, so
            # the one named "writer" is the writer (until a failover, as with any Aurora cluster).
            writer = member("writer", s.instance_class, [])
            reader_class = s.reader_instance_class or s.instance_class
            members.append(writer)
            members.extend(member(f"reader-{i + 1}", reader_class, [writer]) for i in range(s.reader_count))
        # A Multi-AZ DB cluster has no ClusterInstance resources: RDS creates its three instances inside the
        # cluster, and the provider's create waits for the cluster to be "available".

        self.cluster_id = cluster.cluster_identifier
        self.address = cluster.endpoint
        self.reader_endpoint = cluster.reader_endpoint
        self.target = ClusterTarget(
            cluster_id=cluster.cluster_identifier,
            engine_family=ENGINE_FAMILY,
            resource_arn=cluster.arn,
            resource_id=cluster.cluster_resource_id,
            members=members,
        )
