"""Blue/green updates of the stack's database, for teams who look at green before switching.

    python -m tools.bluegreen --stack prod check
    python -m tools.bluegreen --stack prod create --engine-version 8.4.3 [--instance-class C] [--parameter-group G]
    python -m tools.bluegreen --stack prod switchover [--timeout 300]
    python -m tools.bluegreen --stack prod cleanup [--delete-old-blue] [--yes]

Stack outputs (``dbInstanceId``, ``proxyName``, ``probeFunctionName``, ``proxyArn`` for the region) come
from ``pulumi stack output --json`` or ``--outputs FILE``, as for ``tools.validate_stack``.

AWS's conditions, checked by ``check`` and again before ``create``:

* the instance is already a registered, healthy target of the proxy: "your blue instance must already
  be a proxy target before creating the blue/green deployment; you can't add it to RDS Proxy after
  the deployment is created" (RDS User Guide, *Using RDS Proxy with Blue/Green Deployments*,
  rds-proxy-blue-green.html, Limitations);
* automated backups on (BackupRetentionPeriod > 0; the stack's ``dbBackupRetentionDays`` is 7-35);
* no read replicas, same- or cross-region: the stack's blue/green path (pulumi-aws ``blue_green_update``,
  issue 11/12) cannot be used with replicas, so neither ``dbReadReplicas`` nor a DR replica;
* no RDS-managed master password: "Blue/green deployments don't support managing master user passwords
  with AWS Secrets Manager" (User Guide, blue-green-deployments-considerations.html);
* no blue/green deployment already exists for the instance.

Switchover through the proxy (same User Guide page): blue turns read-only first and the proxy keeps
routing to it (writes on RDS for MySQL can fail with ``1290 ... --read-only``), then the proxy routes to
green and drops existing client connections; ``describe-db-proxy-targets`` shows the new target only
once the switchover has fully completed. ``SwitchoverTimeout`` (min 30 s, default 300): "If the
switchover takes longer than the specified duration, then any changes are rolled back, and no changes
are made to the environments" (API reference, SwitchoverBlueGreenDeployment). After a switchover the
old blue instance keeps running as ``<id>-old1`` (billed) until ``cleanup --delete-old-blue``.

Exit status: 0 done; 1 a check or an operation failed (the message says what state things are in);
2 unusable arguments, outputs or AWS setup.
AWS permissions: rds:DescribeDBInstances, rds:DescribeDBProxyTargets, rds:DescribeBlueGreenDeployments,
rds:CreateBlueGreenDeployment, rds:SwitchoverBlueGreenDeployment, rds:DeleteBlueGreenDeployment,
rds:DeleteDBInstance (cleanup --delete-old-blue), lambda:InvokeFunction on the probe.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from tools import watch as watch_mod
from tools.validate_stack import UsageError, load_outputs, region_for

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
OLD_BLUE_SUFFIX = "-old1"
# API: SwitchoverTimeout "Valid Range: Minimum value of 30"; User Guide: "between 30 seconds and 3,600 seconds".
MIN_SWITCHOVER_TIMEOUT, MAX_SWITCHOVER_TIMEOUT = 30, 3600
SWITCHOVER_DOC = (
    "https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_SwitchoverBlueGreenDeployment.html"
)
ROLLBACK_QUOTE = (
    '"If the switchover takes longer than the specified duration, then any changes are rolled back, '
    'and no changes are made to the environments."'
)


class Failed(Exception):
    """An operation failed: exit 1 with this message (it says what state things are left in)."""


def _client_error(exc: Exception) -> str:
    err = getattr(exc, "response", {}).get("Error", {})
    if err:
        return f"{err.get('Code')}: {err.get('Message')}"
    return f"{type(exc).__name__}: {exc}"


# --------------------------------------------------------------------------- context


@dataclass
class Ctx:
    rds: Any
    lam: Any
    instance_id: str
    proxy_name: str
    function_name: str
    stack: str | None
    out: Any  # rich Console on stdout
    err: Any  # rich Console on stderr
    sleep: Callable[[float], None]
    clock: Callable[[], float]
    confirm: Callable[[str], bool]
    invoker: watch_mod.Invoker | None = None

    def say(self, text: str = "") -> None:
        self.out.print(text, markup=False, highlight=False, soft_wrap=True)

    @property
    def stack_flag(self) -> str:
        return f" --stack {self.stack}" if self.stack else ""


def describe_instance(rds: Any, identifier: str) -> dict[str, Any] | None:
    try:
        resp = rds.describe_db_instances(DBInstanceIdentifier=identifier)
    except Exception as exc:
        if getattr(exc, "response", {}).get("Error", {}).get("Code") == "DBInstanceNotFound":
            return None
        raise
    found = resp.get("DBInstances") or []
    return found[0] if found else None


def proxy_target(rds: Any, proxy_name: str, instance_id: str) -> tuple[dict[str, Any] | None, list[str]]:
    """The proxy's target for this instance, and the identifiers of all its targets."""
    targets = rds.describe_db_proxy_targets(DBProxyName=proxy_name).get("Targets") or []
    names = [str(t.get("RdsResourceId")) for t in targets]
    for t in targets:
        if t.get("Type") == "RDS_INSTANCE" and t.get("RdsResourceId") == instance_id:
            return t, names
    return None, names


