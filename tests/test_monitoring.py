"""Monitoring (issue 10): every alarm, the encrypted topic and its key, RDS events, the dashboard, and that a
stack with monitoringEnabled false declares none of it."""

from __future__ import annotations

import fnmatch
import json
from typing import Any

import pytest

from components.monitoring import FREE_LOCAL_STORAGE, Monitoring, MonitoringArgs, MonitoringSettings
from components.settings import ConfigError
from components.target import ClusterTarget, EngineFamily
from plan.config import load_stack_config
from plan.engine import ACCOUNT, ProgramRun, Resource, run_program
from tests.conftest import deploy, ok
from tests.test_security import stack_key

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TOPIC = "aws:sns/topic:Topic"
KEY = "aws:kms/key:Key"
EVENTS = "aws:rds/eventSubscription:EventSubscription"
EMAIL = "aws:sns/topicSubscription:TopicSubscription"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
MONITORING_TYPES = {ALARM, TOPIC, KEY, EVENTS, EMAIL, DASHBOARD, "aws:kms/alias:Alias"}
PROXY = "rds-proxy-dev"

ALARMS = {
    "pool-utilization", "borrow-latency", "query-latency", "client-auth-failures", "db-connection-failures",
    "session-pinning", "target-availability", "db-cpu", "db-free-storage", "db-freeable-memory", "probe-errors",
}  # fmt: skip


def alarms(run: ProgramRun) -> dict[str, Resource]:
    """The stack's alarms by what they watch (their name without the `<proxyName>-` prefix)."""
    proxy = run.one("aws:rds/proxy:Proxy").inputs["name"]
    found = {}
    for r in run.by_type(ALARM):
        assert r.inputs["name"].startswith(f"{proxy}-"), r.inputs["name"]
        found[r.inputs["name"].removeprefix(f"{proxy}-")] = r
    return found


def returned(alarm: Resource) -> list[dict[str, Any]]:
    return [q for q in alarm.inputs.get("metricQueries", []) if q.get("returnData")]


def query(alarm: Resource, id_: str) -> dict[str, Any]:
    return next(q for q in alarm.inputs["metricQueries"] if q["id"] == id_)


# ---------------------------------------------------------------------------------------------- alarms


def test_every_alarm_is_named_after_the_proxy_and_notifies_the_topic_on_alarm_and_ok(stack_run):
    topic_arn = stack_run.one(TOPIC).outputs["arn"]
    found = alarms(stack_run)
    assert set(found) == ALARMS
    for what, alarm in found.items():
        assert alarm.inputs["alarmActions"] == [topic_arn], what
        assert alarm.inputs["okActions"] == [topic_arn], what
        assert alarm.inputs.get("alarmDescription"), what


# what → namespace, metric, statistic, period, comparison, threshold (defaults), treat missing data
SINGLE_METRIC = {
    "borrow-latency": ("AWS/RDS", "DatabaseConnectionsBorrowLatency", "Average", 60, "GreaterThanThreshold", 50_000, "notBreaching"),
    "query-latency": ("AWS/RDS", "QueryDatabaseResponseLatency", "Average", 60, "GreaterThanThreshold", 100_000, "notBreaching"),
    "client-auth-failures": ("AWS/RDS", "ClientConnectionsSetupFailedAuth", "Sum", 300, "GreaterThanOrEqualToThreshold", 5, "notBreaching"),
    "db-connection-failures": ("AWS/RDS", "DatabaseConnectionsSetupFailed", "Sum", 300, "GreaterThanOrEqualToThreshold", 1, "notBreaching"),
    "db-cpu": ("AWS/RDS", "CPUUtilization", "Average", 300, "GreaterThanThreshold", 80, "missing"),
    "db-free-storage": ("AWS/RDS", "FreeStorageSpace", "Minimum", 300, "LessThanThreshold", 2 * 1024**3, "missing"),
    "db-freeable-memory": ("AWS/RDS", "FreeableMemory", "Minimum", 300, "LessThanThreshold", 100 * 1024**2, "missing"),
    "probe-errors": ("AWS/Lambda", "Errors", "Sum", 300, "GreaterThanOrEqualToThreshold", 1, "notBreaching"),
}  # fmt: skip


