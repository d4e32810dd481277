"""Credentials: generated password RDS accepts, secret holding it as a Pulumi secret, proxy role scoped to it."""

from __future__ import annotations

import json

import pytest

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


def test_no_statement_we_write_uses_wildcards(stack_run):
    for policy in stack_run.by_type("aws:iam/rolePolicy:RolePolicy"):
        for statement in policy_doc(policy.inputs)["Statement"]:
            for field in ("Action", "Resource"):
                values = statement[field] if isinstance(statement[field], list) else [statement[field]]
                # The one wildcard allowed: the streams of one exact log group (flow logs name them by ENI).
                exact = [v.removesuffix(":log-stream:*") if field == "Resource" else v for v in values]
                assert all("*" not in v for v in exact), (policy.name, statement)


@pytest.mark.parametrize(("stack", "protected"), [("dev", False), ("prod", True)])
def test_secret_is_protected_in_prod_only(stack, protected):
    assert ok(stack).named(MASTER_SECRET).protect is protected


def test_credentials_only_generate_and_store_secrets(stack_run):
    creds = stack_run.one("rdsproxy:index:Credentials")
    children = sorted(r.type for r in stack_run.resources if r.parent == creds.urn)
    assert children == [
        "aws:secretsmanager/secret:Secret",
        "aws:secretsmanager/secretVersion:SecretVersion",
        "random:index/randomPassword:RandomPassword",
    ]
