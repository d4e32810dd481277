"""Turn a ProgramRun into what reviewers read: resource tree, critical path, JSON, Mermaid, stack diff."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pulumi

from plan import costs
from plan.engine import ROOT, ProgramRun, Resource, SecretValue

AFTER_DEPLOY = "(known after deploy)"

# Typical creation times, in minutes. RDS MySQL and RDS Proxy: the AWS recipe this project hardens
# ("10-15 minutes" for the instance, "3-5 minutes" for the proxy) and the RDS user guide; target
# registration and a VPC Lambda (its Hyperplane ENI): about a minute each in AWS's Lambda/RDS docs.
# Everything else creates in seconds and counts as 0. Estimates, not measurements.
MINUTES = {
    "aws:rds/instance:Instance": 12.0,
    "aws:rds/proxy:Proxy": 4.0,
    "aws:rds/proxyTarget:ProxyTarget": 1.0,
    "aws:lambda/function:Function": 1.0,
    # Read scaling. AWS publishes no creation times for these; estimates, not measurements: an Aurora
    # instance like the recipe's RDS instance (10-15 min), the Aurora cluster resource a few minutes before
    # any instance exists (a Multi-AZ DB cluster builds its three instances inside this one resource and
    # takes longer than this), a proxy endpoint like the proxy's own network setup (3-5 min).
    "aws:rds/cluster:Cluster": 5.0,
    "aws:rds/clusterInstance:ClusterInstance": 10.0,
    "aws:rds/proxyEndpoint:ProxyEndpoint": 3.0,
}

# The settings reviewers look at, per resource type (camelCase input names).
KEY_SETTINGS: Mapping[str, tuple[str, ...]] = {
    "aws:ec2/vpc:Vpc": ("cidrBlock", "enableDnsSupport", "enableDnsHostnames"),
    "aws:ec2/subnet:Subnet": ("cidrBlock", "availabilityZoneId", "mapPublicIpOnLaunch"),
    "aws:ec2/securityGroup:SecurityGroup": ("description",),
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": ("ingress", "egress"),
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": (
        "ipProtocol", "fromPort", "toPort", "referencedSecurityGroupId", "description"),
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": (
        "ipProtocol", "fromPort", "toPort", "referencedSecurityGroupId", "description"),
    "aws:rds/subnetGroup:SubnetGroup": ("subnetIds",),
    "random:index/randomPassword:RandomPassword": ("length", "overrideSpecial"),
    "aws:secretsmanager/secret:Secret": ("kmsKeyId",),
    "aws:secretsmanager/secretVersion:SecretVersion": ("secretString",),
    "aws:iam/role:Role": ("assumeRolePolicy",),
    "aws:iam/rolePolicy:RolePolicy": ("policy",),
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": ("policyArn",),
    "aws:rds/instance:Instance": (
        "engine", "engineVersion", "instanceClass", "allocatedStorage", "storageType", "storageEncrypted",
        "publiclyAccessible", "multiAz", "backupRetentionPeriod", "deletionProtection", "skipFinalSnapshot",
        "dbName", "username", "password"),
    "aws:cloudwatch/logGroup:LogGroup": ("name", "retentionInDays"),
    "aws:rds/proxy:Proxy": ("name", "engineFamily", "requireTls", "idleClientTimeout", "debugLogging", "auths"),
    "aws:rds/proxyDefaultTargetGroup:ProxyDefaultTargetGroup": ("connectionPoolConfig",),
    "aws:rds/proxyTarget:ProxyTarget": ("dbInstanceIdentifier", "dbClusterIdentifier"),
    "aws:rds/cluster:Cluster": (
        "engine", "engineVersion", "dbClusterInstanceClass", "storageType", "allocatedStorage",
        "storageEncrypted", "publiclyAccessible", "backupRetentionPeriod", "deletionProtection",
        "skipFinalSnapshot", "serverlessv2ScalingConfiguration", "databaseName", "masterUsername",
        "masterPassword"),
    "aws:rds/clusterInstance:ClusterInstance": (
        "engine", "engineVersion", "instanceClass", "publiclyAccessible"),
    "aws:rds/proxyEndpoint:ProxyEndpoint": ("dbProxyEndpointName", "targetRole"),
    "aws:lambda/function:Function": ("name", "runtime", "handler", "timeout", "memorySize", "environment"),
    "aws:kms/key:Key": ("enableKeyRotation", "policy"),
    "aws:kms/alias:Alias": ("name",),
    "aws:sns/topic:Topic": ("name", "kmsMasterKeyId"),
    "aws:sns/topicSubscription:TopicSubscription": ("protocol", "endpoint"),
    "aws:cloudwatch/metricAlarm:MetricAlarm": (
        "name", "namespace", "metricName", "dimensions", "statistic", "metricQueries", "comparisonOperator",
        "threshold", "treatMissingData"),
    "aws:rds/eventSubscription:EventSubscription": ("name", "sourceType", "sourceIds"),
    "aws:cloudwatch/dashboard:Dashboard": ("dashboardName",),
}  # fmt: skip


def shown(value: Any, invented: Mapping[str, str]) -> Any:
    """A value as a reviewer should see it: secrets hidden, values AWS assigns at deploy marked as such."""
    if isinstance(value, SecretValue):
        return "[secret]"
    if isinstance(value, pulumi.FileArchive):
        return f"archive {Path(value.path).resolve().relative_to(ROOT)}"
    if isinstance(value, dict):
        return {k: shown(v, invented) for k, v in value.items()}
    if isinstance(value, list):
        return [shown(v, invented) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)  # the engine hands every number over as a float
    if isinstance(value, str):
        if value.lstrip().startswith("{"):
            try:
                return shown(json.loads(value), invented)
            except json.JSONDecodeError:
                pass
        if value in invented:
            return AFTER_DEPLOY
        for token in sorted(invented, key=len, reverse=True):
            value = value.replace(token, "<after deploy>")
    return value


def planned_inputs(run: ProgramRun, resource: Resource) -> dict[str, Any]:
    return shown(resource.inputs, run.invented)


def policy_resources(run: ProgramRun) -> list[dict[str, Any]]:
    """The run's resources as the policy pack's `evaluate` reads them (URNs and dependencies for the
    stack-level rules: a VPC's flow log is another resource that depends on it)."""
    return [
        {
            "type": r.type,
            "name": r.name,
            "inputs": planned_inputs(run, r),
            "urn": r.urn,
            "dependencies": sorted(run.waits_for(r)),
        }
        for r in run.resources
    ]


def critical_path(run: ProgramRun) -> tuple[float, list[Resource]]:
    """Longest chain of creation times through the dependency graph (resources in one chain wait in turn)."""
    memo: dict[str, tuple[float, list[Resource]]] = {}

    def longest(resource: Resource) -> tuple[float, list[Resource]]:
        if resource.urn not in memo:
            best: tuple[float, list[Resource]] = (0.0, [])
            for dep in run.waits_for(resource):
                candidate = longest(run.by_urn(dep))
                if candidate[0] > best[0]:
                    best = candidate
            memo[resource.urn] = (best[0] + MINUTES.get(resource.type, 0.0), [*best[1], resource])
        return memo[resource.urn]

    ends = [longest(r) for r in run.resources if r.custom]
    return max(ends, key=lambda e: e[0], default=(0.0, []))


def _short(type_: str) -> str:
    """`aws:rds/proxy:Proxy` → `rds.Proxy`."""
    pkg, mod, name = type_.split(":")
    return f"{mod.split('/')[0]}.{name}" if pkg == "aws" else f"{pkg}.{name}"


def text(run: ProgramRun, violations: list[Any]) -> str:
    lines = [f"Plan for stack {run.stack!r} (offline: Pulumi mocks, no AWS calls)", ""]
    children: dict[str | None, list[Resource]] = {}
    for r in run.resources:
        children.setdefault(r.parent, []).append(r)
    roots = [r for r in run.resources if r.parent not in {x.urn for x in run.resources}]

    def walk(resource: Resource, depth: int) -> None:
        pad = "  " * depth
        flag = "  [protected]" if resource.protect else ""
        lines.append(f"{pad}{'+ ' if resource.custom else ''}{_short(resource.type)}  {resource.name}{flag}")
        inputs = planned_inputs(run, resource)
        for key in KEY_SETTINGS.get(resource.type, ()):
            if key in inputs:
                lines.append(f"{pad}    {key}: {json.dumps(inputs[key], sort_keys=True)}")
        for child in children.get(resource.urn, []):
            walk(child, depth + 1)

    for root in roots:
        walk(root, 0)
    minutes, path = critical_path(run)
    lines += ["", "Outputs:"]
    lines += [f"  {k}: {json.dumps(shown(v, run.invented))}" for k, v in run.exports.items()]
    lines += [
        "",
        f"Critical path: ~{minutes:g} min  ("
        + " -> ".join(f"{r.name} {MINUTES.get(r.type, 0):g}m" for r in path if r.type in MINUTES)
        + ")",
        "  Estimates from AWS's typical creation times (RDS ~12, proxy ~4, target ~1, Lambda ~1 min).",
        "",
    ]
    if violations:
        lines.append(f"Policy violations ({len(violations)}):")
        lines += [f"  [{v.rule}] {v.resource} ({v.type}): {v.message}" for v in violations]
    else:
        lines.append("Policy pack: 0 violations.")
    return "\n".join(lines)


def as_json(
    run: ProgramRun, violations: list[Any], errors: list[str], estimate: costs.Estimate | None = None
) -> dict[str, Any]:
    minutes, path = critical_path(run) if not errors else (0.0, [])
    names = {r.urn: r.name for r in run.resources}
    cost_of = {c.name: c for c in estimate.costs} if estimate is not None else {}
    return {
        "stack": run.stack,
        "resources": [
            {
                "type": r.type,
                "name": r.name,
                "parent": names.get(r.parent or ""),
                "custom": r.custom,
                "protect": r.protect,
                "depends_on": sorted(names[d] for d in r.dependencies if d in names),
                "inputs": planned_inputs(run, r),
                **(
                    {
                        "monthly_cost_usd": round(cost_of[r.name].monthly_usd, 2),
                        "cost_basis": cost_of[r.name].basis,
                    }
                    if r.name in cost_of
                    else {}
                ),
            }
            for r in run.resources
        ],
        "outputs": shown(run.exports, run.invented),
        "errors": errors,
        "violations": [
            {"rule": v.rule, "resource": v.resource, "type": v.type, "message": v.message} for v in violations
        ],
        "critical_path_minutes": minutes,
        "critical_path": [r.name for r in path if r.type in MINUTES],
        "warnings": list(run.warnings),
        "notes": list(run.notes) + (estimate.notes if estimate is not None else []),
        "monthly_cost_total_usd": estimate.total if estimate is not None else None,
    }


def _node_id(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


# Resources drawn in the architecture diagram: what a reader of the README needs, not every rule.
DIAGRAM_TYPES = (
    "aws:ec2/vpc:Vpc", "aws:ec2/subnet:Subnet", "aws:ec2/securityGroup:SecurityGroup",
    "aws:rds/subnetGroup:SubnetGroup", "aws:secretsmanager/secret:Secret", "aws:iam/role:Role",
    "aws:rds/instance:Instance", "aws:rds/proxy:Proxy", "aws:rds/proxyDefaultTargetGroup:ProxyDefaultTargetGroup",
    "aws:rds/proxyTarget:ProxyTarget", "aws:cloudwatch/logGroup:LogGroup", "aws:lambda/function:Function",
)  # fmt: skip


def mermaid(run: ProgramRun) -> str:
    """Components as subgraphs, chosen resources as nodes, edges from the recorded dependency graph."""
    drawn = [r for r in run.resources if r.type in DIAGRAM_TYPES]
    drawn_urns = {r.urn for r in drawn}
    by_urn = {r.urn: r for r in run.resources}
    lines = ["flowchart LR"]
    for component in (r for r in run.resources if not r.custom):
        members = [r for r in drawn if r.parent == component.urn]
        if not members:
            continue
        lines.append(f'  subgraph {_node_id(component.name)}["{component.type.split(":")[-1]}"]')
        lines += [f'    {_node_id(r.name)}["{_short(r.type)}<br/>{r.name}"]' for r in members]
        lines.append("  end")

    def nearest_drawn(urn: str, seen: set[str]) -> set[str]:
        """Drawn resources reached through `urn`, looking through undrawn ones (rules, policies)."""
        if urn in drawn_urns:
            return {urn}
        found: set[str] = set()
        for dep in by_urn[urn].dependencies if urn in by_urn else ():
            if dep not in seen:
                seen.add(dep)
                found |= nearest_drawn(dep, seen)
        return found

    edges = sorted(
        {
            (by_urn[dep].name, r.name)
            for r in drawn
            for direct in r.dependencies
            for dep in nearest_drawn(direct, set())
            if dep != r.urn
        }
    )
    lines += [f"  {_node_id(a)} --> {_node_id(b)}" for a, b in edges]
    return "\n".join(lines)


def diff(base: ProgramRun, other: ProgramRun) -> list[str]:
    """What changes when switching from `base`'s plan to `other`'s, resource by resource."""

    def index(run: ProgramRun) -> dict[str, tuple[dict[str, Any], bool]]:
        return {r.name: (planned_inputs(run, r), r.protect) for r in run.resources}

    a, b = index(base), index(other)
    lines: list[str] = []
    for name in sorted(a.keys() | b.keys()):
        if name not in b:
            lines.append(f"- {name} (only in {base.stack})")
            continue
        if name not in a:
            lines.append(f"+ {name} (only in {other.stack})")
            continue
        (ia, pa), (ib, pb) = a[name], b[name]
        changes = [
            f"    {key}: {json.dumps(ia.get(key))} -> {json.dumps(ib.get(key))}"
            for key in sorted(ia.keys() | ib.keys())
            if ia.get(key) != ib.get(key)
        ]
        if pa != pb:
            changes.append(f"    protect: {json.dumps(pa)} -> {json.dumps(pb)}")
        if changes:
            lines.append(f"~ {name}")
            lines += changes
    return lines


def cost_change(base: costs.Estimate | None, other: costs.Estimate | None) -> float | None:
    """Monthly total of `other` minus `base` (None when either plan failed)."""
    if base is None or other is None:
        return None
    return round(other.total - base.total, 2)


def cost_diff_lines(
    base: costs.Estimate | None, other: costs.Estimate | None, base_name: str, other_name: str
) -> list[str]:
    """The cost part of `--diff`: each resource whose monthly estimate changes, and the totals."""
    if base is None or other is None:
        return []
    a = {c.name: c.monthly_usd for c in base.costs}
    b = {c.name: c.monthly_usd for c in other.costs}
    lines = ["", f"Estimated monthly cost, {base_name} -> {other_name} (USD):"]
    for name in sorted(a.keys() | b.keys()):
        before, after = a.get(name, 0.0), b.get(name, 0.0)
        if round(before, 2) != round(after, 2):
            lines.append(f"  ~ {name}: {before:,.2f} -> {after:,.2f} ({after - before:+,.2f})")
    change = other.total - base.total
    lines.append(f"  total: {base.total:,.2f} -> {other.total:,.2f} ({change:+,.2f})")
    return lines
