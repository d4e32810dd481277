"""Credentials: generated password RDS accepts, secret holding it as a Pulumi secret, proxy role scoped to it."""

from __future__ import annotations

import json

import pytest

from components.iam import secret_read_policy
from plan.engine import SecretValue
from tests.conftest import ok, policy_doc, reveal

FORBIDDEN = set('/@" ')
MASTER_PASSWORD = "rds-proxy-creds-master-password"
MASTER_SECRET = "rds-proxy-creds-master-secret"


def test_password_is_generated_long_and_free_of_characters_rds_rejects(stack_run):
    pw = stack_run.named(MASTER_PASSWORD)
    assert pw.inputs["length"] >= 16
    assert pw.inputs["special"] is True
    assert not FORBIDDEN & set(pw.inputs["overrideSpecial"])
    assert not FORBIDDEN & set(reveal(pw.outputs["result"]))


def test_secret_value_holds_username_and_password_as_a_pulumi_secret(stack_run):
    version = stack_run.named(f"{MASTER_SECRET}-value").inputs
    assert isinstance(version["secretString"], SecretValue)
    body = json.loads(version["secretString"].value)
    assert body["username"] == "admin"
    password = stack_run.named(MASTER_PASSWORD).outputs["result"]
    assert body["password"] == reveal(password)
    assert version["secretId"] == stack_run.named(MASTER_SECRET).id


def test_proxy_role_is_trusted_by_rds_only(stack_run):
    role = next(r for r in stack_run.by_type("aws:iam/role:Role") if "proxy-role" in r.name)
    trust = policy_doc(role.inputs, "assumeRolePolicy")
    assert [s["Principal"] for s in trust["Statement"]] == [{"Service": "rds.amazonaws.com"}]


def test_proxy_role_reads_exactly_the_master_and_user_secrets_and_nothing_else(stack_run):
    # The master's secret stays registered, beside one secret per database user (here the probe user's).
    secret_arns = [stack_run.named(MASTER_SECRET).outputs["arn"]] + [
        s.outputs["arn"] for s in stack_run.by_type("aws:secretsmanager/secret:Secret") if "-users-" in s.name
    ]
    assert len(secret_arns) == 2
    policy = stack_run.named("rds-proxy-proxy-secret-access")
    role = next(r for r in stack_run.by_type("aws:iam/role:Role") if "proxy-role" in r.name)
    assert policy.inputs["role"] == role.id
    (statement,) = policy_doc(policy.inputs)["Statement"]
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


def test_no_statement_we_write_uses_wildcards(stack_run):
    for policy in stack_run.by_type("aws:iam/rolePolicy:RolePolicy"):
        for statement in policy_doc(policy.inputs)["Statement"]:
            for field in ("Action", "Resource"):
                values = statement[field] if isinstance(statement[field], list) else [statement[field]]
                assert all("*" not in v for v in values), (policy.name, statement)


@pytest.mark.parametrize(("stack", "protected"), [("dev", False), ("prod", True)])
def test_secret_is_protected_in_prod_only(stack, protected):
    assert ok(stack).named(MASTER_SECRET).protect is protected
