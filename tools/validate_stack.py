"""Validate a deployed stack in one step: invoke the probe Lambda N times at concurrency C and
report what the proxy did.

    python -m tools.validate_stack --stack dev -n 50 -c 5
    python -m tools.validate_stack --outputs outputs.json --region eu-west-1 -n 20 --fresh
    python -m tools.validate_stack --stack dev --json        # machine-readable summary
    python -m tools.validate_stack --stack dev --user app_reader --endpoint reader

Stack outputs come from ``pulumi stack output --json [--stack S]`` (the Pulumi CLI must be on
PATH and logged in) or from a JSON file (``--outputs FILE``, e.g. saved from that command).
Needed: ``probeFunctionName`` and ``proxyName``; the region is ``--region``, else the one in
``proxyArn``, else ``AWS_REGION``.

Reports status counts, client-side latency p50/p95 (and the handler's own connect/query
timings), the share of invocations that reused a kept connection, the distinct backend
connection ids (``CONNECTION_ID()`` through the proxy: fewer ids than concurrent clients is
pooling you can see), how the answers spread over distinct database servers (the probe's
``server_id``: with ``--endpoint reader`` each reader instance shows up), and the proxy's CloudWatch ``DatabaseConnections`` /
``ClientConnections`` (namespace AWS/RDS, dimension ProxyName, Sum per minute, as AWS
recommends: each proxy node publishes its own datapoints) for the window of the run.
CloudWatch publishes proxy metrics about a minute late; ``--metrics-wait`` (default 90 s)
polls until datapoints for the window show up, 0 skips waiting.

Then the stack's alarm states (``<proxyName>-*``) and, with ``--chart FILE.png``, a picture of
the run: see tools/monitoring_report.py.

Exit status: 0 when every invocation returned statusCode 200, 1 when any failed, 2 when the
stack outputs or AWS setup are unusable (or the chart cannot be written), 3 when an alarm is in
ALARM (unless ``--ignore-alarms``).

AWS permissions needed: lambda:InvokeFunction on the probe, cloudwatch:GetMetricData,
cloudwatch:DescribeAlarms.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

from tools import monitoring_report

REQUIRED_OUTPUTS = ("probeFunctionName", "proxyName")
METRICS = ("DatabaseConnections", "ClientConnections")
EXIT_OK, EXIT_PROBE_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Outputs or AWS setup unusable: exit 2 with this message."""


# --------------------------------------------------------------------------- stack outputs


