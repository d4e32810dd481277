"""The offline plan says what `pulumi up` would say: YAML as the CLI reads it, its type check, broken files,
a missing region, the program's warnings, AZs that are not invented, and the exit-status contract."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pulumi
import pytest

import plan.config
from plan.__main__ import main
from plan.config import StackConfigError, cli_config_error, load_stack_config
from plan.engine import run_program
from plan.zones import AZ_IDS

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A copy of the project's Pulumi.yaml in a temporary directory the plan reads stack files from."""
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    monkeypatch.setattr(plan.config, "ROOT", tmp_path)

    def stack_file(body: str, name: str = "t") -> str:
        (tmp_path / f"Pulumi.{name}.yaml").write_text(body)
        return name

    return stack_file


def run_plan(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --- YAML 1.2 as gopkg.in/yaml.v3 reads it, and the strings the CLI hands the program -------------


def test_yes_is_a_string_not_a_boolean(project):
    stack = project("config:\n  aws:region: us-east-1\n  rds-proxy:dbMultiAz: yes\n")
    assert load_stack_config(stack)["rds-proxy:dbMultiAz"] == "yes"


def test_unquoted_float_reaches_the_program_as_go_formats_it(project):
    stack = project(
        "config:\n  aws:region: us-east-1\n  rds-proxy:dbEngineVersion: 8.0\n  rds-proxy:azCount: 3.0\n"
    )
    config = load_stack_config(stack)
    assert config["rds-proxy:dbEngineVersion"] == "8"
    assert config["rds-proxy:azCount"] == "3"
    assert cli_config_error(stack) is None  # "3" passes strconv.Atoi


@pytest.mark.parametrize(
    ("yaml_value", "program_sees"),
    [("True", "true"), ("0x10", "16"), ("0o17", "15"), ("017", "15"), ("1_000", "1000"), ("3.50", "3.5"),
     ("1e21", "1e+21"), ("2026-11-26", "2026-11-26"), ("'8.0'", "8.0"), ("[a, b]", '["a","b"]')],
)  # fmt: skip
def test_scalars_resolve_as_yaml_v3_does(project, yaml_value, program_sees):
    stack = project(f"config:\n  rds-proxy:initQuery: {yaml_value}\n")
    assert load_stack_config(stack)["rds-proxy:initQuery"] == program_sees


def test_unqualified_stack_keys_get_the_project_namespace(project):
    stack = project("config:\n  azCount: 3\n")
    assert load_stack_config(stack)["rds-proxy:azCount"] == "3"


# --- the CLI's own type check, before the program ---------------------------------------------------


@pytest.mark.parametrize("value", ['"3.0"', '" 3"', "three", "3.5"])
def test_integer_keys_take_only_what_strconv_atoi_takes(project, value):
    stack = project(f"config:\n  aws:region: us-east-1\n  rds-proxy:azCount: {value}\n")
    assert cli_config_error(stack) == (
        f"validating stack config: Stack '{stack}' with configuration key 'azCount' must be of type 'integer'"
    )


@pytest.mark.parametrize("value", ["yes", "on", '"TRUE"', "1"])
def test_boolean_keys_take_only_true_or_false(project, value):
    stack = project(f"config:\n  aws:region: us-east-1\n  rds-proxy:dbMultiAz: {value}\n")
    assert cli_config_error(stack) == (
        f"validating stack config: Stack '{stack}' with configuration key 'dbMultiAz' must be of type 'boolean'"
    )


def test_a_list_key_given_a_string_is_refused_as_array_of_string(project):
    stack = project(
        "config:\n  aws:region: us-east-1\n  rds-proxy:sessionPinningFilters: EXCLUDE_VARIABLE_SETS\n"
    )
    assert cli_config_error(stack) == (
        f"validating stack config: Stack '{stack}' with configuration key 'sessionPinningFilters' "
        "must be of type 'array<string>'"
    )
    ok_stack = project(
        "config:\n  aws:region: us-east-1\n  rds-proxy:sessionPinningFilters:\n    - EXCLUDE_VARIABLE_SETS\n"
    )
    assert cli_config_error(ok_stack) is None


def test_the_first_failing_key_in_sorted_order_is_reported(project):
    stack = project("config:\n  rds-proxy:requireTls: maybe\n  rds-proxy:azCount: x\n")
    assert "'azCount'" in (cli_config_error(stack) or "")


def test_plan_shows_the_cli_type_error_alone_and_stops(capsys):
    code, out, err = run_plan(capsys, "--config", "azCount=3.0", "--config", "idleClientTimeout=0")
    assert code == 1 and out == ""
    assert err == (
        "error: validating stack config: Stack 'dev' with configuration key 'azCount' must be of type 'integer'\n"
    )  # not the program's "invalid configuration" list: the program never runs


def test_when_types_pass_the_program_validation_runs(capsys):
    code, _, err = run_plan(capsys, "--config", "azCount=3", "--config", "idleClientTimeout=0")
    assert code == 1
    assert "error: invalid configuration (1 problem)" in err and "idleClientTimeout: 0 is not allowed" in err


def test_json_plan_carries_the_cli_type_error(capsys):
    code, out, _ = run_plan(capsys, "--format", "json", "--config", "dbMultiAz=yes")
    doc = json.loads(out)
    assert code == 1 and doc["resources"] == []
    assert doc["errors"] == [
        "validating stack config: Stack 'dev' with configuration key 'dbMultiAz' must be of type 'boolean'"
    ]


# --- broken stack files ---------------------------------------------------------------------------


def test_yaml_syntax_error_is_one_line_naming_file_and_line(project, capsys):
    stack = project("config:\n  aws:region: us-east-1\n  rds-proxy:azCount: [1, 2\n  rds-proxy:dbName: x\n")
    code, out, err = run_plan(capsys, "--stack", stack)
    assert code == 1 and out == ""
    assert err.startswith(f"error: Pulumi.{stack}.yaml: line ") and err.count("\n") == 1
    assert "Traceback" not in err


def test_a_yaml_syntax_error_names_the_line_it_is_on(project, capsys):
    stack = project("config:\n  aws:region: us-east-1\n  rds-proxy:dbName: x: y\n")
    code, _, err = run_plan(capsys, "--stack", stack)
    assert code == 1
    assert err == f"error: Pulumi.{stack}.yaml: line 3: mapping values are not allowed here\n"


def test_config_that_is_not_a_mapping_names_its_line(project, capsys):
    stack = project("# comment\nconfig: just-a-string\n")
    code, _, err = run_plan(capsys, "--stack", stack)
    assert code == 1
    assert err == f"error: Pulumi.{stack}.yaml: line 2: `config:` must be a mapping of key: value\n"


def test_broken_file_in_json_mode_is_still_json_on_stdout(project, capsys):
    stack = project("config: [\n")
    code, out, err = run_plan(capsys, "--stack", stack, "--format", "json")
    assert code == 1 and err == ""
    assert json.loads(out)["errors"][0].startswith(f"Pulumi.{stack}.yaml: line ")


# --- region and Availability Zones ----------------------------------------------------------------


def test_a_stack_without_a_region_fails_as_the_provider_would(project, capsys, monkeypatch):
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    stack = project("config:\n  rds-proxy:azCount: 2\n")
    code, out, err = run_plan(capsys, "--stack", stack)
    assert code == 1 and out == ""
    assert 'error: Missing region value: The "region" attribute or the "AWS_REGION"' in err
    assert "us-east-1a" not in err


def test_the_region_may_come_from_the_environment_like_the_provider_takes_it(project, capsys, monkeypatch):
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    stack = project("config:\n  rds-proxy:azCount: 2\n")
    code, out, _ = run_plan(capsys, "--stack", stack, "--format", "json")
    subnets = [r for r in json.loads(out)["resources"] if r["type"] == "aws:ec2/subnet:Subnet"]
    assert code == 0 and {s["inputs"]["availabilityZoneId"] for s in subnets} <= set(AZ_IDS["eu-west-1"])


def test_us_east_1_has_its_six_documented_azs_and_the_plan_uses_them():
    assert AZ_IDS["us-east-1"] == tuple(f"use1-az{i}" for i in range(1, 7))
    run = run_program("dev", load_stack_config("dev", ["azCount=5"]))
    zones = [s.inputs["availabilityZoneId"] for s in run.by_type("aws:ec2/subnet:Subnet")]
    assert sorted(zones) == ["use1-az1", "use1-az2", "use1-az4", "use1-az5", "use1-az6"]


def test_zone_names_are_not_presented_as_facts(capsys):
    code, out, _ = run_plan(capsys, "--format", "json")
    subnets = [r for r in json.loads(out)["resources"] if r["type"] == "aws:ec2/subnet:Subnet"]
    run = run_program("dev", load_stack_config("dev"))
    assert code == 0 and "us-east-1a" in run.invented and "us-east-1a" not in out
    assert all(s["inputs"]["availabilityZoneId"].startswith("use1-az") for s in subnets)


def test_a_region_not_in_the_table_skips_the_az_check_and_says_so(capsys):
    code, out, _ = run_plan(capsys, "--config", "aws:region=sa-east-1", "--config", "azCount=6")
    assert code == 0
    assert "AZ check skipped: sa-east-1 is not in plan/zones.py" in out
    assert "sa-east-1-unknown-az" not in out  # placeholders are shown as known after deploy
    _, out, _ = run_plan(capsys, "--format", "json", "--config", "aws:region=sa-east-1")
    assert any("AZ check skipped" in n for n in json.loads(out)["notes"])


def test_a_region_in_the_table_gets_no_skip_note(capsys):
    _, out, _ = run_plan(capsys, "--config", "aws:region=eu-west-1")
    assert "AZ check skipped" not in out


def test_a_region_in_the_table_gets_its_own_azs_not_us_east_1s(capsys):
    run = run_program("dev", load_stack_config("dev", ["aws:region=eu-west-1", "azCount=3"]))
    zones = [s.inputs["availabilityZoneId"] for s in run.by_type("aws:ec2/subnet:Subnet")]
    assert sorted(zones) == ["euw1-az1", "euw1-az2", "euw1-az3"]
    code, _, err = run_plan(capsys, "--config", "aws:region=eu-west-1", "--config", "azCount=4")
    assert code == 1 and "azCount: 4 is not allowed here; this region has 3 available AZs" in err


# --- the program's warnings (pulumi.warn) ---------------------------------------------------------

WARNING = "rds-proxy:maxConectionsPercent is not a declared configuration key and is ignored; did you mean maxConnectionsPercent?"


def test_warnings_the_program_logs_are_recorded():
    run = run_program("dev", {}, program=lambda: pulumi.warn(WARNING))
    assert run.error is None and run.warnings == [WARNING]


@pytest.fixture
def warning_program(monkeypatch):
    """The plan's run of the real program, plus one pulumi.warn the way components/settings.py will."""
    import plan.__main__ as plan_main

    def run_with_warning(stack, config, project="rds-proxy", stack_references=None):
        def program():
            pulumi.warn(WARNING)
            import runpy

            runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")

        return run_program(stack, config, program=program, project=project, stack_references=stack_references)

    monkeypatch.setattr(plan_main, "run_program", run_with_warning)


def test_text_plan_shows_warnings_as_the_cli_diagnostics_do(capsys, warning_program):
    code, out, _ = run_plan(capsys)
    assert code == 0
    assert f"Warnings:\n  pulumi:pulumi:Stack (rds-proxy-dev):\n    warning: {WARNING}\n" in out


def test_json_plan_lists_warnings(capsys, warning_program):
    from tests.conftest import ok

    _, out, _ = run_plan(capsys, "--format", "json")
    # The planted warning first, then the real program's own (today: the missing RDS CA bundle).
    assert json.loads(out)["warnings"] == [WARNING, *ok("dev").warnings]


def test_warnings_accompany_a_program_error(capsys, warning_program):
    code, _, err = run_plan(capsys, "--config", "iamAuth=maybe")
    assert code == 1
    assert f"    warning: {WARNING}\n    error: invalid configuration" in err


# --- exit status ----------------------------------------------------------------------------------


def test_bad_command_line_exits_1_not_2_which_means_policy_violations(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--format", "yaml"])
    assert exc.value.code == 1
    with pytest.raises(SystemExit) as exc:
        main(["--bogus"])
    assert exc.value.code == 1


def test_malformed_override_is_exit_1(capsys):
    code, _, err = run_plan(capsys, "--config", "noequals")
    assert code == 1 and "expected key=value" in err


def test_a_missing_stack_file_raises_stack_config_error():
    with pytest.raises(StackConfigError):
        load_stack_config("no-such-stack")


def test_a_role_lookup_is_answered_but_not_presented_as_checked():
    import pulumi_aws as aws

    def program():
        role = aws.iam.get_role(name="AWSServiceRoleForRDS")
        pulumi.export("path", role.path)

    run = run_program("dev", {"aws:region": "us-east-1"}, program=program)
    assert run.error is None and run.exports["path"] == "/aws-service-role/rds.amazonaws.com/"
    assert "Not checked offline: that the account has the IAM role AWSServiceRoleForRDS." in run.notes


def test_the_az_table_records_the_ids_the_program_excludes_for_rds_proxy():
    from itertools import chain

    from components.networking import PROXY_UNSUPPORTED_AZ_IDS
    from plan.zones import RDS_PROXY_UNSUPPORTED

    assert set(chain.from_iterable(RDS_PROXY_UNSUPPORTED.values())) == set(PROXY_UNSUPPORTED_AZ_IDS)
    for region, ids in RDS_PROXY_UNSUPPORTED.items():
        assert set(ids) <= set(AZ_IDS[region])


def test_keys_declared_without_default_and_not_set_are_reported_as_the_cli_does(project, tmp_path):
    declared = (tmp_path / "Pulumi.yaml").read_text()
    extra = "  zKey:\n    type: string\n  aKey:\n    type: string\n  mKey:\n    type: integer\n"
    (tmp_path / "Pulumi.yaml").write_text(declared.rstrip("\n") + "\n" + extra)
    stack = project("config:\n  aws:region: us-east-1\n  rds-proxy:mKey: 1\n")
    assert cli_config_error(stack) == (
        f"validating stack config: Stack '{stack}' is missing configuration values 'aKey' and 'zKey'"
    )


# --- what a user sees end to end (no warning or message injected by the test) ---------------------


def test_a_misspelled_key_is_warned_about_in_the_plan_with_the_closest_declared_key(capsys):
    code, out, _ = run_plan(capsys, "--config", "maxConectionsPercent=60")
    assert code == 0
    assert f"Warnings:\n  pulumi:pulumi:Stack (rds-proxy-dev):\n    warning: {WARNING}\n" in out
    _, out, _ = run_plan(capsys, "--config", "maxConectionsPercent=60", "--format", "json")
    from tests.conftest import ok

    # The misspelled key first, then the program's own warnings (today: the missing RDS CA bundle).
    assert json.loads(out)["warnings"] == [WARNING, *ok("dev").warnings]


def test_session_pinning_filters_hint_shows_forms_that_work(project, capsys):
    from components.settings import ConfigError, parse_settings

    with pytest.raises(ConfigError) as exc:
        parse_settings({"sessionPinningFilters": "EXCLUDE_VARIABLE_SETS"}.get, "rds-proxy", "dev")
    hint = str(exc.value)
    stack_form = "rds-proxy:sessionPinningFilters: [EXCLUDE_VARIABLE_SETS]"
    cli_form = "pulumi config set --path 'sessionPinningFilters[0]' EXCLUDE_VARIABLE_SETS"
    assert stack_form in hint and cli_form in hint
    # The stack-file form the hint shows is one the CLI's type check and the program both take.
    stack = project(f"config:\n  aws:region: us-east-1\n  {stack_form}\n")
    assert cli_config_error(stack) is None
    assert run_plan(capsys, "--stack", stack)[0] == 0
    # So does the plan's --config form for an array key (JSON), and the README shows both CLI forms.
    json_list = 'sessionPinningFilters=["EXCLUDE_VARIABLE_SETS"]'
    assert (
        run_plan(capsys, "--stack", project("config:\n  aws:region: us-east-1\n"), "--config", json_list)[0]
        == 0
    )
    readme = (ROOT / "README.md").read_text()
    assert cli_form in readme and "--config 'sessionPinningFilters=[\"EXCLUDE_VARIABLE_SETS\"]'" in readme


def _readme_plan_examples() -> list[tuple[str, str]]:
    """`$ make plan ARGS="…"` blocks in the README: the arguments and the output shown under them."""
    import re

    readme = (ROOT / "README.md").read_text()
    return re.findall(r'```\n\$ make plan ARGS="([^"]*)"\n(.*?)```', readme, flags=re.S)


@pytest.mark.parametrize(("args", "shown"), _readme_plan_examples())
def test_readme_plan_examples_are_what_the_plan_prints(capsys, args, shown):
    import shlex

    code, out, err = run_plan(capsys, *shlex.split(args))
    assert code == 1
    assert (out + err).strip() == shown.strip()


def test_the_readme_shows_plan_examples():
    assert len(_readme_plan_examples()) >= 2
