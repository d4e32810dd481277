"""Continuous probing with a downtime timeline: what clients saw while the database changed under them.

    python -m tools.validate_stack --stack prod --watch 120 --rate 2 --max-downtime 5

Invokes the probe RATE times a second for SECONDS and records every outcome with its start and end
time (status, error code, latency). The timeline gives, per second, how many invocations succeeded
and failed and the slowest one; every *error window* (a run of consecutive failed invocations,
ordered by start time): its start (first failure's start), end (last failure's end), length, the
error codes seen, and the bracket the real outage must lie in (end of the last success before it,
end of the first success after it); and the longest window.

The probe retries transient errors inside one invocation (backoff, within its time budget), so a
break shorter than that budget shows up as slow successes, not as an error window: that is what an
application with the same retry rule would see.

One invocation at a time when ``concurrency`` is 1 (one warm container, as at low rates); more run
on threads, and a tick that finds every worker busy is skipped and counted, never queued (a queue
would smear the timeline). ``tools.bluegreen switchover`` uses the same code.

The invoker is any ``() -> Reply`` callable (tests drive it without AWS); the clock is injectable.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

EXIT_OK, EXIT_DOWNTIME, EXIT_USAGE = 0, 1, 2


@dataclass(frozen=True)
class Reply:
    """What one probe invocation answered."""

    ok: bool
    status: int | None = None  # the probe's statusCode; None when Lambda itself failed
    error_code: str | None = None  # MySQL error number, the probe's error type, or AWS's error code
    connection_id: int | None = None
    server_id: str | None = None  # which backend answered, when the probe reports it


@dataclass(frozen=True)
class Outcome:
    """One invocation on the watch's clock (seconds since the watch started)."""

    index: int
    start: float
    end: float
    ok: bool
    status: int | None = None
    error_code: str | None = None
    connection_id: int | None = None
    server_id: str | None = None

    @property
    def latency_ms(self) -> float:
        return (self.end - self.start) * 1000.0


Invoker = Callable[[], Reply]


# --------------------------------------------------------------------------- running