def load_outputs(
    stack: str | None,
    outputs_file: str | None,
    cwd: str | None = None,
    runner: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run,
) -> dict[str, Any]:
    """The stack's outputs, from ``--outputs FILE`` or the Pulumi CLI."""
    if outputs_file:
        try:
            text = sys.stdin.read() if outputs_file == "-" else Path(outputs_file).read_text()
            data = json.loads(text)
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read stack outputs from {outputs_file}: {exc}") from exc
    else:
        pulumi = shutil.which("pulumi")
        if pulumi is None:
            raise UsageError(
                "the pulumi CLI is not on PATH: pass --outputs FILE "
                "(saved with `pulumi stack output --json > FILE`)"
            )
        cmd = [pulumi, "stack", "output", "--json", "--non-interactive"]
        if stack:
            cmd += ["--stack", stack]
        res = runner(cmd, capture_output=True, text=True, cwd=cwd, timeout=120)
        if res.returncode != 0:
            raise UsageError(f"`{' '.join(cmd[1:])}` failed ({res.returncode}): {res.stderr.strip()}")
        try:
            data = json.loads(res.stdout)
        except ValueError as exc:
            raise UsageError(f"`pulumi stack output --json` printed no JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise UsageError("stack outputs must be a JSON object")
    missing = [name for name in REQUIRED_OUTPUTS if not data.get(name)]
    if missing:
        raise UsageError(
            f"stack outputs lack {', '.join(missing)} (has: {', '.join(sorted(data)) or 'none'})"
        )
    return data


def region_for(outputs: dict[str, Any], explicit: str | None, env: Any = None) -> str:
    env = os.environ if env is None else env
    """--region, else the stack's own region (from proxyArn), else AWS_REGION/AWS_DEFAULT_REGION."""
    if explicit:
        return explicit
    arn = outputs.get("proxyArn")
    if isinstance(arn, str) and arn.count(":") >= 5 and arn.split(":")[3]:
        return arn.split(":")[3]
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        if env.get(name):
            return str(env[name])
    raise UsageError("no region: pass --region or set AWS_REGION (the outputs have no proxyArn)")


# --------------------------------------------------------------------------- invocations


@dataclass
class Invocation:
    index: int
    latency_ms: float
    status: int | None = None  # the probe's statusCode; None when Lambda itself failed
    reused: bool | None = None
    connection_id: int | None = None
    server_id: int | str | None = None  # @@server_id, or @@aurora_server_id on Aurora
    read_only: bool | None = None
    db_user: str | None = None  # CURRENT_USER() as the server saw it
    handler_ms: dict[str, float] = field(default_factory=dict)
    error: str | None = None  # short, readable reason when status != 200

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def label(self) -> str:
        if self.status is not None:
            return str(self.status)
        return self.error.split(":", 1)[0] if self.error else "unknown"


def probe_event(fresh: bool = False, user: str | None = None, endpoint: str = "writer") -> dict[str, Any]:
    """The probe's event: only the keys that differ from its defaults (DB_USER, the writer endpoint)."""
    event: dict[str, Any] = {}
    if fresh:
        event["fresh"] = True
    if user:
        event["user"] = user
    if endpoint != "writer":
        event["endpoint"] = endpoint
    return event


def invoke_once(
    client: Any, function_name: str, fresh: bool, index: int, event: dict[str, Any] | None = None
) -> Invocation:
    payload = json.dumps(probe_event(fresh) if event is None else event).encode()
    t0 = time.perf_counter()
    try:
        resp = client.invoke(FunctionName=function_name, InvocationType="RequestResponse", Payload=payload)
        raw = resp["Payload"].read()
    except Exception as exc:  # botocore ClientError, throttling, network: counted, not fatal
        latency = (time.perf_counter() - t0) * 1000.0
        code = getattr(exc, "response", {}).get("Error", {}).get("Code") or type(exc).__name__
        return Invocation(index, latency, error=f"{code}: {exc}")
    latency = (time.perf_counter() - t0) * 1000.0
    inv = Invocation(index, latency)
    if resp.get("FunctionError"):
        detail = raw.decode(errors="replace")[:300]
        inv.error = f"FunctionError({resp['FunctionError']}): {detail}"
        return inv
    try:
        result = json.loads(raw)
        inv.status = int(result["statusCode"])
        body = result.get("body")
        body = json.loads(body) if isinstance(body, str) else (body or {})
    except (ValueError, KeyError, TypeError) as exc:
        inv.error = f"BadResponse: {exc}: {raw[:200]!r}"
        inv.status = None
        return inv
    if inv.status == 200:
        inv.reused = bool(body.get("reused"))
        result = body.get("result") or {}
        cid = result.get("connection_id")
        inv.connection_id = int(cid) if cid is not None else None
        inv.server_id = result.get("server_id")
        inv.read_only = result.get("read_only")
        inv.db_user = result.get("user")
        inv.handler_ms = {k: float(v) for k, v in (body.get("timings_ms") or {}).items()}
    else:
        err = body.get("error") or {}
        inv.error = f"{err.get('type')} (code {err.get('code')}, retryable {err.get('retryable')}): {err.get('message')}"
    return inv


class ProgressBar:
    """Invocations done and failed, on stderr with rich: a bar redrawn in place on a terminal; in a
    log or CI, where redraws would be noise, one line per 10 %. Thread-safe."""

    def __init__(
        self, total: int, stream: TextIO | None = None, enabled: bool = True, width: int = 30
    ) -> None:
        self.total = max(total, 1)
        self.enabled = enabled
        self.done = 0
        self.failed = 0
        self._lock = threading.Lock()
        self._last_decile = -1
        self._console = Console(file=stream if stream is not None else sys.stderr, highlight=False)
        self._tty = self._console.is_terminal
        # Without colours a bar's done and remaining parts look alike, so a log gets the percentage.
        shown: ProgressColumn = BarColumn(bar_width=width) if self._tty else TaskProgressColumn()
        self._progress = Progress(
            shown,
            MofNCompleteColumn(),
            TextColumn("failed {task.fields[failed]}"),
            TimeElapsedColumn(),
            console=self._console,
            auto_refresh=False,  # redraw once per invocation, from the thread that counts it
        )
        self._task = self._progress.add_task("invocations", total=self.total, failed=0)

    def advance(self, ok: bool) -> None:
        with self._lock:
            self.done += 1
            self.failed += 0 if ok else 1
            if not self.enabled:
                return
            self._progress.update(self._task, completed=self.done, failed=self.failed)
            if self._tty:
                if self.done == 1:
                    self._progress.start()
                self._progress.refresh()
                if self.done >= self.total:
                    self.close()
            else:  # a log file or CI
                decile = self.done * 10 // self.total
                if decile != self._last_decile:
                    self._last_decile = decile
                    self._console.print(self._progress.make_tasks_table(self._progress.tasks))

    def close(self) -> None:
        """End the live bar (its last frame stays, the cursor comes back); safe to call twice."""
        if self._progress.live.is_started:
            self._progress.stop()


def run_invocations(
    client: Any,
    function_name: str,
    n: int,
    concurrency: int,
    fresh: bool = False,
    progress: ProgressBar | None = None,
    event: dict[str, Any] | None = None,
) -> list[Invocation]:
    results: list[Invocation] = []
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        futures = [pool.submit(invoke_once, client, function_name, fresh, i, event) for i in range(n)]
        for fut in as_completed(futures):
            inv = fut.result()
            results.append(inv)
            if progress is not None:
                progress.advance(inv.ok)
    return sorted(results, key=lambda r: r.index)


# --------------------------------------------------------------------------- metrics


def _minute_floor(t: dt.datetime) -> dt.datetime:
    return t.replace(second=0, microsecond=0)


def metric_window(start: dt.datetime, end: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """Whole minutes covering the run (CloudWatch aggregates proxy metrics per minute)."""
    return _minute_floor(start), _minute_floor(end) + dt.timedelta(minutes=1)


def fetch_proxy_metrics(
    cloudwatch: Any,
    proxy_name: str,
    start: dt.datetime,
    end: dt.datetime,
    wait_s: float = 0.0,
    poll_s: float = 15.0,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, dict[str, Any]]:
    """Per-minute Sum of DatabaseConnections and ClientConnections for ProxyName over [start, end)."""
    queries = [
        {
            "Id": f"m{i}",
            "Label": name,
            "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/RDS",
                    "MetricName": name,
                    "Dimensions": [{"Name": "ProxyName", "Value": proxy_name}],
                },
                "Period": 60,
                "Stat": "Sum",
            },
            "ReturnData": True,
        }
        for i, name in enumerate(METRICS)
    ]
    deadline = time.monotonic() + max(0.0, wait_s)
    while True:
        series: dict[str, dict[str, Any]] = {name: {"points": {}} for name in METRICS}
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {
                "MetricDataQueries": queries,
                "StartTime": start,
                "EndTime": end,
                "ScanBy": "TimestampAscending",
            }
            if token:
                kwargs["NextToken"] = token
            resp = cloudwatch.get_metric_data(**kwargs)
            for res in resp.get("MetricDataResults", []):
                name = METRICS[int(res["Id"][1:])]
                for ts, value in zip(res.get("Timestamps", []), res.get("Values", []), strict=False):
                    series[name]["points"][ts] = float(value)
            token = resp.get("NextToken")
            if not token:
                break
        have_all = all(series[name]["points"] for name in METRICS)
        if have_all or time.monotonic() + poll_s > deadline:
            break
        sleep(poll_s)
    out: dict[str, dict[str, Any]] = {}
    for name in METRICS:
        pts = sorted(series[name]["points"].items())
        out[name] = {
            "max": max((v for _, v in pts), default=None),
            "points": [(ts.isoformat() if hasattr(ts, "isoformat") else str(ts), v) for ts, v in pts],
        }
    return out


