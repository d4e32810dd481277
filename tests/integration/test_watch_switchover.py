"""Watch mode against real servers: the real probe handler, run continuously by tools/watch.py through a
local TCP forwarder that switches from MariaDB server A to server B the way RDS Proxy does at a
blue/green switchover (every connection dropped, new ones refused for a while, then served by the
new server), and checks the reported error window against when the test broke and restored the path.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import PROBE_ENV_VARS, FakeContext, lambda_function
from tests.integration.mariadb_server import HOST, MariaDBMissing, MariaDBServer, start_server
from tests.integration.tcp_forwarder import TcpForwarder
from tools import watch as w

RATE = 10.0  # invocations per second, one at a time (one warm container); events fall between ticks
WATCH_S = 4.5
BLIP_AT, BLIP_S = 0.65, 0.1  # shorter than the probe's shortest retry span (below): they ride through it
SWITCH_AT, SWITCH_S = 1.55, 2.0  # longer than the retries: an error window, then server B
# The probe's retries as configured below: 5 attempts, backoff base 0.05 s, cap 0.4 s, equal jitter
# (each pause between half and all of 0.05, 0.1, 0.2, 0.4 s), so a failing invocation keeps trying for
# at most 0.75 s, and at least 0.175 s when its first attempt was the dropped kept connection (replaced
# at once, no pause) - hence a blip well under 0.175 s.
RETRY_SPAN_MAX = 0.75
SLACK = 0.05  # thread scheduling and the forwarder's own work on a busy 2-core machine


@pytest.fixture(scope="module")
def mariadb_b(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDBServer]:
    """A second server (green): its own datadir, CA and server_id."""
    try:
        server = start_server(tmp_path_factory.mktemp("mariadb-b"))
    except MariaDBMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        server.execute("SET GLOBAL server_id = 2")
        yield server
    finally:
        server.stop()


def _server_id(server: MariaDBServer) -> int:
    return int(server.execute("SELECT @@server_id")[0][0])  # type: ignore[call-overload]


@pytest.fixture
def forwarded_probe(
    mariadb: MariaDBServer, mariadb_b: MariaDBServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TcpForwarder]:
    """Password-mode probe pointed at the forwarder, trusting both servers' CAs."""
    bundle = tmp_path / "ca-bundle.pem"
    bundle.write_text(Path(mariadb.ca_path).read_text() + Path(mariadb_b.ca_path).read_text())
    fwd = TcpForwarder(mariadb.port)
    for name in PROBE_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    env = mariadb.probe_env(
        PROXY_ENDPOINT=HOST,
        DB_PORT=str(fwd.port),
        DB_CA_BUNDLE=str(bundle),
        PROBE_MAX_ATTEMPTS="5",
        PROBE_BACKOFF_BASE_S="0.05",
        PROBE_BACKOFF_CAP_S="0.4",
        PROBE_CONNECT_TIMEOUT_S="1",
    )
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    lambda_function.reset_state()
    yield fwd
    fwd.close()
    lambda_function.reset_state()


def handler_invoker() -> w.Invoker:
    """The real handler, called in-process like Lambda calls it; its answer as a watch Reply."""

    def invoke() -> w.Reply:
        resp = lambda_function.lambda_handler({}, FakeContext(remaining_ms=3000))
        body = json.loads(resp["body"])
        if resp["statusCode"] == 200:
            result = body["result"]
            server = result.get("server_id")  # the probe reports it once read scaling (issue 9) lands
            return w.Reply(True, 200, None, result["connection_id"], None if server is None else str(server))
        err = body["error"]
        code = err["code"] if err["code"] is not None else err["type"]
        return w.Reply(False, resp["statusCode"], str(code))

    return invoke


