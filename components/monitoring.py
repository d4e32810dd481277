"""Monitoring: alarms on what goes wrong behind a proxy, delivered through an encrypted topic, and a dashboard.

Vocabulary of monitoring (`MonitoringSettings`, the alarm constants, the topic key policy and the dashboard
body) lives here. AWS facts this module relies on, with their sources:

* RDS Proxy metrics (namespace `AWS/RDS`, dimension sets, statistics, and that `DatabaseConnectionsBorrowLatency`
  and `QueryDatabaseResponseLatency` are in **microseconds**): RDS user guide, "Monitoring RDS Proxy metrics
  with Amazon CloudWatch" (docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-proxy.monitoring.html). The same
  page says some proxy metrics appear only after the first successful connection, and that
  `AvailabilityPercentage` exists only with the `ProxyName`, `TargetGroup`, `TargetRole` dimension set.
* Alarms on a Metrics Insights query: CloudWatch user guide, "Create a CloudWatch alarm based on a Metrics
  Insights query" (the query must return one time series); pulumi-aws `MetricAlarmMetricQueryArgs.expression`
  is documented as "A Metrics Insights query or a metric math expression" (pulumi_aws/cloudwatch/_inputs.py).
* Event sources that publish to an encrypted SNS topic need a customer-managed key whose policy grants the
  source's service principal `kms:GenerateDataKey*` and `kms:Decrypt`; the table lists Amazon CloudWatch
  (`cloudwatch.amazonaws.com`) and Amazon RDS (`events.rds.amazonaws.com`), and step 3 recommends
  `aws:SourceAccount` / `aws:SourceArn` conditions: SNS developer guide, "Managing Amazon SNS encryption keys",
  section "Enable compatibility between event sources from AWS services and encrypted topics". With the
  AWS-managed `alias/aws/sns` key (whose policy nobody can edit) CloudWatch's delivery fails ("CloudWatch
  Alarms does not have authorization to access the SNS topic encryption key": AWS re:Post knowledge center,
  "cloudwatch-configure-alarm-sns"). That the source CloudWatch presents is the alarm's ARN shows in its
  delivery errors ("Resource: arn:aws:cloudwatch:<region>:<account>:alarm:<name> is not authorized to perform:
  SNS:Publish": re:Post "cloudwatch-receive-sns-for-alarm-trigger"); AWS's Modern Data Architecture Accelerator
  conditions the same KMS grant on alarm ARNs (`grantCloudWatchAlarmsTopicAccess`).
* RDS Proxy is a source RDS event subscriptions accept (`source_type` `db-proxy`): RDS user guide, "Overview of
  Amazon RDS event notification"; pulumi-aws `rds.EventSubscription.source_type`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.iam import VERSION, sns_publisher_statements
from components.target import ClusterTarget, DatabaseTarget, InstanceTarget

NAMESPACE = "AWS/RDS"
LAMBDA_NAMESPACE = "AWS/Lambda"
MICROSECONDS_PER_MS = 1000
"""RDS Proxy publishes its latencies in microseconds; the config is in milliseconds."""

# Thresholds that are not config keys (the issue fixes the config keys); each is explained where used.
PINNED_SHARE_PERCENT = 50
AUTH_FAILURES_PER_5_MIN = 5
MIN_AVAILABILITY_PERCENT = 95
DB_CPU_PERCENT = 80
DB_FREE_STORAGE_BYTES = 2 * 1024**3
DB_FREEABLE_MEMORY_BYTES = 100 * 1024**2

# What runs out on the database's disks: an instance's (or a Multi-AZ DB cluster member's) EBS volume is
# FreeStorageSpace; an Aurora cluster volume grows by itself, and what runs out is each instance's local storage
# (temporary tables, logs), FreeLocalStorage (RDS and Aurora user guides, CloudWatch metrics tables).
FREE_STORAGE_SPACE = "FreeStorageSpace"
FREE_LOCAL_STORAGE = "FreeLocalStorage"

# treat_missing_data values (CloudWatch PutMetricAlarm `TreatMissingData`).
NOT_BREACHING = "notBreaching"
MISSING = "missing"

SERVICE_PRINCIPALS = ("cloudwatch.amazonaws.com", "events.rds.amazonaws.com")
"""Who publishes to the alarm topic and so must use its key: CloudWatch alarms and RDS event notifications."""

_CONSOLE = {
    "aws": "console.aws.amazon.com",
    "aws-cn": "console.amazonaws.cn",
    "aws-us-gov": "console.amazonaws-us-gov.com",
}


@dataclass(frozen=True, kw_only=True)
class MonitoringSettings:
    """The monitoring section of the stack config (the section is None when monitoringEnabled is false)."""

    alarm_email: str | None
    """Subscribed to the alarm topic when set."""
    pool_utilization_percent: int
    borrow_latency_ms: int
    query_latency_ms: int
    free_storage_metric: str
    """FREE_STORAGE_SPACE, or FREE_LOCAL_STORAGE for Aurora (settings derive it from the database topology)."""


@dataclass(frozen=True, kw_only=True)
class MonitoringArgs:
    """What monitoring watches (the neighbours' outputs), where, the key for its topic, and its own section."""

    proxy_name: pulumi.Input[str]
    """The CloudWatch `ProxyName` dimension; every alarm is named `<proxyName>-<what>`."""
    proxy_arn: pulumi.Input[str]
    """Its partition and account scope the topic key's policy (no `get_caller_identity` invoke needed)."""
    target: DatabaseTarget
    """The proxy's database: its alarms use `DBInstanceIdentifier` or `DBClusterIdentifier`."""
    probe_function_name: pulumi.Input[str]
    region: pulumi.Input[str]
    """The region the proxy's metrics live in; every dashboard metric widget names it."""
    settings: MonitoringSettings
    kms_key_arn: pulumi.Input[str] | None = None
    """A customer-managed key (e.g. the stack-wide key) for the topic. Its policy must grant what
    `topic_key_policy` grants. None: Monitoring creates its own key."""


def arn_fields(arn: str) -> tuple[str, str, str]:
    """(partition, region, account) of an ARN."""
    parts = arn.split(":", 5)
    return parts[1], parts[3], parts[4]


def topic_key_policy(partition: str, account: str, region: str, proxy_name: str) -> dict[str, Any]:
    """Key policy of the alarm topic's key, as data.

    The account root administers the key (KMS refuses a policy that locks out the account, and IAM policies
    in the account then decide who else may use it). CloudWatch may use the key only for this stack's alarms
    (`aws:SourceArn` = the alarm ARNs under `<proxyName>-`), RDS only for its event notifications from RDS
    resources of this account and region; both only on behalf of this account (`aws:SourceAccount`), as the
    SNS guide's confused-deputy step recommends. The RDS condition names the account's RDS ARNs rather than
    one resource: which ARN RDS presents (the source resource or the subscription) is not documented for the
    KMS call, and a condition that doesn't match drops every event silently.
    """
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "AccountAdministersKey",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{partition}:iam::{account}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            *sns_publisher_statements(partition, account, region, proxy_name),
        ],
    }


