"""`python -m tools.bluegreen` without AWS: real boto3 RDS/Lambda clients answered by botocore's Stubber.

The probe during a switchover is a scripted invoker (its call count decides its answer, so the error
window is deterministic); the Lambda side of the invoker is covered in tests/test_watch.py.
"""

from __future__ import annotations

import functools
import io
import json
import threading
from pathlib import Path
from typing import Any, ClassVar

import pytest
from botocore.stub import ANY, Stubber

from tests.test_validate_stack import OUTPUTS, _session
from tools import bluegreen as bg
from tools import watch as w

ARN = "arn:aws:rds:eu-west-1:123456789012:db:demo-db"
GREEN_ARN = "arn:aws:rds:eu-west-1:123456789012:db:demo-db-green-abc123"
DEP_ID = "bgd-abc123def456"
SOURCE_FILTER = {"Filters": [{"Name": "source", "Values": [ARN, ARN + "-old1"]}]}


def instance(**over: Any) -> dict[str, Any]:
    inst: dict[str, Any] = {
        "DBInstanceIdentifier": "demo-db",
        "DBInstanceArn": ARN,
        "Engine": "mysql",
        "EngineVersion": "8.0.39",
        "DBInstanceClass": "db.t3.micro",
        "DBInstanceStatus": "available",
        "BackupRetentionPeriod": 7,
        "ReadReplicaDBInstanceIdentifiers": [],
        "ReadReplicaDBClusterIdentifiers": [],
        "DeletionProtection": False,
        "Endpoint": {"Address": "demo-db.abcdefghijkl.eu-west-1.rds.amazonaws.com", "Port": 3306},
        "DBParameterGroups": [{"DBParameterGroupName": "demo-db-params", "ParameterApplyStatus": "in-sync"}],
    }
    inst.update(over)
    return inst


def target(state: str = "AVAILABLE", rid: str = "demo-db", **health: str) -> dict[str, Any]:
    return {
        "Targets": [
            {
                "TargetArn": ARN,
                "Endpoint": "demo-db.abcdefghijkl.eu-west-1.rds.amazonaws.com",
                "RdsResourceId": rid,
                "Port": 3306,
                "Type": "RDS_INSTANCE",
                "TargetHealth": {"State": state, **health},
            }
        ]
    }


def deployment(status: str, **over: Any) -> dict[str, Any]:
    dep: dict[str, Any] = {
        "BlueGreenDeploymentIdentifier": DEP_ID,
        "BlueGreenDeploymentName": "demo-db-to-84",
        "Source": ARN,
        "Target": GREEN_ARN,
        "Status": status,
        "Tasks": [{"Name": "CREATING_READ_REPLICA_OF_SOURCE", "Status": "COMPLETED"}],
    }
    dep.update(over)
    return dep


@functools.cache
def _clients() -> tuple[Any, Any]:
    # Loading RDS's service model costs ~0.3 s; a Stubber per test keeps the tests independent.
    session = _session()
    return session.client("rds"), session.client("lambda")