class Watch:
    """Probe at a fixed rate until ``seconds`` pass or :meth:`stop` is called."""

    def __init__(
        self,
        invoke: Invoker,
        seconds: float,
        rate: float = 2.0,
        *,
        concurrency: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
        on_outcome: Callable[[Outcome], None] | None = None,
    ) -> None:
        if not seconds > 0:
            raise ValueError(f"seconds must be > 0, got {seconds}")
        if not rate > 0:
            raise ValueError(f"rate must be > 0 invocations/s, got {rate}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        self.invoke = invoke
        self.seconds = float(seconds)
        self.rate = float(rate)
        self.concurrency = concurrency
        self.clock = clock
        self._stop = threading.Event()
        # The default sleep wakes up early on stop(); an injected one is used as given (fake clocks).
        self.sleep = sleep if sleep is not None else (lambda s: self._stop.wait(s) and None)
        self.on_outcome = on_outcome
        self.outcomes: list[Outcome] = []
        self.skipped = 0
        self.started_at: dt.datetime | None = None
        self.t0: float | None = None  # the clock's reading at the start: outcomes are relative to it
        self._lock = threading.Lock()

    def stop(self) -> None:
        self._stop.set()

    def _one(self, index: int, t0: float) -> None:
        start = self.clock() - t0
        try:
            reply = self.invoke()
        except Exception as exc:  # an invoker bug or a network error: an outcome, not a crash
            reply = Reply(ok=False, error_code=type(exc).__name__)
        end = self.clock() - t0
        outcome = Outcome(
            index,
            start,
            end,
            reply.ok,
            reply.status,
            reply.error_code,
            reply.connection_id,
            reply.server_id,
        )
        with self._lock:
            self.outcomes.append(outcome)
        if self.on_outcome is not None:
            self.on_outcome(outcome)

    def run(self) -> Timeline:
        self.started_at = dt.datetime.now(dt.UTC)
        t0 = self.t0 = self.clock()
        ticks = max(1, math.ceil(self.seconds * self.rate))
        workers: list[threading.Thread] = []
        slots = threading.BoundedSemaphore(self.concurrency)
        for i in range(ticks):
            if self._stop.is_set():
                break
            due = i / self.rate
            now = self.clock() - t0
            if now < due:
                self.sleep(due - now)
                if self._stop.is_set():
                    break
            elif now >= due + 1.0 / self.rate:
                # The previous invocation overran this tick: skip it rather than bunch up calls.
                self.skipped += 1
                continue
            if self.concurrency == 1:
                self._one(i, t0)
                continue
            if not slots.acquire(blocking=False):
                self.skipped += 1
                continue

            def work(index: int = i) -> None:
                try:
                    self._one(index, t0)
                finally:
                    slots.release()

            thread = threading.Thread(target=work, name=f"watch-{i}", daemon=True)
            thread.start()
            workers.append(thread)
        for thread in workers:
            thread.join()
        return build_timeline(self.outcomes, skipped=self.skipped, started_at=self.started_at)


def watch(invoke: Invoker, seconds: float, rate: float = 2.0, **kwargs: Any) -> Timeline:
    return Watch(invoke, seconds, rate, **kwargs).run()


# --------------------------------------------------------------------------- timeline


@dataclass(frozen=True)
class ErrorWindow:
    """Consecutive failed invocations (by start time)."""

    start: float  # start of the first failed invocation
    end: float  # end of the last failed invocation
    failures: int
    codes: dict[str, int]
    last_ok_end: float | None  # the outage began after this (None: no success before)
    next_ok_end: float | None  # ... and was over by this (None: still failing when the watch ended)

    @property
    def length(self) -> float:
        return self.end - self.start

    @property
    def open(self) -> bool:
        return self.next_ok_end is None


@dataclass(frozen=True)
class Second:
    second: int
    ok: int
    err: int
    max_latency_ms: float | None


@dataclass
class Timeline:
    outcomes: list[Outcome]
    seconds: list[Second]
    windows: list[ErrorWindow]
    skipped: int = 0
    started_at: dt.datetime | None = None
    servers: list[str] = field(default_factory=list)  # distinct server ids, in order of appearance

    @property
    def longest(self) -> ErrorWindow | None:
        return max(self.windows, key=lambda w: w.length, default=None)

    @property
    def failed(self) -> int:
        return sum(1 for o in self.outcomes if not o.ok)

    def exceeds(self, max_downtime: float | None) -> bool:
        """Whether this run should fail: any error (no limit), a window over the limit, or still down."""
        if max_downtime is None:
            return self.failed > 0 or not self.outcomes
        longest = self.longest
        return (
            not self.outcomes
            or any(w.open for w in self.windows)
            or (longest is not None and longest.length > max_downtime)
        )

    def as_dict(self) -> dict[str, Any]:
        longest = self.longest
        return {
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "invocations": len(self.outcomes),
            "failed": self.failed,
            "skipped_ticks": self.skipped,
            "servers": self.servers,
            "seconds": [asdict(s) for s in self.seconds],
            "windows": [_window_dict(w) for w in self.windows],
            "longest": _window_dict(longest) if longest else None,
        }


def _window_dict(w: ErrorWindow) -> dict[str, Any]:
    return {**asdict(w), "length": round(w.length, 3), "open": w.open}


def build_timeline(
    outcomes: Sequence[Outcome], skipped: int = 0, started_at: dt.datetime | None = None
) -> Timeline:
    ordered = sorted(outcomes, key=lambda o: (o.start, o.index))
    windows: list[ErrorWindow] = []
    run: list[Outcome] = []
    last_ok_end: float | None = None
    for o in [*ordered, None]:
        if o is not None and not o.ok:
            run.append(o)
            continue
        if run:
            codes = Counter(r.error_code or "unknown" for r in run)
            windows.append(
                ErrorWindow(
                    start=run[0].start,
                    end=max(r.end for r in run),
                    failures=len(run),
                    codes=dict(sorted(codes.items())),
                    last_ok_end=last_ok_end,
                    next_ok_end=o.end if o is not None else None,
                )
            )
            run = []
        if o is not None:
            last_ok_end = o.end
    per: dict[int, list[Outcome]] = {}
    for o in ordered:
        per.setdefault(int(o.start), []).append(o)
    last = max(per, default=-1)
    seconds = [
        Second(
            s,
            sum(1 for o in per.get(s, []) if o.ok),
            sum(1 for o in per.get(s, []) if not o.ok),
            max((o.latency_ms for o in per.get(s, [])), default=None),
        )
        for s in range(last + 1)
    ]
    servers: list[str] = []
    for o in ordered:
        if o.ok and o.server_id is not None and o.server_id not in servers:
            servers.append(o.server_id)
    return Timeline(list(ordered), seconds, windows, skipped, started_at, servers)


# --------------------------------------------------------------------------- report


def _at(t: float, started_at: dt.datetime | None) -> str:
    rel = f"+{t:.2f}s"
    if started_at is None:
        return rel
    wall = (started_at + dt.timedelta(seconds=t)).strftime("%H:%M:%S.%f")[:-4]
    return f"{rel} ({wall}Z)"


def _codes(codes: dict[str, int]) -> str:
    return ", ".join(f"{c} x{n}" for c, n in codes.items())


def render(timeline: Timeline, console: Any, max_downtime: float | None = None) -> None:
    """Per-second table (runs of clean seconds folded into one row), windows, verdict; via rich."""
    from rich.table import Table

    t = timeline
    per = Table(title="Probe outcomes per second", title_justify="left")
    per.add_column("second", justify="right")
    per.add_column("ok", justify="right")
    per.add_column("err", justify="right")
    per.add_column("slowest", justify="right")
    i = 0
    while i < len(t.seconds):
        s = t.seconds[i]
        if s.err == 0:
            j = i
            while j + 1 < len(t.seconds) and t.seconds[j + 1].err == 0:
                j += 1
            if j > i:  # fold a clean run: the interesting rows are the ones with errors
                run = t.seconds[i : j + 1]
                slowest = max((r.max_latency_ms for r in run if r.max_latency_ms is not None), default=None)
                per.add_row(
                    f"{s.second}-{t.seconds[j].second}",
                    str(sum(r.ok for r in run)),
                    "0",
                    "-" if slowest is None else f"{slowest:.0f} ms",
                )
                i = j + 1
                continue
        per.add_row(
            str(s.second),
            str(s.ok),
            f"[bold red]{s.err}[/]" if s.err else "0",
            "-" if s.max_latency_ms is None else f"{s.max_latency_ms:.0f} ms",
        )
        i += 1
    console.print(per)
    console.print(
        f"{len(t.outcomes)} invocations, {t.failed} failed"
        + (f", {t.skipped} ticks skipped (previous call still running)" if t.skipped else "")
        + (f"; answered by servers {', '.join(t.servers)}" if t.servers else "")
    )
    if not t.windows:
        console.print("No error window: every invocation succeeded.")
    else:
        win = Table(title="Error windows", title_justify="left")
        for col in ("start", "end", "length", "failures", "error codes", "outage bracket"):
            win.add_column(col)
        for w in t.windows:
            before = "-" if w.last_ok_end is None else f"+{w.last_ok_end:.2f}s"
            after = "still failing" if w.next_ok_end is None else f"+{w.next_ok_end:.2f}s"
            win.add_row(
                _at(w.start, t.started_at),
                _at(w.end, t.started_at),
                f"{w.length:.2f} s",
                str(w.failures),
                _codes(w.codes),
                f"{before} .. {after}",
            )
        console.print(win)
        longest = t.longest
        assert longest is not None
        console.print(
            f"Longest error window: {longest.length:.2f} s from {_at(longest.start, t.started_at)}"
            f" ({_codes(longest.codes)})"
            + (" - still failing at the end of the watch" if longest.open else "")
        )
    if max_downtime is not None:
        verdict = "FAIL" if t.exceeds(max_downtime) else "PASS"
        console.print(f"{verdict}: --max-downtime {max_downtime:g} s")


# --------------------------------------------------------------------------- the probe Lambda as invoker

_CODE = re.compile(r"\(code (\d+)")


def reply_from_invocation(inv: Any) -> Reply:
    """A :class:`tools.validate_stack.Invocation` as a :class:`Reply` (error code kept short)."""
    if inv.status == 200:
        server = getattr(inv, "server_id", None)
        return Reply(True, 200, None, inv.connection_id, None if server is None else str(server))
    code: str | None = None
    if inv.status is not None and inv.error:
        m = _CODE.search(inv.error)
        code = m.group(1) if m else inv.error.split(" ", 1)[0]  # the probe's error type
    elif inv.error:
        code = inv.error.split(":", 1)[0]  # AWS's error code, FunctionError(...), BadResponse
    return Reply(False, inv.status, code or "unknown")


def lambda_invoker(
    client: Any, function_name: str, fresh: bool = False, event: dict[str, Any] | None = None
) -> Invoker:
    """Invoke the stack's probe through validate_stack's own invocation code (`event`: as `--user` and
    `--endpoint` build it; None: only `fresh`)."""
    from tools.validate_stack import invoke_once

    counter = iter(range(sys.maxsize))

    def invoke() -> Reply:
        return reply_from_invocation(invoke_once(client, function_name, fresh, next(counter), event=event))

    return invoke


def run_command(
    invoke: Invoker,
    *,
    seconds: float,
    rate: float,
    max_downtime: float | None,
    as_json: bool,
    stdout: TextIO,
    stderr: TextIO,
    concurrency: int = 1,
    progress: bool = True,
) -> int:
    """``validate_stack --watch``: run, report, and exit 1 when the downtime limit is exceeded."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    err_console = Console(file=stderr)
    failed = [0]
    with Progress(
        TextColumn("watch"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f} s  failed {task.fields[failed]}"),
        TimeElapsedColumn(),
        console=err_console,
        disable=not progress,
    ) as bar:
        task = bar.add_task("watch", total=seconds, failed=0)

        def seen(o: Outcome) -> None:
            failed[0] += 0 if o.ok else 1
            bar.update(task, completed=min(seconds, o.end), failed=failed[0])

        runner = Watch(invoke, seconds, rate, concurrency=concurrency, on_outcome=seen)
        timeline = runner.run()
        bar.update(task, completed=seconds)
    if as_json:
        data = timeline.as_dict()
        data["max_downtime"] = max_downtime
        data["passed"] = not timeline.exceeds(max_downtime)
        stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        render(timeline, Console(file=stdout, width=120), max_downtime)
    return EXIT_DOWNTIME if timeline.exceeds(max_downtime) else EXIT_OK
