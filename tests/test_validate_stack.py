"""`python -m tools.validate_stack` without AWS: real boto3 clients answered by botocore's Stubber."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from tools import validate_stack as vs

ROOT = Path(__file__).resolve().parent.parent

OUTPUTS = {
    "proxyEndpoint": "demo-proxy.proxy-abcdefghijkl.eu-west-1.rds.amazonaws.com",
    "proxyName": "demo-proxy",
    "proxyArn": "arn:aws:rds:eu-west-1:123456789012:db-proxy:prx-0123456789abcdef0",
    "dbInstanceId": "demo-db",
    "dbEndpoint": "demo-db.abcdefghijkl.eu-west-1.rds.amazonaws.com",
    "secretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:demo-AbCdEf",
    "probeFunctionName": "demo-probe",
    "vpcId": "vpc-0123456789abcdef0",
    "privateSubnetIds": ["subnet-0aaaaaaaaaaaaaaaa", "subnet-0bbbbbbbbbbbbbbbb"],
}
T0 = dt.datetime(2025, 3, 4, 10, 15, 42, tzinfo=dt.UTC)
T1 = dt.datetime(2025, 3, 4, 10, 16, 5, tzinfo=dt.UTC)


def _session() -> boto3.session.Session:
    return boto3.session.Session(
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        region_name="eu-west-1",
    )


def _payload(obj: Any) -> StreamingBody:
    data = json.dumps(obj).encode()
    return StreamingBody(io.BytesIO(data), len(data))


def ok_response(cid: int, reused: bool, connect: float = 0.0, query: float = 1.5) -> dict[str, Any]:
    body = {
        "message": "ok",
        "result": {"connection_test": 1, "connection_id": cid},
        "reused": reused,
        "timings_ms": {"connect": connect, "query": query},
    }
    return {
        "StatusCode": 200,
        "ExecutedVersion": "$LATEST",
        "Payload": _payload({"statusCode": 200, "body": json.dumps(body)}),
    }


def error_response(status: int, code: int | None, type_: str, retryable: bool) -> dict[str, Any]:
    body = {"error": {"code": code, "type": type_, "message": "boom", "retryable": retryable}}
    return {"StatusCode": 200, "Payload": _payload({"statusCode": status, "body": json.dumps(body)})}


def metric_response(db: list[float], client: list[float]) -> dict[str, Any]:
    def res(i: int, name: str, values: list[float]) -> dict[str, Any]:
        stamps = [dt.datetime(2025, 3, 4, 10, 15 + k, tzinfo=dt.UTC) for k in range(len(values))]
        return {
            "Id": f"m{i}",
            "Label": name,
            "Timestamps": stamps,
            "Values": values,
            "StatusCode": "Complete",
        }

    return {
        "MetricDataResults": [
            res(0, "DatabaseConnections", db),
            res(1, "ClientConnections", client),
        ]
    }


EXPECTED_METRIC_QUERY = {
    "MetricDataQueries": [
        {
            "Id": f"m{i}",
            "Label": name,
            "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/RDS",
                    "MetricName": name,
                    "Dimensions": [{"Name": "ProxyName", "Value": "demo-proxy"}],
                },
                "Period": 60,
                "Stat": "Sum",
            },
            "ReturnData": True,
        }
        for i, name in enumerate(("DatabaseConnections", "ClientConnections"))
    ],
    # Whole minutes around the run: 10:15:42 .. 10:16:05 -> [10:15, 10:17)
    "StartTime": dt.datetime(2025, 3, 4, 10, 15, tzinfo=dt.UTC),
    "EndTime": dt.datetime(2025, 3, 4, 10, 17, tzinfo=dt.UTC),
    "ScanBy": "TimestampAscending",
}


class Harness:
    def __init__(self, tmp_path: Path) -> None:
        session = _session()
        self.lam = session.client("lambda")
        self.cw = session.client("cloudwatch")
        self.lam_stub = Stubber(self.lam)
        self.cw_stub = Stubber(self.cw)
        self.outputs_file = tmp_path / "outputs.json"
        self.outputs_file.write_text(json.dumps(OUTPUTS))
        self.regions: list[str] = []
        self.stdout = io.StringIO()
        self.stderr = io.StringIO()

    def expect_invokes(self, responses: list[dict[str, Any]], fresh: bool = False) -> None:
        payload = json.dumps({"fresh": True} if fresh else {}).encode()
        for resp in responses:
            self.lam_stub.add_response(
                "invoke",
                resp,
                {"FunctionName": "demo-probe", "InvocationType": "RequestResponse", "Payload": payload},
            )

    def run(self, *args: str) -> int:
        times = iter([T0, T1])

        def clients(region: str, concurrency: int) -> tuple[Any, Any]:
            self.regions.append(region)
            return self.lam, self.cw

        with self.lam_stub, self.cw_stub:
            code = vs.main(
                ["--outputs", str(self.outputs_file), *args],
                clients=clients,
                stdout=self.stdout,
                stderr=self.stderr,
                now=lambda: next(times),
            )
            self.lam_stub.assert_no_pending_responses()
            self.cw_stub.assert_no_pending_responses()
        return code


@pytest.fixture
def harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Harness:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    return Harness(tmp_path)


def test_healthy_stack_reports_pooling_and_exits_0(harness: Harness) -> None:
    harness.expect_invokes(
        [
            ok_response(11, False, connect=40.0),
            ok_response(12, False, connect=42.0),
            ok_response(11, True),
            ok_response(12, True),
            ok_response(11, True),
            ok_response(12, True),
        ]
    )
    harness.cw_stub.add_response("get_metric_data", metric_response([2, 2], [3, 1]), EXPECTED_METRIC_QUERY)
    code = harness.run("-n", "6", "-c", "3", "--metrics-wait", "0")
    out = harness.stdout.getvalue()
    assert code == 0, out + harness.stderr.getvalue()
    assert harness.regions == ["eu-west-1"]  # taken from proxyArn
    assert "200 x6" in out
    assert "reused:          4/6 (67%)" in out
    assert "2 distinct backend CONNECTION_ID()s [11, 12]" in out
    assert "DatabaseConnections  max 2" in out and "ClientConnections    max 3" in out
    assert "per minute: 3 1" in out
    # connect time over the 2 invocations that opened a connection, query time over all 6
    assert "new connection p50 40.0 ms / p95 42.0 ms, query p50 1.5 ms / p95 1.5 ms" in out
    assert out.rstrip().endswith("PASS: every invocation returned 200")
    # progress on stderr (not a terminal here: plain lines), finished
    assert "100% 6/6 failed 0" in harness.stderr.getvalue()


def test_json_summary(harness: Harness) -> None:
    harness.expect_invokes([ok_response(7, False, connect=30.0), ok_response(7, True)])
    harness.cw_stub.add_response("get_metric_data", metric_response([1], [1]), EXPECTED_METRIC_QUERY)
    assert harness.run("-n", "2", "-c", "1", "--json", "--no-progress", "--metrics-wait", "0") == 0
    summary = json.loads(harness.stdout.getvalue())
    assert summary["status_counts"] == {"200": 2}
    assert summary["reused_share"] == 0.5
    assert summary["connection_ids"] == [7] and summary["distinct_connection_ids"] == 1
    assert summary["metrics"]["DatabaseConnections"]["max"] == 1
    assert summary["handler_ms"]["connect"] == {"p50": 30.0, "p95": 30.0}  # reused ones excluded
    assert set(summary["latency_ms"]) == {"p50", "p95"}
    assert summary["passed"] is True
    assert harness.stderr.getvalue() == ""  # --no-progress


def test_fresh_mode_sends_fresh_events(harness: Harness) -> None:
    harness.expect_invokes([ok_response(1, False, 50.0), ok_response(2, False, 51.0)], fresh=True)
    harness.cw_stub.add_response("get_metric_data", metric_response([1], [1]), EXPECTED_METRIC_QUERY)
    assert harness.run("-n", "2", "-c", "2", "--fresh", "--metrics-wait", "0") == 0
    assert "fresh connections" in harness.stdout.getvalue()
    assert "reused:          0/2 (0%)" in harness.stdout.getvalue()


def test_probe_failures_exit_nonzero_and_are_readable(harness: Harness) -> None:
    harness.expect_invokes(
        [
            ok_response(5, False, 40.0),
            error_response(503, 1040, "too_many_connections", True),
            {
                "StatusCode": 200,
                "FunctionError": "Unhandled",
                "Payload": _payload({"errorMessage": "Task timed out"}),
            },
        ]
    )
    harness.lam_stub.add_client_error("invoke", "TooManyRequestsException", "Rate exceeded", 429)
    harness.cw_stub.add_response("get_metric_data", metric_response([1], [2]), EXPECTED_METRIC_QUERY)
    code = harness.run("-n", "4", "-c", "1", "--metrics-wait", "0")
    out = harness.stdout.getvalue()
    assert code == 1, out
    assert "200 x1" in out and "503 x1" in out
    assert "FunctionError(Unhandled) x1" in out and "TooManyRequestsException x1" in out
    assert "too_many_connections (code 1040, retryable True)" in out
    assert "Task timed out" in out
    assert "FAIL: 3 invocation(s) failed" in out
    assert "failed 3" in harness.stderr.getvalue()


def test_all_failing_probe_exits_1(harness: Harness) -> None:
    harness.expect_invokes([error_response(500, 1045, "access_denied", False)] * 2)
    assert harness.run("-n", "2", "--no-metrics") == 1
    assert "reused:          - (no successful invocation)" in harness.stdout.getvalue()
    assert "access_denied (code 1045, retryable False)" in harness.stdout.getvalue()


def test_metrics_are_awaited_until_published() -> None:
    cw = _session().client("cloudwatch")
    stub = Stubber(cw)
    empty = {
        "MetricDataResults": [
            {"Id": "m0", "Label": "DatabaseConnections", "Timestamps": [], "Values": []},
            {"Id": "m1", "Label": "ClientConnections", "Timestamps": [], "Values": []},
        ]
    }
    stub.add_response("get_metric_data", empty, EXPECTED_METRIC_QUERY)
    stub.add_response("get_metric_data", metric_response([4], [9]), EXPECTED_METRIC_QUERY)
    sleeps: list[float] = []
    with stub:
        metrics = vs.fetch_proxy_metrics(
            cw,
            "demo-proxy",
            *vs.metric_window(T0, T1),
            wait_s=60,
            poll_s=15,
            sleep=sleeps.append,
        )
        stub.assert_no_pending_responses()
    assert sleeps == [15]
    assert metrics["DatabaseConnections"]["max"] == 4 and metrics["ClientConnections"]["max"] == 9


def test_metrics_follow_pagination() -> None:
    cw = _session().client("cloudwatch")
    stub = Stubber(cw)
    first = metric_response([1], [2])
    first["NextToken"] = "page-2"
    second = metric_response([5], [6])
    for res in second["MetricDataResults"]:
        res["Timestamps"] = [dt.datetime(2025, 3, 4, 10, 16, tzinfo=dt.UTC)]
    stub.add_response("get_metric_data", first, EXPECTED_METRIC_QUERY)
    stub.add_response("get_metric_data", second, {**EXPECTED_METRIC_QUERY, "NextToken": "page-2"})
    with stub:
        metrics = vs.fetch_proxy_metrics(cw, "demo-proxy", *vs.metric_window(T0, T1))
    assert [v for _, v in metrics["DatabaseConnections"]["points"]] == [1, 5]
    assert metrics["ClientConnections"]["max"] == 6


def test_metrics_permission_error_is_reported_not_fatal(harness: Harness) -> None:
    harness.expect_invokes([ok_response(3, False, 40.0)])
    harness.cw_stub.add_client_error("get_metric_data", "AccessDenied", "not authorized", 403)
    assert harness.run("-n", "1", "--metrics-wait", "0") == 0
    assert "unavailable: ClientError" in harness.stdout.getvalue()


# --------------------------------------------------------------------------- outputs and setup


def _fake_pulumi(tmp_path: Path, body: str) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "pulumi"
    script.write_text(f"#!{sys.executable}\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return bindir


def test_outputs_come_from_the_pulumi_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    record = tmp_path / "argv.json"
    bindir = _fake_pulumi(
        tmp_path,
        "import json, sys\n"
        f"open({str(record)!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
        f"print(json.dumps({OUTPUTS!r}))",
    )
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    outputs = vs.load_outputs("prod", None)
    assert outputs == OUTPUTS
    argv = json.loads(record.read_text())
    assert argv[:3] == ["stack", "output", "--json"] and argv[-2:] == ["--stack", "prod"]


def test_pulumi_cli_failure_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bindir = _fake_pulumi(tmp_path, "import sys\nsys.stderr.write('no stack named dev')\nsys.exit(255)")
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    err = io.StringIO()
    assert vs.main(["--stack", "dev"], clients=lambda r, c: (None, None), stderr=err) == 2
    assert "no stack named dev" in err.getvalue()


def test_without_pulumi_cli_it_asks_for_an_outputs_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing there
    err = io.StringIO()
    assert vs.main([], clients=lambda r, c: (None, None), stderr=err) == 2
    assert "--outputs FILE" in err.getvalue()


def test_missing_outputs_are_a_usage_error(tmp_path: Path) -> None:
    f = tmp_path / "o.json"
    f.write_text(json.dumps({"proxyName": "p"}))
    err = io.StringIO()
    assert vs.main(["--outputs", str(f)], clients=lambda r, c: (None, None), stderr=err) == 2
    assert "probeFunctionName" in err.getvalue()


def test_region_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    no_arn = {k: v for k, v in OUTPUTS.items() if k != "proxyArn"}
    assert vs.region_for(OUTPUTS, "us-east-2", env={"AWS_REGION": "ap-south-1"}) == "us-east-2"
    # the stack's own region beats the shell's default: the function lives there
    assert vs.region_for(OUTPUTS, None, env={"AWS_REGION": "ap-south-1"}) == "eu-west-1"
    assert vs.region_for(no_arn, None, env={"AWS_REGION": "ap-south-1"}) == "ap-south-1"
    assert vs.region_for(no_arn, None, env={"AWS_DEFAULT_REGION": "sa-east-1"}) == "sa-east-1"
    with pytest.raises(vs.UsageError):
        vs.region_for({"probeFunctionName": "f", "proxyName": "p"}, None, env={})


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert vs.percentile(values, 50) == 50.0
    assert vs.percentile(values, 95) == 95.0
    assert vs.percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert vs.percentile([7.0], 95) == 7.0
    assert vs.percentile([], 50) is None


def test_progress_bar_on_a_terminal_and_in_a_log() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    bar = vs.ProgressBar(4, stream=tty, width=8)
    for ok in (True, True, False, True):
        bar.advance(ok)
    text = tty.getvalue()
    frames = text.split("\r\x1b[2K")  # each redraw returns to the line's start and erases it
    assert len(frames) >= 5 and all("\n" not in f for f in frames[:-1])  # redrawn in place
    last = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", frames[-1])  # without colours and cursor codes
    assert re.fullmatch(r"━{8} 4/4 failed 1 \d:\d\d:\d\d\n", last), last
    assert text.endswith("\x1b[?25h")  # cursor shown again
    bar.close()  # closing again (as main's finally does) is harmless
    assert tty.getvalue() == text

    log = io.StringIO()
    bar = vs.ProgressBar(100, stream=log, width=10)
    for _ in range(100):
        bar.advance(True)
    lines = log.getvalue().splitlines()
    assert len(lines) == 11  # 1 %, 10 %, ... 100 %: no flood in CI logs
    assert lines[-1].split()[:4] == ["100%", "100/100", "failed", "0"]
    assert "\r" not in log.getvalue() and "\x1b" not in log.getvalue()  # no redraws, no colours


def test_no_progress_writes_nothing() -> None:
    quiet = io.StringIO()
    bar = vs.ProgressBar(3, stream=quiet, enabled=False)
    for ok in (True, False, True):
        bar.advance(ok)
    bar.close()
    assert quiet.getvalue() == "" and (bar.done, bar.failed) == (3, 1)


def test_runs_as_a_module_from_the_repo_root(tmp_path: Path) -> None:
    """`python -m tools.validate_stack --help` works and documents the options."""
    res = subprocess.run(
        [sys.executable, "-m", "tools.validate_stack", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    for opt in ("--outputs", "--stack", "--region", "--invocations", "--concurrency", "--fresh"):
        assert opt in res.stdout


def test_concurrency_is_real() -> None:
    """C invocations are in flight at once (not one after another)."""
    import threading
    import time

    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    class SlowLambda:
        def invoke(self, **kwargs: Any) -> dict[str, Any]:
            with lock:
                state["now"] += 1
                state["peak"] = max(state["peak"], state["now"])
            time.sleep(0.05)
            with lock:
                state["now"] -= 1
            return ok_response(1, True)

    results = vs.run_invocations(SlowLambda(), "f", n=12, concurrency=4)
    assert [r.index for r in results] == list(range(12))
    assert all(r.ok for r in results)
    assert state["peak"] == 4


def test_invoke_params_are_valid_for_the_lambda_api(harness: Harness) -> None:
    """The Stubber validates our request against the real Lambda API model."""
    harness.lam_stub.add_response(
        "invoke", ok_response(1, False, 1.0), {"FunctionName": ANY, "InvocationType": ANY, "Payload": ANY}
    )
    with harness.lam_stub:
        inv = vs.invoke_once(harness.lam, "demo-probe", False, 0)
    assert inv.ok and inv.connection_id == 1 and inv.reused is False


# --------------------------------------------------------------------------- --user / --endpoint


def served_by(cid: int, server_id: int | str, read_only: bool, user: str = "app_reader@%") -> dict[str, Any]:
    body = {
        "message": "ok",
        "result": {
            "connection_test": 1,
            "connection_id": cid,
            "user": user,
            "endpoint": "reader" if read_only else "writer",
            "read_only": read_only,
            "server_id": server_id,
        },
        "reused": False,
        "timings_ms": {"connect": 30.0, "query": 1.0},
    }
    return {"StatusCode": 200, "Payload": _payload({"statusCode": 200, "body": json.dumps(body)})}


def _expect_event(harness: Harness, event: dict[str, Any], responses: list[dict[str, Any]]) -> None:
    for resp in responses:
        harness.lam_stub.add_response(
            "invoke",
            resp,
            {
                "FunctionName": "demo-probe",
                "InvocationType": "RequestResponse",
                "Payload": json.dumps(event).encode(),
            },
        )


def test_user_and_reader_endpoint_reach_the_probe_and_the_spread_over_servers_is_reported(
    harness: Harness,
) -> None:
    _expect_event(
        harness,
        {"user": "app_reader", "endpoint": "reader"},
        [
            served_by(21, "demo-reader-1", True),
            served_by(22, "demo-reader-2", True),
            served_by(23, "demo-reader-1", True),
            served_by(24, "demo-reader-1", True),
        ],
    )
    code = harness.run("-n", "4", "-c", "1", "--user", "app_reader", "--endpoint", "reader", "--no-metrics")
    out = harness.stdout.getvalue()
    assert code == 0, out + harness.stderr.getvalue()
    assert "reader endpoint, user app_reader" in out
    assert "servers:         2 distinct (server_id demo-reader-1 x3, demo-reader-2 x1)" in out
    assert "4/4 answers from read-only servers" in out
    assert "database user:   app_reader@% (CURRENT_USER())" in out


def test_spread_in_the_json_summary(harness: Harness) -> None:
    _expect_event(
        harness,
        {"fresh": True, "endpoint": "reader"},
        [served_by(1, 2, True), served_by(2, 3, True), served_by(3, 1, False)],
    )
    args = (
        "-n",
        "3",
        "-c",
        "1",
        "--fresh",
        "--endpoint",
        "reader",
        "--json",
        "--no-metrics",
        "--no-progress",
    )
    assert harness.run(*args) == 0
    summary = json.loads(harness.stdout.getvalue())
    assert summary["endpoint"] == "reader" and summary["user"] is None
    assert summary["distinct_servers"] == 3
    assert summary["server_id_counts"] == {"1": 1, "2": 1, "3": 1}
    assert summary["read_only_answers"] == 2  # one answer came from a writer: visible, not hidden


def test_writer_is_the_default_and_sends_no_endpoint_key(harness: Harness) -> None:
    _expect_event(harness, {"user": "etl"}, [served_by(5, 1, False, user="etl@%")])
    assert harness.run("-n", "1", "--user", "etl", "--no-metrics") == 0
    out = harness.stdout.getvalue()
    assert "writer endpoint, user etl" in out and "server_id 1 x1" in out
    assert "0/1 answers from read-only servers" in out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--endpoint", "replica"], "invalid choice: 'replica' (choose from 'writer', 'reader')"),
        (["--user", ""], "--user: an empty name is not allowed"),
        (["--user"], "--user: expected one argument"),
    ],
)
def test_bad_user_or_endpoint_is_a_usage_error(
    args: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        vs.parse_args(["--outputs", "o.json", *args])
    assert exit_.value.code == 2
    assert needle in capsys.readouterr().err


def test_probe_event_has_only_what_differs_from_the_defaults() -> None:
    assert vs.probe_event() == {}
    assert vs.probe_event(fresh=True) == {"fresh": True}
    assert vs.probe_event(user="app") == {"user": "app"}
    assert vs.probe_event(endpoint="reader") == {"endpoint": "reader"}
    assert vs.probe_event(True, "app", "reader") == {"fresh": True, "user": "app", "endpoint": "reader"}
