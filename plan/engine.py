"""Run the Pulumi program under mocks and record what it declares: no AWS, no Pulumi CLI, no network.

Used by the unit tests and by `make plan`. The mocks answer like AWS would (ids, ARNs, endpoints shaped
like the real ones) so every `apply` in the program runs; every value they make up is remembered, so
the plan can show it as "known after deploy" instead of presenting an invented value as fact.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import runpy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc, settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from plan.zones import zones_for

ROOT = Path(__file__).resolve().parent.parent
PROGRAM = ROOT / "__main__.py"
ACCOUNT = "123456789012"
# The provider's words when no region is configured (hashicorp/aws-sdk-go-base, which pulumi-aws builds on;
# the same text is asserted in Terraform's S3 backend tests). pulumi-aws takes `aws:region`, else the
# AWS_REGION / AWS_DEFAULT_REGION environment variables (pulumi_aws/config/vars.py, `region`). The second
# sentence is the plan's own hint.
MISSING_REGION = (
    'Missing region value: The "region" attribute or the "AWS_REGION" or "AWS_DEFAULT_REGION" environment '
    "variables must be set. Set it with `pulumi config set aws:region <region>` (e.g. us-east-1)."
)


class SecretValue:
    """A value the program marked secret: kept for assertions, never printed."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "[secret]"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretValue) and other.value == self.value

    def __hash__(self) -> int:
        return hash(repr(self))


def _unwrap(value: Any) -> Any:
    if rpc.is_rpc_secret(value):
        return SecretValue(_unwrap(value["value"]))
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value


@dataclass
class Resource:
    """One declared resource as the engine saw it."""

    urn: str
    type: str
    name: str
    parent: str | None
    custom: bool
    inputs: dict[str, Any]
    dependencies: set[str] = field(default_factory=set)
    """URNs this resource waits for (depends_on and every input's source)."""
    protect: bool = False
    replace_with: list[str] = field(default_factory=list)
    ignore_changes: list[str] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    id: str | None = None
    aliases: list[dict[str, Any]] = field(default_factory=list)
    """The registration's `aliases`, each {"urn": ...} or a spec {"name", "type", "stack", "project",
    "parentUrn", "noParent"} (empty strings: the resource's own value, as the engine reads them)."""


@dataclass
class Invoke:
    token: str
    args: dict[str, Any]


@dataclass
class ProgramRun:
    """Everything one run of the program declared."""

    stack: str
    resources: list[Resource]
    invokes: list[Invoke]
    exports: dict[str, Any]
    secret_exports: set[str]
    invented: dict[str, str]
    """Values the mocks made up (ids, ARNs, generated names) → what they stand for."""
    error: BaseException | None = None
    project: str = "rds-proxy"
    warnings: list[str] = field(default_factory=list)
    """What the program logged with `pulumi.warn` (the CLI shows these as `warning:` diagnostics)."""
    notes: list[str] = field(default_factory=list)
    """What the offline run could not check (e.g. the AZs of a region not in plan/zones.py)."""

    def by_type(self, type_: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str) -> Resource:
        found = self.by_type(type_)
        assert len(found) == 1, f"expected one {type_}, found {[r.name for r in found]}"
        return found[0]

    def named(self, name: str) -> Resource:
        return next(r for r in self.resources if r.name == name)

    def by_urn(self, urn: str) -> Resource:
        return next(r for r in self.resources if r.urn == urn)

    def qualified_type(self, resource: Resource) -> str:
        """The type part of the real URN: every ancestor component's type, `$`-joined (the mock monitor
        keeps only the parent's type). The root stack is not part of it, as in Pulumi."""
        parent = next((r for r in self.resources if r.urn == resource.parent), None)
        return resource.type if parent is None else f"{self.qualified_type(parent)}${resource.type}"

    def real_urn(self, resource: Resource, *, name: str | None = None, type_: str | None = None) -> str:
        return f"urn:pulumi:{self.stack}::{self.project}::{type_ or self.qualified_type(resource)}::{name or resource.name}"

    def alias_urns(self, resource: Resource) -> set[str]:
        """The real URNs `resource` answers to besides its own (its aliases, resolved as the engine does)."""
        found = set()
        for alias in resource.aliases:
            if "urn" in alias:
                found.add(alias["urn"])
                continue
            type_ = alias.get("type") or resource.type
            if alias.get("noParent"):
                qualified = type_
            else:
                parent_urn = alias.get("parentUrn") or resource.parent
                parent = next((r for r in self.resources if r.urn == parent_urn), None)
                qualified = type_ if parent is None else f"{self.qualified_type(parent)}${type_}"
            found.add(self.real_urn(resource, name=alias.get("name") or resource.name, type_=qualified))
        return found

    def waits_for(self, resource: Resource) -> set[str]:
        """URNs `resource` waits for: its dependencies and its parent (a child registers only once its
        parent component has, and a component with depends_on registers only after those finish)."""
        recorded = {r.urn for r in self.resources}
        parent = {resource.parent} if resource.parent in recorded else set()
        return resource.dependencies | parent

    def depends_on(self, resource: Resource, other: Resource) -> bool:
        """True when `resource` waits for `other`, directly or through other resources or its parents."""
        seen: set[str] = set()
        todo = [resource.urn]
        while todo:
            urn = todo.pop()
            for dep in self.waits_for(self.by_urn(urn)):
                if dep == other.urn:
                    return True
                if dep not in seen:
                    seen.add(dep)
                    todo.append(dep)
        return False


