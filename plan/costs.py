"""Estimated monthly cost of a planned stack, from the price table in plan/prices.toml.

Fixed charges only (instance-hours, provisioned storage, per-hour endpoints, per-month secrets, keys,
alarms, dashboards, hosted zones). What depends on traffic (Lambda requests, log ingestion, I/O, data
transfer) is named as usage-based and counted as 0. Prices are us-east-1 on-demand; for any other region
the estimate says it assumes us-east-1 prices.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from plan.engine import ProgramRun, Resource

PRICES_FILE = Path(__file__).with_name("prices.toml")
PRICE_REGION = "us-east-1"

FREE = "no charge"
USAGE = "usage-based"


@dataclass(frozen=True)
class Cost:
    """One resource's estimated monthly cost and how it was reached."""

    name: str
    type: str
    monthly_usd: float
    basis: str
    """How the figure was computed, or why it is 0 (no charge, usage-based, price unknown)."""
    unknown: bool = False
    """A needed price is not confirmed (nan in the table): left out of the total."""


@dataclass(frozen=True)
class Estimate:
    costs: list[Cost]
    notes: list[str]

    @property
    def total(self) -> float:
        return round(sum(c.monthly_usd for c in self.costs if not c.unknown), 2)


@cache
def prices() -> dict[str, Any]:
    return tomllib.loads(PRICES_FILE.read_text())


def _price(section: str, key: str) -> float:
    entry = prices()[section].get(key)
    return float(entry["usd"]) if entry is not None else math.nan


def _hours() -> float:
    return float(prices()["hours_per_month"])


def _money(value: float) -> str:
    """A unit price as listed ($0.017, $0.115, $0.4)."""
    return f"${value:g}"


# Types that are free to have (AWS charges nothing for them existing).
NO_CHARGE = {
    "aws:ec2/vpc:Vpc", "aws:ec2/subnet:Subnet", "aws:ec2/securityGroup:SecurityGroup",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup", "aws:ec2/securityGroupRule:SecurityGroupRule",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule", "aws:ec2/routeTable:RouteTable",
    "aws:ec2/routeTableAssociation:RouteTableAssociation", "aws:rds/subnetGroup:SubnetGroup",
    "aws:rds/parameterGroup:ParameterGroup", "aws:rds/clusterParameterGroup:ClusterParameterGroup",
    "aws:rds/proxyDefaultTargetGroup:ProxyDefaultTargetGroup", "aws:rds/proxyTarget:ProxyTarget",
    "aws:iam/role:Role", "aws:iam/rolePolicy:RolePolicy", "aws:iam/policy:Policy",
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment", "aws:secretsmanager/secretVersion:SecretVersion",
    "aws:secretsmanager/secretRotation:SecretRotation", "aws:kms/alias:Alias",
    "aws:sns/topicPolicy:TopicPolicy", "aws:sns/topicSubscription:TopicSubscription",
    "aws:rds/eventSubscription:EventSubscription", "aws:route53/record:Record",
    "random:index/randomPassword:RandomPassword", "random:index/randomId:RandomId",
    "random:index/randomString:RandomString", "random:index/randomPet:RandomPet",
}  # fmt: skip

# Types whose whole bill depends on use: named, counted as 0.
USAGE_BASED = {
    "aws:lambda/function:Function": "requests and GB-seconds",
    "aws:lambda/invocation:Invocation": "one Lambda invocation per change",
    "aws:lambda/permission:Permission": "none by itself",
    "aws:cloudwatch/logGroup:LogGroup": "log ingestion and storage per GB",
    "aws:ec2/flowLog:FlowLog": "log ingestion per GB",
    "aws:sns/topic:Topic": "notifications delivered",
    "aws:cloudwatch/eventRule:EventRule": "events",
    "aws:serverlessrepository/cloudFormationStack:CloudFormationStack": "what the stack creates",
}


class _Index:
    """Lookups across the run: an instance or cluster by the identifier a ProxyTarget names."""

    def __init__(self, resources: Sequence[Resource]) -> None:
        self.resources = resources

    def _value(self, r: Resource, key: str) -> Any:
        return r.outputs.get(key, r.inputs.get(key))

    def instance(self, identifier: Any) -> Resource | None:
        return next(
            (
                r
                for r in self.resources
                if r.type == "aws:rds/instance:Instance"
                and identifier in (self._value(r, "identifier"), r.id)
            ),
            None,
        )

    def cluster(self, identifier: Any) -> Resource | None:
        return next(
            (
                r
                for r in self.resources
                if r.type == "aws:rds/cluster:Cluster"
                and identifier in (self._value(r, "clusterIdentifier"), r.id)
            ),
            None,
        )

    def cluster_instances(self, cluster: Resource) -> list[Resource]:
        ident = self._value(cluster, "clusterIdentifier")
        return [
            r
            for r in self.resources
            if r.type == "aws:rds/clusterInstance:ClusterInstance"
            and r.inputs.get("clusterIdentifier") in (ident, cluster.id)
        ]

    def proxy_targets(self, proxy: Resource) -> list[Resource]:
        name = self._value(proxy, "name")
        return [
            r
            for r in self.resources
            if r.type == "aws:rds/proxyTarget:ProxyTarget" and r.inputs.get("dbProxyName") in (name, proxy.id)
        ]


