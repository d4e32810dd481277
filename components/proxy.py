"""Proxy: RDS Proxy in front of one database target, with its role, its pool and its log group.

Vocabulary of the proxy (pool profiles, `PoolSettings`, `IamAuth`, auth entries, `ProxySettings`) lives
here; `settings.py` parses config into it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.iam import assume_role_policy, db_user_arn, secret_read_policy
from components.target import ClusterTarget, InstanceTarget, ProxyTargetChoice


class PoolProfile(enum.Enum):
    """Named pool presets; explicit pool keys override single values."""

    RECIPE = "recipe"
    EVENT_DRIVEN = "event-driven"
    STEADY = "steady"


@dataclass(frozen=True)
class PoolSettings:
    """What RDS Proxy's pool does with client and database connections."""

    idle_client_timeout: int
    max_connections_percent: int
    max_idle_connections_percent: int
    connection_borrow_timeout: int


# The only place the profile numbers are written (tests/test_config.py checks Pulumi.yaml and the README
# describe these same numbers).
PROFILES: Mapping[PoolProfile, PoolSettings] = {
    # The AWS recipe's tuned values.
    PoolProfile.RECIPE: PoolSettings(900, 75, 25, 120),
    # Bursty, short-lived clients (Lambda): drop idle clients early, give idle DB connections back
    # after a burst, and fail fast rather than queue when the pool is exhausted.
    PoolProfile.EVENT_DRIVEN: PoolSettings(300, 90, 10, 30),
    # Long-lived clients: the recipe's first settings, RDS Proxy's own defaults.
    PoolProfile.STEADY: PoolSettings(1800, 100, 50, 120),
}


class IamAuth(enum.Enum):
    """Whether clients of the proxy must present IAM auth tokens (RDS Proxy's `IAMAuth`)."""

    REQUIRED = "REQUIRED"
    DISABLED = "DISABLED"


class ClientPasswordAuthType(enum.Enum):
    """How clients log in to the proxy with a password (`ClientPasswordAuthType`). AWS's default for RDS for
    MySQL is MYSQL_CACHING_SHA2_PASSWORD (RDS API reference, UserAuthConfig); we always set it explicitly,
    because the provider does not notice a change of this field alone when it is left to the default."""

    MYSQL_CACHING_SHA2_PASSWORD = "MYSQL_CACHING_SHA2_PASSWORD"
    MYSQL_NATIVE_PASSWORD = "MYSQL_NATIVE_PASSWORD"


class AuthScheme(enum.Enum):
    """How the proxy logs in to the database by default (`DefaultAuthScheme`, RDS API reference, DBProxy).

    NONE: with the secret of each auth entry. IAM_AUTH: end-to-end IAM, the proxy asks RDS for an IAM token
    as the client's user (RDS user guide, "Configuring IAM authentication for RDS Proxy", end-to-end IAM:
    https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-proxy-iam-setup.html)."""

    NONE = "NONE"
    IAM_AUTH = "IAM_AUTH"


SESSION_PINNING_FILTERS = ("EXCLUDE_VARIABLE_SETS",)


@dataclass(frozen=True, kw_only=True)
class ProxyAuth:
    """One database user the proxy logs in as: its secret, and how clients of the proxy authenticate."""

    secret_arn: pulumi.Input[str]
    client_iam_auth: IamAuth
    client_password_auth_type: ClientPasswordAuthType
    description: str
    kms_key_arn: pulumi.Input[str] | None = None
    """Customer-managed key of the secret, if any: the proxy role may decrypt with it via Secrets Manager."""


@dataclass(frozen=True, kw_only=True)
class ProxySettings:
    """The proxy's section of the stack config."""

    name: str
    """Valid RDS identifier: lowercase letter first, letters/digits/hyphens, at most 63."""
    pool_profile: PoolProfile
    pool: PoolSettings
    init_query: str | None
    session_pinning_filters: tuple[str, ...]
    require_tls: bool
    debug_logging: bool
    iam_auth: IamAuth
    """`iamAuth`: whether clients must present IAM tokens (the default of every auth entry)."""
    log_retention_days: int
    reader_endpoint: bool = False
    """`proxyReaderEndpoint`: add a READ_ONLY endpoint (only for cluster targets; settings.py checks)."""
    default_auth_scheme: AuthScheme = AuthScheme.NONE
    """`proxyDefaultAuthScheme`: how the proxy logs in to the database."""

    @property
    def log_group_name(self) -> str:
        return f"/aws/rds/proxy/{self.name}"


