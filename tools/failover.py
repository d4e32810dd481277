"""Fail over to the standby region in one command: promote the DR stack's cross-region read replica,
point the DR proxy at it, and prove it answers.

    python -m tools.failover --dr-stack dr
    python -m tools.failover --dr-stack dr --no-apply          # print the Pulumi commands instead
    python -m tools.failover --outputs dr-outputs.json --dr-stack dr --yes --max-lag-seconds 30

Everything happens in the DR region, read from the DR stack's own outputs (``proxyArn`` names the
region). No AWS client is ever built for any other region, so a primary region that is down does not
matter: the command never needs it.

Steps:
1. Preflight (DR region): ``DescribeDBInstances`` on ``dbInstanceId``: it must be a read replica
   (``ReadReplicaSourceDBInstanceIdentifier`` set) whose ``read replication`` status is
   ``replicating``; CloudWatch ``ReplicaLag`` (AWS/RDS, DBInstanceIdentifier, last datapoint of the
   last 15 minutes) gives the writes that would be lost, in seconds. A lag above
   ``--max-lag-seconds``, an unknown lag (no datapoint, or -1: "replication is not active", AWS
   docs USER_MySQL.Replication.ReadReplicas.Monitor) or replication not running stop here unless
   ``--force``: in a real regional outage that is the expected state, and ``--force`` says you accept
   losing what never reached the replica.
2. Confirmation: type the instance id (skipped with ``--yes``).
3. ``PromoteReadReplica`` in the DR region, then wait (progress bar) until the instance is
   ``available`` and no longer a replica. Promotion cannot be undone.
4. ``pulumi config set drPromoted true --stack S`` and ``pulumi up --yes --refresh --stack S``
   (``--no-apply``: print them and stop). ``--refresh`` matters: without it Pulumi still holds the
   replica's ``replicate_source_db`` in its state, and the AWS provider applies its removal by calling
   ``PromoteReadReplica`` again (terraform-provider-aws ``resourceInstanceUpdate``), which fails on an
   instance that is no longer a replica; the refresh reads the promoted instance first, so only the
   proxy target is added.
5. Probe through the DR proxy: invoke ``probeFunctionName`` until it returns ``statusCode`` 200.

Prints the time from start to the first successful probe. Re-running after a promotion that
timed out picks up where it stopped (the instance is already standalone: steps 4 and 5 only).

Exit status: 0 failed over (or commands printed with ``--no-apply``); 1 refused by the preflight or
not confirmed; 2 unusable arguments or stack outputs; 3 promotion failed or did not finish in
``--timeout``; 4 ``pulumi`` failed; 5 the probe did not succeed within ``--probe-timeout``.

AWS permissions (DR region): rds:DescribeDBInstances, rds:PromoteReadReplica,
cloudwatch:GetMetricStatistics, lambda:InvokeFunction on the probe.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from tools.validate_stack import UsageError, invoke_once, load_outputs, region_for

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_PROMOTION, EXIT_PULUMI, EXIT_PROBE = 0, 1, 2, 3, 4, 5
DR_OUTPUTS = ("dbInstanceId", "proxyName", "probeFunctionName", "drState")
LAG_LOOKBACK = dt.timedelta(minutes=15)

ClientFactory = Callable[[str, str], Any]
Runner = Callable[[list[str]], int]


class Refused(Exception):
    """The preflight found a reason not to promote."""


# --------------------------------------------------------------------------- AWS side


def make_client(service: str, region: str, session: Any = None) -> Any:
    """A boto3 client pinned to ``region``: the region is always explicit, never the shell's default."""
    import boto3
    from botocore.config import Config

    cfg = Config(
        region_name=region,
        connect_timeout=10,
        read_timeout=70,  # longer than the probe's own timeout (30 s)
        retries={"mode": "standard", "max_attempts": 3},
    )
    return (session or boto3.session.Session()).client(service, config=cfg)


@dataclass(frozen=True)
class ReplicaState:
    instance_id: str
    status: str  # DBInstanceStatus
    source: str | None  # ReadReplicaSourceDBInstanceIdentifier (the primary's ARN across regions)
    replication: str | None  # StatusInfos[read replication].Status
    replication_message: str | None

    @property
    def is_replica(self) -> bool:
        return bool(self.source)


