"""Blue/green updates (issue 11): `dbBlueGreenUpdate` hands instance changes to an RDS blue/green deployment
that `pulumi up` runs; a custom parameter group of the engine's family makes major upgrades possible."""

from __future__ import annotations

import pytest

from tests.conftest import ok
from tests.test_config import problems

INSTANCE = "aws:rds/instance:Instance"
PARAMS = "aws:rds/parameterGroup:ParameterGroup"


def primary(run):
    return next(r for r in run.by_type(INSTANCE) if not r.inputs.get("replicateSourceDb"))


def test_prod_updates_through_blue_green_and_dev_in_place():
    prod, dev = primary(ok("prod")), primary(ok("dev"))
    assert prod.inputs["blueGreenUpdate"] == {"enabled": True}
    assert prod.inputs["allowMajorVersionUpgrade"] is True
    assert "blueGreenUpdate" not in dev.inputs and "allowMajorVersionUpgrade" not in dev.inputs


def test_blue_green_follows_config():
    db = primary(ok("dev", dbBlueGreenUpdate=True))
    assert db.inputs["blueGreenUpdate"] == {"enabled": True}
    assert db.inputs["allowMajorVersionUpgrade"] is True


@pytest.mark.parametrize(
    ("version", "family"), [("8.0", "mysql8.0"), ("8.4", "mysql8.4"), ("8.4.3", "mysql8.4")]
)
def test_the_instance_uses_a_custom_parameter_group_of_its_engine_family(version, family):
    """A major upgrade through blue/green needs a parameter group of the new family (the default group makes
    the deployment fail): the group follows dbEngineVersion, so version and family change together."""
    run = ok("prod", dbEngineVersion=version)
    group = run.one(PARAMS)
    assert group.inputs["family"] == family
    assert primary(run).inputs["parameterGroupName"] == group.outputs["name"]


def test_blue_green_keeps_what_aws_requires(stack_run):
    db = primary(stack_run).inputs
    assert db["backupRetentionPeriod"] >= 1  # blue/green needs automated backups
    # RDS-managed master passwords are not supported with blue/green deployments.
    assert not db.get("manageMasterUserPassword")
    assert db["engine"] == "mysql"


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"dbTopology": "aurora"}, "false with dbTopology aurora"),
        ({"dbTopology": "multi-az-cluster", "azCount": 3}, "false with dbTopology multi-az-cluster"),
        ({"dbReadReplicas": 1}, "false with dbReadReplicas 1"),
    ],
)
def test_blue_green_is_refused_where_the_provider_cannot_run_it(config, fragment):
    found = [p for p in problems(dbBlueGreenUpdate=True, **config) if p.startswith("dbBlueGreenUpdate:")]
    assert len(found) == 1, found
    assert found[0].startswith("dbBlueGreenUpdate: true is not allowed; expected ") and fragment in found[0]


def test_without_blue_green_replicas_and_clusters_are_fine():
    assert ok("dev", dbReadReplicas=1).error is None
    assert ok("dev", dbTopology="aurora").error is None