def availability_query(proxy_name: str) -> str:
    """Metrics Insights query for this proxy's target availability, one time series (no GROUP BY), whatever
    the target group and role values are (`default`, `READ_WRITE`/`READ_ONLY`: not guessed here)."""
    return (
        'SELECT AVG(AvailabilityPercentage) FROM SCHEMA("AWS/RDS", ProxyName, TargetGroup, TargetRole) '
        f"WHERE ProxyName = '{proxy_name}'"
    )


def dashboard_url(partition: str, region: str, name: str) -> str:
    console = _CONSOLE.get(partition, _CONSOLE["aws"])
    return f"https://{region}.{console}/cloudwatch/home?region={region}#dashboards/dashboard/{name}"


def dashboard_body(
    proxy_name: str, region: str, alarm_arns: Sequence[str], settings: MonitoringSettings
) -> str:
    """The dashboard as deterministic JSON: keys sorted, no timestamps, so `pulumi up` shows no diff."""
    proxy = ["ProxyName", proxy_name]

    def metric(name: str, stat: str, **extra: Any) -> list[Any]:
        return [NAMESPACE, name, *proxy, {"stat": stat, **extra}]

    def timeseries(title: str, metrics: list[Any], **extra: Any) -> dict[str, Any]:
        return {"view": "timeSeries", "stacked": False, "region": region, "period": 60, "title": title,
                "metrics": metrics, **extra}  # fmt: skip

    def threshold(label: str, value: float) -> dict[str, Any]:
        return {"horizontal": [{"label": label, "value": value}]}

    borrow_us = settings.borrow_latency_ms * MICROSECONDS_PER_MS
    query_us = settings.query_latency_ms * MICROSECONDS_PER_MS
    widgets = [
        (0, 0, 12, 6, timeseries("Client connections vs database connections (pooling)", [
            metric("ClientConnections", "Sum", label="Client connections"),
            metric("DatabaseConnections", "Sum", label="Database connections"),
        ])),
        (12, 0, 12, 6, timeseries("Pool utilisation (% of MaxDatabaseConnectionsAllowed)", [
            [{"expression": "100 * connections / allowed", "id": "utilization", "label": "Pool in use (%)"}],
            metric("DatabaseConnections", "Sum", id="connections", visible=False),
            metric("MaxDatabaseConnectionsAllowed", "Sum", id="allowed", visible=False),
        ], annotations=threshold("alarm", settings.pool_utilization_percent),
            yAxis={"left": {"min": 0, "max": 100}})),
        (0, 6, 8, 6, timeseries("Borrow latency (microseconds)", [
            metric("DatabaseConnectionsBorrowLatency", "Average", label="Average borrow latency (µs)"),
        ], annotations=threshold("alarm", borrow_us))),
        (8, 6, 8, 6, timeseries("Database response latency (microseconds)", [
            metric("QueryDatabaseResponseLatency", "Average", label="Average query latency (µs)"),
        ], annotations=threshold("alarm", query_us))),
        (16, 6, 8, 6, timeseries("Session pinning", [
            metric("DatabaseConnectionsCurrentlySessionPinned", "Sum", label="Pinned connections"),
            metric("DatabaseConnections", "Sum", label="Database connections"),
        ])),
        (0, 12, 12, 6, timeseries("Connection failures", [
            metric("ClientConnectionsSetupFailedAuth", "Sum", label="Client auth/TLS failures"),
            metric("DatabaseConnectionsSetupFailed", "Sum", label="Database connection failures"),
        ])),
        (12, 12, 12, 6, {"title": "Alarms", "alarms": list(alarm_arns)}),
    ]  # fmt: skip
    body = {
        "widgets": [
            {
                "type": "alarm" if "alarms" in props else "metric",
                "x": x,
                "y": y,
                "width": w,
                "height": h,
                "properties": props,
            }
            for x, y, w, h, props in widgets
        ]
    }
    return json.dumps(body, sort_keys=True)


