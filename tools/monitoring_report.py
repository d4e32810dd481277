"""What ``tools.validate_stack`` adds after a run: the stack's alarm states and, with ``--chart``, a
picture of the run.

Alarms: the Monitoring component names every alarm ``<proxyName>-<what>``, so
``DescribeAlarms(AlarmNamePrefix="<proxyName>-")`` finds exactly this stack's alarms (the trailing
``-`` keeps ``demo-proxy`` from matching ``demo-proxy2``'s). Any alarm in ``ALARM`` makes the command
exit 3 unless ``--ignore-alarms``; ``INSUFFICIENT_DATA`` is shown but does not fail (proxy metrics only
exist after the first connection). A failed ``DescribeAlarms`` (e.g. missing permission) is reported
and does not change the exit status: the probe result still counts.

Chart (``--chart FILE.png``, matplotlib, Agg backend, no display needed): on top, per minute, the
proxy's ``ClientConnections`` against ``DatabaseConnections`` (AWS/RDS, ProxyName, Sum per 60 s: the
series validate_stack already read with GetMetricData); below, each invocation's client-side latency,
marked new connection / reused / failed, with p50 and p95. Many clients over few database connections
is the pooling users want to see.

AWS permission added: cloudwatch:DescribeAlarms.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

EXIT_ALARM = 3
EXIT_CHART = 2  # validate_stack's "unusable setup" status: the file asked for cannot be written
CHART_SIZE_PX = (1200, 700)
CHART_DPI = 100
FIRING = "ALARM"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ignore-alarms", action="store_true", help="show alarm states but don't fail on ALARM")
    p.add_argument("--chart", metavar="FILE.png", help="draw connections per minute and latencies (PNG)")


def check_arguments(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.chart is not None:
        if not str(args.chart).lower().endswith(".png"):
            p.error(f"--chart: {args.chart!r} is not allowed; expected a file name ending in .png")
        if args.no_metrics:
            p.error("--chart needs the proxy metrics from CloudWatch; drop --no-metrics")


# --------------------------------------------------------------------------- alarms


@dataclass(frozen=True)
class AlarmState:
    name: str
    state: str  # OK | ALARM | INSUFFICIENT_DATA
    reason: str
    since: dt.datetime | None


def alarm_prefix(proxy_name: str) -> str:
    return f"{proxy_name}-"


def fetch_alarms(cloudwatch: Any, proxy_name: str) -> list[AlarmState]:
    """Every metric and composite alarm named ``<proxyName>-…``, sorted by name."""
    alarms: list[AlarmState] = []
    kwargs: dict[str, Any] = {
        "AlarmNamePrefix": alarm_prefix(proxy_name),
        "AlarmTypes": ["MetricAlarm", "CompositeAlarm"],
    }
    while True:
        resp = cloudwatch.describe_alarms(**kwargs)
        for alarm in [*resp.get("MetricAlarms", []), *resp.get("CompositeAlarms", [])]:
            alarms.append(
                AlarmState(
                    name=str(alarm["AlarmName"]),
                    state=str(alarm.get("StateValue", "INSUFFICIENT_DATA")),
                    reason=str(alarm.get("StateReason", "")),
                    since=alarm.get("StateUpdatedTimestamp"),
                )
            )
        token = resp.get("NextToken")
        if not token:
            break
        kwargs["NextToken"] = token
    return sorted(alarms, key=lambda a: a.name)


@dataclass
class MonitoringResult:
    prefix: str
    ignore_alarms: bool = False
    alarms: list[AlarmState] | None = None
    alarms_error: str | None = None
    skipped: str | None = None
    chart: str | None = None
    chart_error: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def firing(self) -> list[AlarmState]:
        return [a for a in self.alarms or [] if a.state == FIRING]

    def exit_code(self, base: int) -> int:
        """The probe's verdict first; then a chart that was asked for and not written; then alarms."""
        if base != 0:
            return base
        if self.chart_error:
            return EXIT_CHART
        if self.firing and not self.ignore_alarms:
            return EXIT_ALARM
        return base

    def as_json(self) -> dict[str, Any]:
        return {
            "prefix": self.prefix,
            "states": None
            if self.alarms is None
            else [
                {
                    "name": a.name,
                    "state": a.state,
                    "reason": a.reason,
                    "since": a.since.isoformat() if a.since else None,
                }
                for a in self.alarms
            ],
            "in_alarm": [a.name for a in self.firing],
            "error": self.alarms_error,
            "skipped": self.skipped,
            "chart": self.chart,
            "chart_error": self.chart_error,
        }

    def render(self) -> str:
        """The alarm table (and chart line), meant to go before the probe's verdict line."""
        lines: list[str] = []
        if self.skipped:
            lines.append(f"  alarms:          skipped ({self.skipped})")
        elif self.alarms_error:
            lines.append(f"  alarms:          unavailable: {self.alarms_error}")
        elif not self.alarms:
            lines.append(
                f"  alarms:          none named {self.prefix}* (monitoring off, or not deployed yet)"
            )
        else:
            counts = {s: sum(a.state == s for a in self.alarms) for s in ("ALARM", "OK", "INSUFFICIENT_DATA")}
            lines.append(
                f"  alarms:          {len(self.alarms)} named {self.prefix}*: "
                + ", ".join(f"{n} {s}" for s, n in counts.items() if n)
            )
            table = Table(box=None, pad_edge=False, show_edge=False, padding=(0, 2, 0, 0))
            table.add_column("alarm", no_wrap=True)
            table.add_column("state", no_wrap=True)
            table.add_column("since (UTC)", no_wrap=True)
            table.add_column("reason", overflow="ellipsis", no_wrap=True, max_width=60)
            for a in self.alarms:
                since = a.since.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M") if a.since else "-"
                table.add_row(a.name, a.state, since, a.reason)
            buf = io.StringIO()
            Console(file=buf, width=160, color_system=None, highlight=False).print(table)
            lines += ["    " + row.rstrip() for row in buf.getvalue().splitlines()]
        if self.chart:
            lines.append(f"  chart:           {self.chart}")
        if self.chart_error:
            lines.append(f"  chart:           not drawn: {self.chart_error}")
        return "\n".join(lines)

    def verdict(self) -> str | None:
        """A last line when alarms change the outcome, None otherwise."""
        if not self.firing:
            return None
        names = ", ".join(a.name for a in self.firing)
        if self.ignore_alarms:
            return f"alarms in ALARM (ignored with --ignore-alarms): {names}"
        return f"FAIL: {len(self.firing)} alarm(s) in ALARM: {names}"