Answer = Callable[["Registration"], tuple[str, dict[str, Any]]]
"""How the mocks answer one resource type: the resource's id and the outputs AWS would add to its inputs."""


@dataclass(frozen=True)
class Registration:
    """One custom resource being registered, with helpers that remember every value they make up."""

    type: str
    name: str
    inputs: Mapping[str, Any]
    region: str
    invented: dict[str, str]
    zone_names: Mapping[str, str] = field(default_factory=dict)
    """AZ ID → AZ name, as the region's getAvailabilityZones answer gave them."""

    @property
    def h(self) -> str:
        """A stable per-name hex suffix, so plans don't change between runs."""
        return _suffix(self.name)

    def make(self, value: str, output: str) -> str:
        """Remember `value` as a stand-in for this resource's `output`, known only after deploy."""
        self.invented[value] = f"{self.name}.{output}"
        return value

    def auto_name(self, key: str = "name") -> str:
        """The `key` input if given, else a name with a random-looking suffix, as Pulumi's auto-naming."""
        if self.inputs.get(key):
            return str(self.inputs[key])
        return self.make(f"{self.name}-{self.h[:7]}", key)

    def arn(self, service: str, resource: str, output: str = "arn") -> str:
        return self.make(f"arn:aws:{service}:{self.region}:{ACCOUNT}:{resource}", output)


def _suffix(name: str, n: int = 17) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:n]


