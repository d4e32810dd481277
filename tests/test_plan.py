"""`make plan`: the offline plan users read on merge requests (tree, errors, JSON, Mermaid, diff, policy)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from plan.__main__ import main
from plan.report import AFTER_DEPLOY, critical_path
from tests.conftest import ok, reveal

ROOT = Path(__file__).resolve().parent.parent


def plan(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_text_plan_shows_the_component_tree_with_key_settings(capsys):
    code, out, _ = plan(capsys, "--stack", "dev")
    assert code == 0
    assert "rdsproxy.RdsProxyStack  rds-proxy" in out
    lines = out.splitlines()
    component = lines.index("  rdsproxy.Proxy  rds-proxy-proxy")
    assert lines.index("    + rds.Proxy  rds-proxy-proxy-proxy") > component  # indented under its component
    for setting in (
        "requireTls: true",
        "idleClientTimeout: 900",
        '"maxConnectionsPercent": 75',
        '"iamAuth": "REQUIRED"',
        'instanceClass: "db.t3.micro"',
        "multiAz: false",
    ):
        assert setting in out, setting


def test_values_only_known_after_deploy_are_shown_as_such_not_invented(capsys):
    run = ok("dev")
    _, out, _ = plan(capsys, "--stack", "dev")
    assert f'proxyEndpoint: "{AFTER_DEPLOY}"' in out
    for value in run.invented:
        assert value not in out, value


def test_secrets_never_appear_in_any_format(capsys):
    passwords = [
        reveal(p.outputs["result"]) for p in ok("dev").by_type("random:index/randomPassword:RandomPassword")
    ]
    assert len(passwords) == 2  # master and probe user
    for fmt in ("text", "json", "mermaid"):
        _, out, _ = plan(capsys, "--format", fmt)
        assert not [p for p in passwords if p in out]
    _, out, _ = plan(capsys)
    assert 'password: "[secret]"' in out and 'secretString: "[secret]"' in out


def test_overrides_use_stack_file_keys(capsys):
    _, out, _ = plan(capsys, "--config", "maxConnectionsPercent=60", "--config", "dbMultiAz=true")
    assert '"maxConnectionsPercent": 60' in out and "multiAz: true" in out


def test_prod_plan_shows_prod_settings_and_protection(capsys):
    code, out, _ = plan(capsys, "--stack", "prod")
    assert code == 0
    assert "+ rds.Instance  rds-proxy-db-instance  [protected]" in out
    assert "deletionProtection: true" in out and "multiAz: true" in out


def test_config_errors_are_reported_as_pulumi_up_does_and_exit_non_zero(capsys):
    code, out, err = plan(capsys, "--config", "idleClientTimeout=0", "--config", "azCount=1")
    assert code == 1
    assert out == ""
    assert (
        "Diagnostics:\n  pulumi:pulumi:Stack (rds-proxy-dev):\n    error: invalid configuration (2 problems)"
        in err
    )
    assert "idleClientTimeout: 0 is not allowed; expected an integer from 1 to 28800" in err
    assert "Traceback" not in err


def test_unknown_stack_is_a_clear_error(capsys):
    code, _, err = plan(capsys, "--stack", "staging")
    assert code == 1 and "no stack file Pulumi.staging.yaml; stacks here: dev, dr, prod" in err


def test_json_plan_has_the_documented_fields(capsys):
    code, out, _ = plan(capsys, "--format", "json")
    doc = json.loads(out)
    assert code == 0
    assert {"stack", "resources", "outputs", "errors", "violations", "critical_path_minutes"} <= set(doc)
    assert doc["stack"] == "dev" and doc["errors"] == [] and doc["violations"] == []
    proxy = next(r for r in doc["resources"] if r["type"] == "aws:rds/proxy:Proxy")
    assert proxy["parent"] == "rds-proxy-proxy"
    assert proxy["inputs"]["requireTls"] is True
    assert set(doc["outputs"]) >= {"proxyEndpoint", "privateSubnetIds"}


def test_json_plan_reports_config_errors_in_errors(capsys):
    code, out, _ = plan(capsys, "--format", "json", "--config", "iamAuth=maybe")
    doc = json.loads(out)
    assert code == 1 and doc["resources"] == [] and "iamAuth" in doc["errors"][0]


def test_critical_path_is_rds_then_target_because_the_proxy_builds_alongside(capsys):
    minutes, path = critical_path(ok("dev"))
    assert minutes == 13
    assert [r.type for r in path if r.type.startswith("aws:rds/")][-2:] == [
        "aws:rds/instance:Instance",
        "aws:rds/proxyTarget:ProxyTarget",
    ]
    _, out, _ = plan(capsys)
    assert "Critical path: ~13 min" in out


def test_mermaid_is_drawn_from_the_resource_graph(capsys):
    _, out, _ = plan(capsys, "--format", "mermaid")
    assert out.startswith("flowchart LR")
    assert "rds_proxy_db_instance --> rds_proxy_proxy_target" in out
    assert "rds_proxy_proxy_proxy --> rds_proxy_probe_function" in out
    assert "rds_proxy_db_instance --> rds_proxy_proxy_proxy" not in out


def test_diff_lists_what_switching_stacks_changes(capsys):
    code, out, _ = plan(capsys, "--stack", "dev", "--diff", "prod")
    assert code == 0
    assert "~ rds-proxy-db-instance\n" in out
    for line in (
        "multiAz: false -> true",
        "deletionProtection: false -> true",
        "skipFinalSnapshot: true -> false",
        "backupRetentionPeriod: 7 -> 14",
        "protect: false -> true",
    ):
        assert line in out, line
    assert "rds-proxy-net-vpc" not in out  # unchanged resources stay quiet


def test_policy_violations_are_listed_and_exit_non_zero(capsys):
    code, out, _ = plan(capsys, "--config", "requireTls=false")
    assert code == 2
    assert "Policy violations (1):" in out and "rds-proxy-proxy-proxy" in out


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_dev_and_prod_plans_pass_the_policy_pack_with_zero_violations(capsys, stack):
    code, out, _ = plan(capsys, "--stack", stack, "--format", "json")
    assert code == 0 and json.loads(out)["violations"] == []


def test_make_plan_runs_as_a_module_from_a_clean_process():
    result = subprocess.run(
        [sys.executable, "-m", "plan", "--stack", "prod"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "Policy pack: 0 violations." in result.stdout


def test_make_plan_with_json_format_prints_only_json():
    import shutil

    result = subprocess.run(
        [shutil.which("make") or "make", "--no-print-directory", "plan", "ARGS=--format json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["stack"] == "dev"


def make_plan_fresh(tmp_path: Path, args: str) -> subprocess.CompletedProcess[str]:
    """`make plan ARGS=…` as in a fresh clone: make first runs its venv recipe, here with a stand-in
    `python -m venv` (noisy on stdout, like pip) whose venv's python is this one, so no network is needed
    and the repo's own .venv is neither used nor touched."""
    import shutil

    fake = tmp_path / "fake-python"
    fake.write_text(
        "#!/bin/sh\n"
        'venv="$3"; mkdir -p "$venv/bin"\n'
        f'printf \'#!/bin/sh\\nexec {sys.executable} "$@"\\n\' > "$venv/bin/python"\n'
        'printf \'#!/bin/sh\\necho "pip noise on stdout"\\n\' > "$venv/bin/pip"\n'
        'chmod +x "$venv/bin/python" "$venv/bin/pip"\n'
        'echo "venv noise on stdout"\n'
    )
    fake.chmod(0o755)
    venv = tmp_path / "venv"
    result = subprocess.run(
        [shutil.which("make") or "make", "--no-print-directory", "plan", f"ARGS={args}", f"PYTHON={fake}",
         f"VENV={venv}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert (venv / "bin" / ".installed").exists(), result.stderr  # the venv recipe did run
    return result


def test_make_plan_json_is_only_json_even_when_make_first_creates_the_venv(tmp_path):
    """In a fresh clone `make plan` first builds the venv; what that prints must not reach stdout."""
    result = make_plan_fresh(tmp_path, "--format json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["stack"] == "dev"
    assert "noise" not in result.stdout and "creating" in result.stderr


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        ("--config iamAuth=maybe", 'iamAuth: "maybe" is not allowed'),
        ("--config azCount=3.0", "must be of type"),
    ],
)
def test_through_make_a_failing_plan_is_a_failing_make(tmp_path, args, shown):
    result = make_plan_fresh(tmp_path, args)
    assert result.returncode != 0 and shown in result.stderr and result.stdout == ""
