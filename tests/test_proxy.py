"""Proxy: named, TLS-only, secret-backed, in the private subnets; pool on the default target group."""

from __future__ import annotations

import re

import pytest

from components.iam import secret_read_policy
from tests.conftest import ok, policy_doc

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
    assert group.inputs["retentionInDays"] == {"dev": 30, "prod": 365}[stack_run.stack]  # logRetentionDays
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


# --- The proxy owns its auth: role and policy built from the auth entries it is given ---------------------


def _proxy_program(auths, target=None, engine_family=None):
    """A Proxy on its own, with the given auth entries and target (no stack around it)."""
    import pulumi

    from components.proxy import PROFILES, IamAuth, PoolProfile, Proxy, ProxyArgs, ProxySettings
    from components.target import EngineFamily, InstanceTarget

    def program():
        Proxy(
            "p",
            ProxyArgs(
                subnet_ids=["subnet-1", "subnet-2"],
                security_group_ids=["sg-1"],
                target=target
                or InstanceTarget(
                    instance_id="db-1",
                    engine_family=engine_family or EngineFamily.MYSQL,
                    resource_arn="arn:aws:rds:eu-west-1:123456789012:db:db-1",
                    resource_id="db-ABC",
                ),
                auths=auths,
                settings=ProxySettings(
                    name="p",
                    pool_profile=PoolProfile.RECIPE,
                    pool=PROFILES[PoolProfile.RECIPE],
                    init_query=None,
                    session_pinning_filters=(),
                    require_tls=True,
                    debug_logging=False,
                    iam_auth=IamAuth.REQUIRED,
                    log_retention_days=30,
                ),
            ),
        )
        pulumi.export("done", True)

    return program


def _run(program):
    from plan.engine import run_program

    run = run_program("dev", {"aws:region": "eu-west-1"}, program=program)
    assert run.error is None, run.error
    return run


SECRET_A = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:a-AbCdEf"
SECRET_B = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:b-GhIjKl"
KEY = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def _auth(arn, iam="REQUIRED", password="MYSQL_CACHING_SHA2_PASSWORD", key=None, description="d"):
    from components.proxy import ClientPasswordAuthType, IamAuth, ProxyAuth

    return ProxyAuth(
        secret_arn=arn,
        client_iam_auth=IamAuth(iam),
        client_password_auth_type=ClientPasswordAuthType(password),
        description=description,
        kms_key_arn=key,
    )


def test_proxy_declares_one_auth_entry_per_secret_with_every_field_explicit():
    run = _run(
        _proxy_program(
            [
                _auth(SECRET_A, description="a"),
                _auth(SECRET_B, "DISABLED", "MYSQL_NATIVE_PASSWORD", description="b"),
            ]
        )
    )
    assert run.one(PROXY).inputs["auths"] == [
        {
            "authScheme": "SECRETS",
            "secretArn": SECRET_A,
            "iamAuth": "REQUIRED",
            "clientPasswordAuthType": "MYSQL_CACHING_SHA2_PASSWORD",
            "description": "a",
        },
        {
            "authScheme": "SECRETS",
            "secretArn": SECRET_B,
            "iamAuth": "DISABLED",
            "clientPasswordAuthType": "MYSQL_NATIVE_PASSWORD",
            "description": "b",
        },
    ]


def test_proxy_role_reads_exactly_the_secrets_of_its_auth_entries():
    from tests.conftest import policy_doc

    run = _run(_proxy_program([_auth(SECRET_A), _auth(SECRET_B)]))
    (statement,) = policy_doc(run.one("aws:iam/rolePolicy:RolePolicy").inputs)["Statement"]
    assert statement["Resource"] == [SECRET_A, SECRET_B]
    assert sorted(statement["Action"]) == ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"]


def test_proxy_role_decrypts_a_customer_key_only_via_secrets_manager():
    from tests.conftest import policy_doc

    run = _run(_proxy_program([_auth(SECRET_A, key=KEY), _auth(SECRET_B)]))
    statements = policy_doc(run.one("aws:iam/rolePolicy:RolePolicy").inputs)["Statement"]
    decrypt = next(s for s in statements if s["Action"] == "kms:Decrypt")
    assert decrypt["Resource"] == KEY
    assert decrypt["Condition"] == {
        "StringEquals": {"kms:ViaService": ["secretsmanager.eu-west-1.amazonaws.com"]}
    }
    without_key = _run(_proxy_program([_auth(SECRET_A)]))
    assert len(policy_doc(without_key.one("aws:iam/rolePolicy:RolePolicy").inputs)["Statement"]) == 1