def _kebab(camel: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", camel).lower()


def generic(r: Registration) -> tuple[str, dict[str, Any]]:
    """Any type without an entry: an id, a name (the `name` input, else invented) and, for an AWS type,
    an ARN in the type's service, e.g. aws:sqs/queue:Queue → arn:aws:sqs:<region>:<account>:queue/<name>."""
    rid = r.make(f"{r.name}-{r.h[:8]}", "id")
    out: dict[str, Any] = {"name": r.auto_name()}
    package, _, module_member = r.type.partition(":")
    service, _, member = module_member.partition(":")[0].partition("/")
    if package == "aws" and member:
        region = "" if service == "iam" else r.region  # IAM is global: its ARNs name no region
        arn = f"arn:aws:{service}:{region}:{ACCOUNT}:{_kebab(member)}/{out['name']}"
        out["arn"] = r.make(arn, "arn")
    return rid, out


def _id_only(r: Registration) -> tuple[str, dict[str, Any]]:
    """Types with no name or ARN of their own, whose computed outputs the program doesn't read."""
    return r.make(f"{r.name}-{r.h[:8]}", "id"), {}


def _prefixed_id(prefix: str) -> Answer:
    """Resources known only by an id like vpc-0a1b…, with no other computed output the program reads."""
    return lambda r: (r.make(f"{prefix}-{r.h}", "id"), {})


def _vpc(r: Registration) -> tuple[str, dict[str, Any]]:
    vpc = r.make(f"vpc-{r.h}", "id")
    return vpc, {"arn": r.arn("ec2", f"vpc/{vpc}")}


def _cfn_stack(r: Registration) -> tuple[str, dict[str, Any]]:
    # A Serverless Application Repository stack: AWS prefixes its name with serverlessrepo-; the rotation
    # applications export the function's ARN as RotationLambdaARN.
    name = f"serverlessrepo-{r.inputs['name']}"
    function = str((r.inputs.get("parameters") or {}).get("functionName", r.name))
    return r.arn("cloudformation", f"stack/{name}/{r.h}", "id"), {
        "outputs": {"RotationLambdaARN": r.arn("lambda", f"function:{function}", "outputs.RotationLambdaARN")}
    }


def _subnet(r: Registration) -> tuple[str, dict[str, Any]]:
    zone_id = r.inputs.get("availabilityZoneId")
    return r.make(f"subnet-{r.h}", "id"), {"availabilityZone": r.zone_names.get(str(zone_id))}


def _vpc_endpoint(r: Registration) -> tuple[str, dict[str, Any]]:
    vpce = r.make(f"vpce-{r.h}", "id")
    service = str(r.inputs.get("serviceName", "")).rsplit(".", 1)[-1]
    zone = r.make(f"Z{r.h[:13].upper()}", "dnsEntries.hostedZoneId")
    entries = [
        {
            "dnsName": r.make(f"{vpce}-{r.h[:8]}.{service}.{r.region}.vpce.amazonaws.com", "dnsEntries"),
            "hostedZoneId": zone,
        }
    ]
    if r.inputs.get("privateDnsEnabled"):  # the service's own name then resolves to the endpoint too
        entries.append({"dnsName": f"{service}.{r.region}.amazonaws.com", "hostedZoneId": zone})
    return vpce, {"dnsEntries": entries, "arn": r.arn("ec2", f"vpc-endpoint/{vpce}")}


def _subnet_group(r: Registration) -> tuple[str, dict[str, Any]]:
    name = r.auto_name()
    return name, {"name": name, "arn": r.arn("rds", f"subgrp:{name}")}


def _random_password(r: Registration) -> tuple[str, dict[str, Any]]:
    # Shaped like the real result (length, allowed specials) so downstream checks are honest.
    specials = r.inputs.get("overrideSpecial") or "!@#$%&*()-_=+[]{}<>:?"
    alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789" + specials
    digest = hashlib.sha256((r.name + "pw").encode()).digest() * 4
    result = "".join(alphabet[b % len(alphabet)] for b in digest[: int(r.inputs.get("length", 16))])
    return r.make(f"none-{r.h}", "id"), {"result": result}


def _random_id(r: Registration) -> tuple[str, dict[str, Any]]:
    raw = hashlib.sha256((r.name + "id").encode()).digest()[: int(r.inputs.get("byteLength", 8))]
    hex_ = r.make(raw.hex(), "hex")
    b64 = r.make(base64.urlsafe_b64encode(raw).decode().rstrip("="), "b64Url")
    return b64, {
        "hex": hex_,
        "b64Url": b64,
        "b64Std": base64.b64encode(raw).decode(),
        "dec": str(int(hex_, 16)),
    }


def _secret(r: Registration) -> tuple[str, dict[str, Any]]:
    name = r.auto_name()
    arn = r.arn("secretsmanager", f"secret:{name}-{r.h[:6]}")
    return arn, {"name": name, "arn": arn}


def _role(r: Registration) -> tuple[str, dict[str, Any]]:
    name = r.auto_name()  # IAM is global: its ARNs have no region
    return name, {"name": name, "arn": r.make(f"arn:aws:iam::{ACCOUNT}:role/{name}", "arn")}


def _role_policy(r: Registration) -> tuple[str, dict[str, Any]]:
    name = r.auto_name()
    return f"{r.inputs.get('role')}:{name}", {"name": name}


def _db_instance(r: Registration) -> tuple[str, dict[str, Any]]:
    ident = r.auto_name("identifier")
    resource_id = r.make(f"db-{r.h[:26].upper()}", "resourceId")  # pulumi-aws ≥ 6: the id is the resource id
    address = r.make(f"{ident}.c{r.h[:11]}.{r.region}.rds.amazonaws.com", "address")
    return resource_id, {
        "identifier": ident,
        "resourceId": resource_id,
        "address": address,
        "endpoint": f"{address}:{int(r.inputs.get('port', 3306))}",
        "arn": r.arn("rds", f"db:{ident}"),
    }


def _default_port(r: Registration) -> int:
    return int(r.inputs.get("port") or (5432 if "postgres" in str(r.inputs.get("engine", "")) else 3306))


def _db_cluster(r: Registration) -> tuple[str, dict[str, Any]]:
    ident = r.auto_name("clusterIdentifier")
    host = f"c{r.h[:11]}.{r.region}.rds.amazonaws.com"
    return ident, {
        "clusterIdentifier": ident,
        "endpoint": r.make(f"{ident}.cluster-{host}", "endpoint"),
        "readerEndpoint": r.make(f"{ident}.cluster-ro-{host}", "readerEndpoint"),
        "arn": r.arn("rds", f"cluster:{ident}"),
        "clusterResourceId": r.make(f"cluster-{_suffix(r.name, 26).upper()}", "clusterResourceId"),
        "port": _default_port(r),
    }


def _db_cluster_instance(r: Registration) -> tuple[str, dict[str, Any]]:
    ident = r.auto_name("identifier")
    return ident, {
        "identifier": ident,
        # A cluster instance's `endpoint` is its DNS address alone, without the port (provider docs).
        "endpoint": r.make(f"{ident}.c{r.h[:11]}.{r.region}.rds.amazonaws.com", "endpoint"),
        "arn": r.arn("rds", f"db:{ident}"),
        "dbiResourceId": r.make(f"db-{_suffix(r.name, 26).upper()}", "dbiResourceId"),
    }


def _proxy(r: Registration) -> tuple[str, dict[str, Any]]:
    name = str(r.inputs["name"])
    return name, {
        "arn": r.arn("rds", f"db-proxy:{r.make(f'prx-{r.h}', 'resourceId')}"),
        "endpoint": r.make(f"{name}.proxy-c{r.h[:11]}.{r.region}.rds.amazonaws.com", "endpoint"),
    }


def _proxy_endpoint(r: Registration) -> tuple[str, dict[str, Any]]:
    name = str(r.inputs["dbProxyEndpointName"])
    return f"{r.inputs['dbProxyName']}/{name}", {
        "arn": r.arn("rds", f"db-proxy-endpoint:{r.make(f'prx-endpoint-{r.h}', 'resourceId')}"),
        "endpoint": r.make(f"{name}.endpoint.proxy-c{r.h[:11]}.{r.region}.rds.amazonaws.com", "endpoint"),
    }


def _proxy_target_group(r: Registration) -> tuple[str, dict[str, Any]]:
    return str(r.inputs["dbProxyName"]), {
        "name": "default",
        "arn": r.arn("rds", f"target-group:prx-tg-{r.h}"),
    }


def _log_group(r: Registration) -> tuple[str, dict[str, Any]]:
    name = r.auto_name()
    return name, {"arn": r.arn("logs", f"log-group:{name}")}


def _function(r: Registration) -> tuple[str, dict[str, Any]]:
    name = r.auto_name()
    return name, {"name": name, "arn": r.arn("lambda", f"function:{name}")}


def _invocation(r: Registration) -> tuple[str, dict[str, Any]]:
    # The provider's id: function name, qualifier and the MD5 of the input.
    digest = hashlib.md5(str(r.inputs.get("input", "")).encode()).hexdigest()
    rid = f"{r.inputs.get('functionName')}_{r.inputs.get('qualifier') or '$LATEST'}_{digest}"
    return rid, {"result": r.make(json.dumps({"invented": f"{r.name}-{r.h[:8]}"}), "result")}


def _kms_key(r: Registration) -> tuple[str, dict[str, Any]]:
    x = _suffix(r.name, 32)
    key_id = r.make(f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}", "keyId")
    return key_id, {"keyId": key_id, "arn": r.arn("kms", f"key/{key_id}")}


def _kms_alias(r: Registration) -> tuple[str, dict[str, Any]]:
    name = r.auto_name()  # the input already starts with "alias/"
    return name, {"name": name, "arn": r.arn("kms", name)}


def _topic(r: Registration) -> tuple[str, dict[str, Any]]:
    name = r.auto_name()
    arn = r.arn("sns", name)
    return arn, {"name": name, "arn": arn}


def _topic_subscription(r: Registration) -> tuple[str, dict[str, Any]]:
    # A subscription's ARN (and id) is its topic's ARN with a UUID appended.
    x = _suffix(r.name, 32)
    arn = r.make(f"{r.inputs.get('topic')}:{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}", "arn")
    return arn, {"arn": arn}


def _event_subscription(r: Registration) -> tuple[str, dict[str, Any]]:
    name = r.auto_name()  # the subscription's name is its id; RDS ARNs call it `es`
    return name, {"name": name, "arn": r.arn("rds", f"es:{name}")}


def _metric_alarm(r: Registration) -> tuple[str, dict[str, Any]]:
    name = r.auto_name()
    return name, {"name": name, "arn": r.arn("cloudwatch", f"alarm:{name}")}


def _dashboard(r: Registration) -> tuple[str, dict[str, Any]]:
    name = str(r.inputs["dashboardName"])  # dashboards are global: their ARN has no region
    return name, {"dashboardArn": r.make(f"arn:aws:cloudwatch::{ACCOUNT}:dashboard/{name}", "dashboardArn")}


ANSWERS: dict[str, Answer] = {
    "aws:ec2/vpc:Vpc": _vpc,
    "aws:ec2/subnet:Subnet": _subnet,
    "aws:ec2/securityGroup:SecurityGroup": _prefixed_id("sg"),
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": _prefixed_id("sg"),
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": _prefixed_id("sgr"),
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": _prefixed_id("sgr"),
    "aws:ec2/vpcEndpoint:VpcEndpoint": _vpc_endpoint,
    "aws:rds/subnetGroup:SubnetGroup": _subnet_group,
    "random:index/randomPassword:RandomPassword": _random_password,
    "random:index/randomId:RandomId": _random_id,
    "aws:secretsmanager/secret:Secret": _secret,
    "aws:secretsmanager/secretVersion:SecretVersion": _id_only,
    "aws:iam/role:Role": _role,
    "aws:iam/rolePolicy:RolePolicy": _role_policy,
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": _id_only,
    "aws:rds/instance:Instance": _db_instance,
    "aws:rds/cluster:Cluster": _db_cluster,
    "aws:rds/clusterInstance:ClusterInstance": _db_cluster_instance,
    "aws:rds/proxy:Proxy": _proxy,
    "aws:rds/proxyEndpoint:ProxyEndpoint": _proxy_endpoint,
    "aws:rds/proxyDefaultTargetGroup:ProxyDefaultTargetGroup": _proxy_target_group,
    "aws:rds/proxyTarget:ProxyTarget": _id_only,
    "aws:cloudwatch/logGroup:LogGroup": _log_group,
    "aws:cloudwatch/metricAlarm:MetricAlarm": _metric_alarm,
    "aws:cloudwatch/dashboard:Dashboard": _dashboard,
    "aws:lambda/function:Function": _function,
    "aws:lambda/invocation:Invocation": _invocation,
    "aws:kms/key:Key": _kms_key,
    "aws:kms/alias:Alias": _kms_alias,
    "aws:sns/topic:Topic": _topic,
    "aws:serverlessrepository/cloudFormationStack:CloudFormationStack": _cfn_stack,
    "aws:sns/topicSubscription:TopicSubscription": _topic_subscription,
    "aws:rds/eventSubscription:EventSubscription": _event_subscription,
}
"""Resource type token → how AWS would answer its creation. A type not listed gets `generic`."""


class RecordingMocks(pulumi.runtime.Mocks):
    """Answers resource registrations and invokes like AWS would, and remembers what it made up."""

    def __init__(self, region: str | None) -> None:
        self.region = region
        self.invented: dict[str, str] = {ACCOUNT: "AWS account id"}
        self.invokes: list[Invoke] = []
        self.zone_names: dict[str, str] = {}
        self.notes: list[str] = []

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str | None, dict]:
        if not args.custom:
            return None, {}
        registration = Registration(
            args.typ, args.name, args.inputs, self.region or "", self.invented, self.zone_names
        )
        rid, out = ANSWERS.get(args.typ, generic)(registration)
        return rid, {**args.inputs, **out}

    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict, list[tuple[str, str]] | None]:
        self.invokes.append(Invoke(args.token, dict(args.args)))
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            if not self.region:
                raise ValueError(MISSING_REGION)
            found = zones_for(self.region)
            excluded = set(args.args.get("excludeZoneIds") or [])
            zones = [(n, z) for n, z in zip(found.names, found.zone_ids, strict=True) if z not in excluded]
            for zone_name, zone_id in zones:  # which names an account gets is only known in AWS
                self.zone_names[zone_id] = zone_name
                self.invented[zone_name] = "availability zone"
                if not found.known:
                    self.invented[zone_id] = "availability zone id"
            if not found.known:
                note = (
                    f"AZ check skipped: {self.region} is not in plan/zones.py, so the plan cannot tell which "
                    "AZs it has or which of them RDS Proxy serves; `pulumi up` checks azCount against AWS."
                )
                if note not in self.notes:
                    self.notes.append(note)
            return {
                "id": self.region,
                "names": [n for n, _ in zones],
                "zoneIds": [z for _, z in zones],
                "groupNames": [self.region],
                "state": args.args.get("state"),
            }, []
        if args.token == "aws:iam/getRole:getRole":
            # Whether the role exists (e.g. RDS's service-linked role on a fresh account) is only known in AWS.
            name = str(args.args.get("name"))
            path = "/aws-service-role/rds.amazonaws.com/" if name == "AWSServiceRoleForRDS" else "/"
            arn = f"arn:aws:iam::{ACCOUNT}:role{path}{name}"
            self.invented[arn] = f"role {name}"
            note = f"Not checked offline: that the account has the IAM role {name}."
            if note not in self.notes:
                self.notes.append(note)
            return {"id": name, "name": name, "arn": arn, "path": path}, []
        raise NotImplementedError(f"the offline mocks don't answer {args.token}")


