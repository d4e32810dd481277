"""Config: every key declared, profiles and overrides, and every validation rule (all errors at once)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from components.proxy import PoolProfile
from components.settings import ConfigError, parse_settings
from plan.config import cli_config_error, load_stack_config
from tests.conftest import deploy, ok

ROOT = Path(__file__).resolve().parent.parent
KEYS = {
    "poolProfile", "idleClientTimeout", "maxConnectionsPercent", "maxIdleConnectionsPercent",
    "connectionBorrowTimeout", "initQuery", "sessionPinningFilters", "requireTls", "debugLogging",
    "iamAuth", "vpcCidr", "azCount", "dbInstanceClass", "dbEngineVersion", "dbAllocatedStorage",
    "dbName", "dbUsername", "dbBackupRetentionDays", "dbMultiAz", "dbDeletionProtection",
    "dbSkipFinalSnapshot", "probeTimeout", "probeMemorySize",
    "dbUsers", "proxyDefaultAuthScheme", "probeUser",
    # security (issue 14)
    "kmsKeyArn", "logRetentionDays", "dbMonitoringInterval", "dbLogExports", "vpcFlowLogs", "secretRotationDays",
    "dbInstanceIdentifier",
}  # fmt: skip
KEYS |= {  # read scaling (issue 9)
    "dbTopology", "dbReaderCount", "dbReaderInstanceClass", "dbServerlessMinCapacity",
    "dbServerlessMaxCapacity", "proxyReaderEndpoint", "dbReadReplicas",
}  # fmt: skip
KEYS |= {  # monitoring (issue 10)
    "monitoringEnabled", "alarmEmail", "alarmPoolUtilizationPercent", "alarmBorrowLatencyMs", "alarmQueryLatencyMs",
}  # fmt: skip
KEYS |= {"dbBlueGreenUpdate"}  # blue/green (issue 11)
KEYS |= {"drRegion", "drPrimaryStack", "drPromoted"}  # DR (tests/test_dr.py)


def pool(run):
    tg = run.one("aws:rds/proxyDefaultTargetGroup:ProxyDefaultTargetGroup").inputs["connectionPoolConfig"]
    proxy = run.one("aws:rds/proxy:Proxy").inputs
    return (
        proxy["idleClientTimeout"],
        tg["maxConnectionsPercent"],
        tg["maxIdleConnectionsPercent"],
        tg["connectionBorrowTimeout"],
    )


def problems(**config) -> list[str]:
    error = deploy("dev", **config).error
    assert isinstance(error, ConfigError), f"expected a ConfigError, got {error!r}"
    return error.problems


def test_every_key_is_declared_with_type_description_and_default():
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    assert set(declared) == KEYS
    for key, decl in declared.items():
        assert {"type", "description", "default"} <= set(decl), key


PY_TYPES = {"string": str, "integer": int, "boolean": bool, "array": list, "object": dict}


def _matches(value, declared: str) -> bool:
    # bool is an int in Python; the CLI keeps them apart.
    return isinstance(value, PY_TYPES[declared]) and not (declared == "integer" and isinstance(value, bool))


def test_declared_types_are_ones_the_cli_knows_and_defaults_match_them():
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    for key, decl in declared.items():
        assert decl["type"] in PY_TYPES, key
        assert _matches(decl["default"], decl["type"]), key
        if decl["type"] == "array":
            assert decl["items"]["type"] in PY_TYPES, key
            assert all(_matches(v, decl["items"]["type"]) for v in decl["default"]), key


def test_stack_file_values_have_the_declared_types():
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    for stack in ("dev", "prod"):
        config = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"] or {}
        for key, value in config.items():
            namespace, name = key.split(":", 1)
            if namespace == "rds-proxy":
                assert _matches(value, declared[name]["type"]), f"{stack}: {key}"
        # PyYAML reads YAML 1.1 (`yes` is true there); the CLI reads YAML 1.2 and checks types itself.
        assert cli_config_error(stack) is None, stack


def test_stack_files_hold_only_what_differs_from_the_defaults():
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    for stack in ("dev", "prod"):
        config = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"] or {}
        for key, value in config.items():
            name = key.split(":", 1)[1]
            if key.startswith("rds-proxy:"):
                assert value != declared[name]["default"], f"{stack}: {key} repeats the default"


def test_default_profile_is_the_recipe_tuning():
    assert pool(ok("dev")) == (900, 75, 25, 120)


@pytest.mark.parametrize(
    ("profile", "expected"),
    [("recipe", (900, 75, 25, 120)), ("event-driven", (300, 90, 10, 30)), ("steady", (1800, 100, 50, 120))],
)
def test_pool_profile_selects_pool_values(profile, expected):
    assert pool(ok("dev", poolProfile=profile)) == expected


def test_event_driven_profile_keeps_idle_timeout_short():
    assert pool(ok("dev", poolProfile="event-driven"))[0] <= 600


def test_explicit_pool_keys_override_the_profile():
    run = ok(
        "dev",
        poolProfile="steady",
        idleClientTimeout=600,
        maxConnectionsPercent=60,
        maxIdleConnectionsPercent=5,
        connectionBorrowTimeout=10,
    )
    assert pool(run) == (600, 60, 5, 10)


def test_one_override_keeps_the_rest_of_the_profile():
    assert pool(ok("dev", poolProfile="steady", maxConnectionsPercent=80)) == (1800, 80, 50, 120)


def test_overrides_use_the_same_keys_as_stack_files():
    config = load_stack_config("dev", ["maxConnectionsPercent=60", "aws:region=eu-west-1"])
    assert config["rds-proxy:maxConnectionsPercent"] == "60"
    assert config["aws:region"] == "eu-west-1"


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("poolProfile", "bursty", "recipe, event-driven, steady"),
        ("idleClientTimeout", 0, "from 1 to 28800"),
        ("idleClientTimeout", 28801, "from 1 to 28800"),
        ("maxConnectionsPercent", 0, "from 1 to 100"),
        ("maxConnectionsPercent", 101, "from 1 to 100"),
        ("maxIdleConnectionsPercent", -5, "from 0 to 100"),
        ("connectionBorrowTimeout", 301, "from 0 to 300"),
        ("sessionPinningFilters", ["EXCLUDE_EVERYTHING"], "EXCLUDE_VARIABLE_SETS"),
        ("iamAuth", "OPTIONAL", "REQUIRED or DISABLED"),
        ("vpcCidr", "10.0.0.0/8", "/16 to /24"),
        ("vpcCidr", "10.0.0.0/25", "/16 to /24"),
        ("vpcCidr", "10.0.0.1/16", "/16 to /24"),
        ("vpcCidr", "fd00::/48", "IPv4"),
        ("azCount", 1, "from 2"),
        ("dbInstanceClass", "t3.micro", "db."),
        ("dbEngineVersion", "5.7", "8.0 or 8.4"),
        ("dbAllocatedStorage", 10, "from 20"),
        ("dbName", "1testdb", "a letter"),
        ("dbName", "test-db", "a letter"),
        ("dbUsername", "rdsadmin", "not one of"),
        ("dbUsername", "a_name_longer_than_16", "at most 16"),
        ("dbBackupRetentionDays", 3, "from 7 to 35"),
        ("dbBackupRetentionDays", 36, "from 7 to 35"),
        ("probeTimeout", 60, "from 5 to 30"),
        ("probeTimeout", 4, "from 5 to 30"),
        ("probeMemorySize", 10241, "from 128 to 10240"),
        ("azCount", 7, "from 2 to 6"),
        ("dbAllocatedStorage", 65537, "from 20 to 65536"),
        ("maxIdleConnectionsPercent", 101, "from 0 to 100"),
        ("dbName", "a" * 65, "at most 64"),
        ("probeMemorySize", 64, "from 128 to 10240"),
        ("requireTls", "yes", "true or false"),
        ("idleClientTimeout", "soon", "an integer"),
        ("azCount", "2.5", "an integer"),
        ("sessionPinningFilters", "EXCLUDE_VARIABLE_SETS", "a list of strings"),
    ],
)
def test_invalid_value_is_reported_with_key_value_and_what_is_allowed(key, value, fragment):
    found = problems(**{key: value})
    assert len(found) == 1, found
    assert found[0].startswith(f"{key}: ")
    shown = value[0] if isinstance(value, list) else str(value)
    assert shown in found[0]
    assert re.search(rf"{re.escape(fragment)}(?![0-9])", found[0]), found[0]


def test_max_idle_may_not_exceed_max_connections():
    (problem,) = problems(maxConnectionsPercent=40, maxIdleConnectionsPercent=50)
    assert problem.startswith("maxIdleConnectionsPercent: 50") and "maxConnectionsPercent (40)" in problem


def test_max_idle_is_checked_against_the_profile_value():
    (problem,) = problems(poolProfile="recipe", maxIdleConnectionsPercent=80)  # recipe max is 75
    assert "maxConnectionsPercent (75)" in problem


def test_every_bad_key_is_reported_at_once():
    found = problems(idleClientTimeout="soon", iamAuth="maybe", azCount=1, dbName="9")
    # In the order Pulumi.yaml declares the keys.
    assert [p.split(":")[0] for p in found] == ["idleClientTimeout", "iamAuth", "azCount", "dbName"]


def test_error_message_names_the_problem_count_and_how_to_fix():
    error = deploy("dev", iamAuth="maybe", azCount=1).error
    assert "2 problems" in str(error) and "nothing was created" in str(error)
    assert "pulumi config set rds-proxy:<key>" in str(error)


def test_invalid_config_creates_nothing():
    run = deploy("dev", maxConnectionsPercent=500)
    assert isinstance(run.error, ConfigError)
    assert run.resources == []
    assert run.invokes == []


def test_valid_edge_values_are_accepted():
    run = ok(
        "dev",
        idleClientTimeout=28800,
        maxConnectionsPercent=100,
        maxIdleConnectionsPercent=0,
        connectionBorrowTimeout=0,
        vpcCidr="172.16.0.0/24",
        dbEngineVersion="8.4",
        probeTimeout=5,
        probeMemorySize=10240,
        sessionPinningFilters=["EXCLUDE_VARIABLE_SETS"],
    )
    assert pool(run) == (28800, 100, 0, 0)


def test_settings_parse_cli_strings():
    raw = {
        "poolProfile": "steady",
        "requireTls": "false",
        "sessionPinningFilters": '["EXCLUDE_VARIABLE_SETS"]',
    }
    settings = parse_settings(raw.get, "rds-proxy", "dev")
    assert settings.proxy.pool_profile is PoolProfile.STEADY
    assert settings.proxy.require_tls is False
    assert settings.proxy.session_pinning_filters == ("EXCLUDE_VARIABLE_SETS",)


def test_config_error_prints_without_traceback():
    import pulumi

    assert isinstance(deploy("dev", azCount=0).error, pulumi.RunError)


def test_secure_stack_values_are_masked_not_passed_on(tmp_path):
    (tmp_path / "Pulumi.yaml").write_text("name: rds-proxy\n")
    (tmp_path / "Pulumi.s.yaml").write_text("config:\n  rds-proxy:initQuery:\n    secure: v1:AAAABBBB\n")
    assert load_stack_config("s", root=tmp_path)["rds-proxy:initQuery"] == "[secret]"


# --- Defaults are written once (Pulumi.yaml) and every declared key is read by one section ---------------

# A valid value different from each key's Pulumi.yaml default, with the other keys it needs to be valid.
OTHER_VALUES: dict[str, tuple[str, dict[str, str]]] = {
    "poolProfile": ("steady", {}), "idleClientTimeout": ("600", {}), "maxConnectionsPercent": ("60", {}),
    "maxIdleConnectionsPercent": ("5", {}), "connectionBorrowTimeout": ("10", {}),
    "initQuery": ("SET time_zone = '+00:00'", {}), "sessionPinningFilters": ('["EXCLUDE_VARIABLE_SETS"]', {}),
    "requireTls": ("false", {}), "debugLogging": ("true", {}), "iamAuth": ("DISABLED", {}),
    "vpcCidr": ("10.9.0.0/16", {}), "azCount": ("3", {}), "dbInstanceClass": ("db.t4g.small", {}),
    "dbEngineVersion": ("8.4", {}), "dbAllocatedStorage": ("50", {}), "dbName": ("orders", {}),
    "dbUsername": ("app_admin", {}), "dbBackupRetentionDays": ("10", {}), "dbMultiAz": ("true", {}),
    "dbDeletionProtection": ("true", {}), "dbSkipFinalSnapshot": ("false", {}), "probeTimeout": ("10", {}),
    "probeMemorySize": ("512", {}),
    "dbTopology": ("aurora", {}), "dbReaderCount": ("2", {"dbTopology": "aurora"}),
    "dbReaderInstanceClass": ("db.r6g.large", {"dbTopology": "aurora"}),
    "dbServerlessMinCapacity": ("1", {"dbTopology": "aurora", "dbInstanceClass": "db.serverless"}),
    "dbServerlessMaxCapacity": ("8", {"dbTopology": "aurora", "dbInstanceClass": "db.serverless"}),
    "proxyReaderEndpoint": ("true", {"dbTopology": "aurora"}), "dbReadReplicas": ("1", {}),
    "dbUsers": ('[{"name": "app"}]', {}), "proxyDefaultAuthScheme": ("IAM_AUTH", {}),
    "probeUser": ("health", {}),
    # security (issue 14)
    "kmsKeyArn": ("arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab", {}),
    "logRetentionDays": ("90", {}), "dbMonitoringInterval": ("0", {}), "dbLogExports": ('["error"]', {}),
    "vpcFlowLogs": ("ALL", {}), "secretRotationDays": ("7", {}),
    "dbInstanceIdentifier": ("rds-proxy-db-instance-1a2b3c4", {}),
    "dbBlueGreenUpdate": ("true", {}),
    "monitoringEnabled": ("false", {}), "alarmEmail": ("ops@example.com", {}),
    "alarmPoolUtilizationPercent": ("90", {}), "alarmBorrowLatencyMs": ("20", {}),
    "alarmQueryLatencyMs": ("300", {}),
}  # fmt: skip
OTHER_VALUES |= {  # DR (issue 12)
    "drRegion": ("us-west-2", {}),
    "drPrimaryStack": ("o/rds-proxy/prod", {}),
    "drPromoted": ("true", {"drPrimaryStack": "o/rds-proxy/prod"}),
}


def test_the_program_takes_every_default_from_pulumi_yaml(monkeypatch):
    """Changing a default in Pulumi.yaml alone changes the settings: no default is restated in code."""
    from components import settings as settings_module

    assert set(OTHER_VALUES) == set(settings_module.DECLARED)
    for key, (value, context) in OTHER_VALUES.items():
        base = parse_settings(context.get, "rds-proxy", "dev")
        monkeypatch.setitem(settings_module.DEFAULTS, key, value)
        assert parse_settings(context.get, "rds-proxy", "dev") != base, key
        monkeypatch.undo()


def test_every_declared_key_is_read_and_nothing_else():
    read: list[str] = []

    def get(key):
        read.append(key)
        return None

    parse_settings(get, "rds-proxy", "dev")
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    assert set(read) == set(declared)


def test_profile_numbers_are_described_as_the_code_defines_them():
    from components.proxy import PROFILES

    description = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]["poolProfile"]["description"]
    readme = (ROOT / "README.md").read_text()
    for profile, pool in PROFILES.items():
        numbers = (
            pool.idle_client_timeout,
            pool.max_connections_percent,
            pool.max_idle_connections_percent,
            pool.connection_borrow_timeout,
        )
        assert (
            f"{profile.value} ({numbers[0]} s idle / {numbers[1]} % max / {numbers[2]} % idle / "
            f"{numbers[3]} s borrow)" in description
        ), profile
        assert (
            f"{profile.value} ({numbers[0]} s / {numbers[1]} % / {numbers[2]} % / borrow {numbers[3]} s)"
            in readme
        )


def test_undeclared_project_keys_are_warned_about_with_the_closest_declared_key():
    from components.settings import undeclared_key_warnings

    assert undeclared_key_warnings(
        ["rds-proxy:maxConectionsPercent", "rds-proxy:azCount", "aws:region", "rds-proxy:zzz"], "rds-proxy"
    ) == [
        "rds-proxy:maxConectionsPercent is not a declared configuration key and is ignored; "
        "did you mean maxConnectionsPercent?",
        "rds-proxy:zzz is not a declared configuration key and is ignored; "
        "the declared keys are listed in Pulumi.yaml",
    ]


def test_a_misspelled_key_does_not_stop_the_program():
    assert deploy("dev", maxConectionsPercent=60).error is None
