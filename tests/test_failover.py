"""`python -m tools.failover` without AWS: real boto3 clients built by the tool's own factory, answered by
botocore's Stubber in the DR region; any request to the primary region's endpoint fails as in an outage."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.response import StreamingBody
from botocore.stub import Stubber

from tools import failover as fo

PRIMARY, DR = "us-east-1", "us-west-2"
PRIMARY_DB_ARN = f"arn:aws:rds:{PRIMARY}:123456789012:db:rds-proxy-prod-db"
DR_OUTPUTS = {
    "proxyEndpoint": f"rds-proxy-dr.proxy-abcdefghijkl.{DR}.rds.amazonaws.com",
    "proxyName": "rds-proxy-dr",
    "proxyArn": f"arn:aws:rds:{DR}:123456789012:db-proxy:prx-0123456789abcdef0",
    "dbInstanceId": "rds-proxy-dr-replica",
    "probeFunctionName": "rds-proxy-dr-probe",
    "drState": "standby",
}
NOW = dt.datetime(2025, 3, 4, 10, 15, 42, tzinfo=dt.UTC)
LAG_QUERY = {
    "Namespace": "AWS/RDS",
    "MetricName": "ReplicaLag",
    "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": "rds-proxy-dr-replica"}],
    "StartTime": NOW - dt.timedelta(minutes=15),
    "EndTime": NOW,
    "Period": 60,
    "Statistics": ["Maximum"],
}
DESCRIBE = {"DBInstanceIdentifier": "rds-proxy-dr-replica"}
PROBE = {
    "FunctionName": "rds-proxy-dr-probe",
    "InvocationType": "RequestResponse",
    "Payload": b'{"fresh": true}',
}


def instance(status: str, replica: bool, replication: str | None = "replicating") -> dict[str, Any]:
    db: dict[str, Any] = {
        "DBInstanceIdentifier": "rds-proxy-dr-replica",
        "DBInstanceArn": f"arn:aws:rds:{DR}:123456789012:db:rds-proxy-dr-replica",
        "DBInstanceStatus": status,
        "Engine": "mysql",
    }
    if replica:
        db["ReadReplicaSourceDBInstanceIdentifier"] = PRIMARY_DB_ARN
        if replication:
            db["StatusInfos"] = [
                {
                    "StatusType": "read replication",
                    "Normal": replication == "replicating",
                    "Status": replication,
                }
            ]
    return {"DBInstances": [db]}


def promoted_response() -> dict[str, Any]:
    return {"DBInstance": instance("modifying", True)["DBInstances"][0]}


def lag(*values: float) -> dict[str, Any]:
    """ReplicaLag datapoints, oldest first; the last value is the newest."""
    return {
        "Label": "ReplicaLag",
        "Datapoints": [
            # out of order on purpose: CloudWatch does not sort them
            {"Timestamp": NOW - dt.timedelta(minutes=len(values) - i), "Maximum": v, "Unit": "Seconds"}
            for i, v in reversed(list(enumerate(values)))
        ],
    }


def probe_response(status: int) -> dict[str, Any]:
    body = {"result": {"connection_test": 1, "connection_id": 42}, "reused": False, "timings_ms": {}}
    if status != 200:
        body = {"error": {"code": 9501, "type": "proxy_borrow_timeout", "message": "x", "retryable": True}}
    data = json.dumps({"statusCode": status, "body": json.dumps(body)}).encode()
    return {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(data), len(data))}


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


class Harness:
    """Clients come from `failover.make_client` on a session whose default region is the primary's and
    where every request to the primary's endpoints raises EndpointConnectionError."""

    def __init__(self, tmp_path: Path, outputs: dict[str, Any] | None = None) -> None:
        self.session = boto3.session.Session(
            aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
            aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            region_name=PRIMARY,
        )
        self.session.events.register("before-send", self._primary_is_down)
        self.expected: dict[str, list[tuple[str, Any, dict[str, Any] | None]]] = {
            "rds": [],
            "cloudwatch": [],
            "lambda": [],
        }
        self.stubbers: list[Stubber] = []
        self.created: list[tuple[str, str]] = []
        self.commands: list[list[str]] = []
        self.command_rc = 0
        self.command_seconds = 0.0
        self.clock = Clock()
        self.stdout, self.stderr = io.StringIO(), io.StringIO()
        self.outputs_file = tmp_path / "dr-outputs.json"
        self.outputs_file.write_text(json.dumps(outputs or DR_OUTPUTS))

    @staticmethod
    def _primary_is_down(request: Any, **kwargs: Any) -> None:
        if PRIMARY in request.url:
            raise EndpointConnectionError(endpoint_url=request.url)

    def expect(self, service: str, method: str, response: Any, params: dict[str, Any] | None) -> None:
        self.expected[service].append((method, response, params))

    def expect_error(self, service: str, method: str, code: str) -> None:
        self.expected[service].append((method, code, None))

    def clients(self, service: str, region: str) -> Any:
        self.created.append((service, region))
        client = fo.make_client(service, region, session=self.session)
        if region != DR:
            return client  # unstubbed: its requests reach the primary's endpoint and fail
        stub = Stubber(client)
        for method, response, params in self.expected[service]:
            if isinstance(response, str):
                stub.add_client_error(method, response)
            else:
                stub.add_response(method, response, params)
        stub.activate()
        self.stubbers.append(stub)
        return client

    def runner(self, cmd: list[str]) -> int:
        self.commands.append(cmd)
        self.clock.t += self.command_seconds
        return self.command_rc

    def run(self, *args: str, answer: str = "") -> int:
        code = fo.main(
            ["--dr-stack", "dr", "--outputs", str(self.outputs_file), *args],
            clients=self.clients,
            runner=self.runner,
            stdin=io.StringIO(answer),
            stdout=self.stdout,
            stderr=self.stderr,
            clock=self.clock,
            sleep=self.clock.sleep,
            now=lambda: NOW,
        )
        for stub in self.stubbers:
            stub.assert_no_pending_responses()
        return code

    @property
    def out(self) -> str:
        return self.stdout.getvalue()

    @property
    def err(self) -> str:
        return self.stderr.getvalue()

    def expect_healthy_replica(self, lag_seconds: float = 4.0) -> None:
        self.expect("rds", "describe_db_instances", instance("available", True), DESCRIBE)
        self.expect("cloudwatch", "get_metric_statistics", lag(7.0, lag_seconds), LAG_QUERY)

    def expect_promotion(self) -> None:
        self.expect(
            "rds",
            "promote_read_replica",
            promoted_response(),
            {"DBInstanceIdentifier": "rds-proxy-dr-replica"},
        )
        # RDS keeps saying "available" with the source set for a moment after the call
        self.expect("rds", "describe_db_instances", instance("available", True), DESCRIBE)
        self.expect("rds", "describe_db_instances", instance("modifying", True, None), DESCRIBE)
        self.expect("rds", "describe_db_instances", instance("available", False), DESCRIBE)


