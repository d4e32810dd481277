"""RDS: instances, clusters and proxies (Security Hub RDS.*)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import (
    PRODUCTION_SCHEMA,
    Rule,
    RuleContext,
    as_bool,
    as_number,
    fmt_num,
    is_unknown,
    security_hub_url,
)

MIN_BACKUP_RETENTION_DAYS = 7
"""RDS.11: Security Hub's default ``minimumBackupRetentionPeriod``."""


RDS_INSTANCE = "aws:rds/instance:Instance"
RDS_CLUSTER = "aws:rds/cluster:Cluster"
RDS_CLUSTER_INSTANCE = "aws:rds/clusterInstance:ClusterInstance"
RDS_PROXY = "aws:rds/proxy:Proxy"


def _check_rds_not_public(props: Mapping[str, Any], ctx: RuleContext) -> list[str]:
    # Absent: the provider sends publicly_accessible=false (its schema default).
    if as_bool(props.get("publiclyAccessible")) is True:
        return ["publiclyAccessible is true; the database must only be reachable from inside the VPC"]
    return []


RDS_2 = Rule(
    id="RDS.2",
    name="rds-not-public",
    description="RDS DB instances (read replicas included), clusters and cluster instances must not be "
    "publicly accessible.",
    resource_types=(RDS_INSTANCE, RDS_CLUSTER, RDS_CLUSTER_INSTANCE),
    check=_check_rds_not_public,
    severity="critical",
    remediation="Set publicly_accessible=False and place the database in private subnets.",
    url=security_hub_url("rds", 2),
)


def _check_rds_encrypted(props: Mapping[str, Any], ctx: RuleContext) -> list[str]:
    if props.get("replicateSourceDb") is not None:
        return []  # a replica inherits the source's encryption
    raw = props.get("storageEncrypted")
    if is_unknown(raw):
        return []
    if as_bool(raw) is not True:
        return [
            "storageEncrypted is not true; storage (and its snapshots and backups) must be encrypted at rest"
        ]
    return []


RDS_3 = Rule(
    id="RDS.3",
    name="rds-storage-encrypted",
    description="RDS DB instances and clusters must have storage encryption at rest enabled.",
    resource_types=(RDS_INSTANCE, RDS_CLUSTER),
    check=_check_rds_encrypted,
    severity="medium",
    remediation="Set storage_encrypted=True (optionally with a customer managed kms_key_id).",
    url=security_hub_url("rds", 3),
)


def _check_rds_backups(props: Mapping[str, Any], ctx: RuleContext) -> list[str]:
    if props.get("replicateSourceDb") is not None:
        return []  # backups of a read replica are configured on the source
    raw = props.get("backupRetentionPeriod")
    if is_unknown(raw):
        return []
    days = as_number(raw)
    if days is None:
        return [
            "backupRetentionPeriod is not set (AWS then keeps 1 day); "
            f"set at least {MIN_BACKUP_RETENTION_DAYS} days"
        ]
    if days < MIN_BACKUP_RETENTION_DAYS:
        return [
            f"backupRetentionPeriod is {fmt_num(days)} days; "
            f"at least {MIN_BACKUP_RETENTION_DAYS} are required"
        ]
    return []


RDS_11 = Rule(
    id="RDS.11",
    name="rds-backup-retention",
    description=f"RDS DB instances and clusters must keep automated backups for at least "
    f"{MIN_BACKUP_RETENTION_DAYS} days.",
    resource_types=(RDS_INSTANCE, RDS_CLUSTER),
    check=_check_rds_backups,
    severity="medium",
    remediation=f"Set backup_retention_period to {MIN_BACKUP_RETENTION_DAYS} or more.",
    url=security_hub_url("rds", 11),
)


def _check_rds_multi_az(props: Mapping[str, Any], ctx: RuleContext) -> list[str]:
    raw = props.get("multiAz")
    if is_unknown(raw):
        return []
    if as_bool(raw) is not True:
        return [
            f"multiAz is not true on production stack {ctx.stack!r}; "
            "production needs a standby in a second AZ"
        ]
    return []


RDS_5 = Rule(
    id="RDS.5",
    name="rds-multi-az-prod",
    description="RDS DB instances on production stacks must be Multi-AZ.",
    resource_types=(RDS_INSTANCE,),
    check=_check_rds_multi_az,
    severity="medium",
    production_only=True,
    config_schema=PRODUCTION_SCHEMA,
    remediation="Set multi_az=True (config dbMultiAz: true) on production stacks.",
    url=security_hub_url("rds", 5),
)


def _check_rds_deletion_protection(props: Mapping[str, Any], ctx: RuleContext) -> list[str]:
    raw = props.get("deletionProtection")
    if is_unknown(raw):
        return []
    if as_bool(raw) is not True:
        return [f"deletionProtection is not true on production stack {ctx.stack!r}"]
    return []