def _is_multi_az_cluster(cluster: Resource) -> bool:
    return bool(cluster.inputs.get("dbClusterInstanceClass")) and cluster.inputs.get("engine") == "mysql"


def _min_acu(cluster: Resource | None) -> float:
    config = (cluster.inputs.get("serverlessv2ScalingConfiguration") or {}) if cluster else {}
    return float(config.get("minCapacity", math.nan))


def _instance(r: Resource) -> Cost:
    cls = str(r.inputs.get("instanceClass"))
    hourly = _price("rds_mysql_instance_hour", cls)
    factor = _price("rds_multi_az_factor", "factor") if r.inputs.get("multiAz") else 1.0
    storage_type = str(r.inputs.get("storageType") or "gp3")
    gib = float(r.inputs.get("allocatedStorage") or 0)
    per_gib = _price("rds_storage_gb_month", storage_type)
    total = (hourly * _hours() + gib * per_gib) * factor
    az = "Multi-AZ (x2)" if factor != 1.0 else "Single-AZ"
    basis = f"{cls} {az}: {_hours():g} h x {_money(hourly)} + {gib:g} GiB {storage_type} x {_money(per_gib)}"
    if math.isnan(total):
        return Cost(r.name, r.type, 0.0, f"price unknown for {cls} / {storage_type} ({basis})", unknown=True)
    return Cost(r.name, r.type, total, basis)


def _cluster(r: Resource, index: _Index) -> Cost:
    if not _is_multi_az_cluster(r):
        return Cost(
            r.name, r.type, 0.0, f"{USAGE}: Aurora storage per GB-month and I/O (instances listed apart)"
        )
    cls = str(r.inputs["dbClusterInstanceClass"])
    storage_type = str(r.inputs.get("storageType") or "gp3")
    gib = float(r.inputs.get("allocatedStorage") or 0)
    hourly = _price("multi_az_cluster_instance_hour", cls)
    per_gib = _price("multi_az_cluster_storage_gb_month", storage_type)
    total = 3 * (hourly * _hours() + gib * per_gib)
    basis = f"Multi-AZ DB cluster, 3 x {cls} + 3 x {gib:g} GiB {storage_type}"
    if math.isnan(total):
        return Cost(r.name, r.type, 0.0, f"price unknown ({basis}): not in plan/prices.toml", unknown=True)
    return Cost(r.name, r.type, total, basis)


def _cluster_instance(r: Resource, index: _Index) -> Cost:
    cls = str(r.inputs.get("instanceClass"))
    if cls == "db.serverless":
        cluster = index.cluster(r.inputs.get("clusterIdentifier"))
        acu = _min_acu(cluster)
        per_acu = _price("aurora_serverless_v2_acu_hour", "acu")
        total = acu * per_acu * _hours()
        basis = (
            f"Serverless v2 at its minimum {acu:g} ACU x {_hours():g} h x {_money(per_acu)} (more under load)"
        )
        if math.isnan(total):
            return Cost(
                r.name, r.type, 0.0, "price unknown: the cluster's minimum capacity is not known", True
            )
        return Cost(r.name, r.type, total, basis)
    hourly = _price("aurora_mysql_instance_hour", cls)
    if math.isnan(hourly):
        return Cost(
            r.name, r.type, 0.0, f"price unknown for Aurora {cls}: not in plan/prices.toml", unknown=True
        )
    return Cost(r.name, r.type, hourly * _hours(), f"Aurora {cls}: {_hours():g} h x {_money(hourly)}")