def _old_blue_arn(arn: str) -> str:
    return arn + OLD_BLUE_SUFFIX


def deployments_for(rds: Any, instance_arn: str) -> list[dict[str, Any]]:
    """Deployments whose source is the instance (or, after a switchover, its renamed old blue)."""
    # Before a switchover the source is the instance's ARN; after it RDS renames blue to <id>-old1.
    values = [instance_arn, _old_blue_arn(instance_arn)]
    resp = rds.describe_blue_green_deployments(Filters=[{"Name": "source", "Values": values}])
    return list(resp.get("BlueGreenDeployments") or [])


def describe_deployment(rds: Any, identifier: str) -> dict[str, Any]:
    resp = rds.describe_blue_green_deployments(BlueGreenDeploymentIdentifier=identifier)
    found = resp.get("BlueGreenDeployments") or []
    if not found:
        raise Failed(f"blue/green deployment {identifier} no longer exists")
    return dict(found[0])


def _status_details(dep: dict[str, Any]) -> str:
    parts = [str(dep.get("StatusDetails") or "").strip()]
    for task in dep.get("Tasks") or []:
        if task.get("Status") not in (None, "COMPLETED", "PENDING", "IN_PROGRESS"):
            parts.append(f"task {task.get('Name')}: {task.get('Status')}")
    for member in dep.get("SwitchoverDetails") or []:
        status = member.get("Status")
        if status not in (None, "AVAILABLE", "SWITCHOVER_COMPLETED", "PROVISIONING"):
            parts.append(f"{member.get('SourceMember')} -> {member.get('TargetMember')}: {status}")
    return "; ".join(p for p in parts if p) or "(RDS gave no details)"


# --------------------------------------------------------------------------- check


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def preflight(ctx: Ctx) -> tuple[list[Check], dict[str, Any] | None]:
    checks: list[Check] = []
    inst = describe_instance(ctx.rds, ctx.instance_id)
    if inst is None:
        checks.append(
            Check(
                "instance",
                False,
                f"DB instance {ctx.instance_id} (stack output dbInstanceId) does not exist in this region",
                "check --stack/--outputs and --region",
            )
        )
        return checks, None
    status = inst.get("DBInstanceStatus")
    checks.append(
        Check(
            "instance",
            status == "available",
            f"{ctx.instance_id}: {inst.get('Engine')} {inst.get('EngineVersion')} on "
            f"{inst.get('DBInstanceClass')}, status {status}",
            "wait until the instance is 'available' (a modification or backup is running)",
        )
    )

    try:
        target, names = proxy_target(ctx.rds, ctx.proxy_name, ctx.instance_id)
    except Exception as exc:
        checks.append(
            Check(
                "proxy target", False, f"cannot read proxy {ctx.proxy_name}'s targets: {_client_error(exc)}"
            )
        )
    else:
        if target is None:
            checks.append(
                Check(
                    "proxy target",
                    False,
                    f"{ctx.instance_id} is not a registered target of proxy {ctx.proxy_name} "
                    f"(targets: {', '.join(names) or 'none'}); AWS requires the blue instance to be a proxy "
                    "target before the blue/green deployment is created",
                    f"run `pulumi up{ctx.stack_flag}` so the stack registers the instance, then check again",
                )
            )
        else:
            health = target.get("TargetHealth") or {}
            state = health.get("State")
            reason = " ".join(str(health.get(k)) for k in ("Reason", "Description") if health.get(k))
            checks.append(
                Check(
                    "proxy target",
                    state == "AVAILABLE",
                    f"registered target of {ctx.proxy_name}, health {state}"
                    + (f" ({reason})" if reason else ""),
                    "the proxy must reach the instance (TargetHealth AVAILABLE): see the proxy's log group and "
                    "`python -m tools.validate_stack`; AUTH_FAILURE means the proxy's secret no longer matches",
                )
            )

    retention = int(inst.get("BackupRetentionPeriod") or 0)
    checks.append(
        Check(
            "backups",
            retention > 0,
            f"automated backups kept {retention} day(s)"
            if retention
            else "automated backups are off (0 days)",
            f"blue/green needs backups: `pulumi config set dbBackupRetentionDays 7{ctx.stack_flag}` and `pulumi up`",
        )
    )

    replicas = list(inst.get("ReadReplicaDBInstanceIdentifiers") or []) + list(
        inst.get("ReadReplicaDBClusterIdentifiers") or []
    )
    source = inst.get("ReadReplicaSourceDBInstanceIdentifier")
    if source:
        replica_detail = f"{ctx.instance_id} is itself a read replica of {source} (a DR standby?)"
        replica_fix = "run blue/green on the primary's stack; a standby follows its primary"
    elif replicas:
        replica_detail = f"read replicas: {', '.join(replicas)} (same- or cross-region)"
        replica_fix = (
            "this stack's blue/green path does not support replicas: set `dbReadReplicas 0` and take the "
            'DR standby out (`drRegion` "") before a blue/green update'
        )
    else:
        replica_detail, replica_fix = "no read replicas, not a replica", ""
    checks.append(Check("replicas", not replicas and not source, replica_detail, replica_fix))

    secret = inst.get("MasterUserSecret")
    checks.append(
        Check(
            "master password",
            not secret,
            "master password set by the stack (not RDS-managed)"
            if not secret
            else f"RDS manages the master password in Secrets Manager ({secret.get('SecretArn')}); "
            "blue/green deployments don't support that",
            "this stack generates the master password itself, so this was changed outside Pulumi: run "
            f"`pulumi refresh{ctx.stack_flag}` then `pulumi up{ctx.stack_flag}` to restore the stack's password",
        )
    )

    try:
        existing = deployments_for(ctx.rds, str(inst["DBInstanceArn"]))
    except Exception as exc:
        checks.append(
            Check("no deployment yet", False, f"cannot list blue/green deployments: {_client_error(exc)}")
        )
    else:
        listed = ", ".join(
            f"{d['BlueGreenDeploymentIdentifier']} ({d.get('BlueGreenDeploymentName')}, {d.get('Status')})"
            for d in existing
        )
        checks.append(
            Check(
                "no deployment yet",
                not existing,
                "no blue/green deployment for this instance" if not existing else f"already exists: {listed}",
                f"switch it over (`switchover`) or remove it (`cleanup`): python -m tools.bluegreen{ctx.stack_flag} ...",
            )
        )
    return checks, inst


