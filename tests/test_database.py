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
    assert db.protect is True


def test_final_snapshot_name_is_unique_per_instance_lifetime():
    """A second prod teardown must not collide with the first one's snapshot: the name carries a random
    suffix created with the database component and destroyed with it."""
    run = ok("prod")
    db = run.one(INSTANCE)
    suffix = run.one("random:index/randomId:RandomId")
    assert suffix.parent == db.parent
    assert db.inputs["finalSnapshotIdentifier"] == f"rds-proxy-prod-final-{suffix.outputs['hex']}"
    assert run.depends_on(db, suffix)


def test_no_suffix_when_no_final_snapshot_is_taken():
    run = ok("dev")
    assert run.by_type("random:index/randomId:RandomId") == []
    assert run.one(INSTANCE).inputs.get("finalSnapshotIdentifier") is None


def test_a_missing_rds_service_linked_role_stops_the_stack_before_anything_is_created(monkeypatch):
    from plan.engine import RecordingMocks

    real_call = RecordingMocks.call

    def call(self, args):
        if args.token == "aws:iam/getRole:getRole":
            # How the provider reports it: a failed invoke (the SDK raises it in the program).
            return {}, [("name", "reading IAM Role (AWSServiceRoleForRDS): couldn't find resource")]
        return real_call(self, args)

    monkeypatch.setattr(RecordingMocks, "call", call)
    from plan.config import load_stack_config
    from plan.engine import run_program

    run = run_program("dev", load_stack_config("dev"))
    assert "aws iam create-service-linked-role --aws-service-name rds.amazonaws.com" in str(run.error)
    assert [r for r in run.resources if r.custom] == []


def test_the_service_linked_role_is_checked_first(stack_run):
    assert stack_run.invokes[0].token == "aws:iam/getRole:getRole"
    assert stack_run.invokes[0].args["name"] == "AWSServiceRoleForRDS"


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


def test_a_role_check_the_deployer_may_not_run_only_warns(monkeypatch):
    from plan.config import load_stack_config
    from plan.engine import RecordingMocks, run_program

    real_call = RecordingMocks.call

    def call(self, args):
        if args.token == "aws:iam/getRole:getRole":
            return {}, [("name", "AccessDenied: not authorized to perform iam:GetRole")]
        return real_call(self, args)

    monkeypatch.setattr(RecordingMocks, "call", call)
    run = run_program("dev", load_stack_config("dev"))
    assert run.error is None
    assert run.by_type("aws:rds/instance:Instance")


def test_turning_off_deletion_protection_unprotects_instance_and_secret_in_one_up():
    """README's prod teardown: `dbDeletionProtection false` + `pulumi up`, then `pulumi destroy`, with no
    `pulumi state unprotect`: both protected resources follow that one key, and the final snapshot stays."""
    run = ok("prod", dbDeletionProtection=False)
    db = run.one(INSTANCE)
    secret = run.named("rds-proxy-creds-master-secret")
    assert db.inputs["deletionProtection"] is False and db.protect is False
    assert secret.protect is False
    assert db.inputs["skipFinalSnapshot"] is False and db.inputs["finalSnapshotIdentifier"]
