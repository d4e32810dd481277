"""What a stack costs per month, from plan/prices.toml: every resource type the stack declares now or will
(Aurora, Multi-AZ DB cluster, proxy endpoints, VPC endpoints, alarms, dashboards, keys...)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from plan import costs
from plan.__main__ import main
from plan.engine import Resource

ROOT = Path(__file__).resolve().parent.parent
H = 730
VCPU_HOUR = 0.015


def res(type_: str, name: str, inputs: dict[str, Any] | None = None, **outputs: Any) -> Resource:
    return Resource(
        urn=f"urn:{name}",
        type=type_,
        name=name,
        parent=None,
        custom=True,
        inputs=inputs or {},
        outputs=outputs,
    )


def cost_of(resources: list[Resource], name: str, region: str = "us-east-1") -> costs.Cost:
    return next(c for c in costs.estimate(resources, region).costs if c.name == name)


INSTANCE = "aws:rds/instance:Instance"
CLUSTER = "aws:rds/cluster:Cluster"
MEMBER = "aws:rds/clusterInstance:ClusterInstance"
PROXY = "aws:rds/proxy:Proxy"
TARGET = "aws:rds/proxyTarget:ProxyTarget"


def db(cls: str = "db.t3.micro", multi_az: bool = False, gib: int = 20) -> Resource:
    inputs = {"instanceClass": cls, "multiAz": multi_az, "allocatedStorage": gib, "storageType": "gp3"}
    return res(INSTANCE, "db", inputs, identifier="db-1")


def proxied(*targets: Resource, target_inputs: dict[str, Any]) -> list[Resource]:
    return [
        *targets,
        res(PROXY, "proxy", {"name": "p"}),
        res(TARGET, "target", {"dbProxyName": "p", **target_inputs}),
    ]


def test_instance_is_hours_times_class_price_plus_gp3_storage():
    assert cost_of([db()], "db").monthly_usd == pytest.approx(H * 0.017 + 20 * 0.115)


def test_multi_az_doubles_instance_and_storage():
    single = cost_of([db()], "db").monthly_usd
    assert cost_of([db(multi_az=True)], "db").monthly_usd == pytest.approx(2 * single)


def test_unknown_instance_class_is_not_invented():
    cost = cost_of([db("db.x9.huge")], "db")
    assert cost.unknown and cost.monthly_usd == 0 and "price unknown" in cost.basis
    assert costs.estimate([db("db.x9.huge")], "us-east-1").total == 0


def test_proxy_bills_the_two_vcpu_minimum_for_a_small_instance(monkeypatch):
    resources = proxied(db("db.t3.micro"), target_inputs={"dbInstanceIdentifier": "db-1"})
    assert cost_of(resources, "proxy").monthly_usd == pytest.approx(2 * VCPU_HOUR * H)
    # No RDS class has fewer than 2 vCPUs today; a 1-vCPU one must still be billed 2.
    monkeypatch.setitem(costs.prices()["vcpus"], "db.t3.micro", 1)
    assert cost_of(resources, "proxy").monthly_usd == pytest.approx(2 * VCPU_HOUR * H)


def test_proxy_bills_each_vcpu_of_a_larger_target_resolved_through_the_proxy_target():
    resources = proxied(db("db.r5.xlarge"), target_inputs={"dbInstanceIdentifier": "db-1"})
    assert cost_of(resources, "proxy").monthly_usd == pytest.approx(4 * VCPU_HOUR * H)


def test_proxy_does_not_bill_the_multi_az_standby():
    resources = proxied(db("db.r5.xlarge", multi_az=True), target_inputs={"dbInstanceIdentifier": "db-1"})
    assert cost_of(resources, "proxy").monthly_usd == pytest.approx(4 * VCPU_HOUR * H)


def test_proxy_without_target_costs_nothing():
    assert cost_of([res(PROXY, "proxy", {"name": "p"})], "proxy").monthly_usd == 0


def aurora(*classes: str, min_acu: float | None = None) -> list[Resource]:
    scaling = (
        {"serverlessv2ScalingConfiguration": {"minCapacity": min_acu, "maxCapacity": 4}} if min_acu else {}
    )
    cluster = res(CLUSTER, "cluster", {"engine": "aurora-mysql", **scaling}, clusterIdentifier="c-1")
    members = [
        res(MEMBER, f"member-{i}", {"clusterIdentifier": "c-1", "instanceClass": c})
        for i, c in enumerate(classes)
    ]
    return [cluster, *members]


def test_aurora_proxy_counts_every_cluster_instance_vcpu():
    resources = proxied(*aurora("db.r6g.large", "db.r6g.large"), target_inputs={"dbClusterIdentifier": "c-1"})
    assert cost_of(resources, "proxy").monthly_usd == pytest.approx(4 * VCPU_HOUR * H)
    assert cost_of(resources, "member-0").monthly_usd == pytest.approx(0.26 * H)
    assert (
        "usage-based" in cost_of(resources, "cluster").basis
        and cost_of(resources, "cluster").monthly_usd == 0
    )


def test_serverless_v2_instances_cost_their_minimum_acu_and_the_proxy_bills_eight_acu_minimum():
    resources = proxied(
        *aurora("db.serverless", "db.serverless", min_acu=0.5), target_inputs={"dbClusterIdentifier": "c-1"}
    )
    assert cost_of(resources, "member-0").monthly_usd == pytest.approx(0.5 * 0.12 * H)
    assert cost_of(resources, "proxy").monthly_usd == pytest.approx(8 * 0.015 * H)


def test_multi_az_db_cluster_counts_three_instances_and_unconfirmed_prices_stay_out_of_the_total():
    cluster = res(
        CLUSTER,
        "cluster",
        {
            "engine": "mysql",
            "dbClusterInstanceClass": "db.m6gd.large",
            "allocatedStorage": 100,
            "storageType": "io1",
        },
        clusterIdentifier="c-1",
    )
    resources = proxied(cluster, target_inputs={"dbClusterIdentifier": "c-1"})
    assert cost_of(resources, "proxy").monthly_usd == pytest.approx(6 * VCPU_HOUR * H)  # 3 x 2 vCPU
    cluster_cost = cost_of(resources, "cluster")
    assert cluster_cost.unknown and "3 x db.m6gd.large" in cluster_cost.basis
    est = costs.estimate(resources, "us-east-1")
    assert est.total == round(6 * VCPU_HOUR * H, 2)
    assert any("left out of the total" in n for n in est.notes)


def test_extra_proxy_endpoint_and_interface_endpoint_bill_per_az_hour():
    endpoint = res("aws:rds/proxyEndpoint:ProxyEndpoint", "reader", {"vpcSubnetIds": ["a", "b", "c"]})
    interface = res(
        "aws:ec2/vpcEndpoint:VpcEndpoint", "sm", {"vpcEndpointType": "Interface", "subnetIds": ["a", "b"]}
    )
    gateway = res("aws:ec2/vpcEndpoint:VpcEndpoint", "s3", {"vpcEndpointType": "Gateway"})
    resources = [endpoint, interface, gateway]
    assert cost_of(resources, "reader").monthly_usd == pytest.approx(3 * 0.01 * H)
    assert cost_of(resources, "sm").monthly_usd == pytest.approx(2 * 0.01 * H)
    assert cost_of(resources, "s3").monthly_usd == 0


def test_secrets_replicas_keys_zones():
    resources = [
        res("aws:secretsmanager/secret:Secret", "s", {"replicas": [{"region": "us-west-2"}]}),
        res("aws:kms/key:Key", "k"),
        res("aws:route53/zone:Zone", "z"),
    ]
    assert cost_of(resources, "s").monthly_usd == pytest.approx(0.80)
    assert cost_of(resources, "k").monthly_usd == pytest.approx(1.00)
    assert cost_of(resources, "z").monthly_usd == pytest.approx(0.50)


def test_metric_math_alarm_pays_for_each_metric_it_reads():
    queries = [
        {"id": "m1", "metric": {"metricName": "DatabaseConnections"}},
        {"id": "m2", "metric": {"metricName": "MaxDatabaseConnectionsAllowed"}},
        {"id": "e1", "expression": "100 * m1 / m2", "returnData": True},
    ]
    resources = [
        res("aws:cloudwatch/metricAlarm:MetricAlarm", "math", {"metricQueries": queries}),
        res("aws:cloudwatch/metricAlarm:MetricAlarm", "plain", {"metricName": "CPUUtilization"}),
    ]
    assert cost_of(resources, "math").monthly_usd == pytest.approx(0.20)
    assert cost_of(resources, "plain").monthly_usd == pytest.approx(0.10)


def test_dashboards_beyond_the_free_three_cost():
    resources = [res("aws:cloudwatch/dashboard:Dashboard", f"d{i}") for i in range(4)]
    assert [cost_of(resources, f"d{i}").monthly_usd for i in range(4)] == [0, 0, 0, 3.0]


@pytest.mark.parametrize(
    "type_",
    ["aws:lambda/function:Function", "aws:lambda/invocation:Invocation", "aws:cloudwatch/logGroup:LogGroup"],
)
def test_usage_based_resources_are_named_as_such_with_zero(type_):
    cost = cost_of([res(type_, "u")], "u")
    assert cost.monthly_usd == 0 and cost.basis.startswith("usage-based")


def test_other_regions_say_the_estimate_assumes_us_east_1_prices():
    assert any("assumes us-east-1 prices" in n for n in costs.estimate([db()], "eu-west-1").notes)
    assert not any("assumes" in n for n in costs.estimate([db()], "us-east-1").notes)


def test_every_price_names_its_source_and_date():
    for section, entries in costs.prices().items():
        if not isinstance(entries, dict) or section == "vcpus":
            continue
        for key, entry in entries.items():
            assert entry["source"].startswith("https://"), (section, key)
            assert entry["as_of"], (section, key)
            assert entry["checked"] in ("list", "second-source", "unknown"), (section, key)
            assert math.isnan(entry["usd"]) == (entry["checked"] == "unknown"), (section, key)


def plan_json(capsys, *argv: str) -> dict[str, Any]:
    assert main(["--format", "json", *argv]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_carries_cost_per_resource_and_the_total(capsys):
    doc = plan_json(capsys)
    per = {r["name"]: r["monthly_cost_usd"] for r in doc["resources"] if r["custom"]}
    assert per["rds-proxy-proxy-proxy"] == round(2 * VCPU_HOUR * H, 2)
    assert per["rds-proxy-db-instance"] == round(H * 0.017 + 20 * 0.115, 2)
    assert doc["monthly_cost_total_usd"] == pytest.approx(sum(per.values()), abs=0.01)


def test_text_plan_prints_the_cost_table_and_total(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "Estimated monthly cost:" in out
    assert "rds-proxy-proxy-proxy" in out.split("Estimated monthly cost:")[1]
    assert "  Total: $54.31 per month (estimate)" in out


def test_diff_shows_the_cost_change(capsys):
    assert main(["--diff", "prod"]) == 0
    out = capsys.readouterr().out
    assert "~ rds-proxy-db-instance: 14.71 -> 29.42 (+14.71)" in out
    # prod also keeps its DR half (drRegion): a key in us-west-2 and a secret replica (tests/test_dr.py).
    assert "~ rds-proxy-dr-key: 0.00 -> 1.00 (+1.00)" in out
    assert "total: 54.31 -> 70.82 (+16.51)" in out
    doc = plan_json(capsys, "--diff", "prod")
    assert doc["diff"]["monthly_cost_change_usd"] == pytest.approx(16.51)


def test_readme_cost_table_is_the_one_the_plan_computes():
    from plan.config import load_stack_config
    from plan.engine import run_program

    estimates = [
        (stack, costs.estimate(run_program(stack, load_stack_config(stack)).resources, "us-east-1"))
        for stack in ("dev", "prod")
    ]
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- costs:start -->")[1].split("<!-- costs:end -->")[0]
    assert block.strip() == costs.markdown(estimates)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_resource_the_committed_stacks_declare_is_in_the_cost_model(stack):
    """A new resource type must get a price, a usage-based name or a no-charge entry, not a silent 0."""
    from plan.config import load_stack_config
    from plan.engine import run_program

    run = run_program(stack, load_stack_config(stack))
    estimate = costs.estimate(run.resources, "us-east-1")
    custom = [r for r in run.resources if r.custom]
    assert len(estimate.costs) == len(custom)
    assert [c.name for c in estimate.costs if "not in the cost model" in c.basis] == []