# --------------------------------------------------------------------------- summary


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile (no interpolation): the value below which pct % of samples fall."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[rank - 1]


def server_spread(invocations: list[Invocation]) -> dict[str, Any]:
    """How the successful answers spread over database servers (by the probe's server_id)."""
    ok = [i for i in invocations if i.ok and i.server_id is not None]
    counts = Counter(str(i.server_id) for i in ok)
    return {
        "distinct_servers": len(counts),
        "server_id_counts": dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))),
        "read_only_answers": len([i for i in ok if i.read_only]),
        "users": sorted({i.db_user for i in ok if i.db_user}),
    }


def summarize(
    invocations: list[Invocation],
    metrics: dict[str, dict[str, Any]] | None,
    *,
    function_name: str,
    proxy_name: str,
    region: str,
    concurrency: int,
    fresh: bool,
    window: tuple[dt.datetime, dt.datetime],
    metrics_error: str | None = None,
    user: str | None = None,
    endpoint: str = "writer",
) -> dict[str, Any]:
    ok = [i for i in invocations if i.ok]
    latencies = [i.latency_ms for i in invocations]
    ids = sorted({i.connection_id for i in ok if i.connection_id is not None})
    errors = Counter(i.error for i in invocations if not i.ok and i.error)
    handler: dict[str, dict[str, float | None]] = {}
    for key in ("connect", "query"):
        # Connect time only means something for invocations that opened a connection.
        pool = [i for i in ok if not i.reused] if key == "connect" else ok
        vals = [i.handler_ms[key] for i in pool if key in i.handler_ms]
        handler[key] = {"p50": percentile(vals, 50), "p95": percentile(vals, 95)}
    return {
        "function": function_name,
        "proxy": proxy_name,
        "region": region,
        "invocations": len(invocations),
        "concurrency": concurrency,
        "mode": "fresh" if fresh else "warm",
        "user": user,  # None: the probe's own DB_USER
        "endpoint": endpoint,
        "status_counts": dict(sorted(Counter(i.label for i in invocations).items())),
        "succeeded": len(ok),
        "failed": len(invocations) - len(ok),
        "latency_ms": {"p50": percentile(latencies, 50), "p95": percentile(latencies, 95)},
        "handler_ms": handler,
        "reused": len([i for i in ok if i.reused]),
        "reused_share": (len([i for i in ok if i.reused]) / len(ok)) if ok else None,
        "distinct_connection_ids": len(ids),
        "connection_ids": ids,
        **server_spread(invocations),
        "errors": [{"count": c, "error": e} for e, c in errors.most_common(5)],
        "window_utc": [window[0].isoformat(), window[1].isoformat()],
        "metrics": metrics,
        "metrics_error": metrics_error,
        "passed": bool(invocations) and len(ok) == len(invocations),
    }