@pytest.mark.parametrize("what", sorted(SINGLE_METRIC))
def test_single_metric_alarm(what):
    run = ok("dev")
    alarm = alarms(run)[what].inputs
    namespace, metric, statistic, period, comparison, threshold, missing = SINGLE_METRIC[what]
    assert (alarm["namespace"], alarm["metricName"], alarm["statistic"]) == (namespace, metric, statistic)
    assert (alarm["period"], alarm["comparisonOperator"], alarm["threshold"]) == (
        period,
        comparison,
        threshold,
    )
    assert alarm["treatMissingData"] == missing
    assert "metricQueries" not in alarm
    if namespace == "AWS/Lambda":
        expected = {"FunctionName": run.named("rds-proxy-probe-function").inputs["name"]}
    elif what in ("db-cpu", "db-free-storage", "db-freeable-memory"):
        expected = {"DBInstanceIdentifier": run.one("aws:rds/instance:Instance").outputs["identifier"]}
    else:
        expected = {"ProxyName": PROXY}
    assert alarm["dimensions"] == expected


def test_latency_thresholds_are_the_configured_milliseconds_in_microseconds():
    # AWS publishes DatabaseConnectionsBorrowLatency and QueryDatabaseResponseLatency in microseconds.
    found = alarms(ok("dev", alarmBorrowLatencyMs=7, alarmQueryLatencyMs=250))
    assert found["borrow-latency"].inputs["threshold"] == 7_000
    assert found["query-latency"].inputs["threshold"] == 250_000


def test_pool_utilization_is_metric_math_over_the_proxys_connections_with_the_configured_threshold():
    alarm = alarms(ok("dev", alarmPoolUtilizationPercent=65))["pool-utilization"]
    assert alarm.inputs["threshold"] == 65
    assert alarm.inputs["comparisonOperator"] == "GreaterThanThreshold"
    assert alarm.inputs["treatMissingData"] == "notBreaching"
    [result] = returned(alarm)
    assert result["expression"] == "100 * connections / allowed"
    for id_, metric in (("connections", "DatabaseConnections"), ("allowed", "MaxDatabaseConnectionsAllowed")):
        q = query(alarm, id_)
        assert q["returnData"] is False
        assert q["metric"] == {
            "namespace": "AWS/RDS",
            "metricName": metric,
            "dimensions": {"ProxyName": PROXY},
            "stat": "Sum",
            "period": 60,
        }


def test_session_pinning_is_the_share_of_database_connections_pinned():
    alarm = alarms(ok("dev"))["session-pinning"]
    [result] = returned(alarm)
    assert "100 * pinned / connections" in result["expression"]
    assert query(alarm, "pinned")["metric"]["metricName"] == "DatabaseConnectionsCurrentlySessionPinned"
    assert query(alarm, "connections")["metric"]["metricName"] == "DatabaseConnections"
    for id_ in ("pinned", "connections"):
        assert query(alarm, id_)["metric"]["dimensions"] == {"ProxyName": PROXY}
    assert (alarm.inputs["threshold"], alarm.inputs["treatMissingData"]) == (50, "notBreaching")


def test_every_metric_math_alarm_returns_exactly_one_query_and_has_no_top_level_metric(stack_run):
    math = {what: a for what, a in alarms(stack_run).items() if "metricQueries" in a.inputs}
    assert set(math) == {"pool-utilization", "session-pinning", "target-availability"}
    for what, alarm in math.items():
        assert len(returned(alarm)) == 1, what
        for key in ("metricName", "namespace", "statistic", "dimensions", "period"):
            assert key not in alarm.inputs, (what, key)
        ids = [q["id"] for q in alarm.inputs["metricQueries"]]
        assert len(ids) == len(set(ids)), what
        for q in alarm.inputs["metricQueries"]:
            assert ("expression" in q) != ("metric" in q), (what, q["id"])  # one or the other, never both


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_target_availability_is_a_metrics_insights_query_naming_this_proxy(stack):
    run = ok(stack)
    proxy = run.one("aws:rds/proxy:Proxy").inputs["name"]
    alarm = alarms(run)["target-availability"]
    [q] = alarm.inputs["metricQueries"]
    assert q["returnData"] is True and q["period"] == 60
    assert q["expression"] == (
        'SELECT AVG(AvailabilityPercentage) FROM SCHEMA("AWS/RDS", ProxyName, TargetGroup, TargetRole) '
        f"WHERE ProxyName = '{proxy}'"
    )
    assert "GROUP BY" not in q["expression"]  # an alarm's Insights query must return one time series
    assert alarm.inputs["comparisonOperator"] == "LessThanThreshold" and alarm.inputs["threshold"] == 95
    assert alarm.inputs["treatMissingData"] == "missing"


# ---------------------------------------------------------------------------------------------- topic and key


