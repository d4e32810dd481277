"""Proxy: named, TLS-only, secret-backed, in the private subnets; pool on the default target group."""

from __future__ import annotations

import re

import pytest

from tests.conftest import ok

PROXY = "aws:rds/proxy:Proxy"
TARGET_GROUP = "aws:rds/proxyDefaultTargetGroup:ProxyDefaultTargetGroup"
TARGET = "aws:rds/proxyTarget:ProxyTarget"
NAME_RULE = re.compile(r"[a-z](?!.*--)[a-z0-9-]{0,62}(?<!-)")


def test_proxy_name_is_valid_and_derived_from_project_and_stack(stack_run):
    name = stack_run.one(PROXY).inputs["name"]
    assert name == f"rds-proxy-{stack_run.stack}"
    assert NAME_RULE.fullmatch(name)


@pytest.mark.parametrize(
    ("project", "stack"), [("RDS_Proxy", "Feature--X_1"), ("9lives", "dev"), ("x" * 80, "y" * 80)]
)
def test_proxy_name_is_valid_for_any_project_and_stack(project, stack):
    from components.settings import parse_settings

    name = parse_settings(lambda _k: None, project, stack).proxy.name
    assert NAME_RULE.fullmatch(name), name


def test_proxy_is_mysql_tls_only_with_secret_auth_and_iam(stack_run):
    proxy = stack_run.one(PROXY).inputs
    assert proxy["engineFamily"] == "MYSQL"
    assert proxy["requireTls"] is True
    auth = proxy["auths"][0]  # the master's entry stays first; user entries follow (tests/test_users.py)
    assert auth["authScheme"] == "SECRETS"
    assert auth["secretArn"] == stack_run.named("rds-proxy-creds-master-secret").outputs["arn"]
    assert auth["iamAuth"] == "REQUIRED"
    assert proxy["defaultAuthScheme"] == "NONE"


@pytest.mark.parametrize(
    ("key", "value", "field", "expected"),
    [
        ("iamAuth", "DISABLED", "iamAuth", "DISABLED"),
        ("requireTls", False, "requireTls", False),
        ("debugLogging", True, "debugLogging", True),
    ],
)
def test_proxy_switches_follow_config(key, value, field, expected):
    proxy = ok("dev", **{key: value}).one(PROXY).inputs
    got = proxy["auths"][0][field] if field == "iamAuth" else proxy[field]
    assert got == expected


def test_debug_logging_is_off_by_default(stack_run):
    assert stack_run.one(PROXY).inputs["debugLogging"] is False


def test_proxy_uses_its_role_private_subnets_and_proxy_group(stack_run):
    proxy = stack_run.one(PROXY).inputs
    role = next(r for r in stack_run.by_type("aws:iam/role:Role") if "proxy-role" in r.name)
    assert proxy["roleArn"] == role.outputs["arn"]
    assert proxy["vpcSubnetIds"] == [s.id for s in stack_run.by_type("aws:ec2/subnet:Subnet")]
    group = next(
        g for g in stack_run.by_type("aws:ec2/securityGroup:SecurityGroup") if g.name.endswith("proxy-sg")
    )
    assert proxy["vpcSecurityGroupIds"] == [group.id]


def test_proxy_waits_for_its_role_policy(stack_run):
    policy = next(r for r in stack_run.by_type("aws:iam/rolePolicy:RolePolicy") if "secret-access" in r.name)
    assert stack_run.depends_on(stack_run.one(PROXY), policy)


def test_log_group_is_named_for_the_proxy_kept_30_days_and_created_first(stack_run):
    proxy = stack_run.one(PROXY)
    group = next(
        g
        for g in stack_run.by_type("aws:cloudwatch/logGroup:LogGroup")
        if "/aws/rds/proxy/" in g.inputs["name"]
    )
    assert group.inputs["name"] == f"/aws/rds/proxy/{proxy.inputs['name']}"
    assert group.inputs["retentionInDays"] == 30
    assert group.urn in proxy.dependencies


def test_pool_config_sits_on_the_default_target_group(stack_run):
    tg = stack_run.one(TARGET_GROUP).inputs
    assert tg["dbProxyName"] == stack_run.one(PROXY).inputs["name"]
    assert tg["connectionPoolConfig"]["maxConnectionsPercent"] == 75


def test_init_query_and_pinning_filters_reach_the_pool():
    tg = ok("dev", initQuery="SET time_zone = '+00:00'", sessionPinningFilters=["EXCLUDE_VARIABLE_SETS"]).one(
        TARGET_GROUP
    )
    pool = tg.inputs["connectionPoolConfig"]
    assert pool["initQuery"] == "SET time_zone = '+00:00'"
    assert pool["sessionPinningFilters"] == ["EXCLUDE_VARIABLE_SETS"]


def test_no_init_query_or_filters_by_default(stack_run):
    pool = stack_run.one(TARGET_GROUP).inputs["connectionPoolConfig"]
    assert "initQuery" not in pool and "sessionPinningFilters" not in pool


def test_target_registers_the_instance_in_the_default_group(stack_run):
    target = stack_run.one(TARGET).inputs
    assert target["dbInstanceIdentifier"] == stack_run.one("aws:rds/instance:Instance").outputs["identifier"]
    assert target["targetGroupName"] == "default"
    assert target["dbProxyName"] == stack_run.one(PROXY).inputs["name"]


def test_target_group_and_target_are_replaced_with_the_proxy(stack_run):
    proxy = stack_run.one(PROXY)
    for type_ in (TARGET_GROUP, TARGET):
        assert stack_run.one(type_).replace_with == [proxy.urn], type_