def _fmt_ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f} ms"


def render(summary: dict[str, Any]) -> str:
    s = summary
    lines = [
        f"Probe {s['function']} via proxy {s['proxy']} ({s['region']}): "
        f"{s['invocations']} invocations, concurrency {s['concurrency']}, {s['mode']} connections, "
        f"{s.get('endpoint', 'writer')} endpoint, user {s.get('user') or '(the probe user)'}",
        "  status:          " + ", ".join(f"{k} x{v}" for k, v in s["status_counts"].items()),
        f"  latency:         p50 {_fmt_ms(s['latency_ms']['p50'])}, p95 {_fmt_ms(s['latency_ms']['p95'])}"
        " (client side, Lambda invoke round trip)",
        f"  in the handler:  new connection p50 {_fmt_ms(s['handler_ms']['connect']['p50'])}"
        f" / p95 {_fmt_ms(s['handler_ms']['connect']['p95'])},"
        f" query p50 {_fmt_ms(s['handler_ms']['query']['p50'])}"
        f" / p95 {_fmt_ms(s['handler_ms']['query']['p95'])}",
    ]
    if s["reused_share"] is None:
        lines.append("  reused:          - (no successful invocation)")
    else:
        lines.append(
            f"  reused:          {s['reused']}/{s['succeeded']} ({s['reused_share']:.0%}) kept connections"
        )
    ids = s["connection_ids"]
    shown = ", ".join(str(i) for i in ids[:10]) + (", ..." if len(ids) > 10 else "")
    lines.append(
        f"  connection ids:  {s['distinct_connection_ids']} distinct backend CONNECTION_ID()s [{shown}]"
    )
    if s.get("server_id_counts"):
        spread = ", ".join(f"{k} x{v}" for k, v in s["server_id_counts"].items())
        lines.append(
            f"  servers:         {s['distinct_servers']} distinct (server_id {spread});"
            f" {s['read_only_answers']}/{sum(s['server_id_counts'].values())} answers from read-only servers"
        )
    if s.get("users"):
        lines.append(f"  database user:   {', '.join(s['users'])} (CURRENT_USER())")
    w0, w1 = s["window_utc"]
    lines.append(f"  proxy metrics:   AWS/RDS ProxyName={s['proxy']}, Sum per minute, {w0} .. {w1}")
    if s["metrics_error"]:
        lines.append(f"    unavailable: {s['metrics_error']}")
    elif s["metrics"] is not None:
        for name in METRICS:
            m = s["metrics"][name]
            if not m["points"]:
                lines.append(
                    f"    {name:<20} no datapoints yet (published ~1 min late; retry with --metrics-wait)"
                )
            else:
                series = " ".join(f"{v:g}" for _, v in m["points"])
                lines.append(f"    {name:<20} max {m['max']:g}   per minute: {series}")
    else:
        lines.append("    skipped (--no-metrics)")
    for err in s["errors"]:
        lines.append(f"  error x{err['count']}: {err['error']}")
    lines.append(
        "PASS: every invocation returned 200" if s["passed"] else f"FAIL: {s['failed']} invocation(s) failed"
    )
    return "\n".join(lines)