def _proxy(r: Resource, index: _Index) -> Cost:
    """Billed per vCPU of the target's instances (2 minimum); Serverless v2 per ACU (8 minimum)."""
    vcpus, acus, parts = 0.0, 0.0, []
    for target in index.proxy_targets(r):
        if target.inputs.get("dbInstanceIdentifier") is not None:
            inst = index.instance(target.inputs["dbInstanceIdentifier"])
            if inst is not None:
                cls = str(inst.inputs.get("instanceClass"))
                vcpus += float(prices()["vcpus"].get(cls, math.nan))
                parts.append(cls)  # a Multi-AZ standby is not a proxy target: not counted
        elif target.inputs.get("dbClusterIdentifier") is not None:
            cluster = index.cluster(target.inputs["dbClusterIdentifier"])
            if cluster is not None and _is_multi_az_cluster(cluster):
                cls = str(cluster.inputs["dbClusterInstanceClass"])
                vcpus += 3 * float(prices()["vcpus"].get(cls, math.nan))
                parts.append(f"3 x {cls}")
            elif cluster is not None:
                for member in index.cluster_instances(cluster):
                    cls = str(member.inputs.get("instanceClass"))
                    if cls == "db.serverless":
                        acus += _min_acu(cluster)
                        parts.append(f"serverless {_min_acu(cluster):g} ACU")
                    else:
                        vcpus += float(prices()["vcpus"].get(cls, math.nan))
                        parts.append(cls)
    if not parts:
        return Cost(r.name, r.type, 0.0, "no target registered: RDS Proxy bills nothing without one")
    if math.isnan(vcpus) or math.isnan(acus):
        return Cost(
            r.name, r.type, 0.0, f"price unknown: vCPUs of {', '.join(parts)} not in plan/prices.toml", True
        )
    total, basis = 0.0, []
    if vcpus:
        billed = max(vcpus, _price("rds_proxy", "min_vcpus"))
        total += billed * _price("rds_proxy", "vcpu_hour") * _hours()
        basis.append(
            f"{billed:g} vCPU (min {_price('rds_proxy', 'min_vcpus'):g}) x {_money(_price('rds_proxy', 'vcpu_hour'))}/h"
        )
    if acus:
        billed = max(acus, _price("rds_proxy", "min_acus"))
        total += billed * _price("rds_proxy", "acu_hour") * _hours()
        basis.append(
            f"{billed:g} ACU (min {_price('rds_proxy', 'min_acus'):g}) x {_money(_price('rds_proxy', 'acu_hour'))}/h"
        )
    return Cost(r.name, r.type, total, f"target {', '.join(parts)}: " + " + ".join(basis))


def _per_az_hour(r: Resource, subnets_key: str, what: str) -> Cost:
    azs = len(r.inputs.get(subnets_key) or [])
    per = _price("privatelink", "az_hour")
    return Cost(
        r.name,
        r.type,
        azs * per * _hours(),
        f"{what}: {azs} AZ x {_hours():g} h x {_money(per)} (+ data processed)",
    )


def _is_insights_query(query: Any) -> bool:
    expression = query.get("expression") if isinstance(query, dict) else None
    return isinstance(expression, str) and expression.lstrip().upper().startswith("SELECT")


def _alarm(r: Resource) -> Cost:
    queries = r.inputs.get("metricQueries") or []
    if any(_is_insights_query(q) for q in queries):
        # Billed per metric its query analyzes, which only AWS knows: counted as one (the least it can be).
        per = _price("cloudwatch", "insights_alarm_metric_month")
        return Cost(r.name, r.type, per, f"Metrics Insights alarm, >= 1 metric analyzed x {_money(per)}")
    per = _price("cloudwatch", "alarm_metric_month")
    metrics = sum(1 for q in queries if q.get("metric")) if queries else 1
    what = f"metric math reading {metrics} metrics" if queries else "1 metric"
    return Cost(r.name, r.type, metrics * per, f"alarm, {what} x {_money(per)}")


