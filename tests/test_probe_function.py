"""ProbeFunction: reproducible package with pymysql, wired to the proxy, IAM auth scoped, no password in env."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest

from components.iam import db_connect_policy
from components.lambda_package import build_package
from components.probe import MODULES
from tests.conftest import ok, policy_doc

FUNCTION = "aws:lambda/function:Function"


def names_in(package: bytes) -> set[str]:
    return set(zipfile.ZipFile(io.BytesIO(package)).namelist())


def test_package_holds_the_handler_at_the_root_and_pymysql_beside_it():
    names = names_in(build_package(MODULES))
    assert "lambda_function.py" in names
    assert {"pymysql/__init__.py", "pymysql/connections.py", "pymysql/err.py"} <= names


def test_package_does_not_ship_boto3_or_bytecode():
    names = names_in(build_package(MODULES))
    assert not any(n.startswith(("boto3/", "botocore/")) for n in names)
    assert not any(n.endswith(".pyc") or "__pycache__" in n for n in names)


def test_package_imports_pymysql_from_inside_the_zip(tmp_path):
    import subprocess
    import sys

    zip_path = tmp_path / "probe.zip"
    zip_path.write_bytes(build_package(MODULES))
    code = "import pymysql, sys; print(pymysql.__file__)"
    out = subprocess.run(
        [sys.executable, "-S", "-c", f"import sys; sys.path.insert(0, {str(zip_path)!r}); {code}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert str(zip_path) in out


def test_package_is_byte_for_byte_reproducible(tmp_path):
    first = build_package(MODULES)
    for p in Path("lambda_src").glob("*.py"):
        (tmp_path / p.name).write_bytes(p.read_bytes())  # fresh mtimes, same content
    assert build_package(MODULES, tmp_path) == first


def test_function_runs_the_handler_on_python312_with_its_hash(stack_run):
    fn = stack_run.named("rds-proxy-probe-function").inputs
    assert fn["runtime"] == "python3.12"
    assert fn["handler"] == "lambda_function.lambda_handler"
    assert fn["sourceCodeHash"] == base64.b64encode(hashlib.sha256(build_package(MODULES)).digest()).decode()


def test_function_sits_in_the_private_subnets_with_the_probe_group(stack_run):
    vpc = stack_run.named("rds-proxy-probe-function").inputs["vpcConfig"]
    assert vpc["subnetIds"] == [s.id for s in stack_run.by_type("aws:ec2/subnet:Subnet")]
    group = next(
        g for g in stack_run.by_type("aws:ec2/securityGroup:SecurityGroup") if g.name.endswith("probe-sg")
    )
    assert vpc["securityGroupIds"] == [group.id]


def test_environment_points_at_the_proxy_as_the_probe_user_never_the_master_and_holds_no_password(stack_run):
    env = stack_run.named("rds-proxy-probe-function").inputs["environment"]["variables"]
    assert env == {
        "PROXY_ENDPOINT": stack_run.one("aws:rds/proxy:Proxy").outputs["endpoint"],
        "DB_PORT": "3306",
        "DB_USER": "rdsproxy_probe",
        "DB_NAME": "testdb",
        "DB_AUTH": "iam",
        "DB_USERS": "{}",
    }
    assert env["DB_USER"] != stack_run.one("aws:rds/instance:Instance").inputs["username"]


def test_without_iam_auth_the_probe_reads_its_password_from_its_secret_and_gets_no_connect_grant():
    run = ok("dev", iamAuth="DISABLED")
    env = run.named("rds-proxy-probe-function").inputs["environment"]["variables"]
    secret = run.named("rds-proxy-users-rdsproxy_probe-secret").outputs["arn"]
    assert env["DB_AUTH"] == "password"
    assert json.loads(env["DB_USERS"]) == {"rdsproxy_probe": {"auth": "password", "secret_arn": secret}}
    assert not any("PASSWORD" in k for k in env)
    assert not [p for p in run.by_type("aws:iam/rolePolicy:RolePolicy") if "db-connect" in p.name]
    read, decrypt = policy_doc(run.named("rds-proxy-probe-secret-access").inputs)["Statement"]
    assert read["Resource"] == [secret]
    assert (
        decrypt["Action"] == "kms:Decrypt"
        and decrypt["Resource"] == run.one("aws:kms/key:Key").outputs["arn"]
    )


def test_timeout_and_memory_follow_config():
    fn = ok("dev", probeTimeout=10, probeMemorySize=512).named("rds-proxy-probe-function").inputs
    assert (fn["timeout"], fn["memorySize"]) == (10, 512)


def test_role_is_trusted_by_lambda_with_vpc_access(stack_run):
    role = next(r for r in stack_run.by_type("aws:iam/role:Role") if "probe-role" in r.name)
    trust = policy_doc(role.inputs, "assumeRolePolicy")
    assert [s["Principal"] for s in trust["Statement"]] == [{"Service": "lambda.amazonaws.com"}]
    attachment = stack_run.named("rds-proxy-probe-vpc-access").inputs
    assert attachment["role"] == role.outputs["name"]
    assert attachment["policyArn"] == "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
    assert stack_run.named("rds-proxy-probe-function").inputs["role"] == role.outputs["arn"]


def test_db_connect_is_scoped_to_this_proxy_and_the_probe_user(stack_run):
    proxy_arn = stack_run.one("aws:rds/proxy:Proxy").outputs["arn"]
    proxy_id = proxy_arn.rsplit(":", 1)[1]
    policy = stack_run.named("rds-proxy-probe-db-connect")
    (statement,) = policy_doc(policy.inputs)["Statement"]
    assert statement["Action"] == "rds-db:connect"
    assert statement["Resource"] == f"arn:aws:rds-db:us-east-1:123456789012:dbuser:{proxy_id}/rdsproxy_probe"
    assert proxy_id.startswith("prx-")


def test_db_connect_arn_keeps_the_partition():
    arn = "arn:aws-us-gov:rds:us-gov-west-1:111122223333:db-proxy:prx-0abc"
    resource = db_connect_policy(arn, ["app"])["Statement"][0]["Resource"]
    assert resource == "arn:aws-us-gov:rds-db:us-gov-west-1:111122223333:dbuser:prx-0abc/app"


def test_log_group_exists_before_the_function_with_retention(stack_run):
    fn = stack_run.named("rds-proxy-probe-function")
    group = stack_run.named("rds-proxy-probe-logs")
    assert group.inputs["name"] == f"/aws/lambda/{fn.inputs['name']}"
    assert group.inputs["retentionInDays"] == {"dev": 30, "prod": 365}[stack_run.stack]  # logRetentionDays
    assert group.urn in fn.dependencies


@pytest.mark.parametrize("needed", ["vpc-access", "db-connect"])
def test_function_waits_for_its_permissions(stack_run, needed):
    permission = stack_run.named(f"rds-proxy-probe-{needed}")
    assert permission.urn in stack_run.named("rds-proxy-probe-function").dependencies


def test_package_entries_have_fixed_timestamps_and_modes():
    infos = zipfile.ZipFile(io.BytesIO(build_package(MODULES))).infolist()
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.external_attr >> 16 for i in infos} == {0o644}


def test_custom_user_and_db_name_reach_the_secret_the_env_and_the_iam_grant():
    run = ok("dev", dbUsername="app_admin", dbName="orders", probeUser="health")
    assert run.one("aws:rds/instance:Instance").inputs["username"] == "app_admin"
    body = json.loads(run.named("rds-proxy-creds-master-secret-value").inputs["secretString"].value)
    assert body["username"] == "app_admin"
    env = run.named("rds-proxy-probe-function").inputs["environment"]["variables"]
    assert (env["DB_USER"], env["DB_NAME"]) == ("health", "orders")
    grant = run.named("rds-proxy-probe-db-connect")
    resource = policy_doc(grant.inputs)["Statement"][0]["Resource"]
    assert ":dbuser:prx-" in resource and resource.endswith("/health")
    assert "app_admin" not in json.dumps(policy_doc(grant.inputs))  # never the master


def test_vpc_access_policy_arn_keeps_the_partition():
    from components.probe import ProbeFunction, ProbeFunctionArgs, ProbeSettings
    from components.users import Login
    from plan.engine import run_program

    def program():
        ProbeFunction(
            "p",
            ProbeFunctionArgs(
                subnet_ids=["subnet-1"],
                security_group_ids=["sg-1"],
                proxy_endpoint="e",
                proxy_arn="arn:aws-cn:rds:cn-north-1:123456789012:db-proxy:prx-1",
                db_name="d",
                db_port=3306,
                logins={"u": Login(iam=True, secret_arn=None)},
                settings=ProbeSettings(
                    function_name="f",
                    db_user="u",
                    timeout=30,
                    memory_size=256,
                    log_retention_days=30,
                ),
            ),
        )

    run = run_program("dev", {"aws:region": "cn-north-1"}, program=program)
    assert run.error is None, run.error
    attachment = run.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment").inputs
    assert (
        attachment["policyArn"] == "arn:aws-cn:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
    )