# --------------------------------------------------------------------------- command line


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m tools.validate_stack",
        description="Invoke the probe Lambda of a deployed stack and report what RDS Proxy did.",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--stack", "-s", help="Pulumi stack (default: the selected one)")
    src.add_argument("--outputs", metavar="FILE", help="stack outputs as JSON ('-' for stdin)")
    p.add_argument("--cwd", help="Pulumi project directory (default: current directory)")
    p.add_argument("--region", help="AWS region (default: from proxyArn, else AWS_REGION)")
    p.add_argument("-n", "--invocations", type=int, default=20, help="invocations (default 20)")
    p.add_argument("-c", "--concurrency", type=int, default=4, help="parallel invocations (default 4)")
    p.add_argument("--fresh", action="store_true", help='send {"fresh": true}: a new connection each time')
    p.add_argument("--user", metavar="NAME", help='send {"user": NAME}: probe as that dbUsers entry')
    p.add_argument(
        "--endpoint",
        choices=("writer", "reader"),
        default="writer",
        help='writer (default) or reader: send {"endpoint": "reader"} (the proxy\'s READ_ONLY endpoint)',
    )
    p.add_argument("--metrics-wait", type=float, default=90.0, metavar="S", help="wait up to S s for metrics")
    p.add_argument("--no-metrics", action="store_true", help="don't read CloudWatch")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    monitoring_report.add_arguments(p)
    w = p.add_argument_group("watch mode (tools/watch.py): probe continuously and report a downtime timeline")
    w.add_argument("--watch", type=float, metavar="SECONDS", help="invoke the probe continuously for SECONDS")
    w.add_argument("--rate", type=float, default=2.0, metavar="N", help="invocations per second (default 2)")
    w.add_argument(
        "--max-downtime",
        type=float,
        metavar="S",
        help="exit 1 when the longest error window exceeds S seconds",
    )
    args = p.parse_args(argv)
    monitoring_report.check_arguments(p, args)
    if args.watch is not None and not args.watch > 0:
        p.error(f"--watch must be > 0 seconds, got {args.watch:g}")
    if not args.rate > 0:
        p.error(f"--rate must be > 0 invocations per second, got {args.rate:g}")
    if args.max_downtime is not None and args.max_downtime < 0:
        p.error(f"--max-downtime must be >= 0 seconds, got {args.max_downtime:g}")
    if args.watch is None and args.max_downtime is not None:
        p.error("--max-downtime needs --watch SECONDS")
    if args.invocations < 1:
        p.error("-n/--invocations must be >= 1")
    if args.concurrency < 1:
        p.error("-c/--concurrency must be >= 1")
    if args.user is not None and not args.user.strip():
        p.error("--user: an empty name is not allowed; pass a dbUsers entry's name")
    return args