@pytest.fixture(autouse=True)
def shell_points_at_the_primary(monkeypatch: pytest.MonkeyPatch) -> None:
    # The operator's shell points at the primary region, as it usually does before an outage.
    monkeypatch.setenv("AWS_REGION", PRIMARY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", PRIMARY)


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def test_happy_path_promotes_applies_and_probes_in_the_dr_region_only(h: Harness) -> None:
    h.expect_healthy_replica(lag_seconds=4.0)
    h.expect_promotion()
    h.expect("lambda", "invoke", probe_response(503), PROBE)  # target still registering
    h.expect("lambda", "invoke", probe_response(200), PROBE)
    h.command_seconds = 100.0  # each pulumi command takes 100 s on the fake clock
    code = h.run("--yes", "--poll", "10")
    assert code == 0, h.out + h.err
    assert {region for _, region in h.created} == {DR}
    assert "up to 4 seconds of writes would be lost" in h.out  # the LAST datapoint, not the max
    assert h.commands == [
        ["pulumi", "config", "set", "drPromoted", "true", "--stack", "dr"],
        ["pulumi", "up", "--yes", "--refresh", "--stack", "dr"],
    ]
    assert "probe rds-proxy-dr-probe via proxy rds-proxy-dr: 200 (backend connection 42, attempt 2)" in h.out
    # 2 promotion polls after the first (10 s each) + 2 pulumi commands + 1 probe retry (10 s)
    assert "failover complete: 230 s from start to the first successful probe" in h.out
    assert "promoted rds-proxy-dr-replica" in h.err  # the progress bar's final state


def test_primary_region_unreachable_does_not_matter(h: Harness) -> None:
    # The harness really makes the primary unreachable: a client for it fails on its first request.
    with pytest.raises(EndpointConnectionError):
        fo.make_client("rds", PRIMARY, session=h.session).describe_db_instances()
    # Replication broke when the primary went down: lag -1, status error. --force accepts the loss.
    h.expect("rds", "describe_db_instances", instance("available", True, "error"), DESCRIBE)
    h.expect("cloudwatch", "get_metric_statistics", lag(-1.0), LAG_QUERY)
    h.expect_promotion()
    h.expect("lambda", "invoke", probe_response(200), PROBE)
    assert h.run("--yes", "--force") == 0, h.out + h.err
    assert h.created and all(region == DR for _, region in h.created)
    assert "replication is not active, loss unknown" in h.out
    assert "--force: promoting despite: replication status is error" in h.out
    assert "failover complete" in h.out


def test_no_client_is_created_for_any_other_region(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """A regression that takes the region from the environment is caught: the factory sees it."""
    h.expect_healthy_replica()
    h.expect("rds", "promote_read_replica", promoted_response(), None)
    h.expect("rds", "describe_db_instances", instance("available", False), DESCRIBE)
    h.expect("lambda", "invoke", probe_response(200), PROBE)
    assert h.run("--yes") == 0, h.err
    assert [service for service, _ in h.created] == ["rds", "cloudwatch", "lambda"]
    assert [region for _, region in h.created] == [DR, DR, DR]


def test_lag_above_the_limit_refuses_without_force(h: Harness) -> None:
    h.expect_healthy_replica(lag_seconds=240.0)
    code = h.run("--yes", "--max-lag-seconds", "60")
    assert code == fo.EXIT_REFUSED
    assert "up to 240 seconds of writes would be lost" in h.out
    assert "ReplicaLag 240 s is above --max-lag-seconds 60" in h.err and "--force" in h.err
    assert h.commands == []  # the Stubber also proves promote_read_replica was never called


def test_lag_above_the_limit_with_force_promotes(h: Harness) -> None:
    h.expect_healthy_replica(lag_seconds=240.0)
    h.expect_promotion()
    h.expect("lambda", "invoke", probe_response(200), PROBE)
    assert h.run("--yes", "--force", "--max-lag-seconds", "60") == 0, h.err
    assert "--force: promoting despite: ReplicaLag 240 s is above --max-lag-seconds 60" in h.out
    assert len(h.commands) == 2


def test_unknown_lag_refuses_without_force(h: Harness) -> None:
    h.expect("rds", "describe_db_instances", instance("available", True), DESCRIBE)
    h.expect("cloudwatch", "get_metric_statistics", {"Label": "ReplicaLag", "Datapoints": []}, LAG_QUERY)
    assert h.run("--yes") == fo.EXIT_REFUSED
    assert "replica lag unknown" in h.err


def test_confirmation_needs_the_instance_id(h: Harness) -> None:
    h.expect_healthy_replica()
    assert h.run(answer="y\n") == fo.EXIT_REFUSED
    assert "Type its id to go on" in h.out
    assert "not confirmed; nothing was changed" in h.err


def test_confirmed_by_typing_the_id(h: Harness) -> None:
    h.expect_healthy_replica()
    h.expect_promotion()
    assert h.run("--no-apply", answer="rds-proxy-dr-replica\n") == 0, h.err


def test_promotion_timeout_says_it_may_still_complete(h: Harness) -> None:
    h.expect_healthy_replica()
    h.expect("rds", "promote_read_replica", promoted_response(), None)
    for _ in range(4):  # polls at t=0, 30, 60, 90 of a 90 s timeout
        h.expect("rds", "describe_db_instances", instance("modifying", True, None), DESCRIBE)
    code = h.run("--yes", "--timeout", "90", "--poll", "30")
    assert code == fo.EXIT_PROMOTION
    assert "did not finish within 90 s (last seen: modifying, still a replica)" in h.err
    assert "may still complete in AWS" in h.err
    assert (
        f"aws rds describe-db-instances --region {DR} --db-instance-identifier rds-proxy-dr-replica" in h.err
    )
    assert h.commands == []  # no pulumi up on a half-promoted instance


def test_no_apply_prints_exactly_the_pulumi_commands(h: Harness) -> None:
    h.expect_healthy_replica()
    h.expect_promotion()
    assert h.run("--yes", "--no-apply") == 0, h.err
    assert h.commands == []
    lines = h.out.splitlines()
    start = lines.index("Now run, from the project directory:")
    assert lines[start + 1 : start + 3] == [
        "  pulumi config set drPromoted true --stack dr",
        "  pulumi up --yes --refresh --stack dr",
    ]
    assert not any(service == "lambda" for service, _ in h.created)  # nothing to probe yet


def test_rerun_after_a_timeout_skips_the_promotion(h: Harness) -> None:
    h.expect("rds", "describe_db_instances", instance("available", False), DESCRIBE)
    h.expect("lambda", "invoke", probe_response(200), PROBE)
    assert h.run("--yes") == 0, h.err
    assert "already standalone (promoted earlier)" in h.out
    assert len(h.commands) == 2


def test_already_failed_over_does_nothing(tmp_path: Path) -> None:
    h = Harness(tmp_path, {**DR_OUTPUTS, "drState": "promoted"})
    h.expect("rds", "describe_db_instances", instance("available", False), DESCRIBE)
    assert h.run("--yes") == 0
    assert "nothing to do" in h.out and h.commands == []


def test_pulumi_failure_exits_4(h: Harness) -> None:
    h.expect_healthy_replica()
    h.expect_promotion()
    h.command_rc = 255
    assert h.run("--yes") == fo.EXIT_PULUMI
    assert "`pulumi config set drPromoted true --stack dr` exited 255" in h.err
    assert len(h.commands) == 1  # pulumi up not attempted after config set failed


def test_probe_that_never_succeeds_exits_5(h: Harness) -> None:
    h.expect_healthy_replica()
    h.expect_promotion()
    for _ in range(3):
        h.expect("lambda", "invoke", probe_response(503), PROBE)
    assert h.run("--yes", "--poll", "10", "--probe-timeout", "25") == fo.EXIT_PROBE
    assert "did not return 200 within 25 s" in h.err


def test_missing_replica_is_refused(h: Harness) -> None:
    h.expect_error("rds", "describe_db_instances", "DBInstanceNotFound")
    assert h.run("--yes") == fo.EXIT_REFUSED
    assert "'rds-proxy-dr-replica' does not exist" in h.err


def test_a_stack_without_dr_outputs_is_a_usage_error(tmp_path: Path) -> None:
    primary = {k: v for k, v in DR_OUTPUTS.items() if k != "drState"}
    h = Harness(tmp_path, primary)
    assert h.run("--yes") == fo.EXIT_USAGE
    assert "is not a DR stack: its outputs lack drState" in h.err
    assert h.created == []


def test_region_comes_from_the_stack_never_from_the_environment(tmp_path: Path) -> None:
    h = Harness(tmp_path, {k: v for k, v in DR_OUTPUTS.items() if k != "proxyArn"})
    assert h.run("--yes") == fo.EXIT_USAGE  # AWS_REGION (the primary's) is not a fallback
    assert "proxyArn" in h.err


@pytest.mark.parametrize(
    ("flag", "value"), [("--max-lag-seconds", "-1"), ("--timeout", "-5"), ("--poll", "0")]
)
def test_bad_numbers_name_the_flag(flag: str, value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        fo.parse_args(["--dr-stack", "dr", flag, value])
    assert exc.value.code == 2
    assert flag in capsys.readouterr().err


def test_explicit_region_replaces_the_one_in_proxy_arn(tmp_path: Path) -> None:
    h = Harness(tmp_path, {k: v for k, v in DR_OUTPUTS.items() if k != "proxyArn"})
    h.expect("rds", "describe_db_instances", instance("available", False), DESCRIBE)
    assert h.run("--yes", "--region", DR, "--no-apply") == 0, h.err
    assert h.created == [("rds", DR)]


def test_pulumi_runs_in_the_project_directory_given(h: Harness) -> None:
    h.expect("rds", "describe_db_instances", instance("available", False), DESCRIBE)
    assert h.run("--yes", "--no-apply", "--cwd", "/srv/rds proxy") == 0, h.err
    assert "  pulumi up --yes --refresh --stack dr --cwd '/srv/rds proxy'" in h.out
