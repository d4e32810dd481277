"""Proxy: RDS Proxy in front of one database instance, with its pool and its log group."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.settings import IamAuth, PoolSettings


@dataclass(frozen=True, kw_only=True)
class ProxyArgs:
    """What the proxy needs from its neighbours, and its tuning."""

    proxy_name: str
    """Valid RDS identifier: lowercase letter first, letters/digits/hyphens, at most 63."""
    subnet_ids: pulumi.Input[Sequence[str]]
    security_group_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    secret_arn: pulumi.Input[str]
    role_arn: pulumi.Input[str]
    db_instance_id: pulumi.Input[str]
    """Only the target registration waits for this: the proxy itself builds while RDS does."""
    pool: PoolSettings
    iam_auth: IamAuth = IamAuth.REQUIRED
    require_tls: bool = True
    debug_logging: bool = False
    init_query: str | None = None
    session_pinning_filters: Sequence[str] = ()
    log_retention_days: int = 30


class Proxy(pulumi.ComponentResource):
    """RDS Proxy (MySQL): TLS-only by default, secret-backed auth, its own log group, pool from settings."""

    proxy_name: pulumi.Output[str]
    """The proxy's name (the CloudWatch `ProxyName` dimension)."""
    arn: pulumi.Output[str]
    """The proxy's ARN (its last field is the prx-… resource id used by rds-db:connect)."""
    endpoint: pulumi.Output[str]
    """Hostname clients connect to."""

    def __init__(self, name: str, args: ProxyArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rdsproxy:index:Proxy", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        # Created first so the proxy never writes to an auto-created group that keeps logs forever.
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/aws/rds/proxy/{args.proxy_name}",
            retention_in_days=args.log_retention_days,
            opts=child,
        )
        proxy = aws.rds.Proxy(
            f"{name}-proxy",
            name=args.proxy_name,
            engine_family="MYSQL",
            require_tls=args.require_tls,
            idle_client_timeout=args.pool.idle_client_timeout,
            debug_logging=args.debug_logging,
            role_arn=args.role_arn,
            vpc_subnet_ids=args.subnet_ids,
            vpc_security_group_ids=args.security_group_ids,
            auths=[
                aws.rds.ProxyAuthArgs(
                    auth_scheme="SECRETS",
                    secret_arn=args.secret_arn,
                    iam_auth=args.iam_auth.value,
                    description="Master credentials",
                )
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[log_group]),
        )
        # The provider orphans these when the proxy is replaced unless they are replaced with it.
        with_proxy = pulumi.ResourceOptions(parent=self, replace_with=[proxy])
        target_group = aws.rds.ProxyDefaultTargetGroup(
            f"{name}-default-target-group",
            db_proxy_name=proxy.name,
            connection_pool_config=aws.rds.ProxyDefaultTargetGroupConnectionPoolConfigArgs(
                max_connections_percent=args.pool.max_connections_percent,
                max_idle_connections_percent=args.pool.max_idle_connections_percent,
                connection_borrow_timeout=args.pool.connection_borrow_timeout,
                init_query=args.init_query,
                session_pinning_filters=list(args.session_pinning_filters) or None,
            ),
            opts=with_proxy,
        )
        aws.rds.ProxyTarget(
            f"{name}-target",
            db_proxy_name=proxy.name,
            target_group_name=target_group.name,
            db_instance_identifier=args.db_instance_id,
            opts=with_proxy,
        )

        self.proxy_name = proxy.name
        self.arn = proxy.arn
        self.endpoint = proxy.endpoint
        self.register_outputs({"proxy_name": self.proxy_name, "arn": self.arn, "endpoint": self.endpoint})
