"""tools/watch.py: the downtime timeline, driven by a fake invoker and a fake clock (window math exact)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber
from rich.console import Console

from tests.test_validate_stack import OUTPUTS, _session, error_response, ok_response
from tools import validate_stack as vs
from tools import watch as w


def o(i: int, start: float, end: float, ok: bool = True, code: str | None = None, **kw: Any) -> w.Outcome:
    return w.Outcome(i, start, end, ok, 200 if ok else 503, code, **kw)


SAMPLE = [
    o(0, 0.0, 0.01),
    o(1, 0.5, 0.51),
    o(2, 1.0, 1.2, False, "2013"),
    o(3, 1.5, 1.9, False, "2003"),
    o(4, 2.0, 2.05),
    o(5, 3.0, 3.1, False, "2003"),
    o(6, 3.5, 3.6),
]


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0  # any origin: the watch measures from its own start

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


class ScriptedInvoker:
    """Each call takes ``latency`` fake seconds and answers the next scripted reply (then ok)."""

    def __init__(self, clock: FakeClock, script: list[tuple[float, w.Reply]]) -> None:
        self.clock = clock
        self.script = list(script)
        self.calls = 0

    def __call__(self) -> w.Reply:
        self.calls += 1
        latency, reply = self.script.pop(0) if self.script else (0.01, w.Reply(True, 200))
        self.clock.t += latency
        return reply


# --------------------------------------------------------------------------- window math


def test_error_windows_are_runs_of_failures_with_exact_bounds() -> None:
    t = w.build_timeline(list(reversed(SAMPLE)))  # order of arrival does not matter, start time does
    assert [(x.start, x.end, x.failures) for x in t.windows] == [(1.0, 1.9, 2), (3.0, 3.1, 1)]
    first, second = t.windows
    assert first.length == pytest.approx(0.9)
    assert first.codes == {"2003": 1, "2013": 1}
    assert (first.last_ok_end, first.next_ok_end) == (0.51, 2.05)
    assert second.length == pytest.approx(0.1)
    assert (second.last_ok_end, second.next_ok_end) == (2.05, 3.6)
    assert t.longest is first
    assert t.failed == 3


def test_per_second_counts_include_quiet_seconds() -> None:
    t = w.build_timeline([*SAMPLE, o(7, 5.2, 5.25)])
    assert [(s.second, s.ok, s.err) for s in t.seconds] == [
        (0, 2, 0),
        (1, 0, 2),
        (2, 1, 0),
        (3, 1, 1),
        (4, 0, 0),
        (5, 1, 0),
    ]
    assert t.seconds[1].max_latency_ms == pytest.approx(400.0)
    assert t.seconds[4].max_latency_ms is None


def test_a_window_still_failing_at_the_end_is_open() -> None:
    t = w.build_timeline([o(0, 0.0, 0.1), o(1, 0.5, 0.6, False, "2003")])
    assert t.windows[0].open and t.windows[0].next_ok_end is None
    assert t.exceeds(max_downtime=60.0)  # an outage that outlasts the watch fails any limit


def test_max_downtime_compares_the_longest_window() -> None:
    t = w.build_timeline(SAMPLE)
    assert t.exceeds(0.5)
    assert not t.exceeds(0.9)
    exact = w.build_timeline([o(0, 0.0, 0.25), o(1, 0.5, 1.0, False, "2003"), o(2, 1.5, 1.75)])
    assert exact.longest is not None and exact.longest.length == 0.5
    assert not exact.exceeds(0.5)  # "exceeds" is strictly longer than the limit
    assert exact.exceeds(0.49)
    assert t.exceeds(None)  # no limit: any failure fails
    assert not w.build_timeline([o(0, 0, 0.1)]).exceeds(None)
    assert w.build_timeline([]).exceeds(None)  # nothing measured is not a pass


def test_the_longest_window_is_the_longest_wherever_it_falls() -> None:
    # A short blip before the real switchover window: the report and --max-downtime must use the later one.
    t = w.build_timeline(
        [o(0, 0.0, 0.1), o(1, 0.5, 0.6, False, "2013"), o(2, 1.0, 1.1),
         o(3, 2.0, 2.1, False, "2003"), o(4, 2.5, 3.9, False, "2003"), o(5, 4.0, 4.1)]
    )  # fmt: skip
    assert [x.start for x in t.windows] == [0.5, 2.0]
    assert t.longest is t.windows[1] and t.longest.length == pytest.approx(1.9)
    assert t.exceeds(1.0)
    assert not t.exceeds(1.9)


def test_servers_are_listed_in_order_of_first_answer() -> None:
    t = w.build_timeline(
        [o(0, 0, 0.1, server_id="1"), o(1, 1, 1.1, server_id="2"), o(2, 2, 2.1, server_id="1")]
    )
    assert t.servers == ["1", "2"]


# --------------------------------------------------------------------------- the loop, on a fake clock


def test_watch_invokes_at_the_rate_and_skips_ticks_a_slow_call_overran() -> None:
    clock = FakeClock()
    inv = ScriptedInvoker(
        clock,
        [
            (0.01, w.Reply(True, 200)),
            (1.2, w.Reply(False, 503, "2003")),  # t=0.5 .. 1.7: the tick at 1.0 is skipped
            (0.01, w.Reply(True, 200)),
        ],
    )
    t = w.watch(inv, seconds=3, rate=2, clock=clock, sleep=clock.sleep)
    assert [round(x.start, 6) for x in t.outcomes] == [0.0, 0.5, 1.7, 2.0, 2.5]
    assert t.skipped == 1
    (win,) = t.windows
    assert (round(win.start, 6), round(win.end, 6), win.codes) == (0.5, 1.7, {"2003": 1})
    assert round(win.length, 6) == 1.2


def test_an_invoker_exception_is_an_outcome_not_a_crash() -> None:
    clock = FakeClock()

    def boom() -> w.Reply:
        raise ConnectionResetError("reset")

    t = w.watch(boom, seconds=1, rate=2, clock=clock, sleep=clock.sleep)
    assert [x.error_code for x in t.outcomes] == ["ConnectionResetError", "ConnectionResetError"]


def test_stop_ends_the_watch_early() -> None:
    clock = FakeClock()
    runner = w.Watch(ScriptedInvoker(clock, []), 60, 2, clock=clock, sleep=clock.sleep)
    runner.on_outcome = lambda out: runner.stop() if out.index == 2 else None
    t = runner.run()
    assert len(t.outcomes) == 3


def test_threads_keep_probing_while_one_call_hangs() -> None:
    import threading

    release = threading.Event()
    calls: list[int] = []

    def invoke() -> w.Reply:
        calls.append(1)
        if len(calls) == 1:
            release.wait(2)  # the first call hangs; with one worker nothing else would run
        return w.Reply(True, 200)

    t = w.watch(invoke, seconds=0.5, rate=20, concurrency=3, on_outcome=lambda _o: release.set())
    release.set()
    assert len(t.outcomes) >= 5


@pytest.mark.parametrize(
    "kwargs",
    [{"seconds": 0, "rate": 2}, {"seconds": 5, "rate": 0}, {"seconds": 5, "rate": 2, "concurrency": 0}],
)
def test_bad_parameters_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        w.Watch(lambda: w.Reply(True), **kwargs)


def test_render_shows_windows_and_the_verdict() -> None:
    buf = io.StringIO()
    w.render(w.build_timeline(SAMPLE), Console(file=buf, width=160), max_downtime=0.5)
    text = buf.getvalue()
    assert "Longest error window: 0.90 s from +1.00s (2003 x1, 2013 x1)" in text
    assert "FAIL: --max-downtime 0.5 s" in text
    assert "7 invocations, 3 failed" in text


# --------------------------------------------------------------------------- the probe Lambda as invoker


def test_lambda_invoker_reduces_each_answer_to_a_short_error_code() -> None:
    client = _session().client("lambda")
    stub = Stubber(client)
    params = {"FunctionName": "demo-probe", "InvocationType": "RequestResponse", "Payload": b"{}"}
    stub.add_response("invoke", ok_response(7, True), params)
    stub.add_response("invoke", error_response(503, 2013, "connection_lost", True), params)
    stub.add_response("invoke", error_response(500, None, "tls_verification", False), params)
    stub.add_client_error("invoke", "TooManyRequestsException", "Rate exceeded", 429, expected_params=params)
    invoke = w.lambda_invoker(client, "demo-probe")
    with stub:
        replies = [invoke() for _ in range(4)]
    stub.assert_no_pending_responses()
    assert replies[0] == w.Reply(True, 200, None, 7, None)
    assert (replies[1].ok, replies[1].status, replies[1].error_code) == (False, 503, "2013")
    assert replies[2].error_code == "tls_verification"
    assert (replies[3].status, replies[3].error_code) == (None, "TooManyRequestsException")


# --------------------------------------------------------------------------- validate_stack --watch


def _run_watch_cli(
    tmp_path: Path, responses: list[dict[str, Any]], *args: str, payload: bytes = b"{}"
) -> tuple[int, str, str]:
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(OUTPUTS))
    lam = _session().client("lambda")
    stub = Stubber(lam)
    for resp in responses:
        stub.add_response(
            "invoke",
            resp,
            {"FunctionName": "demo-probe", "InvocationType": "RequestResponse", "Payload": payload},
        )
    out, err = io.StringIO(), io.StringIO()
    with stub:
        code = vs.main(
            ["--outputs", str(outputs), "-c", "1", *args],
            clients=lambda region, c: (lam, None),
            stdout=out,
            stderr=err,
        )
    stub.assert_no_pending_responses()
    return code, out.getvalue(), err.getvalue()


WATCH_RESPONSES = [
    ok_response(1, False),
    error_response(503, 2013, "connection_lost", True),
    error_response(503, 2003, "connect_failed", True),
    ok_response(2, False),
]


def test_validate_stack_watch_reports_the_window_and_passes_under_the_limit(tmp_path: Path) -> None:
    # 0.5 s at 8/s = exactly four invocations, one at a time.
    code, out, _ = _run_watch_cli(
        tmp_path, WATCH_RESPONSES, "--watch", "0.5", "--rate", "8", "--max-downtime", "5", "--json"
    )
    data = json.loads(out)
    assert code == 0 and data["passed"] is True
    assert data["invocations"] == 4 and data["failed"] == 2
    (window,) = data["windows"]
    assert window["failures"] == 2 and window["codes"] == {"2003": 1, "2013": 1}
    assert 0.1 < window["length"] < 0.25  # two ticks 0.125 s apart, each call ~instant
    assert data["longest"] == window


def test_validate_stack_watch_fails_over_the_limit_or_on_any_error_without_one(tmp_path: Path) -> None:
    code, out, _ = _run_watch_cli(
        tmp_path, WATCH_RESPONSES, "--watch", "0.5", "--rate", "8", "--max-downtime", "0.05"
    )
    assert code == 1
    assert "Longest error window" in out and "FAIL: --max-downtime 0.05 s" in out
    code, _, _ = _run_watch_cli(tmp_path, WATCH_RESPONSES, "--watch", "0.5", "--rate", "8")
    assert code == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--watch", "0"], "--watch must be > 0 seconds, got 0"),
        (["--watch", "5", "--rate", "-1"], "--rate must be > 0 invocations per second, got -1"),
        (["--watch", "5", "--max-downtime", "-2"], "--max-downtime must be >= 0 seconds, got -2"),
        (["--max-downtime", "3"], "--max-downtime needs --watch SECONDS"),
    ],
)
def test_watch_arguments_are_checked(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        vs.parse_args(["--outputs", "x.json", *args])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_watch_probes_as_the_user_and_endpoint_asked_for(tmp_path: Path) -> None:
    code, out, err = _run_watch_cli(
        tmp_path,
        [ok_response(i, False) for i in range(4)],
        "--watch", "0.5", "--rate", "8", "--user", "app_ro", "--endpoint", "reader", "--json",
        payload=b'{"user": "app_ro", "endpoint": "reader"}',
    )  # fmt: skip
    assert code == 0, (out, err)
    assert json.loads(out)["invocations"] == 4