def test_topic_is_encrypted_with_the_stacks_rotating_customer_managed_key(stack_run):
    """The stack's key (issue 14, components/encryption.py) encrypts the topic too; one key, one policy."""
    topic = stack_run.one(TOPIC)
    key = stack_key(stack_run)
    assert topic.inputs["kmsMasterKeyId"] == key.outputs["arn"]
    assert "alias/aws/sns" not in json.dumps(topic.inputs)
    assert key.inputs["enableKeyRotation"] is True
    assert key.parent == stack_run.one("rdsproxy:index:Encryption").urn


def test_key_policy_lets_only_this_stacks_alarms_and_this_accounts_rds_events_use_it(stack_run):
    policy = json.loads(stack_key(stack_run).inputs["policy"])
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert {"CloudWatchAlarmsPublish", "RdsEventsPublish"} <= set(by_sid)
    assert all(s["Effect"] == "Allow" for s in by_sid.values())
    proxy = stack_run.one("aws:rds/proxy:Proxy").inputs["name"]
    for sid, service, source in (
        ("CloudWatchAlarmsPublish", "cloudwatch.amazonaws.com", f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:{proxy}-*"),
        ("RdsEventsPublish", "events.rds.amazonaws.com", f"arn:aws:rds:us-east-1:{ACCOUNT}:*"),
    ):  # fmt: skip
        statement = by_sid[sid]
        assert statement["Principal"] == {"Service": service}
        assert statement["Action"] == ["kms:Decrypt", "kms:GenerateDataKey*"]
        assert statement["Condition"] == {
            "StringEquals": {"aws:SourceAccount": ACCOUNT},
            "ArnLike": {"aws:SourceArn": source},
        }
    # Every alarm this stack declares is covered by the CloudWatch condition, so none is silently dropped.
    pattern = by_sid["CloudWatchAlarmsPublish"]["Condition"]["ArnLike"]["aws:SourceArn"]
    for alarm in stack_run.by_type(ALARM):
        assert fnmatch.fnmatchcase(alarm.outputs["arn"], pattern), alarm.outputs["arn"]


def test_email_subscription_only_when_alarm_email_is_set():
    assert ok("dev").by_type(EMAIL) == []
    run = ok("dev", alarmEmail="ops@example.com")
    subscription = run.one(EMAIL).inputs
    assert subscription == {
        "topic": run.one(TOPIC).outputs["arn"],
        "protocol": "email",
        "endpoint": "ops@example.com",
    }


def test_rds_event_subscriptions_for_the_proxy_and_the_instance_go_to_the_topic(stack_run):
    topic_arn = stack_run.one(TOPIC).outputs["arn"]
    proxy = stack_run.one("aws:rds/proxy:Proxy").inputs["name"]
    instance = stack_run.one("aws:rds/instance:Instance").outputs["identifier"]
    found = {(e.inputs["sourceType"], tuple(e.inputs["sourceIds"])) for e in stack_run.by_type(EVENTS)}
    assert found == {("db-proxy", (proxy,)), ("db-instance", (instance,))}
    assert all(e.inputs["snsTopic"] == topic_arn for e in stack_run.by_type(EVENTS))
    assert {e.inputs["name"] for e in stack_run.by_type(EVENTS)} == {
        f"{proxy}-proxy-events",
        f"{proxy}-db-events",
    }


# ---------------------------------------------------------------------------------------------- config


def test_nothing_is_declared_or_exported_when_monitoring_is_disabled():
    run = ok("dev", monitoringEnabled=False)
    monitoring_types = MONITORING_TYPES - {KEY, "aws:kms/alias:Alias"}  # the key is the stack's (issue 14)
    assert {r.type for r in run.resources} & (monitoring_types | {"rdsproxy:index:Monitoring"}) == set()
    assert not {"alarmTopicArn", "dashboardName", "dashboardUrl"} & set(run.exports)
    # Everything else is the same stack.
    others = {
        r.name
        for r in ok("dev").resources
        if r.type not in monitoring_types | {"rdsproxy:index:Monitoring"}
        and not r.name.startswith("rds-proxy-monitoring")
    }
    assert {r.name for r in run.resources} == others


def test_outputs_name_the_topic_and_the_dashboard(stack_run):
    out = stack_run.exports
    dashboard = stack_run.one(DASHBOARD).inputs["dashboardName"]
    assert out["alarmTopicArn"] == stack_run.one(TOPIC).outputs["arn"]
    assert (
        out["dashboardName"]
        == dashboard
        == f"{stack_run.one('aws:rds/proxy:Proxy').inputs['name']}-us-east-1"
    )
    assert out["dashboardUrl"] == (
        f"https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#dashboards/dashboard/{dashboard}"
    )


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("alarmEmail", "not-an-address", "an e-mail address"),
        ("alarmEmail", "ops@localhost", "an e-mail address"),
        ("alarmPoolUtilizationPercent", 0, "an integer from 1 to 100"),
        ("alarmPoolUtilizationPercent", 101, "an integer from 1 to 100"),
        ("alarmBorrowLatencyMs", 0, "an integer of at least 1"),
        ("alarmQueryLatencyMs", -5, "an integer of at least 1"),
        ("alarmQueryLatencyMs", "fast", "an integer"),
        ("monitoringEnabled", "maybe", "true or false"),
    ],
)
def test_invalid_monitoring_config_is_an_error_naming_key_value_and_what_is_allowed(key, value, allowed):
    error = deploy("dev", **{key: value}).error
    assert isinstance(error, ConfigError), error
    [problem] = error.problems
    assert problem.startswith(f"{key}: {json.dumps(value)} is not allowed; expected {allowed}")