class Harness:
    def __init__(self, tmp_path: Path) -> None:
        self.rds, self.lam = _clients()
        self.rds_stub = Stubber(self.rds)
        self.lam_stub = Stubber(self.lam)
        self.outputs = tmp_path / "outputs.json"
        self.outputs.write_text(json.dumps(OUTPUTS))
        self.stdout = io.StringIO()
        self.stderr = io.StringIO()
        self.now = 0.0
        self.slept: list[float] = []
        self.prompts: list[str] = []
        self.answer = True
        self.invoker: Any = None
        self.on_sleep: Any = None

    # stubbed calls ---------------------------------------------------------
    def expect(self, method: str, response: dict[str, Any], params: dict[str, Any] | None = None) -> None:
        self.rds_stub.add_response(method, response, params)

    def expect_instance(self, inst: dict[str, Any] | None = None, ident: str = "demo-db") -> None:
        self.expect(
            "describe_db_instances", {"DBInstances": [inst or instance()]}, {"DBInstanceIdentifier": ident}
        )

    def expect_targets(self, resp: dict[str, Any] | None = None) -> None:
        self.expect("describe_db_proxy_targets", resp or target(), {"DBProxyName": "demo-proxy"})

    def expect_deployments(self, *deps: dict[str, Any]) -> None:
        self.expect("describe_blue_green_deployments", {"BlueGreenDeployments": list(deps)}, SOURCE_FILTER)

    def expect_deployment(self, dep: dict[str, Any]) -> None:
        self.expect(
            "describe_blue_green_deployments",
            {"BlueGreenDeployments": [dep]},
            {"BlueGreenDeploymentIdentifier": DEP_ID},
        )

    def expect_preflight_ok(self) -> None:
        self.expect_instance()
        self.expect_targets()
        self.expect_deployments()

    # running ---------------------------------------------------------------
    def clock(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.now += s
        if self.on_sleep is not None:
            self.on_sleep(len(self.slept))

    def confirm(self, prompt: str) -> bool:
        self.prompts.append(prompt)
        return self.answer

    def run(self, *args: str) -> int:
        with self.rds_stub, self.lam_stub:
            code = bg.main(
                ["--outputs", str(self.outputs), *args],
                clients=lambda region: (self.rds, self.lam),
                stdout=self.stdout,
                stderr=self.stderr,
                sleep=self.sleep,
                clock=self.clock,
                confirm=self.confirm,
                invoker=self.invoker,
            )
        self.rds_stub.assert_no_pending_responses()
        return code

    @property
    def out(self) -> str:
        return " ".join(self.stdout.getvalue().split())  # rich wraps tables; messages are soft-wrapped


# --------------------------------------------------------------------------- check


def test_check_passes_when_every_aws_condition_holds(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.expect_preflight_ok()
    assert h.run("check") == 0
    assert "All preflight checks passed." in h.out
    assert "FAIL" not in h.out


def _check_fails(tmp_path: Path, setup: Any) -> str:
    h = Harness(tmp_path)
    setup(h)
    assert h.run("check") == 1
    assert "1 preflight check(s) failed." in h.out
    return h.out


def test_check_fails_when_the_instance_is_not_the_proxys_target(tmp_path: Path) -> None:
    out = _check_fails(
        tmp_path,
        lambda h: (h.expect_instance(), h.expect_targets(target(rid="other-db")), h.expect_deployments()),
    )
    assert (
        "FAIL proxy target: demo-db is not a registered target of proxy demo-proxy (targets: other-db); AWS "
        "requires the blue instance to be a proxy target before the blue/green deployment is created." in out
    )
    assert "To fix: run `pulumi up` so the stack registers the instance" in out


def test_check_fails_when_the_proxy_target_is_unhealthy(tmp_path: Path) -> None:
    out = _check_fails(
        tmp_path,
        lambda h: (
            h.expect_instance(),
            h.expect_targets(target("UNAVAILABLE", Reason="AUTH_FAILURE", Description="bad secret")),
            h.expect_deployments(),
        ),
    )
    assert (
        "FAIL proxy target: registered target of demo-proxy, health UNAVAILABLE (AUTH_FAILURE bad secret)"
        in out
    )
    assert "TargetHealth AVAILABLE" in out


def test_check_fails_when_backups_are_off(tmp_path: Path) -> None:
    out = _check_fails(
        tmp_path,
        lambda h: (
            h.expect_instance(instance(BackupRetentionPeriod=0)),
            h.expect_targets(),
            h.expect_deployments(),
        ),
    )
    assert "FAIL backups: automated backups are off (0 days)." in out
    assert "`pulumi config set dbBackupRetentionDays 7` and `pulumi up`" in out


def test_check_fails_with_a_cross_region_replica(tmp_path: Path) -> None:
    dr = "arn:aws:rds:eu-central-1:123456789012:db:demo-db-dr"
    out = _check_fails(
        tmp_path,
        lambda h: (
            h.expect_instance(instance(ReadReplicaDBInstanceIdentifiers=[dr])),
            h.expect_targets(),
            h.expect_deployments(),
        ),
    )
    assert f"FAIL replicas: read replicas: {dr} (same- or cross-region)." in out
    assert "set `dbReadReplicas 0` and take the DR standby out" in out


def test_check_fails_on_a_dr_standby(tmp_path: Path) -> None:
    primary = "arn:aws:rds:eu-west-1:123456789012:db:primary-db"
    out = _check_fails(
        tmp_path,
        lambda h: (
            h.expect_instance(instance(ReadReplicaSourceDBInstanceIdentifier=primary)),
            h.expect_targets(),
            h.expect_deployments(),
        ),
    )
    assert f"FAIL replicas: demo-db is itself a read replica of {primary} (a DR standby?)." in out
    assert "run blue/green on the primary's stack" in out


def test_switchover_whose_state_cannot_be_read_says_the_outcome_is_unknown(tmp_path: Path) -> None:
    h, _ = _switchover_harness(tmp_path)
    h.expect(
        "switchover_blue_green_deployment",
        {"BlueGreenDeployment": deployment("SWITCHOVER_IN_PROGRESS")},
        None,
    )
    h.rds_stub.add_client_error("describe_blue_green_deployments", "Throttling", "Rate exceeded", 400)
    assert h.run(*SWITCH_ARGS) == 1
    assert f"the switchover of {DEP_ID} was requested, but its state cannot be read any more" in h.out
    assert "whether blue or green serves the proxy is unknown" in h.out


def test_check_fails_with_an_rds_managed_master_password(tmp_path: Path) -> None:
    secret = {
        "SecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-1",
        "SecretStatus": "active",
    }
    out = _check_fails(
        tmp_path,
        lambda h: (
            h.expect_instance(instance(MasterUserSecret=secret)),
            h.expect_targets(),
            h.expect_deployments(),
        ),
    )
    assert "FAIL master password: RDS manages the master password in Secrets Manager" in out
    assert "blue/green deployments don't support that" in out
    assert "`pulumi refresh` then `pulumi up` to restore the stack's password" in out


def test_check_fails_when_a_deployment_already_exists(tmp_path: Path) -> None:
    out = _check_fails(
        tmp_path,
        lambda h: (h.expect_instance(), h.expect_targets(), h.expect_deployments(deployment("AVAILABLE"))),
    )
    assert f"FAIL no deployment yet: already exists: {DEP_ID} (demo-db-to-84, AVAILABLE)." in out
    assert "switch it over (`switchover`) or remove it (`cleanup`)" in out


def test_check_fails_when_the_instance_is_missing(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.rds_stub.add_client_error(
        "describe_db_instances",
        "DBInstanceNotFound",
        "DBInstance demo-db not found.",
        404,
        expected_params={"DBInstanceIdentifier": "demo-db"},
    )
    assert h.run("check") == 1
    assert (
        "FAIL instance: DB instance demo-db (stack output dbInstanceId) does not exist in this region"
        in h.out
    )


# --------------------------------------------------------------------------- create


def test_create_waits_for_green_and_prints_its_endpoint(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.expect_preflight_ok()
    h.expect(
        "create_blue_green_deployment",
        {"BlueGreenDeployment": deployment("PROVISIONING")},
        {
            "BlueGreenDeploymentName": "demo-db-to-84",
            "Source": ARN,
            "TargetEngineVersion": "8.4.3",
            "TargetDBInstanceClass": "db.t3.small",
            "TargetDBParameterGroupName": "demo-db-params-84",
        },
    )
    tasks = [{"Name": "a", "Status": "COMPLETED"}, {"Name": "b", "Status": "IN_PROGRESS"}]
    h.expect_deployment(deployment("PROVISIONING", Tasks=tasks))
    h.expect_deployment(deployment("AVAILABLE"))
    green = instance(
        DBInstanceIdentifier="demo-db-green-abc123",
        EngineVersion="8.4.3",
        DBInstanceClass="db.t3.small",
        Endpoint={"Address": "demo-db-green-abc123.abcdefghijkl.eu-west-1.rds.amazonaws.com", "Port": 3306},
    )
    h.expect_instance(green, ident=GREEN_ARN)
    code = h.run(
        "create",
        "--engine-version",
        "8.4.3",
        "--instance-class",
        "db.t3.small",
        "--parameter-group",
        "demo-db-params-84",
        "--name",
        "demo-db-to-84",
        "--poll",
        "7",
    )
    assert code == 0, h.out
    assert h.slept == [7.0]
    assert "Green endpoint: demo-db-green-abc123.abcdefghijkl.eu-west-1.rds.amazonaws.com:3306" in h.out
    assert "mysql 8.4.3 on db.t3.small" in h.out
    assert "switchover" in h.out


def test_create_names_the_deployment_within_rds_rules() -> None:
    import datetime as dt
    import re

    name = bg._deployment_name(
        "a-very-long-instance-identifier-that-goes-on-and-on", dt.datetime(2026, 1, 2, 3, 4)
    )
    assert len(name) <= 60
    assert re.fullmatch(r"[a-zA-Z][a-zA-Z0-9]*(-[a-zA-Z0-9]+)*", name)
    assert name.endswith("-bg-202601020304")


def test_create_refuses_when_a_check_fails_and_creates_nothing(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.expect_instance(instance(BackupRetentionPeriod=0))
    h.expect_targets()
    h.expect_deployments()
    assert h.run("create", "--engine-version", "8.4.3") == 1
    assert "FAIL backups" in h.out and "Nothing was created." in h.out


def test_create_says_the_deployment_is_left_behind_when_green_is_invalid(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.expect_preflight_ok()
    h.expect("create_blue_green_deployment", {"BlueGreenDeployment": deployment("PROVISIONING")}, None)
    h.expect_deployment(deployment("INVALID_CONFIGURATION", StatusDetails="parameter group family mismatch"))
    assert h.run("create", "--engine-version", "8.4.3") == 1
    assert (
        f"blue/green deployment {DEP_ID} ended in INVALID_CONFIGURATION: parameter group family mismatch"
        in h.out
    )
    assert "It still exists (blue is untouched and still serves the proxy): remove it with" in h.out
    assert "cleanup" in h.out


def test_create_gives_up_waiting_at_the_timeout_and_says_rds_keeps_going(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.expect_preflight_ok()
    h.expect("create_blue_green_deployment", {"BlueGreenDeployment": deployment("PROVISIONING")}, None)
    for _ in range(3):
        h.expect_deployment(deployment("PROVISIONING"))
    assert h.run("create", "--engine-version", "8.4.3", "--poll", "10", "--wait-timeout", "20") == 1
    assert "green is still provisioning after 20 s" in h.out
    assert "Nothing is rolled back: RDS keeps provisioning" in h.out


def test_create_with_nothing_to_change_is_a_usage_error(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.expect_preflight_ok()
    assert h.run("create", "--engine-version", "8.0.39") == 2
    assert "--engine-version 8.0.39 is what demo-db already runs" in h.stderr.getvalue()


# --------------------------------------------------------------------------- switchover


class ScriptedProbe:
    """Answers by call number: ok, ok, 1290, 2013, 2003, then ok (what a switchover looks like)."""

    SCRIPT: ClassVar[dict[int, str]] = {3: "1290", 4: "2013", 5: "2003"}

    def __init__(self) -> None:
        self.calls = 0
        self.cond = threading.Condition()

    def __call__(self) -> w.Reply:
        with self.cond:
            self.calls += 1
            n = self.calls
            self.cond.notify_all()
        code = self.SCRIPT.get(n)
        return w.Reply(code is None, 200 if code is None else 503, code, n)

    def wait_for(self, calls: int) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: self.calls >= calls, timeout=5), f"probe stuck at {self.calls}"


def _switchover_harness(tmp_path: Path) -> tuple[Harness, ScriptedProbe]:
    h = Harness(tmp_path)
    probe = ScriptedProbe()
    h.invoker = probe
    # Every (fake) sleep lets the real probe thread get a few calls further.
    h.on_sleep = lambda n: probe.wait_for(3 * n + 2)
    h.expect_instance()
    h.expect_deployments(deployment("AVAILABLE"))
    return h, probe


SWITCH_ARGS = (
    "switchover",
    "--rate",
    "200",
    "--concurrency",
    "1",
    "--poll",
    "5",
    "--baseline",
    "1",
    "--settle",
    "2",
)


def test_switchover_probes_through_it_and_reports_the_window(tmp_path: Path) -> None:
    h, probe = _switchover_harness(tmp_path)
    h.expect(
        "switchover_blue_green_deployment",
        {"BlueGreenDeployment": deployment("SWITCHOVER_IN_PROGRESS")},
        {"BlueGreenDeploymentIdentifier": DEP_ID, "SwitchoverTimeout": 300},
    )
    h.expect_deployment(deployment("SWITCHOVER_IN_PROGRESS"))
    h.expect_deployment(deployment("SWITCHOVER_COMPLETED"))
    h.expect_targets()
    h.expect_instance(instance(EngineVersion="8.4.3", DBInstanceClass="db.t3.small"))
    assert h.run(*SWITCH_ARGS) == 0, h.out
    assert probe.calls >= 11
    assert f"Switchover of {DEP_ID} completed in 10 s" in h.out
    assert "longest error window" in h.out and "(1290, 2003, 2013)" in h.out
    assert "The proxy's target demo-db is AVAILABLE again." in h.out
    assert "pulumi config set dbEngineVersion 8.4.3" in h.out
    assert "pulumi config set dbInstanceClass db.t3.small" in h.out
    assert "pulumi refresh" in h.out and "pulumi up # must show no changes" in h.out
    assert "demo-db-old1 (billed)" in h.out


def test_switchover_fails_when_the_window_exceeds_max_downtime(tmp_path: Path) -> None:
    h, _ = _switchover_harness(tmp_path)
    h.expect(
        "switchover_blue_green_deployment",
        {"BlueGreenDeployment": deployment("SWITCHOVER_IN_PROGRESS")},
        None,
    )
    h.expect_deployment(deployment("SWITCHOVER_COMPLETED"))
    h.expect_targets()
    h.expect_instance()
    assert h.run(*SWITCH_ARGS, "--max-downtime", "0") == 1
    assert "The longest error window exceeds --max-downtime 0 s." in h.out


def test_switchover_timeout_rolled_back_tells_the_user_blue_is_still_production(tmp_path: Path) -> None:
    h, _ = _switchover_harness(tmp_path)
    h.expect(
        "switchover_blue_green_deployment",
        {"BlueGreenDeployment": deployment("SWITCHOVER_IN_PROGRESS")},
        {"BlueGreenDeploymentIdentifier": DEP_ID, "SwitchoverTimeout": 30},
    )
    h.expect_deployment(deployment("SWITCHOVER_IN_PROGRESS"))
    h.expect_deployment(deployment("SWITCHOVER_IN_PROGRESS"))
    h.expect_deployment(deployment("AVAILABLE"))  # RDS rolled it back
    assert h.run(*SWITCH_ARGS, "--timeout", "30") == 1
    out = h.out
    assert f"Switchover of {DEP_ID} did NOT complete: deployment status is AVAILABLE after 15 s." in out
    assert "It exceeded the SwitchoverTimeout of 30 s and RDS rolled it back" in out
    assert bg.ROLLBACK_QUOTE in out
    assert "Blue (demo-db) is still production behind the proxy; green is unchanged" in out
    assert "Nothing in the stack config changes." in out
    assert "pulumi config set" not in out  # nothing to change after a rollback


def test_switchover_still_running_past_the_grace_says_not_to_touch_anything(tmp_path: Path) -> None:
    h, _ = _switchover_harness(tmp_path)
    h.expect(
        "switchover_blue_green_deployment",
        {"BlueGreenDeployment": deployment("SWITCHOVER_IN_PROGRESS")},
        None,
    )
    for _ in range(9):  # polls at 5..45 s; 45 > 30 + 10
        h.expect_deployment(deployment("SWITCHOVER_IN_PROGRESS"))
    assert h.run(*SWITCH_ARGS, "--timeout", "30", "--grace", "10") == 1
    assert "deployment status is SWITCHOVER_IN_PROGRESS after 45 s" in h.out
    assert "could not see the rollback finish. Do not run cleanup or pulumi until" in h.out


def test_switchover_failed_reports_what_rds_says(tmp_path: Path) -> None:
    h, _ = _switchover_harness(tmp_path)
    h.expect(
        "switchover_blue_green_deployment",
        {"BlueGreenDeployment": deployment("SWITCHOVER_IN_PROGRESS")},
        None,
    )
    h.expect_deployment(deployment("SWITCHOVER_FAILED", StatusDetails="Replica lag too high"))
    assert h.run(*SWITCH_ARGS) == 1
    assert "deployment status is SWITCHOVER_FAILED after 5 s." in h.out
    assert "RDS reports: Replica lag too high." in h.out
    assert "pulumi config set" not in h.out


def test_switchover_needs_an_available_deployment(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.expect_instance()
    h.expect_deployments(deployment("PROVISIONING"))
    assert h.run("switchover") == 1
    assert f"deployment {DEP_ID} is PROVISIONING, not AVAILABLE" in h.out and "Nothing was switched" in h.out


@pytest.mark.parametrize("timeout", ["29", "3601"])
def test_switchover_timeout_outside_the_api_range_is_refused(tmp_path: Path, timeout: str) -> None:
    h = Harness(tmp_path)
    assert h.run("switchover", "--timeout", timeout) == 2
    assert (
        f"--timeout {timeout}: RDS's SwitchoverTimeout must be between 30 and 3600 seconds"
        in h.stderr.getvalue()
    )


# --------------------------------------------------------------------------- cleanup


def test_cleanup_after_switchover_deletes_deployment_and_old_blue(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.expect_instance(instance(EngineVersion="8.4.3"))
    h.expect_deployments(deployment("SWITCHOVER_COMPLETED", Source=ARN + "-old1"))
    h.expect_instance(instance(DBInstanceIdentifier="demo-db-old1"), ident="demo-db-old1")
    h.expect(
        "delete_blue_green_deployment",
        {"BlueGreenDeployment": deployment("DELETING")},
        {"BlueGreenDeploymentIdentifier": DEP_ID},
    )
    h.expect(
        "delete_db_instance",
        {"DBInstance": instance(DBInstanceStatus="deleting")},
        {
            "DBInstanceIdentifier": "demo-db-old1",
            "SkipFinalSnapshot": False,
            "FinalDBSnapshotIdentifier": ANY,
        },
    )
    assert h.run("cleanup", "--delete-old-blue") == 0, h.out
    assert h.prompts == ["Proceed? [y/N] "]
    assert "Deletion of demo-db-old1 started (final snapshot demo-db-old1-final-" in h.out
    assert "pulumi config set dbEngineVersion 8.4.3" in h.out


def test_cleanup_asks_and_deletes_nothing_on_no(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.answer = False
    h.expect_instance()
    h.expect_deployments(deployment("AVAILABLE"))
    assert h.run("cleanup") == 1
    assert f"delete blue/green deployment {DEP_ID} (AVAILABLE) AND its green instance {GREEN_ARN}" in h.out
    assert "Nothing was deleted." in h.out


def test_cleanup_before_switchover_with_yes_abandons_green(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.expect_instance()
    h.expect_deployments(deployment("AVAILABLE"))
    h.expect(
        "delete_blue_green_deployment",
        {"BlueGreenDeployment": deployment("DELETING")},
        {"BlueGreenDeploymentIdentifier": DEP_ID, "DeleteTarget": True},
    )
    assert h.run("cleanup", "--yes") == 0
    assert h.prompts == []
    assert "Blue was never switched: the stack config stays as it is." in h.out


def test_cleanup_leaves_a_protected_old_blue_and_says_so(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.expect_instance()
    h.expect_deployments(deployment("SWITCHOVER_COMPLETED"))
    h.expect_instance(
        instance(DBInstanceIdentifier="demo-db-old1", DeletionProtection=True), ident="demo-db-old1"
    )
    h.expect("delete_blue_green_deployment", {"BlueGreenDeployment": deployment("DELETING")}, None)
    assert h.run("cleanup", "--delete-old-blue", "--yes") == 1
    assert "Deletion of deployment" in h.out
    assert "Old blue demo-db-old1 NOT deleted: it has deletion protection" in h.out


def test_cleanup_refuses_delete_old_blue_before_a_switchover(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.expect_instance()
    h.expect_deployments(deployment("AVAILABLE"))
    assert h.run("cleanup", "--delete-old-blue", "--yes") == 2
    assert "there is no old blue before a switchover" in h.stderr.getvalue()


def test_outputs_without_db_instance_id_are_a_usage_error(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.outputs.write_text(json.dumps({k: v for k, v in OUTPUTS.items() if k != "dbInstanceId"}))
    assert h.run("check") == 2
    assert "stack outputs lack dbInstanceId" in h.stderr.getvalue()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["switchover", "--rate", "0"], "--rate must be > 0, got 0"),
        (["create", "--engine-version", "8.4.3", "--poll", "-1"], "--poll must be > 0, got -1"),
        (["switchover", "--settle", "-1"], "--settle must be >= 0, got -1"),
        (["create"], "the following arguments are required: --engine-version"),
    ],
)
def test_bad_arguments_name_the_flag(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        bg.parse_args(["--outputs", "x.json", *args])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_after_a_major_upgrade_on_rds_s_default_group_the_parameter_group_change_is_announced(
    tmp_path: Path,
) -> None:
    # Green of a major version created without --parameter-group runs default.mysql8.4; the stack's own group
    # follows dbEngineVersion's family, so "no changes" would be a false promise after `pulumi config set`.
    h, _ = _switchover_harness(tmp_path)
    h.expect(
        "switchover_blue_green_deployment",
        {"BlueGreenDeployment": deployment("SWITCHOVER_IN_PROGRESS")},
        {"BlueGreenDeploymentIdentifier": DEP_ID, "SwitchoverTimeout": 300},
    )
    h.expect_deployment(deployment("SWITCHOVER_COMPLETED"))
    h.expect_targets()
    h.expect_instance(
        instance(
            EngineVersion="8.4.3",
            DBParameterGroups=[
                {"DBParameterGroupName": "default.mysql8.4", "ParameterApplyStatus": "in-sync"}
            ],
        )
    )
    assert h.run(*SWITCH_ARGS) == 0, h.out
    assert "pulumi config set dbEngineVersion 8.4.3" in h.out
    assert "default parameter group default.mysql8.4" in h.out
    assert "must show only that parameter group change" in h.out
    assert "must show no changes" not in h.out