def with_alarms(report: str, result: MonitoringResult) -> str:
    """Insert the monitoring section before the report's last (verdict) line; add the alarm verdict last."""
    head, _, verdict = report.rpartition("\n")
    parts = [head, result.render(), verdict] if head else [result.render(), verdict]
    if result.verdict():
        parts.append(str(result.verdict()))
    return "\n".join(p for p in parts if p)


# --------------------------------------------------------------------------- chart


def _minutes(points: Sequence[Sequence[Any]]) -> dict[dt.datetime, float]:
    out: dict[dt.datetime, float] = {}
    for ts, value in points:
        t = ts if isinstance(ts, dt.datetime) else dt.datetime.fromisoformat(str(ts))
        out[t] = float(value)
    return out


def draw_chart(path: str | Path, summary: dict[str, Any], invocations: Sequence[Any]) -> Any:
    """Write the PNG and return the matplotlib Figure (tests read its data back)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    width, height = CHART_SIZE_PX
    fig = Figure(figsize=(width / CHART_DPI, height / CHART_DPI), dpi=CHART_DPI, layout="constrained")
    FigureCanvasAgg(fig)  # Agg: no display, same output everywhere
    top, bottom = fig.subplots(2, 1, height_ratios=(1, 1))
    fig.suptitle(
        f"RDS Proxy {summary['proxy']} ({summary['region']}): {summary['invocations']} invocations, "
        f"concurrency {summary['concurrency']}, {summary['mode']} connections"
    )

    metrics = summary.get("metrics") or {}
    client = _minutes((metrics.get("ClientConnections") or {}).get("points", []))
    database = _minutes((metrics.get("DatabaseConnections") or {}).get("points", []))
    minutes = sorted(set(client) | set(database))
    xs = list(range(len(minutes)))
    bar = 0.38
    top.bar([x - bar / 2 for x in xs], [client.get(m, 0.0) for m in minutes], bar, label="ClientConnections")
    top.bar(
        [x + bar / 2 for x in xs], [database.get(m, 0.0) for m in minutes], bar, label="DatabaseConnections"
    )
    top.set_xticks(xs, [m.strftime("%H:%M") for m in minutes])
    top.set_ylabel("connections (Sum / min)")
    top.set_title(f"AWS/RDS ProxyName={summary['proxy']}, per minute (UTC)")
    if minutes:
        top.legend(loc="upper left")
    else:
        top.text(
            0.5,
            0.5,
            "no datapoints yet (published ~1 min late)",
            ha="center",
            va="center",
            transform=top.transAxes,
        )

    groups = (
        ("new connection", [i for i in invocations if i.ok and not i.reused], "tab:purple", "o"),
        ("reused connection", [i for i in invocations if i.ok and i.reused], "tab:green", "o"),
        ("failed", [i for i in invocations if not i.ok], "tab:red", "x"),
    )
    for label, group, color, marker in groups:
        if group:
            bottom.scatter(
                [i.index + 1 for i in group],
                [i.latency_ms for i in group],
                s=18,
                c=color,
                marker=marker,
                label=f"{label} ({len(group)})",
            )
    lat = summary.get("latency_ms") or {}
    for key, style in (("p50", "--"), ("p95", ":")):
        if lat.get(key) is not None:
            bottom.axhline(
                lat[key], color="grey", linestyle=style, linewidth=1, label=f"{key} {lat[key]:.1f} ms"
            )
    bottom.set_xlabel("invocation")
    bottom.set_ylabel("client latency (ms)")
    bottom.set_title("Lambda invoke round trip per invocation")
    bottom.legend(loc="upper right")
    fig.savefig(path, dpi=CHART_DPI, format="png")
    return fig


# --------------------------------------------------------------------------- the hook


def after_run(
    args: argparse.Namespace,
    cloudwatch: Any,
    proxy_name: str,
    summary: dict[str, Any],
    invocations: Sequence[Any],
) -> MonitoringResult:
    """Read the alarm states and draw the chart for a finished validate run."""
    result = MonitoringResult(prefix=alarm_prefix(proxy_name), ignore_alarms=args.ignore_alarms)
    if args.no_metrics:
        result.skipped = "--no-metrics"
    else:
        try:
            result.alarms = fetch_alarms(cloudwatch, proxy_name)
        except Exception as exc:  # missing permission etc.: reported, the probe result still counts
            result.alarms_error = f"{type(exc).__name__}: {exc}"
    if args.chart:
        try:
            draw_chart(args.chart, summary, invocations)
            result.chart = str(args.chart)
        except OSError as exc:
            result.chart_error = f"{type(exc).__name__}: {exc}"
    return result