def _alias(alias: Any) -> dict[str, Any]:
    if alias.WhichOneof("alias") == "urn":
        return {"urn": alias.urn}
    spec = alias.spec
    return {
        "name": spec.name,
        "type": spec.type,
        "stack": spec.stack,
        "project": spec.project,
        "parentUrn": spec.parentUrn,
        "noParent": spec.noParent,
    }


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """The mock engine, also keeping each registration's parent, dependencies and options."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.recorded: list[Resource] = []

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            return response
        deps = set(request.dependencies)
        for prop in request.propertyDependencies.values():
            deps.update(prop.urns)
        registered = self.resources.get(response.urn)
        self.recorded.append(
            Resource(
                urn=response.urn,
                type=request.type,
                name=request.name,
                parent=request.parent or None,
                custom=bool(request.custom),
                inputs=_unwrap(rpc.deserialize_properties(request.object)),
                dependencies=deps,
                protect=bool(request.protect),
                replace_with=list(request.replace_with),
                ignore_changes=list(request.ignoreChanges),
                outputs=_unwrap(registered.state) if registered else {},
                id=registered.id if registered else None,
                aliases=[_alias(a) for a in request.aliases],
            )
        )
        return response


def run_program(
    stack: str,
    config: Mapping[str, str],
    program: Callable[[], Any] | None = None,
    project: str = "rds-proxy",
) -> ProgramRun:
    """Run `program` (default: the project's __main__.py) for `stack` with `config` (raw strings)."""
    pulumi.runtime.set_all_config(dict(config))
    settings.set_root_resource(None)  # type: ignore[arg-type]
    settings.SETTINGS.rpc_manager.clear()  # forget a previous run's pending work and failure
    settings.SETTINGS.outputs.clear()
    region = config.get("aws:region") or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    mocks = RecordingMocks(region=region)
    monitor = RecordingMonitor(mocks)
    warnings = _WarningLog()
    pulumi.runtime.set_mocks(
        mocks, project=project, stack=stack, preview=False, monitor=monitor, logger=warnings.logger
    )
    exports: dict[str, Any] = {}
    secret_exports: set[str] = set()

    async def main() -> None:
        if program is None:
            runpy.run_path(str(PROGRAM), run_name="__main__")
        else:
            program()
        root = settings.get_root_resource()
        for key, value in getattr(root, "outputs", {}).items():
            out = pulumi.Output.from_input(value)
            exports[key] = await out.future()
            if await out.is_secret():
                secret_exports.add(key)

    # A failed run leaves futures nobody awaits; asyncio would print each one at exit.
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    error: BaseException | None = None
    try:
        _sync_await(run_pulumi_func(main))
    except Exception as exc:
        error = exc
    return ProgramRun(
        stack=stack,
        # Registration order depends on async scheduling; sort so plans and diagrams are stable.
        resources=sorted(monitor.recorded, key=lambda r: r.name),
        invokes=mocks.invokes,
        exports=exports,
        secret_exports=secret_exports,
        invented=mocks.invented,
        error=error,
        project=project,
        warnings=warnings.messages,
        notes=mocks.notes,
    )


class _WarningLog(logging.Handler):
    """Keeps what the program logs at warning level (the mock engine turns `pulumi.warn` into these)."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []
        self.logger = logging.getLogger(f"plan.program.{id(self)}")
        self.logger.propagate = False  # shown by the plan, not printed by logging
        self.logger.setLevel(logging.DEBUG)
        self.logger.addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno == logging.WARNING:
            self.messages.append(record.getMessage())