def show_checks(ctx: Ctx, checks: list[Check]) -> bool:
    from rich.table import Table

    table = Table(
        title=f"Blue/green preflight for {ctx.instance_id} behind {ctx.proxy_name}", title_justify="left"
    )
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail")
    for c in checks:
        table.add_row(c.name, "ok" if c.ok else "[bold red]FAIL[/]", c.detail.replace("[", r"\["))
    ctx.out.print(table)
    failed = [c for c in checks if not c.ok]
    for c in failed:
        ctx.say(f"FAIL {c.name}: {c.detail}." + (f" To fix: {c.fix}." if c.fix else ""))
    ctx.say("All preflight checks passed." if not failed else f"{len(failed)} preflight check(s) failed.")
    return not failed


def cmd_check(ctx: Ctx, args: argparse.Namespace) -> int:
    checks, _ = preflight(ctx)
    return EXIT_OK if show_checks(ctx, checks) else EXIT_FAILED


# --------------------------------------------------------------------------- create


def _deployment_name(instance_id: str, now: dt.datetime) -> str:
    # API: 1-60 chars, [a-zA-Z][a-zA-Z0-9]*(-[a-zA-Z0-9]+)*, unique in the account and region.
    stem = re.sub(r"-+", "-", instance_id)[:40].rstrip("-")
    return f"{stem}-bg-{now:%Y%m%d%H%M}"


def wait_for_green(ctx: Ctx, dep_id: str, poll: float, timeout: float) -> dict[str, Any]:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    started = ctx.clock()
    with Progress(
        TextColumn("green {task.fields[status]}"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f} tasks"),
        TimeElapsedColumn(),
        console=ctx.err,
    ) as bar:
        task = bar.add_task("green", total=1, status="PROVISIONING")
        while True:
            dep = describe_deployment(ctx.rds, dep_id)
            status = dep.get("Status")
            tasks = dep.get("Tasks") or []
            done = sum(1 for t in tasks if t.get("Status") == "COMPLETED")
            bar.update(task, total=max(1, len(tasks)), completed=done, status=status)
            if status == "AVAILABLE":
                return dep
            if status != "PROVISIONING":
                raise Failed(
                    f"blue/green deployment {dep_id} ended in {status}: {_status_details(dep)}. "
                    "It still exists (blue is untouched and still serves the proxy): remove it with "
                    f"`python -m tools.bluegreen{ctx.stack_flag} cleanup` before trying again"
                )
            if ctx.clock() - started >= timeout:
                raise Failed(
                    f"green is still provisioning after {timeout:g} s (deployment {dep_id}, status {status}). "
                    "Nothing is rolled back: RDS keeps provisioning. Follow it with `aws rds "
                    f"describe-blue-green-deployments --blue-green-deployment-identifier {dep_id}`, then run "
                    "`switchover` when it is AVAILABLE, or `cleanup` to abandon it"
                )
            ctx.sleep(poll)


