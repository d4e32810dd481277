"""Cross-region disaster recovery: the primary's half (a key in the DR region, every secret replicated there)
and the standby's half (a KMS key and the cross-region read replica, promoted on failover).

Vocabulary of DR lives here: the section types (`DrPrimarySettings` / `DrStandbySettings`), `DrState`, and
`PrimaryStack`, the primary's stack outputs as the standby reads them. `__main__.py` opens the
`StackReference`; this module only checks and shapes what it returns.

The standby declares nothing in the primary's region: it runs with the default provider of its own
`aws:region`, and takes the primary's instance and secrets only as ARNs from the primary's stack state.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.credentials import CredentialsSettings
from components.database import DatabaseSettings
from components.proxy import AuthScheme, ClientPasswordAuthType, ProxyAuth
from components.roles import enhanced_monitoring_role_arn
from components.target import EngineFamily, InstanceTarget, PendingTarget
from components.users import Login, UsersSettings

KEY_DELETION_WINDOW_DAYS = 30


class DrState(enum.Enum):
    """The standby's `drState` output."""

    STANDBY = "standby"
    PROMOTED = "promoted"


@dataclass(frozen=True, kw_only=True)
class DrPrimarySettings:
    """`drRegion` set: this stack is a primary that keeps a standby in another region."""

    region: str
    """The standby's region (`drRegion`), never the stack's own `aws:region`."""


@dataclass(frozen=True, kw_only=True)
class DrStandbySettings:
    """`drPrimaryStack` set: this stack is the standby of another stack, in its own `aws:region`."""

    primary_stack: str
    """The primary's fully qualified stack name, `<organization>/<project>/<stack>`."""
    promoted: bool
    """`drPromoted`: the replica has been promoted and the proxy serves it."""
    region: str
    """This stack's own `aws:region`: the primary's `drRegion` must name it."""
    vpc_cidr: str
    """This stack's `vpcCidr`: it must not overlap the primary's."""
    db_user: str
    """The master user (`dbUsername`): the primary must have replicated its secret."""
    probe_user: str = ""
    """`probeUser` when its login has a secret (NONE): the primary must have replicated that secret too."""
    entry_users: tuple[str, ...] = ()
    """The `dbUsers` entries with secrets (NONE): the standby's proxy reads their replicas, so the primary must
    have the same entries (a replica copies the primary's users; no bootstrap runs on a standby)."""

    @property
    def state(self) -> DrState:
        return DrState.PROMOTED if self.promoted else DrState.STANDBY


DrSettings = DrPrimarySettings | DrStandbySettings

PRIMARY_OUTPUTS = ("drRegion", "vpcCidr", "dbArn", "drReplicaSecretArns", "drKeyArn")
"""What the standby reads from the primary's stack state (the primary exports them when `drRegion` is set)."""


def replica_arn(secret_arn: str, region: str) -> str:
    """A secret replica's ARN: the primary secret's ARN with the replica's region ("The ARN for a replicated
    secret is the same as the primary secret except for the Region", Secrets Manager user guide,
    https://docs.aws.amazon.com/secretsmanager/latest/userguide/replicate-secrets.html)."""
    parts = secret_arn.split(":", 6)
    parts[3] = region
    return ":".join(parts)


def replica_secret_arns(
    secret_arns: Mapping[str, pulumi.Input[str]], region: str
) -> pulumi.Output[dict[str, str]]:
    """Database user → the ARN of that user's secret replica in `region` (the `drReplicaSecretArns` output).

    `secret_arns` is every secret the stack's proxy reads, by database user; each of those secrets must be
    declared with `DrReplication.secret_replicas`."""
    users = list(secret_arns)
    return pulumi.Output.all(*[secret_arns[u] for u in users]).apply(
        lambda arns: {u: replica_arn(a, region) for u, a in zip(users, arns, strict=True)}
    )


class PrimaryStackError(pulumi.RunError):
    """The primary's stack outputs do not fit this standby; raised before any resource is registered."""

    def __init__(self, primary_stack: str, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"this DR stack does not fit its primary {primary_stack} "
            f"({len(problems)} problem{'s' if len(problems) != 1 else ''}); nothing was created:\n{lines}"
        )