def test_engine_family_comes_from_the_database_side():
    import enum

    class Other(enum.Enum):
        POSTGRESQL = "POSTGRESQL"

    run = _run(_proxy_program([_auth(SECRET_A)], engine_family=Other.POSTGRESQL))
    assert run.one(PROXY).inputs["engineFamily"] == "POSTGRESQL"


def test_a_cluster_target_registers_the_cluster_and_waits_for_its_instances():
    import pulumi

    from components.target import ClusterTarget, EngineFamily

    def program():
        members = [pulumi.CustomResource("test:index:Member", f"member-{i}", {}) for i in range(2)]
        target = ClusterTarget(
            cluster_id="cluster-1",
            engine_family=EngineFamily.MYSQL,
            resource_arn="arn:aws:rds:eu-west-1:123456789012:cluster:cluster-1",
            resource_id="cluster-ABC",
            members=members,
        )
        _proxy_program([_auth(SECRET_A)], target=target)()

    run = _run(program)
    target = run.one(TARGET)
    assert target.inputs["dbClusterIdentifier"] == "cluster-1"
    assert "dbInstanceIdentifier" not in target.inputs
    for i in range(2):
        assert run.depends_on(target, run.named(f"member-{i}"))
    assert target.replace_with == [run.one(PROXY).urn]


def test_proxy_role_and_policy_keep_their_deployed_urns_through_aliases(stack_run):
    role = next(r for r in stack_run.by_type("aws:iam/role:Role") if r.name.endswith("proxy-role"))
    policy = next(r for r in stack_run.by_type("aws:iam/rolePolicy:RolePolicy") if "secret-access" in r.name)
    base = (
        f"urn:pulumi:{stack_run.stack}::rds-proxy::rdsproxy:index:RdsProxyStack$rdsproxy:index:Credentials$"
    )
    assert stack_run.alias_urns(role) == {f"{base}aws:iam/role:Role::rds-proxy-creds-proxy-role"}
    assert stack_run.alias_urns(policy) == {
        f"{base}aws:iam/rolePolicy:RolePolicy::rds-proxy-creds-proxy-secret-access"
    }
    assert stack_run.by_urn(role.parent).type == "rdsproxy:index:Proxy"


def test_proxy_role_is_trusted_by_rds_only(stack_run):
    role = next(r for r in stack_run.by_type("aws:iam/role:Role") if "proxy-role" in r.name)
    trust = policy_doc(role.inputs, "assumeRolePolicy")
    assert [s["Principal"] for s in trust["Statement"]] == [{"Service": "rds.amazonaws.com"}]


def test_proxy_role_reads_exactly_the_master_and_user_secrets_and_nothing_else(stack_run):
    # The master's secret stays registered, beside one secret per database user (here the probe user's).
    secret_arns = [stack_run.named("rds-proxy-creds-master-secret").outputs["arn"]] + [
        s.outputs["arn"] for s in stack_run.by_type("aws:secretsmanager/secret:Secret") if "-users-" in s.name
    ]
    assert len(secret_arns) == 2
    policy = stack_run.named("rds-proxy-proxy-secret-access")
    role = next(r for r in stack_run.by_type("aws:iam/role:Role") if "proxy-role" in r.name)
    assert policy.inputs["role"] == role.id
    # The second statement, kms:Decrypt via Secrets Manager on the stack key: tests/test_security.py.
    statement = policy_doc(policy.inputs)["Statement"][0]
    assert statement["Effect"] == "Allow"
    assert sorted(statement["Action"]) == ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"]
    assert statement["Resource"] == secret_arns


def test_kms_decrypt_is_added_only_for_a_customer_key_and_only_via_secrets_manager():
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf"
    assert len(secret_read_policy([arn], [None])["Statement"]) == 1
    key = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    decrypt = secret_read_policy([arn], [key])["Statement"][1]
    assert decrypt["Action"] == "kms:Decrypt" and decrypt["Resource"] == key
    assert decrypt["Condition"] == {
        "StringEquals": {"kms:ViaService": ["secretsmanager.eu-west-1.amazonaws.com"]}
    }
