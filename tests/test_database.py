"""Database: MySQL 8, encrypted, private, backed up; dev easy to tear down, prod hard to lose."""

from __future__ import annotations

import pytest

from plan.engine import SecretValue
from tests.conftest import ok, reveal

INSTANCE = "aws:rds/instance:Instance"


def test_instance_is_mysql_encrypted_private_gp3(stack_run):
    db = stack_run.one(INSTANCE).inputs
    assert db["engine"] == "mysql" and db["engineVersion"] == "8.0"
    assert db["storageEncrypted"] is True
    assert db["publiclyAccessible"] is False
    assert db["storageType"] == "gp3"
    assert db["copyTagsToSnapshot"] is True and db["autoMinorVersionUpgrade"] is True


def test_instance_settings_follow_config():
    db = (
        ok(
            "dev",
            dbInstanceClass="db.t4g.small",
            dbEngineVersion="8.4",
            dbAllocatedStorage=50,
            dbName="orders",
            dbUsername="app_admin",
            dbBackupRetentionDays=10,
        )
        .one(INSTANCE)
        .inputs
    )
    assert (db["instanceClass"], db["engineVersion"], db["allocatedStorage"]) == ("db.t4g.small", "8.4", 50)
    assert (db["dbName"], db["username"], db["backupRetentionPeriod"]) == ("orders", "app_admin", 10)


def test_recipe_defaults(stack_run):
    db = stack_run.one(INSTANCE).inputs
    assert (db["instanceClass"], db["allocatedStorage"], db["dbName"], db["username"]) == (
        "db.t3.micro",
        20,
        "testdb",
        "admin",
    )
    assert db["backupRetentionPeriod"] >= 7


def test_password_comes_from_the_generated_secret_never_a_literal(stack_run):
    db = stack_run.one(INSTANCE).inputs
    assert isinstance(db["password"], SecretValue)
    assert db["password"].value == reveal(
        stack_run.named("rds-proxy-creds-master-password").outputs["result"]
    )


def test_instance_sits_in_the_subnet_group_behind_the_db_group(stack_run):
    db = stack_run.one(INSTANCE).inputs
    assert db["dbSubnetGroupName"] == stack_run.one("aws:rds/subnetGroup:SubnetGroup").outputs["name"]
    db_group = next(
        g for g in stack_run.by_type("aws:ec2/securityGroup:SecurityGroup") if g.name.endswith("db-sg")
    )
    assert db["vpcSecurityGroupIds"] == [db_group.id]


def test_dev_is_easy_to_tear_down():
    run = ok("dev")
    db = run.one(INSTANCE)
    assert db.inputs["skipFinalSnapshot"] is True and db.inputs["deletionProtection"] is False
    assert db.inputs["multiAz"] is False
    assert db.protect is False


def test_prod_is_multi_az_protected_and_keeps_a_final_snapshot():
    db = ok("prod").one(INSTANCE)
    assert db.inputs["multiAz"] is True
    assert db.inputs["deletionProtection"] is True
    assert db.inputs["skipFinalSnapshot"] is False
    assert db.inputs["finalSnapshotIdentifier"] == "rds-proxy-prod-final"
    assert db.protect is True


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_no_password_literal_in_any_input(stack):
    run = ok(stack, dbUsers=[{"name": "app"}])
    passwords = [
        reveal(p.outputs["result"]) for p in run.by_type("random:index/randomPassword:RandomPassword")
    ]
    assert len(passwords) == 3  # master, probe user, app
    for resource in run.resources:
        for password in passwords:
            assert password not in repr(resource.inputs), resource.name