def cmd_create(ctx: Ctx, args: argparse.Namespace) -> int:
    checks, inst = preflight(ctx)
    if not show_checks(ctx, checks) or inst is None:
        ctx.say("Nothing was created.")
        return EXIT_FAILED
    same = args.engine_version == inst.get("EngineVersion") and args.instance_class in (
        None,
        inst.get("DBInstanceClass"),
    )
    if same and not args.parameter_group:
        raise UsageError(
            f"--engine-version {args.engine_version} is what {ctx.instance_id} already runs and nothing else "
            "changes: give a new version, --instance-class or --parameter-group"
        )
    request: dict[str, Any] = {
        "BlueGreenDeploymentName": args.name or _deployment_name(ctx.instance_id, dt.datetime.now(dt.UTC)),
        "Source": inst["DBInstanceArn"],
        "TargetEngineVersion": args.engine_version,
    }
    if args.instance_class:
        request["TargetDBInstanceClass"] = args.instance_class
    if args.parameter_group:
        request["TargetDBParameterGroupName"] = args.parameter_group
    try:
        dep = ctx.rds.create_blue_green_deployment(**request)["BlueGreenDeployment"]
    except Exception as exc:
        raise Failed(
            f"RDS refused to create the blue/green deployment: {_client_error(exc)}. Nothing was created"
        ) from exc
    dep_id = dep["BlueGreenDeploymentIdentifier"]
    ctx.say(
        f"Created blue/green deployment {dep_id} ({request['BlueGreenDeploymentName']}); waiting for green."
    )
    dep = wait_for_green(ctx, dep_id, args.poll, args.wait_timeout)
    green = describe_instance(ctx.rds, str(dep["Target"]))
    if green is None:
        raise Failed(
            f"deployment {dep_id} is AVAILABLE but its green instance {dep['Target']} cannot be read"
        )
    endpoint = green.get("Endpoint") or {}
    ctx.say(
        f"Green is ready: {green.get('DBInstanceIdentifier')} {green.get('Engine')} {green.get('EngineVersion')} "
        f"on {green.get('DBInstanceClass')}"
    )
    ctx.say(f"Green endpoint: {endpoint.get('Address')}:{endpoint.get('Port')}")
    ctx.say(
        "Green is read-only and replicates from blue; the proxy still serves blue. Test green directly (TLS, "
        "from inside the VPC), then: python -m tools.bluegreen" + ctx.stack_flag + " switchover"
    )
    return EXIT_OK


# --------------------------------------------------------------------------- switchover


def _one_deployment(ctx: Ctx, inst: dict[str, Any]) -> dict[str, Any] | None:
    found = deployments_for(ctx.rds, str(inst["DBInstanceArn"]))
    if len(found) > 1:
        ids = ", ".join(f"{d['BlueGreenDeploymentIdentifier']} ({d.get('Status')})" for d in found)
        raise Failed(
            f"more than one blue/green deployment for {ctx.instance_id}: {ids}; remove the extra ones"
        )
    return found[0] if found else None


def wait_for_target(ctx: Ctx, timeout: float, poll: float) -> dict[str, Any] | None:
    started = ctx.clock()
    while True:
        target, _ = proxy_target(ctx.rds, ctx.proxy_name, ctx.instance_id)
        if target is not None and (target.get("TargetHealth") or {}).get("State") == "AVAILABLE":
            return target
        if ctx.clock() - started >= timeout:
            return target
        ctx.sleep(poll)