def test_monitoring_keys_are_checked_even_when_monitoring_is_off():
    error = deploy("dev", monitoringEnabled=False, alarmEmail="nope").error
    assert isinstance(error, ConfigError) and error.problems[0].startswith('alarmEmail: "nope"')


# ---------------------------------------------------------------------------------------------- dashboard


def dashboard(run: ProgramRun) -> dict[str, Any]:
    return json.loads(run.one(DASHBOARD).inputs["dashboardBody"])


def test_dashboard_widgets_fit_the_24_column_grid_and_do_not_overlap(stack_run):
    widgets = dashboard(stack_run)["widgets"]
    cells: set[tuple[int, int]] = set()
    for w in widgets:
        assert w["x"] >= 0 and w["y"] >= 0 and w["width"] >= 1 and w["height"] >= 1
        assert w["x"] + w["width"] <= 24, w["properties"].get("title")
        mine = {
            (x, y) for x in range(w["x"], w["x"] + w["width"]) for y in range(w["y"], w["y"] + w["height"])
        }
        assert not cells & mine, w["properties"].get("title")
        cells |= mine


def test_every_metric_widget_names_the_region_and_queries_this_proxy(stack_run):
    proxy = stack_run.one("aws:rds/proxy:Proxy").inputs["name"]
    metric_widgets = [w for w in dashboard(stack_run)["widgets"] if w["type"] == "metric"]
    assert len(metric_widgets) == 6
    for w in metric_widgets:
        props = w["properties"]
        assert props["region"] == "us-east-1", props["title"]
        for line in props["metrics"]:
            if "expression" in line[0]:
                continue
            assert line[:4] == ["AWS/RDS", line[1], "ProxyName", proxy], props["title"]


def test_dashboard_shows_pooling_utilisation_latency_pinning_auth_failures_and_alarm_states(stack_run):
    widgets = dashboard(stack_run)["widgets"]
    shown = {
        line[1]
        for w in widgets
        if w["type"] == "metric"
        for line in w["properties"]["metrics"]
        if len(line) > 1
    }
    assert {
        "ClientConnections", "DatabaseConnections", "MaxDatabaseConnectionsAllowed", "DatabaseConnectionsBorrowLatency",
        "QueryDatabaseResponseLatency", "DatabaseConnectionsCurrentlySessionPinned", "ClientConnectionsSetupFailedAuth",
    } <= shown  # fmt: skip
    [states] = [w for w in widgets if w["type"] == "alarm"]
    assert set(states["properties"]["alarms"]) == {a.outputs["arn"] for a in stack_run.by_type(ALARM)}
    latency = {w["properties"]["title"]: w for w in widgets if "latency" in w["properties"]["title"].lower()}
    marks = {t: w["properties"]["annotations"]["horizontal"][0]["value"] for t, w in latency.items()}
    assert marks == {
        "Borrow latency (microseconds)": 50_000,
        "Database response latency (microseconds)": 100_000,
    }


def test_dashboard_body_is_deterministic_sorted_json():
    config = load_stack_config("dev")
    first, second = run_program("dev", config), run_program("dev", config)
    body = first.one(DASHBOARD).inputs["dashboardBody"]
    assert body == second.one(DASHBOARD).inputs["dashboardBody"]
    assert body == json.dumps(json.loads(body), sort_keys=True)


# ---------------------------------------------------------------------------------------------- the component alone


SETTINGS = MonitoringSettings(
    alarm_email=None,
    pool_utilization_percent=80,
    borrow_latency_ms=50,
    query_latency_ms=100,
    free_storage_metric=FREE_LOCAL_STORAGE,
)


