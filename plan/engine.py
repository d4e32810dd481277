"""Run the Pulumi program under mocks and record what it declares: no AWS, no Pulumi CLI, no network.

Used by the unit tests and by `make plan`. The mocks answer like AWS would (ids, ARNs, endpoints shaped
like the real ones) so every `apply` in the program runs; every value they make up is remembered, so
the plan can show it as "known after deploy" instead of presenting an invented value as fact.
"""

from __future__ import annotations

import hashlib
import logging
import os
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
    outputs: dict[str, Any] = field(default_factory=dict)
    id: str | None = None


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


class RecordingMocks(pulumi.runtime.Mocks):
    """Answers resource registrations and invokes like AWS would, and remembers what it made up."""

    def __init__(self, region: str | None) -> None:
        self.region = region
        self.invented: dict[str, str] = {ACCOUNT: "AWS account id"}
        self.invokes: list[Invoke] = []
        self.zone_names: dict[str, str] = {}
        self.notes: list[str] = []

    def _make(self, value: str, meaning: str) -> str:
        self.invented[value] = meaning
        return value

    def _suffix(self, name: str, n: int = 17) -> str:
        return hashlib.sha256(name.encode()).hexdigest()[:n]

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str | None, dict]:
        if not args.custom:
            return None, {}
        inputs = args.inputs
        name, t, r = args.name, args.typ, self.region
        h = self._suffix(name)
        out: dict[str, Any] = {}

        def auto_name(key: str = "name") -> str:
            if inputs.get(key):
                return str(inputs[key])
            return self._make(f"{name}-{h[:7]}", f"{name}.{key}")

        def arn(service: str, resource: str) -> str:
            return self._make(f"arn:aws:{service}:{r}:{ACCOUNT}:{resource}", f"{name}.arn")

        if t == "aws:ec2/vpc:Vpc":
            rid = self._make(f"vpc-{h}", f"{name}.id")
        elif t == "aws:ec2/subnet:Subnet":
            rid = self._make(f"subnet-{h}", f"{name}.id")
            zone_id = inputs.get("availabilityZoneId")
            out["availabilityZone"] = self.zone_names.get(str(zone_id))
        elif t in (
            "aws:ec2/securityGroup:SecurityGroup",
            "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
        ):
            rid = self._make(f"sg-{h}", f"{name}.id")
        elif t.startswith("aws:vpc/securityGroup"):
            rid = self._make(f"sgr-{h}", f"{name}.id")
        elif t == "aws:rds/subnetGroup:SubnetGroup":
            rid = out["name"] = auto_name()
            out["arn"] = arn("rds", f"subgrp:{rid}")
        elif t == "random:index/randomPassword:RandomPassword":
            rid = self._make(f"none-{h}", f"{name}.id")
            # Shaped like the real result (length, allowed specials) so downstream checks are honest.
            specials = inputs.get("overrideSpecial") or "!@#$%&*()-_=+[]{}<>:?"
            alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789" + specials
            digest = hashlib.sha256((name + "pw").encode()).digest() * 4
            out["result"] = "".join(
                alphabet[b % len(alphabet)] for b in digest[: int(inputs.get("length", 16))]
            )
        elif t == "aws:secretsmanager/secret:Secret":
            secret_name = auto_name()
            out["name"] = secret_name
            rid = out["arn"] = arn("secretsmanager", f"secret:{secret_name}-{h[:6]}")
        elif t == "aws:iam/role:Role":
            rid = out["name"] = auto_name()
            out["arn"] = self._make(f"arn:aws:iam::{ACCOUNT}:role/{rid}", f"{name}.arn")
        elif t == "aws:iam/rolePolicy:RolePolicy":
            out["name"] = auto_name()
            rid = f"{inputs.get('role')}:{out['name']}"
        elif t == "aws:rds/instance:Instance":
            ident = auto_name("identifier")
            out["identifier"] = ident
            rid = self._make(f"db-{h[:26].upper()}", f"{name}.resourceId")
            out["address"] = self._make(f"{ident}.c{h[:11]}.{r}.rds.amazonaws.com", f"{name}.address")
            out["endpoint"] = f"{out['address']}:{int(inputs.get('port', 3306))}"
            out["arn"] = arn("rds", f"db:{ident}")
        elif t == "aws:rds/proxy:Proxy":
            rid = str(inputs["name"])
            out["arn"] = arn("rds", f"db-proxy:{self._make(f'prx-{h}', f'{name}.resourceId')}")
            out["endpoint"] = self._make(f"{rid}.proxy-c{h[:11]}.{r}.rds.amazonaws.com", f"{name}.endpoint")
        elif t == "aws:rds/proxyDefaultTargetGroup:ProxyDefaultTargetGroup":
            rid = str(inputs["dbProxyName"])
            out["name"] = "default"
            out["arn"] = arn("rds", f"target-group:prx-tg-{h}")
        elif t == "aws:cloudwatch/logGroup:LogGroup":
            rid = auto_name()
            out["arn"] = arn("logs", f"log-group:{rid}")
        elif t == "aws:lambda/function:Function":
            rid = out["name"] = auto_name()
            out["arn"] = arn("lambda", f"function:{rid}")
        else:
            rid = self._make(f"{name}-{h[:8]}", f"{name}.id")
        return rid, {**inputs, **out}

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
            arn = self._make(f"arn:aws:iam::{ACCOUNT}:role{path}{name}", f"role {name}")
            note = f"Not checked offline: that the account has the IAM role {name}."
            if note not in self.notes:
                self.notes.append(note)
            return {
                "id": name,
                "name": name,
                "arn": arn,
                "path": path,
                "uniqueId": self._make(f"AROA{self._suffix(name, 17).upper()}", f"role {name} id"),
            }, []
        raise NotImplementedError(f"the offline mocks don't answer {args.token}")


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
                outputs=_unwrap(registered.state) if registered else {},
                id=registered.id if registered else None,
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
