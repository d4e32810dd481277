"""What a proxy can front: one DB instance or one DB cluster (compare CDK's `ProxyTarget.fromInstance` /
`fromCluster`). The database side builds it, so the engine family and what to wait for come from there."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi


class EngineFamily(enum.Enum):
    """RDS Proxy's `EngineFamily` (the proxy's wire protocol)."""

    MYSQL = "MYSQL"


@dataclass(frozen=True, kw_only=True)
class InstanceTarget:
    """An RDS DB instance; the proxy pools connections to it (the writer only)."""

    instance_id: pulumi.Input[str]
    """The DB instance identifier (`db_instance_identifier` of the proxy target)."""
    engine_family: EngineFamily
    resource_arn: pulumi.Input[str]
    """The instance's ARN."""
    resource_id: pulumi.Input[str]
    """`DbiResourceId` (db-…), what `rds-db:connect` names for end-to-end IAM."""


@dataclass(frozen=True, kw_only=True)
class ClusterTarget:
    """An Aurora or Multi-AZ DB cluster; the proxy registers the cluster and routes to its members."""

    cluster_id: pulumi.Input[str]
    """The DB cluster identifier (`db_cluster_identifier` of the proxy target)."""
    engine_family: EngineFamily
    resource_arn: pulumi.Input[str]
    resource_id: pulumi.Input[str]
    """`DbClusterResourceId` (cluster-…)."""
    members: Sequence[pulumi.Resource] = field(default_factory=tuple)
    """Instances the registration must wait for (the cluster resource is ready before its instances are)."""


DatabaseTarget = InstanceTarget | ClusterTarget


@dataclass(frozen=True, kw_only=True)
class PendingTarget:
    """A database the proxy will serve but must not register yet: a cross-region read replica, which RDS Proxy
    cannot target (RDS Proxy limitations). The proxy, its role and its default target group exist; no
    `ProxyTarget` is declared until the database side hands over an `InstanceTarget`."""

    engine_family: EngineFamily


ProxyTargetChoice = DatabaseTarget | PendingTarget
"""What a proxy is given: a database to register, or (a standby's proxy) none yet."""