def config_instructions(ctx: Ctx, inst: dict[str, Any] | None) -> None:
    if inst is None:
        ctx.say(f"Could not read {ctx.instance_id}: compare the stack config with the instance by hand.")
        return
    groups = ", ".join(str(g.get("DBParameterGroupName")) for g in inst.get("DBParameterGroups") or [])
    ctx.say(
        f"{ctx.instance_id} now runs {inst.get('Engine')} {inst.get('EngineVersion')} on "
        f"{inst.get('DBInstanceClass')} (parameter group {groups or '-'}). Make the stack config say so:"
    )
    ctx.say(f"  pulumi config set dbEngineVersion {inst.get('EngineVersion')}{ctx.stack_flag}")
    ctx.say(f"  pulumi config set dbInstanceClass {inst.get('DBInstanceClass')}{ctx.stack_flag}")
    ctx.say(
        "  (if green got its own --parameter-group, make the stack's parameter group match it, or `pulumi up` "
        "changes it back)"
    )
    defaults = [g for g in groups.split(", ") if g.startswith("default.")]
    if defaults:
        # A major version change without --parameter-group gives green RDS's default group of the new family;
        # the stack's own group follows dbEngineVersion's family, so the next up creates it and attaches it.
        ctx.say(
            f"  (green runs RDS's default parameter group {defaults[0]}: `pulumi up` will create the stack's own "
            "group of that family and attach it to the instance; expect that one change, and with "
            "dbBlueGreenUpdate true it goes through another blue/green deployment)"
        )
    ctx.say(f"  pulumi refresh{ctx.stack_flag}")
    expected = (
        "only that parameter group change; if it wants any other change to the instance, stop"
        if defaults
        else "no changes; if it wants to change the instance, stop"
    )
    ctx.say(f"  pulumi up{ctx.stack_flag}     # must show {expected}")


def cmd_switchover(ctx: Ctx, args: argparse.Namespace) -> int:
    if not MIN_SWITCHOVER_TIMEOUT <= args.timeout <= MAX_SWITCHOVER_TIMEOUT:
        raise UsageError(
            f"--timeout {args.timeout}: RDS's SwitchoverTimeout must be between {MIN_SWITCHOVER_TIMEOUT} and "
            f"{MAX_SWITCHOVER_TIMEOUT} seconds"
        )
    inst = describe_instance(ctx.rds, ctx.instance_id)
    if inst is None:
        raise Failed(
            f"DB instance {ctx.instance_id} (stack output dbInstanceId) does not exist in this region"
        )
    dep = _one_deployment(ctx, inst)
    if dep is None:
        raise Failed(
            f"no blue/green deployment for {ctx.instance_id}: run `create` first. Nothing was switched"
        )
    dep_id = dep["BlueGreenDeploymentIdentifier"]
    if dep.get("Status") != "AVAILABLE":
        raise Failed(
            f"deployment {dep_id} is {dep.get('Status')}, not AVAILABLE ({_status_details(dep)}). Nothing was switched"
        )

    assert ctx.invoker is not None
    probe_for = args.timeout + args.grace + args.settle + 60  # an upper bound; stopped when done
    runner = watch_mod.Watch(ctx.invoker, probe_for, args.rate, concurrency=args.concurrency)
    result: dict[str, watch_mod.Timeline] = {}
    prober = threading.Thread(target=lambda: result.setdefault("t", runner.run()), name="probe", daemon=True)
    prober.start()

    def stop_probing() -> watch_mod.Timeline:
        runner.stop()
        prober.join()
        return result["t"]

    # A short baseline: errors that were there before the switchover are not the switchover's.
    ctx.sleep(args.baseline)
    ctx.say(
        f"Switching over {dep_id} (SwitchoverTimeout {args.timeout} s) while probing at {args.rate:g}/s ..."
    )
    started = ctx.clock()
    try:
        ctx.rds.switchover_blue_green_deployment(
            BlueGreenDeploymentIdentifier=dep_id, SwitchoverTimeout=args.timeout
        )
    except Exception as exc:
        stop_probing()
        raise Failed(
            f"RDS refused the switchover: {_client_error(exc)}. Nothing was switched: blue ({ctx.instance_id}) "
            "still serves the proxy"
        ) from exc

    seen_in_progress = False
    status = "SWITCHOVER_IN_PROGRESS"
    dep_now: dict[str, Any] = dep
    with ctx.err.status("switchover in progress") as spinner:
        while True:
            ctx.sleep(args.poll)
            try:
                dep_now = describe_deployment(ctx.rds, dep_id)
            except Exception as exc:
                stop_probing()
                raise Failed(
                    f"the switchover of {dep_id} was requested, but its state cannot be read any more "
                    f"({_client_error(exc)}); whether blue or green serves the proxy is unknown. Check `aws rds "
                    f"describe-blue-green-deployments --blue-green-deployment-identifier {dep_id}` before "
                    "anything else"
                ) from exc
            status = str(dep_now.get("Status"))
            elapsed = ctx.clock() - started
            spinner.update(f"switchover: {status} ({elapsed:.0f} s)")
            if status == "SWITCHOVER_IN_PROGRESS":
                seen_in_progress = True
            if status in ("SWITCHOVER_COMPLETED", "SWITCHOVER_FAILED", "INVALID_CONFIGURATION"):
                break
            # Right after the call RDS may still say AVAILABLE; back to AVAILABLE later is the rollback.
            if status == "AVAILABLE" and (seen_in_progress or elapsed > args.timeout):
                break
            if elapsed > args.timeout + args.grace:
                break
    elapsed = ctx.clock() - started

    if status == "SWITCHOVER_COMPLETED":
        ctx.sleep(args.settle)  # keep probing: the proxy may need a moment after RDS says done
    timeline = stop_probing()
    watch_mod.render(timeline, ctx.out, args.max_downtime)
    longest = timeline.longest
    window = (
        f"longest error window {longest.length:.2f} s ({', '.join(longest.codes)})"
        if longest
        else "no failed probe invocation"
    )

    if status != "SWITCHOVER_COMPLETED":
        ctx.say(
            f"Switchover of {dep_id} did NOT complete: deployment status is {status} after {elapsed:.0f} s."
        )
        if status == "SWITCHOVER_IN_PROGRESS":
            ctx.say(
                f"RDS has not finished {args.grace:g} s past the SwitchoverTimeout of {args.timeout} s. AWS says a "
                f"switchover that exceeds it is rolled back ({SWITCHOVER_DOC}: {ROLLBACK_QUOTE}), but this tool "
                "could not see the rollback finish. Do not run cleanup or pulumi until `aws rds "
                f"describe-blue-green-deployments --blue-green-deployment-identifier {dep_id}` shows AVAILABLE "
                "(rolled back) or SWITCHOVER_COMPLETED."
            )
        elif status == "AVAILABLE":
            ctx.say(
                f"It exceeded the SwitchoverTimeout of {args.timeout} s and RDS rolled it back ({SWITCHOVER_DOC}: "
                f"{ROLLBACK_QUOTE}). Blue ({ctx.instance_id}) is still production behind the proxy; green is "
                "unchanged and the deployment is AVAILABLE again. Nothing in the stack config changes."
            )
        else:
            ctx.say(f"RDS reports: {_status_details(dep_now)}.")
        ctx.say(
            f"Probing during the attempt: {window}. Next: find the cause (`aws rds describe-events --source-type "
            "blue-green-deployment`; long transactions and replica lag slow a switchover), then run switchover "
            "again (a longer --timeout if needed) or abandon green with cleanup."
        )
        return EXIT_FAILED

    target = wait_for_target(ctx, args.target_wait, args.poll)
    health = (target or {}).get("TargetHealth") or {}
    ctx.say(f"Switchover of {dep_id} completed in {elapsed:.0f} s; measured through the proxy: {window}.")
    code = EXIT_OK
    if health.get("State") != "AVAILABLE":
        ctx.say(
            f"The proxy's target {ctx.instance_id} is not healthy after {args.target_wait:g} s: "
            f"{health.get('State') or 'not registered'} {health.get('Reason') or ''} {health.get('Description') or ''}. "
            "Green is production now; look at the proxy's log group before anything else."
        )
        code = EXIT_FAILED
    else:
        ctx.say(f"The proxy's target {ctx.instance_id} is AVAILABLE again.")
    if args.max_downtime is not None and timeline.exceeds(args.max_downtime):
        ctx.say(f"The longest error window exceeds --max-downtime {args.max_downtime:g} s.")
        code = EXIT_FAILED
    ctx.say(
        f"The old blue instance keeps running as {ctx.instance_id}{OLD_BLUE_SUFFIX} (billed): remove it and the "
        f"deployment with `python -m tools.bluegreen{ctx.stack_flag} cleanup --delete-old-blue`."
    )
    config_instructions(ctx, describe_instance(ctx.rds, ctx.instance_id))
    return code