def _cost(r: Resource, index: _Index, dashboards_seen: list[str]) -> Cost:
    t = r.type
    if t == "aws:rds/instance:Instance":
        return _instance(r)
    if t == "aws:rds/cluster:Cluster":
        return _cluster(r, index)
    if t == "aws:rds/clusterInstance:ClusterInstance":
        return _cluster_instance(r, index)
    if t == "aws:rds/proxy:Proxy":
        return _proxy(r, index)
    if t == "aws:rds/proxyEndpoint:ProxyEndpoint":
        return _per_az_hour(r, "vpcSubnetIds", "extra proxy endpoint")
    if t == "aws:ec2/vpcEndpoint:VpcEndpoint":
        if (r.inputs.get("vpcEndpointType") or "Gateway") != "Interface":
            return Cost(r.name, r.type, 0.0, f"{FREE} (gateway endpoint)")
        return _per_az_hour(r, "subnetIds", "interface endpoint")
    if t == "aws:secretsmanager/secret:Secret":
        copies = 1 + len(r.inputs.get("replicas") or [])
        per = _price("secrets_manager", "secret_month")
        what = f"1 secret + {copies - 1} replica(s)" if copies > 1 else "1 secret"
        return Cost(r.name, r.type, copies * per, f"{what} x {_money(per)} (+ API calls)")
    if t in ("aws:kms/key:Key", "aws:kms/replicaKey:ReplicaKey"):
        per = _price("kms", "customer_key_month")
        return Cost(r.name, r.type, per, f"customer-managed key {_money(per)} (+ requests)")
    if t == "aws:cloudwatch/metricAlarm:MetricAlarm":
        return _alarm(r)
    if t == "aws:cloudwatch/dashboard:Dashboard":
        dashboards_seen.append(r.name)
        free = int(_price("cloudwatch", "free_dashboards"))
        if len(dashboards_seen) <= free:
            return Cost(
                r.name, r.type, 0.0, f"one of the account's {free} free dashboards (if it has no others)"
            )
        per = _price("cloudwatch", "dashboard_month")
        return Cost(r.name, r.type, per, f"dashboard beyond the {free} free ones x {_money(per)}")
    if t == "aws:route53/zone:Zone":
        per = _price("route53", "hosted_zone_month")
        return Cost(r.name, r.type, per, f"hosted zone {_money(per)} (+ queries)")
    if t in USAGE_BASED:
        return Cost(r.name, r.type, 0.0, f"{USAGE}: {USAGE_BASED[t]}")
    if t in NO_CHARGE:
        return Cost(r.name, r.type, 0.0, FREE)
    return Cost(r.name, r.type, 0.0, "not in the cost model (plan/costs.py): counted as 0", unknown=True)


def estimate(resources: Sequence[Resource], region: str | None) -> Estimate:
    """Monthly cost of each custom resource, and what the estimate assumes."""
    index = _Index(resources)
    dashboards: list[str] = []
    costs = [_cost(r, index, dashboards) for r in resources if r.custom]
    notes = [
        f"Fixed monthly charges at {PRICE_REGION} on-demand list prices ({_hours():g} h/month, "
        "plan/prices.toml); usage-based charges count as 0."
    ]
    if region and region != PRICE_REGION:
        notes.append(f"The stack is in {region}; the estimate assumes {PRICE_REGION} prices.")
    if any(c.unknown for c in costs):
        notes.append("Resources marked 'price unknown' are left out of the total.")
    return Estimate(costs=costs, notes=notes)


def for_run(run: ProgramRun, region: str | None) -> Estimate:
    return estimate(run.resources, region)


def _short(type_: str) -> str:
    pkg, mod, name = type_.split(":")
    return f"{mod.split('/')[0]}.{name}" if pkg == "aws" else f"{pkg}.{name}"


def text(est: Estimate) -> str:
    """The cost section of `make plan`: a table of what costs (or may cost) something, and the total."""
    import io

    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False, show_edge=False, header_style="", padding=(0, 2, 0, 0))
    table.add_column("resource")
    table.add_column("type")
    table.add_column("USD/month", justify="right")
    table.add_column("basis")
    free = 0
    for c in est.costs:
        if c.basis == FREE:
            free += 1
            continue
        amount = "?" if c.unknown else f"{c.monthly_usd:,.2f}"
        table.add_row(c.name, _short(c.type), amount, c.basis)
    out = io.StringIO()
    Console(file=out, width=200, no_color=True, highlight=False, soft_wrap=True).print(table)
    lines = ["Estimated monthly cost:"]
    lines += ["  " + line.rstrip() for line in out.getvalue().splitlines()]
    lines.append(f"  ({free} more resources: {FREE})")
    lines.append(f"  Total: ${est.total:,.2f} per month (estimate)")
    lines += [f"  {note}" for note in est.notes]
    return "\n".join(lines)


def markdown(stacks: Sequence[tuple[str, Estimate]]) -> str:
    """A README table: one row per resource that costs something, one column per stack."""
    rows: dict[str, dict[str, Cost]] = {}
    for stack, est in stacks:
        for c in est.costs:
            if c.basis != FREE:
                rows.setdefault(c.name, {})[stack] = c
    names = [s for s, _ in stacks]
    # One basis per row, the last stack's: the header says whose, or dev's row would read "Multi-AZ (x2)".
    lines = ["| resource | " + " | ".join(f"{s} (USD/month)" for s in names) + f" | basis ({names[-1]}) |"]
    lines.append("|---|" + "---:|" * len(names) + "---|")
    for name, by_stack in rows.items():
        cells = [
            ("?" if by_stack[s].unknown else f"{by_stack[s].monthly_usd:,.2f}") if s in by_stack else "-"
            for s in names
        ]
        basis = by_stack[names[-1]].basis if names[-1] in by_stack else next(iter(by_stack.values())).basis
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {basis} |")
    lines.append("| **total** | " + " | ".join(f"**{est.total:,.2f}**" for _, est in stacks) + " | |")
    return "\n".join(lines)
