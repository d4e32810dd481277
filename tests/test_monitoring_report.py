"""Alarm states and the run chart of `python -m tools.validate_stack`, with botocore's Stubber (no AWS)."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from PIL import Image

from tools import monitoring_report as mr
from tools import validate_stack as vs

OUTPUTS = {
    "proxyName": "demo-proxy",
    "proxyArn": "arn:aws:rds:eu-west-1:123456789012:db-proxy:prx-0123456789abcdef0",
    "probeFunctionName": "demo-probe",
}
T0 = dt.datetime(2025, 3, 4, 10, 15, 42, tzinfo=dt.UTC)
T1 = dt.datetime(2025, 3, 4, 10, 17, 5, tzinfo=dt.UTC)
SINCE = dt.datetime(2025, 3, 4, 10, 16, 0, tzinfo=dt.UTC)
ALARM_QUERY = {"AlarmNamePrefix": "demo-proxy-", "AlarmTypes": ["MetricAlarm", "CompositeAlarm"]}
METRIC_QUERY = {
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
    "StartTime": dt.datetime(2025, 3, 4, 10, 15, tzinfo=dt.UTC),
    "EndTime": dt.datetime(2025, 3, 4, 10, 18, tzinfo=dt.UTC),
    "ScanBy": "TimestampAscending",
}


def _session() -> boto3.session.Session:
    return boto3.session.Session(
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        region_name="eu-west-1",
    )


def alarm(name: str, state: str, reason: str = "Threshold Crossed") -> dict[str, Any]:
    return {
        "AlarmName": name,
        "AlarmArn": f"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{name}",
        "StateValue": state,
        "StateReason": reason,
        "StateUpdatedTimestamp": SINCE,
    }


def alarms_response(*alarms: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    resp: dict[str, Any] = {"MetricAlarms": list(alarms), "CompositeAlarms": []}
    if token:
        resp["NextToken"] = token
    return resp


def invoke_response(status: int, cid: int = 7, reused: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "result": {"connection_test": 1, "connection_id": cid},
        "reused": reused,
        "timings_ms": {"connect": 40.0, "query": 1.0},
    }
    if status != 200:
        body = {"error": {"code": 1045, "type": "access_denied", "message": "no", "retryable": False}}
    data = json.dumps({"statusCode": status, "body": json.dumps(body)}).encode()
    return {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(data), len(data))}


def metrics_response(client: list[float], database: list[float]) -> dict[str, Any]:
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
        "MetricDataResults": [res(0, "DatabaseConnections", database), res(1, "ClientConnections", client)]
    }


class Run:
    """One `validate_stack.main` run: 4 invocations (2 new connections, 2 reused) and 3 minutes of metrics."""

    def __init__(self, tmp_path: Path) -> None:
        session = _session()
        self.lam, self.cw = session.client("lambda"), session.client("cloudwatch")
        self.lam_stub, self.cw_stub = Stubber(self.lam), Stubber(self.cw)
        self.outputs = tmp_path / "outputs.json"
        self.outputs.write_text(json.dumps(OUTPUTS))
        self.stdout, self.stderr = io.StringIO(), io.StringIO()
        self.n = 0

    def invocations(self, *statuses: int) -> None:
        self.n = len(statuses)
        for k, status in enumerate(statuses):
            self.lam_stub.add_response("invoke", invoke_response(status, cid=7 + k % 2, reused=k >= 2))

    def metrics(self, client: list[float], database: list[float]) -> None:
        self.cw_stub.add_response("get_metric_data", metrics_response(client, database), METRIC_QUERY)

    def alarms(self, *alarms: dict[str, Any]) -> None:
        self.cw_stub.add_response("describe_alarms", alarms_response(*alarms), ALARM_QUERY)

    def __call__(self, *args: str) -> int:
        times = iter([T0, T1])
        with self.lam_stub, self.cw_stub:
            code = vs.main(
                [
                    "--outputs",
                    str(self.outputs),
                    "-n",
                    str(self.n),
                    "-c",
                    "1",
                    "--metrics-wait",
                    "0",
                    "--no-progress",
                    *args,
                ],
                clients=lambda region, c: (self.lam, self.cw),
                stdout=self.stdout,
                stderr=self.stderr,
                now=lambda: next(times),
            )
            self.lam_stub.assert_no_pending_responses()
            self.cw_stub.assert_no_pending_responses()
        return code

    @property
    def out(self) -> str:
        return self.stdout.getvalue()


@pytest.fixture
def run(tmp_path: Path) -> Run:
    return Run(tmp_path)


# --------------------------------------------------------------------------- alarm states


def test_alarm_states_are_read_by_the_proxy_name_prefix_across_pages() -> None:
    cw = _session().client("cloudwatch")
    stub = Stubber(cw)
    stub.add_response(
        "describe_alarms",
        alarms_response(alarm("demo-proxy-pool-utilization", "OK"), token="page-2"),
        ALARM_QUERY,
    )
    stub.add_response(
        "describe_alarms",
        alarms_response(alarm("demo-proxy-auth-failures", "INSUFFICIENT_DATA")),
        {**ALARM_QUERY, "NextToken": "page-2"},
    )
    with stub:
        alarms = mr.fetch_alarms(cw, "demo-proxy")
        stub.assert_no_pending_responses()
    assert [(a.name, a.state) for a in alarms] == [
        ("demo-proxy-auth-failures", "INSUFFICIENT_DATA"),
        ("demo-proxy-pool-utilization", "OK"),
    ]


def test_an_alarm_in_alarm_fails_the_run(run: Run) -> None:
    run.invocations(200, 200, 200, 200)
    run.metrics([4, 4], [2, 2])
    run.alarms(
        alarm("demo-proxy-borrow-latency", "OK"),
        alarm("demo-proxy-pool-utilization", "ALARM", "Threshold Crossed: 1 datapoint [93.0] > 80.0"),
        alarm("demo-proxy-target-availability", "INSUFFICIENT_DATA", "Insufficient Data"),
    )
    assert run() == mr.EXIT_ALARM == 3
    out = run.out
    assert "alarms:          3 named demo-proxy-*: 1 ALARM, 1 OK, 1 INSUFFICIENT_DATA" in out
    row = next(line for line in out.splitlines() if "demo-proxy-pool-utilization" in line and "ALARM" in line)
    assert "2025-03-04 10:16" in row and "[93.0] > 80.0" in row
    assert "PASS: every invocation returned 200" in out  # the probe itself passed
    assert out.rstrip().endswith("FAIL: 1 alarm(s) in ALARM: demo-proxy-pool-utilization")


def test_ignore_alarms_shows_them_and_exits_0(run: Run) -> None:
    run.invocations(200, 200, 200, 200)
    run.metrics([4], [2])
    run.alarms(alarm("demo-proxy-pool-utilization", "ALARM"))
    assert run("--ignore-alarms") == 0
    assert "ignored with --ignore-alarms" in run.out


def test_ok_and_insufficient_data_pass(run: Run) -> None:
    run.invocations(200, 200, 200, 200)
    run.metrics([4], [2])
    run.alarms(alarm("demo-proxy-a", "OK"), alarm("demo-proxy-b", "INSUFFICIENT_DATA"))
    assert run() == 0
    assert run.out.rstrip().endswith("PASS: every invocation returned 200")
    assert "1 OK, 1 INSUFFICIENT_DATA" in run.out


def test_a_failed_probe_keeps_its_exit_status_over_alarms(run: Run) -> None:
    run.invocations(200, 500, 200, 200)
    run.metrics([4], [2])
    run.alarms(alarm("demo-proxy-auth-failures", "ALARM"))
    assert run() == vs.EXIT_PROBE_FAILED
    assert "FAIL: 1 invocation(s) failed" in run.out and "FAIL: 1 alarm(s) in ALARM" in run.out


def test_alarm_read_failure_is_reported_not_fatal(run: Run) -> None:
    run.invocations(200, 200, 200, 200)
    run.metrics([4], [2])
    run.cw_stub.add_client_error("describe_alarms", "AccessDenied", "not authorized", 403)
    assert run() == 0
    assert "alarms:          unavailable: ClientError" in run.out


def test_no_alarms_for_this_proxy_is_said(run: Run) -> None:
    run.invocations(200, 200, 200, 200)
    run.metrics([4], [2])
    run.alarms()
    assert run() == 0
    assert "none named demo-proxy-*" in run.out


def test_json_summary_carries_the_alarm_states(run: Run) -> None:
    run.invocations(200, 200, 200, 200)
    run.metrics([4], [2])
    run.alarms(alarm("demo-proxy-pool-utilization", "ALARM"), alarm("demo-proxy-cpu", "OK"))
    assert run("--json") == 3
    alarms = json.loads(run.out)["alarms"]
    assert alarms["in_alarm"] == ["demo-proxy-pool-utilization"]
    assert {a["name"]: a["state"] for a in alarms["states"]} == {
        "demo-proxy-cpu": "OK",
        "demo-proxy-pool-utilization": "ALARM",
    }


# --------------------------------------------------------------------------- chart


def test_chart_is_a_real_png_of_the_run(run: Run, tmp_path: Path) -> None:
    run.invocations(200, 200, 200, 200)
    run.metrics([6, 4, 2], [2, 2, 1])
    run.alarms(alarm("demo-proxy-a", "OK"))
    chart = tmp_path / "run.png"
    assert run("--chart", str(chart)) == 0, run.out + run.stderr.getvalue()
    assert f"chart:           {chart}" in run.out
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(chart) as img:
        assert img.format == "PNG"
        assert img.size == mr.CHART_SIZE_PX == (1200, 700)
        rgb = img.convert("RGB")
        colors = rgb.getcolors(maxcolors=1_000_000) or []
    assert len(colors) > 50  # text, axes, bars, markers: not a blank canvas
    white = max(colors)[0] if max(colors)[1] == (255, 255, 255) else 0
    assert white < 0.97 * 1200 * 700


def test_chart_draws_connections_per_minute_and_each_latency(tmp_path: Path) -> None:
    invocations = [
        vs.Invocation(0, 120.0, status=200, reused=False),
        vs.Invocation(1, 30.0, status=200, reused=True),
        vs.Invocation(2, 25.0, status=200, reused=True),
        vs.Invocation(3, 900.0, status=None, error="TooManyRequestsException: x"),
    ]
    summary = {
        "proxy": "demo-proxy",
        "region": "eu-west-1",
        "invocations": 4,
        "concurrency": 2,
        "mode": "warm",
        "latency_ms": {"p50": 30.0, "p95": 900.0},
        "metrics": {
            "ClientConnections": {
                "points": [("2025-03-04T10:15:00+00:00", 6.0), ("2025-03-04T10:16:00+00:00", 4.0)]
            },
            "DatabaseConnections": {
                "points": [("2025-03-04T10:15:00+00:00", 2.0), ("2025-03-04T10:16:00+00:00", 2.0)]
            },
        },
    }
    fig = mr.draw_chart(tmp_path / "c.png", summary, invocations)
    top, bottom = fig.axes
    bars = {label: [p.get_height() for p in c.patches] for c in top.containers for label in [c.get_label()]}
    assert bars == {"ClientConnections": [6.0, 4.0], "DatabaseConnections": [2.0, 2.0]}
    assert [t.get_text() for t in top.get_xticklabels()] == ["10:15", "10:16"]
    points = {
        coll.get_label(): [tuple(p) for p in coll.get_offsets().tolist()] for coll in bottom.collections
    }
    assert points == {
        "new connection (1)": [(1.0, 120.0)],
        "reused connection (2)": [(2.0, 30.0), (3.0, 25.0)],
        "failed (1)": [(4.0, 900.0)],
    }


def test_chart_that_cannot_be_written_exits_2(run: Run, tmp_path: Path) -> None:
    run.invocations(200, 200, 200, 200)
    run.metrics([4], [2])
    run.alarms()
    assert run("--chart", str(tmp_path / "missing-dir" / "run.png")) == 2
    assert "chart:           not drawn: FileNotFoundError" in run.out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--chart", "run.jpg"], "--chart: 'run.jpg' is not allowed; expected a file name ending in .png"),
        (["--chart", "run.png", "--no-metrics"], "--chart needs the proxy metrics"),
    ],
)
def test_bad_chart_arguments_name_the_flag(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        vs.parse_args(args)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_no_metrics_skips_the_alarms_too(run: Run) -> None:
    run.invocations(200, 200, 200, 200)
    assert run("--no-metrics") == 0
    assert "alarms:          skipped (--no-metrics)" in run.out