def make_clients(region: str, concurrency: int) -> tuple[Any, Any]:  # pragma: no cover - real AWS
    import boto3
    from botocore.config import Config

    cfg = Config(
        region_name=region,
        max_pool_connections=max(10, concurrency),
        read_timeout=70,  # longer than the probe's timeout (30 s)
        retries={"mode": "standard", "max_attempts": 3},
    )
    session = boto3.session.Session()
    return session.client("lambda", config=cfg), session.client("cloudwatch", config=cfg)


def main(
    argv: Sequence[str] | None = None,
    *,
    clients: Callable[[str, int], tuple[Any, Any]] = make_clients,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> int:
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    args = parse_args(argv)
    try:
        outputs = load_outputs(args.stack, args.outputs, cwd=args.cwd)
        region = region_for(outputs, args.region)
        lambda_client, cloudwatch = clients(region, args.concurrency)
    except UsageError as exc:
        err.write(f"validate_stack: {exc}\n")
        return EXIT_USAGE
    except Exception as exc:  # botocore: no credentials, bad region ...
        err.write(f"validate_stack: cannot set up AWS clients: {exc}\n")
        return EXIT_USAGE

    function_name = str(outputs["probeFunctionName"])
    proxy_name = str(outputs["proxyName"])
    if args.watch is not None:
        from tools import watch

        return watch.run_command(
            watch.lambda_invoker(
                lambda_client, function_name, args.fresh, probe_event(args.fresh, args.user, args.endpoint)
            ),
            seconds=args.watch,
            rate=args.rate,
            max_downtime=args.max_downtime,
            as_json=args.json,
            stdout=out,
            stderr=err,
            concurrency=args.concurrency,
            progress=not args.no_progress,
        )
    progress = ProgressBar(args.invocations, stream=err, enabled=not args.no_progress)
    started = now()
    event = probe_event(args.fresh, args.user, args.endpoint)
    try:
        invocations = run_invocations(
            lambda_client,
            function_name,
            args.invocations,
            args.concurrency,
            args.fresh,
            progress,
            event=event,
        )
    finally:  # on Ctrl-C too: a live bar hides the cursor until it is stopped
        progress.close()
    window = metric_window(started, now())

    metrics: dict[str, dict[str, Any]] | None = None
    metrics_error = None
    if not args.no_metrics:
        try:
            metrics = fetch_proxy_metrics(cloudwatch, proxy_name, *window, wait_s=args.metrics_wait)
        except Exception as exc:  # missing permission etc.: report, the probe result still counts
            metrics_error = f"{type(exc).__name__}: {exc}"

    summary = summarize(
        invocations,
        metrics,
        function_name=function_name,
        proxy_name=proxy_name,
        region=region,
        concurrency=args.concurrency,
        fresh=args.fresh,
        window=window,
        metrics_error=metrics_error,
        user=args.user,
        endpoint=args.endpoint,
    )
    monitoring = monitoring_report.after_run(args, cloudwatch, proxy_name, summary, invocations)
    summary["alarms"] = monitoring.as_json()
    text = json.dumps(summary, indent=2, default=str) if args.json else render(summary)
    out.write((text if args.json else monitoring_report.with_alarms(text, monitoring)) + "\n")
    return monitoring.exit_code(EXIT_OK if summary["passed"] else EXIT_PROBE_FAILED)


if __name__ == "__main__":
    sys.exit(main())