def describe_instance(rds: Any, instance_id: str) -> ReplicaState:
    try:
        resp = rds.describe_db_instances(DBInstanceIdentifier=instance_id)
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code")
        if code == "DBInstanceNotFound":
            raise Refused(f"the DR instance {instance_id!r} does not exist in this region") from exc
        raise
    db = resp["DBInstances"][0]
    info: dict[str, Any] = next(
        (s for s in db.get("StatusInfos") or [] if s.get("StatusType") == "read replication"), {}
    )
    return ReplicaState(
        instance_id=instance_id,
        status=str(db.get("DBInstanceStatus")),
        source=db.get("ReadReplicaSourceDBInstanceIdentifier") or None,
        replication=info.get("Status"),
        replication_message=info.get("Message"),
    )


def replica_lag(cloudwatch: Any, instance_id: str, now: dt.datetime) -> tuple[float, dt.datetime] | None:
    """The last ``ReplicaLag`` datapoint (seconds) and its time, or None when there is none."""
    resp = cloudwatch.get_metric_statistics(
        Namespace="AWS/RDS",
        MetricName="ReplicaLag",
        Dimensions=[{"Name": "DBInstanceIdentifier", "Value": instance_id}],
        StartTime=now - LAG_LOOKBACK,
        EndTime=now,
        Period=60,
        Statistics=["Maximum"],
    )
    points = sorted(resp.get("Datapoints") or [], key=lambda p: p["Timestamp"])
    if not points:
        return None
    last = points[-1]
    return float(last["Maximum"]), last["Timestamp"]


def preflight(
    state: ReplicaState,
    lag: tuple[float, dt.datetime] | None,
    max_lag: float,
    force: bool,
    say: Callable[[str], None],
) -> None:
    """Print what promoting now would cost; raise Refused when it needs --force."""
    say(f"DR instance {state.instance_id}: status {state.status}, replicating from {state.source}")
    problems: list[str] = []
    if state.replication != "replicating":
        detail = f" ({state.replication_message})" if state.replication_message else ""
        problems.append(f"replication status is {state.replication or 'unknown'}{detail}, not replicating")
    if lag is None:
        say("ReplicaLag: no datapoint in the last 15 minutes: the data that would be lost is unknown")
        problems.append("replica lag unknown")
    elif lag[0] < 0:
        say(f"ReplicaLag: {lag[0]:g} at {lag[1]:%H:%M} UTC: replication is not active, loss unknown")
        problems.append("replica lag unknown (ReplicaLag -1: replication not active)")
    else:
        say(
            f"ReplicaLag: {lag[0]:g} s at {lag[1]:%H:%M} UTC: "
            f"up to {lag[0]:g} seconds of writes would be lost"
        )
        if lag[0] > max_lag:
            problems.append(f"ReplicaLag {lag[0]:g} s is above --max-lag-seconds {max_lag:g}")
    if problems and not force:
        raise Refused("; ".join(problems) + ". Pass --force to promote anyway and accept the loss.")
    for problem in problems:
        say(f"--force: promoting despite: {problem}")


# --------------------------------------------------------------------------- Pulumi side


def pulumi_commands(stack: str, cwd: str | None = None) -> list[list[str]]:
    where = ["--cwd", cwd] if cwd else []
    return [
        ["pulumi", "config", "set", "drPromoted", "true", "--stack", stack, *where],
        ["pulumi", "up", "--yes", "--refresh", "--stack", stack, *where],
    ]


def run_command(cmd: list[str]) -> int:  # pragma: no cover - needs the Pulumi CLI
    exe = shutil.which(cmd[0])
    if exe is None:
        raise FileNotFoundError(f"{cmd[0]} is not on PATH")
    # Output goes straight to the terminal: `pulumi up` shows its own progress.
    return subprocess.run([exe, *cmd[1:]], check=False).returncode