def check_primary(outputs: Mapping[str, Any], s: DrStandbySettings) -> None:
    """Raise PrimaryStackError unless the primary's outputs describe a primary whose standby this stack can be."""
    missing = [k for k in PRIMARY_OUTPUTS if outputs.get(k) in (None, "", [], {})]
    if missing:
        raise PrimaryStackError(
            s.primary_stack,
            [
                f"drPrimaryStack: {s.primary_stack} exports no {', '.join(missing)}; expected a primary with "
                f"drRegion set (`pulumi config set drRegion {s.region} --stack <primary>`, then "
                "`pulumi up` there) before this stack's first `pulumi up`"
            ],
        )
    problems = []
    if outputs["drRegion"] != s.region:
        problems.append(
            f"aws:region: {s.region!r} is not allowed; expected the primary's drRegion "
            f"{outputs['drRegion']!r} (the region its secrets are replicated to)"
        )
    try:
        theirs = ipaddress.ip_network(str(outputs["vpcCidr"]))
        if theirs.overlaps(ipaddress.ip_network(s.vpc_cidr)):
            problems.append(
                f"vpcCidr: {s.vpc_cidr!r} is not allowed; expected a range that does not overlap the "
                f"primary's vpcCidr {str(theirs)!r} (overlapping VPCs cannot be peered or routed to each other)"
            )
    except ValueError:
        problems.append(
            f"drPrimaryStack: the primary's vpcCidr {outputs['vpcCidr']!r} is not an IPv4 network"
        )
    secrets = outputs["drReplicaSecretArns"]
    if not isinstance(secrets, Mapping) or s.db_user not in secrets:
        have = ", ".join(sorted(secrets)) if isinstance(secrets, Mapping) else repr(secrets)
        problems.append(
            f"dbUsername: {s.db_user!r} is not allowed; expected a user whose secret the primary replicates "
            f"({have})"
        )
    if isinstance(secrets, Mapping):
        for key, user in [("probeUser", s.probe_user), *(("dbUsers", u) for u in s.entry_users)]:
            if user and user not in secrets:
                problems.append(
                    f"{key}: {user!r} is not allowed; expected a user whose secret the primary replicates "
                    f"({', '.join(sorted(secrets))}): a standby's users are the primary's, so give both stacks "
                    "the same dbUsers and probeUser"
                )
    if problems:
        raise PrimaryStackError(s.primary_stack, problems)


@dataclass(frozen=True, kw_only=True)
class PrimaryStack:
    """The primary's outputs as the standby uses them, each available only once `checked` has passed."""

    checked: pulumi.Output[pulumi.Resource]
    """Resolves to the StackReference once `check_primary` passed; fails the run otherwise. The standby's
    root component depends on it, so none of its resources registers before the check."""
    db_arn: pulumi.Output[str]
    secret_arns: pulumi.Output[dict[str, str]]
    """Database user → secret replica ARN in this region."""
    key_arn: pulumi.Output[str]
    """The DR-region key the primary encrypts the secret replicas with."""

    @staticmethod
    def from_reference(ref: pulumi.StackReference, s: DrStandbySettings) -> PrimaryStack:
        """Checks and shapes the outputs of a StackReference that `__main__.py` opened (components never do)."""

        def check(outputs: Mapping[str, Any]) -> Mapping[str, Any]:
            check_primary(outputs, s)
            return outputs

        valid = ref.outputs.apply(check)
        return PrimaryStack(
            checked=valid.apply(lambda _: ref),
            db_arn=valid.apply(lambda o: str(o["dbArn"])),
            secret_arns=valid.apply(lambda o: {str(k): str(v) for k, v in o["drReplicaSecretArns"].items()}),
            key_arn=valid.apply(lambda o: str(o["drKeyArn"])),
        )


# --------------------------------------------------------------------------- primary side


@dataclass(frozen=True, kw_only=True)
class DrReplicationArgs:
    """The primary's DR section."""

    settings: DrPrimarySettings