# --------------------------------------------------------------------------- cleanup


def cmd_cleanup(ctx: Ctx, args: argparse.Namespace) -> int:
    inst = describe_instance(ctx.rds, ctx.instance_id)
    if inst is None:
        raise Failed(
            f"DB instance {ctx.instance_id} (stack output dbInstanceId) does not exist in this region"
        )
    dep = _one_deployment(ctx, inst)
    old_blue_id = ctx.instance_id + OLD_BLUE_SUFFIX
    switched = dep is None or dep.get("Status") == "SWITCHOVER_COMPLETED"
    if dep is not None and dep.get("Status") in ("SWITCHOVER_IN_PROGRESS", "DELETING"):
        raise Failed(
            f"deployment {dep['BlueGreenDeploymentIdentifier']} is {dep.get('Status')}: wait, then run cleanup again"
        )
    if args.delete_old_blue and not switched:
        raise UsageError(
            "--delete-old-blue: there is no old blue before a switchover (the deployment is "
            f"{dep.get('Status') if dep else '-'}); without it, cleanup abandons green"
        )
    old_blue = describe_instance(ctx.rds, old_blue_id) if args.delete_old_blue else None
    if args.delete_old_blue and old_blue is None:
        raise Failed(f"--delete-old-blue: no instance {old_blue_id}; nothing was deleted")
    if dep is None and old_blue is None:
        ctx.say(f"No blue/green deployment for {ctx.instance_id}: nothing to clean up.")
        return EXIT_OK

    plan: list[str] = []
    if dep is not None:
        dep_id = dep["BlueGreenDeploymentIdentifier"]
        if switched:
            plan.append(
                f"delete blue/green deployment {dep_id} (switched over; green is production and stays)"
            )
        else:
            plan.append(
                f"delete blue/green deployment {dep_id} ({dep.get('Status')}) AND its green instance "
                f"{dep.get('Target')} (blue {ctx.instance_id} stays production)"
            )
    snapshot = f"{old_blue_id}-final-{dt.datetime.now(dt.UTC):%Y%m%d%H%M%S}"
    if old_blue is not None:
        plan.append(f"delete the old blue instance {old_blue_id} (final snapshot {snapshot})")
    for line in plan:
        ctx.say(f"  - {line}")
    if not args.yes and not ctx.confirm("Proceed? [y/N] "):
        ctx.say("Nothing was deleted.")
        return EXIT_FAILED

    if dep is not None:
        request: dict[str, Any] = {"BlueGreenDeploymentIdentifier": dep["BlueGreenDeploymentIdentifier"]}
        if not switched:
            request["DeleteTarget"] = True  # RDS refuses DeleteTarget after a completed switchover
        try:
            ctx.rds.delete_blue_green_deployment(**request)
        except Exception as exc:
            raise Failed(
                f"RDS refused to delete the deployment: {_client_error(exc)}. Nothing was deleted"
            ) from exc
        ctx.say(f"Deletion of deployment {request['BlueGreenDeploymentIdentifier']} requested.")
    if old_blue is not None:
        if old_blue.get("DeletionProtection"):
            ctx.say(
                f"Old blue {old_blue_id} NOT deleted: it has deletion protection (copied from the stack). If you "
                f"are sure: `aws rds modify-db-instance --db-instance-identifier {old_blue_id} "
                "--no-deletion-protection --apply-immediately`, then run cleanup --delete-old-blue again."
            )
            config_instructions(ctx, inst)
            return EXIT_FAILED
        try:
            ctx.rds.delete_db_instance(
                DBInstanceIdentifier=old_blue_id, SkipFinalSnapshot=False, FinalDBSnapshotIdentifier=snapshot
            )
        except Exception as exc:
            done = "The deployment was deleted; " if dep is not None else ""
            raise Failed(
                f"{done}RDS refused to delete {old_blue_id}: {_client_error(exc)}. It is still running"
            ) from exc
        ctx.say(f"Deletion of {old_blue_id} started (final snapshot {snapshot}); RDS takes a few minutes.")
    elif switched:
        ctx.say(
            f"The old blue instance {old_blue_id} still runs (billed); remove it with cleanup --delete-old-blue."
        )
    if switched:
        config_instructions(ctx, inst)
    else:
        ctx.say("Blue was never switched: the stack config stays as it is.")
    return EXIT_OK