# --------------------------------------------------------------------------- command line


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m tools.failover",
        description="Promote the DR stack's replica, point the DR proxy at it and probe it. "
        "Works in the DR region only.",
    )
    p.add_argument("--dr-stack", required=True, metavar="S", help="the DR Pulumi stack")
    p.add_argument("--outputs", metavar="FILE", help="the DR stack's outputs as JSON instead of the CLI")
    p.add_argument("--cwd", help="Pulumi project directory (default: current directory)")
    p.add_argument("--region", help="DR region (default: the one in the DR stack's proxyArn)")
    p.add_argument("--max-lag-seconds", type=float, default=60.0, metavar="N", help="default 60")
    p.add_argument("--force", action="store_true", help="promote despite lag or stopped replication")
    p.add_argument("--yes", action="store_true", help="don't ask for confirmation")
    p.add_argument(
        "--no-apply", action="store_true", help="print the Pulumi commands instead of running them"
    )
    p.add_argument("--timeout", type=float, default=1800.0, metavar="S", help="promotion wait (default 1800)")
    p.add_argument("--poll", type=float, default=15.0, metavar="S", help="status poll interval (default 15)")
    p.add_argument("--probe-timeout", type=float, default=600.0, metavar="S", help="default 600")
    args = p.parse_args(argv)
    for name in ("max_lag_seconds", "timeout", "poll", "probe_timeout"):
        value = getattr(args, name)
        if value < 0 or (name == "poll" and value == 0):
            flag = "--" + name.replace("_", "-")
            p.error(
                f"{flag}: {value:g} is not allowed; expected a number {'> 0' if name == 'poll' else '>= 0'}"
            )
    return args