def _component(kms_key_arn: str | None = None) -> ProgramRun:
    def program() -> None:
        target = ClusterTarget(
            cluster_id="orders",
            engine_family=EngineFamily.MYSQL,
            resource_arn="arn:aws:rds:eu-west-1:111122223333:cluster:orders",
            resource_id="cluster-ABC",
        )
        Monitoring(
            "m",
            MonitoringArgs(
                proxy_name="orders-proxy",
                proxy_arn="arn:aws:rds:eu-west-1:111122223333:db-proxy:prx-0123",
                target=target,
                probe_function_name="orders-probe",
                region="eu-west-1",
                settings=SETTINGS,
                kms_key_arn=kms_key_arn,
            ),
        )

    run = run_program("test", {"aws:region": "eu-west-1"}, program=program)
    assert run.error is None, run.error
    return run


def test_a_cluster_target_is_watched_by_cluster_identifier():
    run = _component()
    found = {r.inputs["name"].removeprefix("orders-proxy-"): r.inputs for r in run.by_type(ALARM)}
    for what in ("db-cpu", "db-free-storage", "db-freeable-memory"):
        assert found[what]["dimensions"] == {"DBClusterIdentifier": "orders"}, what
    assert found["db-free-storage"]["metricName"] == "FreeLocalStorage"
    events = {e.inputs["sourceType"]: e.inputs["sourceIds"] for e in run.by_type(EVENTS)}
    assert events == {"db-proxy": ["orders-proxy"], "db-cluster": ["orders"]}
    policy = json.loads(run.one(KEY).inputs["policy"])
    assert policy["Statement"][0]["Principal"] == {"AWS": "arn:aws:iam::111122223333:root"}
    body = json.loads(run.one(DASHBOARD).inputs["dashboardBody"])
    assert {w["properties"]["region"] for w in body["widgets"] if w["type"] == "metric"} == {"eu-west-1"}


@pytest.mark.parametrize(
    ("topology", "storage_metric"), [("aurora", "FreeLocalStorage"), ("multi-az-cluster", "FreeStorageSpace")]
)
def test_a_cluster_stack_watches_the_cluster_and_its_storage_metric(topology, storage_metric):
    run = ok("dev", dbTopology=topology, azCount=3)
    cluster = run.one("aws:rds/cluster:Cluster").outputs["clusterIdentifier"]
    found = alarms(run)
    assert set(found) == ALARMS
    for what in ("db-cpu", "db-free-storage", "db-freeable-memory"):
        assert found[what].inputs["dimensions"] == {"DBClusterIdentifier": cluster}, what
    assert found["db-free-storage"].inputs["metricName"] == storage_metric
    events = {e.inputs["sourceType"]: e.inputs["sourceIds"] for e in run.by_type(EVENTS)}
    assert events == {"db-proxy": [PROXY], "db-cluster": [cluster]}


def test_a_given_key_is_used_instead_of_creating_one():
    stack_key = "arn:aws:kms:eu-west-1:111122223333:key/11111111-2222-3333-4444-555555555555"
    run = _component(kms_key_arn=stack_key)
    assert run.by_type(KEY) == [] and run.by_type("aws:kms/alias:Alias") == []
    assert run.one(TOPIC).inputs["kmsMasterKeyId"] == stack_key


def test_the_policy_pack_passes_the_monitoring_resources(stack_run):
    from policy.rules import evaluate

    mine = [r for r in stack_run.resources if r.type in MONITORING_TYPES]
    assert evaluate(mine, stack=stack_run.stack) == []


def test_dashboard_url_points_at_the_partitions_console():
    from components.monitoring import dashboard_url

    assert dashboard_url("aws", "eu-west-1", "d") == (
        "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#dashboards/dashboard/d"
    )
    assert dashboard_url("aws-cn", "cn-north-1", "d").startswith("https://cn-north-1.console.amazonaws.cn/")


def test_without_a_stack_key_the_component_creates_its_own_with_the_same_publisher_grants():
    run = _component()
    key = run.one(KEY)
    assert key.inputs["enableKeyRotation"] is True
    assert run.one(TOPIC).inputs["kmsMasterKeyId"] == key.outputs["arn"]
    by_sid = {s["Sid"]: s for s in json.loads(key.inputs["policy"])["Statement"]}
    assert set(by_sid) == {"AccountAdministersKey", "CloudWatchAlarmsPublish", "RdsEventsPublish"}
    assert by_sid["CloudWatchAlarmsPublish"]["Condition"] == {
        "StringEquals": {"aws:SourceAccount": "111122223333"},
        "ArnLike": {"aws:SourceArn": "arn:aws:cloudwatch:eu-west-1:111122223333:alarm:orders-proxy-*"},
    }