@dataclass(frozen=True, kw_only=True)
class ProxyArgs:
    """What the proxy needs from its neighbours, and its own section."""

    subnet_ids: pulumi.Input[Sequence[str]]
    security_group_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    target: ProxyTargetChoice
    """Only the target registration waits for the database: the proxy itself builds while RDS does. A
    `PendingTarget` (a standby's replica) registers nothing: no `ProxyTarget` is declared."""
    auths: Sequence[ProxyAuth]
    settings: ProxySettings
    iam_db_users: Sequence[str] = ()
    """Database users the proxy logs in as with IAM (IAM_AUTH): its role may `rds-db:connect` as exactly
    these, on the target's resource id."""
    kms_key_arn: pulumi.Input[str] | None = None
    """Customer-managed key of the proxy's log group (None: CloudWatch Logs' own encryption)."""
    role_moved_from: pulumi.Resource | None = None
    """The component that held the proxy's role and policy before the proxy owned its auth (Credentials, in
    stacks deployed before that change): aliases keep those deployed resources instead of replacing them."""


class Proxy(pulumi.ComponentResource):
    """RDS Proxy: TLS-only by default, auth entries and the role that reads exactly their secrets, its own log
    group, pool from settings, and the database registered as its target (none for a `PendingTarget`)."""

    proxy_name: pulumi.Output[str]
    """The proxy's name (the CloudWatch `ProxyName` dimension)."""
    arn: pulumi.Output[str]
    """The proxy's ARN (its last field is the prx-… resource id used by rds-db:connect)."""
    endpoint: pulumi.Output[str]
    """Hostname clients connect to."""
    role_arn: pulumi.Output[str]
    """The proxy's role (trusted by rds.amazonaws.com)."""
    reader_endpoint: pulumi.Output[str] | None
    """Hostname of the READ_ONLY proxy endpoint (only with `reader_endpoint`)."""

    def __init__(self, name: str, args: ProxyArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rdsproxy:index:Proxy", name, None, opts)
        s = args.settings
        child = pulumi.ResourceOptions(parent=self)

        def moved(old_name: str) -> pulumi.ResourceOptions:
            if args.role_moved_from is None:
                return child
            old = args.role_moved_from
            alias = pulumi.Alias(name=f"{old.pulumi_resource_name}-{old_name}", parent=old)
            return pulumi.ResourceOptions(parent=self, aliases=[alias])

        role = aws.iam.Role(
            f"{name}-role",
            description="Lets RDS Proxy read the database credentials secret",
            assume_role_policy=pulumi.Output.json_dumps(assume_role_policy("rds.amazonaws.com")),
            opts=moved("proxy-role"),
        )
        secret_arns = pulumi.Output.all(*[a.secret_arn for a in args.auths])
        key_arns = pulumi.Output.all(*[a.kms_key_arn for a in args.auths])
        policy = aws.iam.RolePolicy(
            f"{name}-secret-access",
            role=role.id,
            policy=pulumi.Output.json_dumps(
                pulumi.Output.all(secret_arns, key_arns).apply(lambda a: secret_read_policy(a[0], a[1]))
            ),
            opts=moved("proxy-secret-access"),
        )
        target_ready: list[pulumi.Resource] = []
        iam_users = list(args.iam_db_users) if s.default_auth_scheme is AuthScheme.IAM_AUTH else []
        # A standby's pending target has no database to connect to yet: the grant comes with promotion.
        if iam_users and isinstance(args.target, InstanceTarget | ClusterTarget):
            # dbuser:<DbiResourceId>/<user>, from the database's own resource id, never a wildcard (RDS user
            # guide, "Creating an IAM policy for end-to-end IAM authentication",
            # https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-proxy-iam-setup.html). A policy of
            # its own: the resource id exists only once the database does, and the proxy must not wait for
            # that; the target registration, which waits for the database anyway, waits for this too.
            target_ready.append(
                aws.iam.RolePolicy(
                    f"{name}-db-connect",
                    role=role.id,
                    policy=pulumi.Output.json_dumps(
                        pulumi.Output.all(args.target.resource_arn, args.target.resource_id).apply(
                            lambda a: {
                                "Version": "2012-10-17",
                                "Statement": [
                                    {
                                        "Sid": "ConnectToDatabaseAsUsers",
                                        "Effect": "Allow",
                                        "Action": "rds-db:connect",
                                        "Resource": [
                                            db_user_arn(a[0], u, resource_id=a[1]) for u in iam_users
                                        ],
                                    }
                                ],
                            }
                        )
                    ),
                    opts=child,
                )
            )
        # Created first so the proxy never writes to an auto-created group that keeps logs forever.
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=s.log_group_name,
            retention_in_days=s.log_retention_days,
            kms_key_id=args.kms_key_arn,
            opts=child,
        )
        proxy = aws.rds.Proxy(
            f"{name}-proxy",
            name=s.name,
            engine_family=args.target.engine_family.value,
            require_tls=s.require_tls,
            # Always explicit: the provider computes this field, so leaving it out after IAM_AUTH would not
            # bring the proxy back to NONE.
            default_auth_scheme=s.default_auth_scheme.value,
            idle_client_timeout=s.pool.idle_client_timeout,
            debug_logging=s.debug_logging,
            # The proxy takes the role only once its policy is attached: no startup without access.
            role_arn=pulumi.Output.all(role.arn, policy.id).apply(lambda a: a[0]),
            vpc_subnet_ids=args.subnet_ids,
            vpc_security_group_ids=args.security_group_ids,
            # The provider requires `auths` only when the scheme is NONE ("Required when default_auth_scheme is
            # NONE or unspecified", pulumi_aws rds.Proxy). Under IAM_AUTH the master's entry stays: AWS's
            # migration keeps the secret permission beside rds-db:connect while the proxy switches
            # (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-proxy-iam-migration.html).
            auths=[
                aws.rds.ProxyAuthArgs(
                    auth_scheme="SECRETS",
                    secret_arn=a.secret_arn,
                    iam_auth=a.client_iam_auth.value,
                    client_password_auth_type=a.client_password_auth_type.value,
                    description=a.description,
                )
                for a in args.auths
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[log_group]),
        )
        # The provider orphans these when the proxy is replaced unless they are replaced with it.
        with_proxy = pulumi.ResourceOptions(parent=self, replace_with=[proxy])
        target_group = aws.rds.ProxyDefaultTargetGroup(
            f"{name}-default-target-group",
            db_proxy_name=proxy.name,
            connection_pool_config=aws.rds.ProxyDefaultTargetGroupConnectionPoolConfigArgs(
                max_connections_percent=s.pool.max_connections_percent,
                max_idle_connections_percent=s.pool.max_idle_connections_percent,
                connection_borrow_timeout=s.pool.connection_borrow_timeout,
                init_query=s.init_query,
                session_pinning_filters=list(s.session_pinning_filters) or None,
            ),
            opts=with_proxy,
        )
        target = args.target
        if isinstance(target, InstanceTarget):
            aws.rds.ProxyTarget(
                f"{name}-target",
                db_proxy_name=proxy.name,
                target_group_name=target_group.name,
                db_instance_identifier=target.instance_id,
                opts=pulumi.ResourceOptions.merge(
                    with_proxy, pulumi.ResourceOptions(depends_on=target_ready)
                ),
            )
        elif isinstance(target, ClusterTarget):
            # A cluster is "created" before its instances are available; registering it earlier leaves the
            # target UNAVAILABLE until they are, so wait for the members too.
            aws.rds.ProxyTarget(
                f"{name}-target",
                db_proxy_name=proxy.name,
                target_group_name=target_group.name,
                db_cluster_identifier=target.cluster_id,
                opts=pulumi.ResourceOptions.merge(
                    with_proxy, pulumi.ResourceOptions(depends_on=[*target.members, *target_ready])
                ),
            )
        # A PendingTarget (a standby's read replica) registers nothing: the proxy and its default target
        # group stand by, and the target is declared once the database side hands over an InstanceTarget.

        self.reader_endpoint = None
        if s.reader_endpoint:
            # Routes to the cluster's readers ("Using reader endpoints with Aurora clusters" in the Aurora
            # user guide, "Proxy endpoints for Multi-AZ DB clusters" in the RDS user guide; an instance
            # target fails every request, so settings.py refuses it). Same subnets and group as the proxy,
            # so the clients that may reach the proxy may reach it, and nothing else. Billed like an
            # interface VPC endpoint.
            reader = aws.rds.ProxyEndpoint(
                f"{name}-reader-endpoint",
                db_proxy_name=proxy.name,
                db_proxy_endpoint_name=f"{s.name}-reader",
                target_role="READ_ONLY",
                vpc_subnet_ids=args.subnet_ids,
                vpc_security_group_ids=args.security_group_ids,
                opts=with_proxy,
            )
            self.reader_endpoint = reader.endpoint

        self.proxy_name = proxy.name
        self.arn = proxy.arn
        self.endpoint = proxy.endpoint
        self.role_arn = role.arn
        outputs = {
            "proxy_name": self.proxy_name,
            "arn": self.arn,
            "endpoint": self.endpoint,
            "role_arn": self.role_arn,
        }
        if self.reader_endpoint is not None:
            outputs["reader_endpoint"] = self.reader_endpoint
        self.register_outputs(outputs)