class Monitoring(pulumi.ComponentResource):
    """Alarms on the proxy, its database and the probe; RDS events for the proxy and the database; all to one
    SNS topic encrypted with a customer-managed key; and a dashboard of the pool at work."""

    topic_arn: pulumi.Output[str]
    """The alarm topic (alarm and OK notifications, RDS events)."""
    dashboard_name: pulumi.Output[str]
    dashboard_url: pulumi.Output[str]
    alarm_names: list[pulumi.Output[str]]
    """Every alarm's name (all start with `<proxyName>-`)."""

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rdsproxy:index:Monitoring", name, None, opts)
        s = args.settings
        child = pulumi.ResourceOptions(parent=self)
        proxy_name = pulumi.Output.from_input(args.proxy_name)
        fields = pulumi.Output.from_input(args.proxy_arn).apply(arn_fields)
        partition, account = fields[0], fields[2]
        region = pulumi.Output.from_input(args.region)

        key_arn: pulumi.Input[str]
        if args.kms_key_arn is None:
            key = aws.kms.Key(
                f"{name}-topic-key",
                description=proxy_name.apply(lambda p: f"Encrypts the alarm topic of RDS Proxy {p}"),
                enable_key_rotation=True,
                policy=pulumi.Output.json_dumps(
                    pulumi.Output.all(partition, account, region, proxy_name).apply(
                        lambda a: topic_key_policy(a[0], a[1], a[2], a[3])
                    )
                ),
                opts=child,
            )
            aws.kms.Alias(
                f"{name}-topic-key-alias",
                name=proxy_name.apply(lambda p: f"alias/{p}-alarms"),
                target_key_id=key.key_id,
                opts=child,
            )
            key_arn = key.arn
        else:
            key_arn = args.kms_key_arn

        topic = aws.sns.Topic(
            f"{name}-topic",
            name=proxy_name.apply(lambda p: f"{p}-alarms"),
            kms_master_key_id=key_arn,
            opts=child,
        )
        if s.alarm_email:
            aws.sns.TopicSubscription(
                f"{name}-email", topic=topic.arn, protocol="email", endpoint=s.alarm_email, opts=child
            )
        actions = [topic.arn]

        def alarm(
            what: str, description: str, treat_missing_data: str, **spec: Any
        ) -> aws.cloudwatch.MetricAlarm:
            return aws.cloudwatch.MetricAlarm(
                f"{name}-{what}",
                name=pulumi.Output.concat(proxy_name, "-", what),
                alarm_description=description,
                alarm_actions=actions,
                ok_actions=actions,
                treat_missing_data=treat_missing_data,
                opts=child,
                **spec,
            )

        def proxy_metric(metric_name: str, stat: str) -> aws.cloudwatch.MetricAlarmMetricQueryMetricArgs:
            return aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                namespace=NAMESPACE,
                metric_name=metric_name,
                dimensions={"ProxyName": proxy_name},
                stat=stat,
                period=60,
            )

        Query = aws.cloudwatch.MetricAlarmMetricQueryArgs
        proxy_dims = {"ProxyName": proxy_name}
        alarms = [
            # Metric math: the pool in use as a share of what the proxy may open. No datapoint before the first
            # connection, and none while nobody connects: nothing is in use then, so missing is not breaching.
            alarm(
                "pool-utilization",
                f"Proxy database connections above {s.pool_utilization_percent} % of "
                "MaxDatabaseConnectionsAllowed for 3 of 5 minutes: the pool is nearly exhausted and clients "
                "will wait up to ConnectionBorrowTimeout, then fail.",
                NOT_BREACHING,
                metric_queries=[
                    Query(id="utilization", expression="100 * connections / allowed",
                          label="Pool in use (%)", return_data=True),
                    Query(id="connections", metric=proxy_metric("DatabaseConnections", "Sum"), return_data=False),
                    Query(id="allowed", metric=proxy_metric("MaxDatabaseConnectionsAllowed", "Sum"),
                          return_data=False),
                ],
                comparison_operator="GreaterThanThreshold",
                threshold=s.pool_utilization_percent,
                evaluation_periods=5,
                datapoints_to_alarm=3,
            ),
            # Latencies are published only while clients borrow connections / run queries: no traffic, no
            # latency, so missing is not breaching. Thresholds converted from ms to the published µs.
            alarm(
                "borrow-latency",
                f"Average DatabaseConnectionsBorrowLatency above {s.borrow_latency_ms} ms "
                f"({s.borrow_latency_ms * MICROSECONDS_PER_MS} µs) for 3 of 5 minutes: clients wait for a "
                "pooled database connection.",
                NOT_BREACHING,
                namespace=NAMESPACE,
                metric_name="DatabaseConnectionsBorrowLatency",
                dimensions=proxy_dims,
                statistic="Average",
                period=60,
                evaluation_periods=5,
                datapoints_to_alarm=3,
                comparison_operator="GreaterThanThreshold",
                threshold=s.borrow_latency_ms * MICROSECONDS_PER_MS,
            ),
            alarm(
                "query-latency",
                f"Average QueryDatabaseResponseLatency above {s.query_latency_ms} ms "
                f"({s.query_latency_ms * MICROSECONDS_PER_MS} µs) for 3 of 5 minutes: the database answers "
                "slowly.",
                NOT_BREACHING,
                namespace=NAMESPACE,
                metric_name="QueryDatabaseResponseLatency",
                dimensions=proxy_dims,
                statistic="Average",
                period=60,
                evaluation_periods=5,
                datapoints_to_alarm=3,
                comparison_operator="GreaterThanThreshold",
                threshold=s.query_latency_ms * MICROSECONDS_PER_MS,
            ),
            # Failure counters have no datapoint while nothing fails: missing is not breaching. A handful of
            # failed logins is a typo; AUTH_FAILURES_PER_5_MIN and more is a broken secret, IAM policy or TLS.
            alarm(
                "client-auth-failures",
                f"At least {AUTH_FAILURES_PER_5_MIN} client connections failed authentication or TLS in 5 "
                "minutes (ClientConnectionsSetupFailedAuth).",
                NOT_BREACHING,
                namespace=NAMESPACE,
                metric_name="ClientConnectionsSetupFailedAuth",
                dimensions=proxy_dims,
                statistic="Sum",
                period=300,
                evaluation_periods=1,
                comparison_operator="GreaterThanOrEqualToThreshold",
                threshold=AUTH_FAILURES_PER_5_MIN,
            ),
            # Any failure of the proxy to open a database connection matters (secret, security group, the
            # database down or out of connections); no datapoint while nothing fails.
            alarm(
                "db-connection-failures",
                "The proxy failed to open a database connection in the last 5 minutes "
                "(DatabaseConnectionsSetupFailed).",
                NOT_BREACHING,
                namespace=NAMESPACE,
                metric_name="DatabaseConnectionsSetupFailed",
                dimensions=proxy_dims,
                statistic="Sum",
                period=300,
                evaluation_periods=1,
                comparison_operator="GreaterThanOrEqualToThreshold",
                threshold=1,
            ),
            # Share of database connections pinned to one client. Above half, multiplexing is mostly defeated.
            # IF() keeps an idle pool (no database connections) from dividing by zero; no data before the first
            # connection: not breaching.
            alarm(
                "session-pinning",
                f"More than {PINNED_SHARE_PERCENT} % of the proxy's database connections pinned to one client "
                "for 15 minutes: multiplexing is defeated.",
                NOT_BREACHING,
                metric_queries=[
                    Query(id="pinned_share", expression="IF(connections > 0, 100 * pinned / connections, 0)",
                          label="Pinned connections (%)", return_data=True),
                    Query(id="pinned", metric=proxy_metric("DatabaseConnectionsCurrentlySessionPinned", "Sum"),
                          return_data=False),
                    Query(id="connections", metric=proxy_metric("DatabaseConnections", "Sum"), return_data=False),
                ],
                comparison_operator="GreaterThanThreshold",
                threshold=PINNED_SHARE_PERCENT,
                evaluation_periods=15,
                datapoints_to_alarm=15,
            ),
            # Metrics Insights: AvailabilityPercentage only exists per ProxyName/TargetGroup/TargetRole. The proxy
            # reports it every minute once it has been used; a lost target shows as values below 100, not as
            # gaps. Missing data (a proxy never used yet) leaves the alarm as it is (INSUFFICIENT_DATA at first)
            # instead of paging for an idle dev stack.
            alarm(
                "target-availability",
                f"The proxy's target was available less than {MIN_AVAILABILITY_PERCENT} % of the time for 3 "
                "minutes (AvailabilityPercentage): the proxy cannot reach its database.",
                MISSING,
                metric_queries=[
                    Query(id="availability", expression=proxy_name.apply(availability_query), period=60,
                          label="Target availability (%)", return_data=True),
                ],
                comparison_operator="LessThanThreshold",
                threshold=MIN_AVAILABILITY_PERCENT,
                evaluation_periods=3,
            ),
            *self._database_alarms(alarm, args.target, s),
            # Lambda publishes Errors only for invocations: no invocation, no datapoint, not breaching.
            alarm(
                "probe-errors",
                "The probe function failed at least once in 5 minutes (Errors): it could not connect through "
                "the proxy, or it timed out.",
                NOT_BREACHING,
                namespace=LAMBDA_NAMESPACE,
                metric_name="Errors",
                dimensions={"FunctionName": args.probe_function_name},
                statistic="Sum",
                period=300,
                evaluation_periods=1,
                comparison_operator="GreaterThanOrEqualToThreshold",
                threshold=1,
            ),
        ]  # fmt: skip

        database_events = (
            ("db-instance", args.target.instance_id)
            if isinstance(args.target, InstanceTarget)
            else ("db-cluster", args.target.cluster_id)
        )
        for what, source_type, source_id in (
            ("proxy-events", "db-proxy", args.proxy_name),
            ("db-events", *database_events),
        ):
            # All event categories: the proxy's few, and the database's failovers, failures, low storage,
            # maintenance and so on (event categories differ between source types; none is left out).
            aws.rds.EventSubscription(
                f"{name}-{what}",
                name=pulumi.Output.concat(proxy_name, "-", what),
                sns_topic=topic.arn,
                source_type=source_type,
                source_ids=[source_id],
                opts=child,
            )

        dashboard_name = pulumi.Output.all(proxy_name, region).apply(lambda a: f"{a[0]}-{a[1]}")
        dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=dashboard_name,
            dashboard_body=pulumi.Output.all(proxy_name, region, *[a.arn for a in alarms]).apply(
                lambda a: dashboard_body(a[0], a[1], a[2:], s)
            ),
            opts=child,
        )

        self.topic_arn = topic.arn
        self.dashboard_name = dashboard.dashboard_name
        self.dashboard_url = pulumi.Output.all(partition, region, dashboard.dashboard_name).apply(
            lambda a: dashboard_url(a[0], a[1], a[2])
        )
        self.alarm_names = [a.name for a in alarms]
        self.register_outputs(
            {
                "topic_arn": self.topic_arn,
                "dashboard_name": self.dashboard_name,
                "dashboard_url": self.dashboard_url,
            }
        )

    @staticmethod
    def _database_alarms(
        alarm: Any, target: DatabaseTarget, settings: MonitoringSettings
    ) -> list[aws.cloudwatch.MetricAlarm]:
        """CPU, free storage and freeable memory of the proxy's database, on the instance or the cluster.

        RDS publishes these every minute while the database runs; a gap means it is stopped or gone, which its
        RDS events report, so missing data leaves the alarm as it is.
        """
        if isinstance(target, InstanceTarget):
            dims = {"DBInstanceIdentifier": target.instance_id}
        elif isinstance(target, ClusterTarget):
            # AWS CDK's DatabaseClusterBase.metricCPUUtilization / metricFreeableMemory / metricFreeLocalStorage
            # read these with the DBClusterIdentifier dimension (aws-cdk-lib aws-rds rds-augmentations); Minimum
            # and Average then cover the cluster's instances.
            dims = {"DBClusterIdentifier": target.cluster_id}
        else:  # pragma: no cover - DatabaseTarget is a closed union
            raise TypeError(f"unknown database target {target!r}")
        storage_metric = settings.free_storage_metric

        def db(metric_name: str, statistic: str, **spec: Any) -> dict[str, Any]:
            return {"namespace": NAMESPACE, "metric_name": metric_name, "dimensions": dims, "statistic": statistic,
                    **spec}  # fmt: skip

        return [
            alarm(
                "db-cpu",
                f"Database CPU above {DB_CPU_PERCENT} % on average for 15 minutes.",
                MISSING,
                **db("CPUUtilization", "Average", period=300, evaluation_periods=3,
                     comparison_operator="GreaterThanThreshold", threshold=DB_CPU_PERCENT),
            ),
            alarm(
                "db-free-storage",
                f"Database {storage_metric} below {DB_FREE_STORAGE_BYTES // 1024**3} GiB: writes will fail "
                "when it runs out.",
                MISSING,
                **db(storage_metric, "Minimum", period=300, evaluation_periods=1,
                     comparison_operator="LessThanThreshold", threshold=DB_FREE_STORAGE_BYTES),
            ),
            alarm(
                "db-freeable-memory",
                f"Database FreeableMemory below {DB_FREEABLE_MEMORY_BYTES // 1024**2} MiB for 15 minutes: the "
                "instance is swapping or about to.",
                MISSING,
                **db("FreeableMemory", "Minimum", period=300, evaluation_periods=3,
                     comparison_operator="LessThanThreshold", threshold=DB_FREEABLE_MEMORY_BYTES),
            ),
        ]  # fmt: skip