class DrReplication(pulumi.ComponentResource):
    """The primary's half of DR: an explicit provider for the DR region and a KMS key there (rotation on).

    Every secret of the stack takes `secret_replicas`, so Secrets Manager keeps a copy of it in the DR region
    encrypted with that key; the standby's proxy reads those copies when the primary region is down."""

    region: str
    key_arn: pulumi.Output[str]
    """The DR-region key of the secret replicas (`drKeyArn`)."""
    secret_replicas: list[aws.secretsmanager.SecretReplicaArgs]
    """`replicas=` for every `aws.secretsmanager.Secret` of the stack."""

    def __init__(
        self, name: str, args: DrReplicationArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("rdsproxy:index:DrReplication", name, None, opts)
        s = args.settings
        # Explicit: the stack's default provider stays in the primary's region. It does not read the stack's
        # other `aws:` settings (profile, assumed role): like the default provider without them, it takes
        # credentials from the environment.
        provider = aws.Provider(f"{name}-provider", region=s.region, opts=pulumi.ResourceOptions(parent=self))
        key = aws.kms.Key(
            f"{name}-key",
            description="Encrypts this stack's secret replicas in the DR region",
            enable_key_rotation=True,
            deletion_window_in_days=KEY_DELETION_WINDOW_DAYS,
            opts=pulumi.ResourceOptions(parent=self, provider=provider),
        )
        self.region = s.region
        self.key_arn = key.arn
        self.secret_replicas = [aws.secretsmanager.SecretReplicaArgs(region=s.region, kms_key_id=key.arn)]
        self.register_outputs({"key_arn": self.key_arn})


# --------------------------------------------------------------------------- standby side


@dataclass(frozen=True, kw_only=True)
class StandbyAccess:
    """How a standby's proxy and probe reach the replica's users: the primary's secrets through their
    replicas in this region (a replica copies the primary's users and grants; no bootstrap runs here)."""

    auths: list[ProxyAuth]
    logins: dict[str, Login]
    iam_db_users: list[str]
    master_secret_arn: pulumi.Output[str]


def standby_access(
    primary: PrimaryStack, credentials: CredentialsSettings, users: UsersSettings
) -> StandbyAccess:
    """Auth entries in the primary's order and shape (master first, then every user sorted by name, each with
    the client auth the primary gives it), reading the secret replicas the primary exports by user. Under
    end-to-end IAM (`IAM_AUTH`) users have no secrets: the proxy connects as them with IAM, on the promoted
    instance's own resource id (the Proxy builds that grant from `iam_db_users` and its target)."""

    def replica(user: str) -> pulumi.Output[str]:
        return primary.secret_arns.apply(lambda arns: arns[user])

    with_secrets = users.scheme is AuthScheme.NONE
    master = ProxyAuth(
        secret_arn=replica(credentials.username),
        kms_key_arn=primary.key_arn,
        client_iam_auth=credentials.client_iam_auth,
        client_password_auth_type=credentials.client_password_auth_type,
        description="Master credentials (replica of the primary's secret)",
    )
    entries = [
        ProxyAuth(
            secret_arn=replica(u.name),
            kms_key_arn=primary.key_arn,
            client_iam_auth=u.client_iam_auth,
            client_password_auth_type=u.client_password_auth_type
            or ClientPasswordAuthType.MYSQL_CACHING_SHA2_PASSWORD,
            description=f"Database user {u.name} (replica of the primary's secret)",
        )
        for u in users.all_users
        if with_secrets
    ]
    logins = {
        u.name: Login(
            iam=users.client_uses_iam(u),
            secret_arn=None if users.client_uses_iam(u) else replica(u.name),
            kms_key_arn=primary.key_arn,
        )
        for u in users.all_users
    }
    return StandbyAccess(
        auths=[master, *entries],
        logins=logins,
        iam_db_users=[] if with_secrets else [u.name for u in users.all_users],
        master_secret_arn=master.secret_arn,  # type: ignore[arg-type]
    )


@dataclass(frozen=True, kw_only=True)
class StandbyDatabaseArgs:
    """Where the replica lives, what it replicates, and its sections."""

    subnet_group_name: pulumi.Input[str]
    security_group_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    source_db_arn: pulumi.Input[str]
    """The primary instance's ARN: a cross-region replica names its source by ARN, never by identifier
    (pulumi-aws `rds.Instance.replicate_source_db`)."""
    settings: DatabaseSettings
    dr: DrStandbySettings
    kms_key_arn: pulumi.Input[str] | None = None
    """The stack key (components/encryption.py): the exported logs' log groups use it."""
    account_arn: pulumi.Input[str] | None = None
    """Any ARN of this stack's account (its partition names the AWS-managed monitoring policy)."""


class StandbyDatabase(pulumi.ComponentResource):
    """A KMS key and the cross-region read replica of the primary instance; promoted, the same instance.

    The replica has no user name, password or database name of its own (it copies the primary's); storage
    size and engine version follow the primary. `drPromoted: true` drops `replicate_source_db` on the same
    resource (same URN): the provider promotes the instance in place, and it keeps its data.
    """

    instance_id: pulumi.Output[str]
    """The DB instance identifier (the failover command's `dbInstanceId`; the `ReplicaLag` dimension)."""
    address: pulumi.Output[str]
    arn: pulumi.Output[str]
    key_arn: pulumi.Output[str]
    replicating: bool
    """True while the instance is a replica: a replica-lag alarm applies only then."""
    instance: InstanceTarget
    """The instance itself, replica or promoted (what monitoring watches)."""
    db_name: str
    """The primary's database, which the replica copies."""
    port: int
    target: InstanceTarget | PendingTarget
    """What the proxy registers: nothing while a replica (RDS Proxy cannot target one), the instance once
    promoted, with its own resource id (db-…, kept through promotion) for end-to-end IAM."""

    def __init__(
        self, name: str, args: StandbyDatabaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("rdsproxy:index:StandbyDatabase", name, None, opts)
        s, dr = args.settings, args.dr
        child = pulumi.ResourceOptions(parent=self)

        key = aws.kms.Key(
            f"{name}-key",
            description="Encrypts the cross-region read replica (a replica of an encrypted instance needs a key "
            "in its own region)",
            enable_key_rotation=True,
            deletion_window_in_days=KEY_DELETION_WINDOW_DAYS,
            opts=child,
        )

        # AWS refuses a final snapshot of a read replica (DeleteDBInstance, FinalDBSnapshotIdentifier: "Can't
        # be specified when deleting a read replica"); once promoted, the stack's own setting applies.
        skip_final_snapshot = s.skip_final_snapshot or not dr.promoted
        final_snapshot: pulumi.Input[str] | None = None
        if not skip_final_snapshot:
            suffix = random.RandomId(f"{name}-final-snapshot-suffix", byte_length=4, opts=child)
            final_snapshot = suffix.hex.apply(lambda h: f"{s.final_snapshot_prefix}-{h}")

        # The security controls of the primary's instance (issue 14), on the replica too: its exported logs'
        # groups first (retention, the stack key), enhanced monitoring, its own parameter group (a cross-region
        # replica may name one: CreateDBInstanceReadReplica, DBParameterGroupName).
        log_groups = [
            aws.cloudwatch.LogGroup(
                f"{name}-{log}-logs",
                name=group,
                retention_in_days=s.log_retention_days,
                kms_key_id=args.kms_key_arn,
                opts=child,
            )
            for log, group in zip(s.log_exports, s.log_groups_of(s.identifier), strict=True)
        ]
        monitoring_role_arn = (
            enhanced_monitoring_role_arn(name, args.account_arn, child) if s.monitoring_interval else None
        )
        parameters = aws.rds.ParameterGroup(
            f"{name}-params",
            family=s.parameter_group_family,
            description="MySQL parameters of the RDS Proxy stack's DR replica",
            opts=child,
        )

        instance = aws.rds.Instance(
            f"{name}-instance",
            identifier=s.identifier,
            replicate_source_db=None if dr.promoted else args.source_db_arn,
            instance_class=s.instance_class,
            storage_type="gp3",
            storage_encrypted=True,
            kms_key_id=key.arn,
            publicly_accessible=False,
            db_subnet_group_name=args.subnet_group_name,
            vpc_security_group_ids=args.security_group_ids,
            port=s.port,
            backup_retention_period=s.backup_retention_days,
            copy_tags_to_snapshot=True,
            auto_minor_version_upgrade=True,
            multi_az=s.multi_az,
            deletion_protection=s.deletion_protection,
            skip_final_snapshot=skip_final_snapshot,
            final_snapshot_identifier=final_snapshot,
            parameter_group_name=parameters.name,
            # Explicit on the replica: CreateDBInstanceReadReplica takes EnableIAMDatabaseAuthentication as a
            # parameter of its own, and once promoted the proxy logs in with IAM under IAM_AUTH (RDS user
            # guide, "Enabling and disabling IAM database authentication").
            iam_database_authentication_enabled=True if s.iam_database_authentication else None,
            enabled_cloudwatch_logs_exports=list(s.log_exports) or None,
            monitoring_interval=s.monitoring_interval,
            monitoring_role_arn=monitoring_role_arn,
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=s.deletion_protection,
                depends_on=log_groups,
                ignore_changes=["identifier"],
            ),
        )

        self.instance_id = instance.identifier
        self.address = instance.address
        self.arn = instance.arn
        self.key_arn = key.arn
        self.replicating = not dr.promoted
        self.db_name = s.db_name
        self.port = s.port
        self.instance = InstanceTarget(
            instance_id=instance.identifier,
            engine_family=EngineFamily.MYSQL,
            resource_arn=instance.arn,
            resource_id=instance.resource_id,
        )
        self.target: InstanceTarget | PendingTarget = (
            self.instance if dr.promoted else PendingTarget(engine_family=EngineFamily.MYSQL)
        )
        self.register_outputs({"instance_id": self.instance_id, "address": self.address})