# --------------------------------------------------------------------------- command line


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m tools.bluegreen",
        description="Blue/green updates of the stack's RDS instance behind RDS Proxy, step by step.",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--stack", "-s", help="Pulumi stack (default: the selected one)")
    src.add_argument("--outputs", metavar="FILE", help="stack outputs as JSON ('-' for stdin)")
    p.add_argument("--cwd", help="Pulumi project directory (default: current directory)")
    p.add_argument("--region", help="AWS region (default: from proxyArn, else AWS_REGION)")
    sub = p.add_subparsers(dest="command", required=True, metavar="{check,create,switchover,cleanup}")
    sub.add_parser("check", help="preflight: AWS's conditions for a blue/green deployment behind the proxy")

    c = sub.add_parser("create", help="create the deployment and wait for green")
    c.add_argument("--engine-version", required=True, metavar="V", help="green's MySQL version, e.g. 8.4.3")
    c.add_argument("--instance-class", metavar="C", help="green's instance class (default: blue's)")
    c.add_argument(
        "--parameter-group", metavar="G", help="green's DB parameter group (needed across major versions)"
    )
    c.add_argument("--name", help="deployment name (default: <instance>-bg-<UTC time>)")
    c.add_argument("--poll", type=float, default=30.0, metavar="S", help="poll interval (default 30 s)")
    c.add_argument(
        "--wait-timeout", type=float, default=7200.0, metavar="S", help="give up waiting after S (7200)"
    )

    s = sub.add_parser("switchover", help="switch to green while probing through the proxy")
    s.add_argument(
        "--timeout", type=int, default=300, metavar="S", help="RDS SwitchoverTimeout, 30-3600 (default 300)"
    )
    s.add_argument(
        "--rate", type=float, default=2.0, metavar="N", help="probe invocations per second (default 2)"
    )
    s.add_argument(
        "--concurrency", type=int, default=4, metavar="C", help="probe invocations in flight (default 4)"
    )
    s.add_argument(
        "--max-downtime", type=float, metavar="S", help="exit 1 when the longest error window exceeds S"
    )
    s.add_argument("--poll", type=float, default=5.0, metavar="S", help="status poll interval (default 5 s)")
    s.add_argument(
        "--baseline", type=float, default=5.0, metavar="S", help="probe S before switching (default 5)"
    )
    s.add_argument(
        "--settle", type=float, default=15.0, metavar="S", help="probe S after completion (default 15)"
    )
    s.add_argument(
        "--grace", type=float, default=120.0, metavar="S", help="wait S past --timeout (default 120)"
    )
    s.add_argument(
        "--target-wait", type=float, default=300.0, metavar="S", help="wait S for a healthy proxy target"
    )

    k = sub.add_parser("cleanup", help="delete the deployment (and, on request, the old blue instance)")
    k.add_argument(
        "--delete-old-blue", action="store_true", help="also delete <instance>-old1 (final snapshot)"
    )
    k.add_argument("--yes", "-y", action="store_true", help="don't ask for confirmation")
    args = p.parse_args(argv)
    for name in ("poll", "rate", "wait_timeout", "target_wait"):
        value = getattr(args, name, None)
        if value is not None and not value > 0:
            p.error(f"--{name.replace('_', '-')} must be > 0, got {value:g}")
    for name in ("baseline", "settle", "grace", "max_downtime"):
        value = getattr(args, name, None)
        if value is not None and value < 0:
            p.error(f"--{name.replace('_', '-')} must be >= 0, got {value:g}")
    if getattr(args, "concurrency", 1) < 1:
        p.error(f"--concurrency must be >= 1, got {args.concurrency}")
    return args