RDS_8 = Rule(
    id="RDS.8",
    name="rds-deletion-protection-prod",
    description="RDS DB instances (and clusters, Security Hub RDS.7) on production stacks must have "
    "deletion protection enabled.",
    resource_types=(RDS_INSTANCE, RDS_CLUSTER),
    check=_check_rds_deletion_protection,
    severity="low",
    production_only=True,
    config_schema=PRODUCTION_SCHEMA,
    remediation="Set deletion_protection=True (config dbDeletionProtection: true) on production stacks.",
    url=security_hub_url("rds", 8),
)


def _check_proxy_tls(props: Mapping[str, Any], ctx: RuleContext) -> list[str]:
    raw = props.get("requireTls")
    if is_unknown(raw):
        return []
    if as_bool(raw) is not True:
        return ["requireTls is not true; the proxy must refuse connections that don't use TLS"]
    return []


def _check_enhanced_monitoring(props: Mapping[str, Any], ctx: RuleContext) -> list[str]:
    engine = props.get("engine")
    if isinstance(engine, str) and engine.startswith("aurora") and "instanceClass" not in props:
        # An Aurora cluster: enhanced monitoring is set on each ClusterInstance, checked there. A Multi-AZ DB
        # cluster (engine mysql) takes it on the cluster itself (provider docs of `aws.rds.Cluster`
        # `monitoring_interval`): its three instances are no resources of the stack.
        return []
    raw = props.get("monitoringInterval")
    if is_unknown(raw):
        return []
    interval = as_number(raw)
    if not interval:
        return [
            "monitoringInterval is 0 or not set; turn on enhanced monitoring (config dbMonitoringInterval)"
        ]
    role = props.get("monitoringRoleArn")
    if not role and not is_unknown(role):
        return ["monitoringRoleArn is not set; enhanced monitoring needs a role RDS can assume"]
    return []


RDS_6 = Rule(
    id="RDS.6",
    name="rds-enhanced-monitoring",
    description="RDS DB instances, Aurora cluster instances and Multi-AZ DB clusters must have enhanced "
    "monitoring on (any interval of 1-60 seconds; Security Hub's default parameter is also any interval).",
    resource_types=(RDS_INSTANCE, RDS_CLUSTER, RDS_CLUSTER_INSTANCE),
    check=_check_enhanced_monitoring,
    severity="low",
    remediation="Set monitoring_interval and monitoring_role_arn (config dbMonitoringInterval).",
    url=security_hub_url("rds", 6),
)

DEFAULT_REQUIRED_LOG_EXPORTS = ("error", "slowquery")
"""What our stack exports by default. Security Hub's RDS.9 asks MySQL for audit, error, general and
slowquery; we require error and slowquery (audit needs an option group this stack doesn't create, general
logs every statement); the setting raises the bar."""


def _check_log_exports(props: Mapping[str, Any], ctx: RuleContext) -> list[str]:
    raw = props.get("enabledCloudwatchLogsExports")
    if is_unknown(raw):
        return []
    configured = ctx.config.get("requiredLogs")
    required = list(configured) if isinstance(configured, list) else list(DEFAULT_REQUIRED_LOG_EXPORTS)
    exported = {e for e in (raw if isinstance(raw, list) else []) if isinstance(e, str)}
    missing = [log for log in required if log not in exported]
    if missing:
        return [f"enabledCloudwatchLogsExports lacks {', '.join(missing)}; export them to CloudWatch Logs"]
    return []


RDS_9 = Rule(
    id="RDS.9",
    name="rds-log-exports",
    description="RDS DB instances and clusters must publish their logs to CloudWatch Logs (by default error "
    "and slowquery; Security Hub also asks for audit and general).",
    resource_types=(RDS_INSTANCE, RDS_CLUSTER),
    check=_check_log_exports,
    severity="medium",
    config_schema={
        "requiredLogs": {
            "type": "array",
            "items": {"type": "string"},
            "default": list(DEFAULT_REQUIRED_LOG_EXPORTS),
            "description": "Logs every instance and cluster must export.",
        }
    },
    remediation="Set enabled_cloudwatch_logs_exports (config dbLogExports).",
    url=security_hub_url("rds", 9),
)


RDS_43 = Rule(
    id="RDS.43",
    name="rds-proxy-require-tls",
    description="RDS proxies must require TLS for client connections.",
    resource_types=(RDS_PROXY,),
    check=_check_proxy_tls,
    severity="medium",
    remediation="Set require_tls=True (config requireTls: true).",
    url=security_hub_url("rds", 43),
)