def main(
    argv: Sequence[str] | None = None,
    *,
    clients: ClientFactory = make_client,
    runner: Runner = run_command,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> int:
    inp = stdin if stdin is not None else sys.stdin
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    args = parse_args(argv)
    started = clock()

    def say(line: str) -> None:
        out.write(line + "\n")
        out.flush()

    def fail(code: int, message: str) -> int:
        err.write(f"failover: {message}\n")
        return code

    try:
        outputs = load_outputs(args.dr_stack, args.outputs, cwd=args.cwd)
        missing = [name for name in DR_OUTPUTS if not outputs.get(name)]
        if missing:
            raise UsageError(
                f"stack {args.dr_stack!r} is not a DR stack: its outputs lack {', '.join(missing)}"
            )
        try:
            # Never the shell's AWS_REGION: during an outage that is often the primary's.
            region = region_for(outputs, args.region, env={})
        except UsageError:
            raise UsageError(
                "no DR region: the outputs have no proxyArn; pass --region "
                "(AWS_REGION is not used: it often names the primary)"
            ) from None
    except UsageError as exc:
        return fail(EXIT_USAGE, str(exc))
    instance_id = str(outputs["dbInstanceId"])
    say(
        f"DR stack {args.dr_stack} (drState {outputs['drState']}), region {region}: everything below runs there"
    )

    try:
        rds = clients("rds", region)
        state = describe_instance(rds, instance_id)
        if state.is_replica:
            cloudwatch = clients("cloudwatch", region)
            preflight(
                state, replica_lag(cloudwatch, instance_id, now()), args.max_lag_seconds, args.force, say
            )
        elif state.status == "available":
            if outputs["drState"] == "promoted":
                say(f"{instance_id} is already standalone and the stack is promoted: nothing to do")
                return EXIT_OK
            say(f"{instance_id} is already standalone (promoted earlier): only the Pulumi step is left")
        else:
            raise Refused(f"{instance_id} is not a read replica and is {state.status}; wait until available")
    except Refused as exc:
        return fail(EXIT_REFUSED, f"not promoting: {exc}")
    except Exception as exc:  # credentials, throttling, network
        return fail(EXIT_REFUSED, f"preflight failed in {region}: {type(exc).__name__}: {exc}")

    if not args.yes:
        action = "Promote" if state.is_replica else "Apply the promoted state for"
        out.write(f"{action} {instance_id} in {region}? This cannot be undone. Type its id to go on: ")
        out.flush()
        if inp.readline().strip() != instance_id:
            return fail(EXIT_REFUSED, "not confirmed; nothing was changed")

    if state.is_replica:
        try:
            rds.promote_read_replica(DBInstanceIdentifier=instance_id)
        except Exception as exc:
            return fail(EXIT_PROMOTION, f"PromoteReadReplica failed: {type(exc).__name__}: {exc}")
        promoted_at = clock()
        code = wait_promoted(rds, instance_id, args, region, clock, sleep, err)
        if code != EXIT_OK:
            return code
        say(f"promoted: {instance_id} is available and standalone after {clock() - promoted_at:.0f} s")

    commands = pulumi_commands(args.dr_stack, args.cwd)
    if args.no_apply:
        say("Now run, from the project directory:")
        for cmd in commands:
            say("  " + shlex.join(cmd))
        say(f"then: python -m tools.validate_stack --stack {shlex.quote(args.dr_stack)} -n 1")
        return EXIT_OK
    for cmd in commands:
        say("$ " + shlex.join(cmd))
        try:
            rc = runner(cmd)
        except OSError as exc:
            rc, detail = 127, f" ({exc})"
        else:
            detail = ""
        if rc != 0:
            return fail(
                EXIT_PULUMI,
                f"`{shlex.join(cmd)}` exited {rc}{detail}. The database is promoted; "
                "fix the cause and re-run this command (it resumes) or the commands above.",
            )

    return probe(outputs, region, clients, args.probe_timeout, args.poll, clock, sleep, started, say, fail)


def wait_promoted(
    rds: Any,
    instance_id: str,
    args: argparse.Namespace,
    region: str,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    err: TextIO,
) -> int:
    deadline = clock() + args.timeout
    state: ReplicaState | None = None
    console = Console(file=err, highlight=False)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(f"promoting {instance_id}", total=None)
        while True:
            try:
                state = describe_instance(rds, instance_id)
            except Exception as exc:  # one failed poll is not a failed promotion
                progress.update(task, description=f"promoting {instance_id}: poll failed ({exc})")
            else:
                # Right after the call RDS may still say "available" with the source set:
                # done means both available and no longer a replica.
                if state.status == "available" and not state.is_replica:
                    progress.update(task, description=f"promoted {instance_id}", total=1, completed=1)
                    return EXIT_OK
                progress.update(task, description=f"promoting {instance_id}: {state.status}")
            if clock() >= deadline:
                break
            sleep(min(args.poll, max(0.0, deadline - clock())))
    last = "no status read"
    if state is not None:
        last = f"last seen: {state.status}, {'still' if state.is_replica else 'no longer'} a replica"
    err.write(
        f"failover: the promotion did not finish within {args.timeout:g} s ({last}).\n"
        "  It may still complete in AWS: check with\n"
        f"  aws rds describe-db-instances --region {region} --db-instance-identifier {instance_id}\n"
        "  and re-run this command when it is available: it skips the promotion and applies the stack.\n"
    )
    return EXIT_PROMOTION


def probe(
    outputs: dict[str, Any],
    region: str,
    clients: ClientFactory,
    timeout: float,
    poll: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    started: float,
    say: Callable[[str], None],
    fail: Callable[[int, str], int],
) -> int:
    """Invoke the DR probe until it answers 200: the proxy's new target can take minutes to register."""
    function_name = str(outputs["probeFunctionName"])
    lam = clients("lambda", region)
    deadline = clock() + timeout
    attempt = 0
    while True:
        inv = invoke_once(lam, function_name, fresh=True, index=attempt)
        attempt += 1
        if inv.ok:
            say(
                f"probe {function_name} via proxy {outputs['proxyName']}: 200 "
                f"(backend connection {inv.connection_id}, attempt {attempt})"
            )
            say(f"failover complete: {clock() - started:.0f} s from start to the first successful probe")
            return EXIT_OK
        say(f"probe attempt {attempt}: {inv.label}: {inv.error}")
        if clock() + poll > deadline:
            return fail(
                EXIT_PROBE,
                f"the probe did not return 200 within {timeout:g} s (last: {inv.error}). "
                "The database is promoted and the stack applied; check the proxy target's health "
                f"(aws rds describe-db-proxy-targets --region {region} --db-proxy-name {outputs['proxyName']}).",
            )
        sleep(poll)


if __name__ == "__main__":
    sys.exit(main())