def make_clients(region: str) -> tuple[Any, Any]:  # pragma: no cover - real AWS
    import boto3
    from botocore.config import Config

    cfg = Config(region_name=region, read_timeout=70, retries={"mode": "standard", "max_attempts": 5})
    session = boto3.session.Session()
    return session.client("rds", config=cfg), session.client("lambda", config=cfg)


def _ask(prompt: str) -> bool:  # pragma: no cover - interactive
    if not sys.stdin.isatty():
        raise UsageError("confirmation needed but stdin is not a terminal: pass --yes")
    return input(prompt).strip().lower() in ("y", "yes")


COMMANDS = {"check": cmd_check, "create": cmd_create, "switchover": cmd_switchover, "cleanup": cmd_cleanup}


def main(
    argv: Sequence[str] | None = None,
    *,
    clients: Callable[[str], tuple[Any, Any]] = make_clients,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    confirm: Callable[[str], bool] = _ask,
    invoker: watch_mod.Invoker | None = None,
) -> int:
    from rich.console import Console

    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    args = parse_args(argv)
    try:
        outputs = load_outputs(args.stack, args.outputs, cwd=args.cwd)
        if not outputs.get("dbInstanceId"):
            raise UsageError("stack outputs lack dbInstanceId")
        region = region_for(outputs, args.region)
        rds, lam = clients(region)
    except UsageError as exc:
        err.write(f"bluegreen: {exc}\n")
        return EXIT_USAGE
    except Exception as exc:  # botocore: no credentials, bad region ...
        err.write(f"bluegreen: cannot set up AWS clients: {exc}\n")
        return EXIT_USAGE
    function_name = str(outputs["probeFunctionName"])
    ctx = Ctx(
        rds=rds,
        lam=lam,
        instance_id=str(outputs["dbInstanceId"]),
        proxy_name=str(outputs["proxyName"]),
        function_name=function_name,
        stack=args.stack,
        out=Console(file=out, width=120),
        err=Console(file=err, width=120),
        sleep=sleep,
        clock=clock,
        confirm=confirm,
        invoker=invoker if invoker is not None else watch_mod.lambda_invoker(lam, function_name),
    )
    try:
        return COMMANDS[args.command](ctx, args)
    except UsageError as exc:
        err.write(f"bluegreen: {exc}\n")
        return EXIT_USAGE
    except Failed as exc:
        ctx.say(f"FAILED: {exc}.")
        return EXIT_FAILED
    except Exception as exc:  # an AWS error mid-way: say which command, and that state must be checked
        ctx.say(
            f"FAILED: {args.command} stopped on an AWS error: {_client_error(exc)}. Run "
            f"`python -m tools.bluegreen{ctx.stack_flag} check` to see where things stand."
        )
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