def test_watch_measures_the_switchover_window_and_the_probe_lands_on_server_b(
    forwarded_probe: TcpForwarder, mariadb: MariaDBServer, mariadb_b: MariaDBServer
) -> None:
    fwd = forwarded_probe
    a_id, b_id = _server_id(mariadb), _server_id(mariadb_b)
    assert a_id != b_id
    runner = w.Watch(handler_invoker(), WATCH_S, RATE)
    events: dict[str, float] = {}
    failures: list[BaseException] = []

    def at(t: float) -> None:
        assert runner.t0 is not None
        time.sleep(max(0.0, runner.t0 + t - time.monotonic()))

    def since_start() -> float:
        assert runner.t0 is not None
        return time.monotonic() - runner.t0

    def script() -> None:
        try:
            while runner.t0 is None:
                time.sleep(0.001)
            at(BLIP_AT)
            fwd.cut()
            events["blip_broken"] = since_start()
            at(BLIP_AT + BLIP_S)
            fwd.restore(mariadb.port)
            events["blip_restored"] = since_start()
            at(SWITCH_AT)
            fwd.cut()
            events["broken"] = since_start()
            at(SWITCH_AT + SWITCH_S)
            fwd.restore(mariadb_b.port)  # green: same endpoint, another server
            events["restored"] = since_start()
        except BaseException as exc:  # surfaced below, not lost in the thread
            failures.append(exc)

    controller = threading.Thread(target=script, name="switchover-script")
    controller.start()
    timeline = runner.run()
    controller.join()
    assert not failures, failures
    broken, restored = events["broken"], events["restored"]

    # Exactly one error window: the blip dropped the kept connection, but the probe reconnected and
    # retried through it, so it shows only as latency.
    assert len(timeline.windows) == 1, (events, [(x.start, x.end, x.codes) for x in timeline.windows])
    before_blip = [o for o in timeline.outcomes if o.end < events["blip_broken"]]
    blip_calls = [o for o in timeline.outcomes if events["blip_broken"] <= o.end and o.start < broken]
    assert before_blip and blip_calls and all(o.ok for o in blip_calls)
    assert before_blip[-1].connection_id not in {o.connection_id for o in blip_calls}  # it did reconnect

    win = timeline.windows[0]
    # The window never starts before the path broke, and starts within one tick after it.
    assert broken - SLACK <= win.start <= broken + 1 / RATE + SLACK
    assert win.last_ok_end is not None and win.last_ok_end <= broken + SLACK
    # It never ends after the path came back; it ends at most one tick plus one retry span earlier.
    assert restored - (1 / RATE + RETRY_SPAN_MAX + SLACK) <= win.end <= restored + SLACK
    assert win.next_ok_end is not None and win.next_ok_end >= restored
    assert set(win.codes) <= {"2003", "2013"}  # refused / dropped: what the probe saw at the cut
    assert not win.open and not timeline.exceeds(SWITCH_S + SLACK)
    assert timeline.exceeds(SWITCH_S - (1 / RATE + RETRY_SPAN_MAX + SLACK) - 0.01)

    # After the switch the probe answers from server B: its kept connection is B's.
    last = timeline.outcomes[-1]
    assert last.ok and last.start > restored
    assert lambda_function._conn is not None
    with lambda_function._conn.cursor() as cur:
        cur.execute("SELECT @@server_id")
        row: Any = cur.fetchone()
    assert int(row[0]) == b_id
    assert last.connection_id in mariadb_b.connection_ids()

    print(
        f"\nwatch: path broken at +{broken:.3f}s, restored at +{restored:.3f}s ({restored - broken:.3f} s); "
        f"reported window +{win.start:.3f}s .. +{win.end:.3f}s = {win.length:.3f} s, {win.failures} failures, "
        f"codes {win.codes}; bracket +{win.last_ok_end:.3f}s .. +{win.next_ok_end:.3f}s; "
        f"blip {events['blip_restored'] - events['blip_broken']:.3f} s -> slowest call "
        f"{max(o.latency_ms for o in blip_calls):.0f} ms, no error; {len(timeline.outcomes)} calls, "
        f"{timeline.skipped} ticks skipped"
    )
