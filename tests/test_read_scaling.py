"""Read scaling (issue 9): the three topologies, read replicas, the READ_ONLY proxy endpoint, and the config
rules that keep AWS's limits (each rule reported with key, value and what is allowed)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from components.database import TOPOLOGY_DEFAULTS, Topology
from components.settings import ConfigError
from plan.engine import SecretValue
from policy.rules import evaluate
from tests.conftest import deploy, ok, reveal

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = "aws:rds/instance:Instance"
CLUSTER = "aws:rds/cluster:Cluster"
CLUSTER_INSTANCE = "aws:rds/clusterInstance:ClusterInstance"
PROXY = "aws:rds/proxy:Proxy"
PROXY_ENDPOINT = "aws:rds/proxyEndpoint:ProxyEndpoint"
TARGET = "aws:rds/proxyTarget:ProxyTarget"
FUNCTION = "aws:lambda/function:Function"
SECRET_VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
SG = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
# Monitoring (issue 10) watches the database by its identifier: its alarms, event subscription and the
# dashboard listing the alarms are created once the database is.
WATCHING_THE_DATABASE = {
    "aws:cloudwatch/metricAlarm:MetricAlarm",
    "aws:rds/eventSubscription:EventSubscription",
    "aws:cloudwatch/dashboard:Dashboard",
}
AURORA = {"dbTopology": "aurora"}
MAZ = {"dbTopology": "multi-az-cluster", "azCount": 3}
# prod sets dbMultiAz: true, which a cluster topology refuses: prod with a cluster turns it off.
# prod is a DR primary (drRegion) with Multi-AZ: DR and Multi-AZ are instance features (tests/test_dr.py).
PROD_AURORA = {**AURORA, "dbMultiAz": False, "drRegion": ""}
PROD_MAZ = {**MAZ, "dbMultiAz": False, "drRegion": ""}


def problems(**config) -> list[str]:
    error = deploy("dev", **config).error
    assert isinstance(error, ConfigError), f"expected a ConfigError, got {error!r}"
    return error.problems


def group_id(run, role: str) -> str:
    return next(g for g in run.by_type(SG) if g.name == f"rds-proxy-net-{role}-sg").id


def password(run):
    return reveal(run.named("rds-proxy-creds-master-password").outputs["result"])


# --------------------------------------------------------------------------------------------------
# Config: every rule of the issue, with the key, the value and what is allowed
# --------------------------------------------------------------------------------------------------

INVALID = [
    # (config, key, shown value, fragments of what is allowed)
    ({"dbTopology": "cluster"}, "dbTopology", "cluster", ["instance, aurora, multi-az-cluster"]),
    (
        {**AURORA, "dbReaderCount": 16},
        "dbReaderCount",
        "16",
        ["from 0 to 15", "-1 for the topology's own, 1"],
    ),
    ({**MAZ, "dbReaderCount": 3}, "dbReaderCount", "3", ["-1 or 2", "always has 2"]),
    ({**MAZ, "dbReaderCount": 0}, "dbReaderCount", "0", ["-1 or 2"]),
    ({"dbReaderCount": 1}, "dbReaderCount", "1", ["-1 with dbTopology instance", "dbReadReplicas"]),
    (
        {"dbReaderInstanceClass": "db.r6g.large"},
        "dbReaderInstanceClass",
        "db.r6g.large",
        ["Aurora readers only"],
    ),
    (
        {**AURORA, "dbReaderInstanceClass": "db.m5.large"},
        "dbReaderInstanceClass",
        "db.m5.large",
        ["Aurora MySQL class", "db.serverless"],
    ),
    (
        {"dbServerlessMinCapacity": "0"},
        "dbServerlessMinCapacity",
        "0",
        ["from 0.5 to 256", "0 is not allowed"],
    ),
    ({"dbServerlessMinCapacity": "lots"}, "dbServerlessMinCapacity", "lots", ["from 0.5 to 256"]),
    ({"dbServerlessMaxCapacity": "4.2"}, "dbServerlessMaxCapacity", "4.2", ["steps of 0.5"]),
    ({"dbServerlessMaxCapacity": "512"}, "dbServerlessMaxCapacity", "512", ["from 0.5 to 256"]),
    (
        {"dbServerlessMinCapacity": "8", "dbServerlessMaxCapacity": "4"},
        "dbServerlessMaxCapacity",
        "4",
        ["at least dbServerlessMinCapacity (8)"],
    ),
    (
        {**AURORA, "dbReaderCount": 0, "proxyReaderEndpoint": True},
        "proxyReaderEndpoint",
        "true",
        ["dbReaderCount is 0", "dbReaderCount >= 1"],
    ),
    ({"dbReadReplicas": 6}, "dbReadReplicas", "6", ["from 0 to 5"]),
    ({"dbReadReplicas": -1}, "dbReadReplicas", "-1", ["from 0 to 5"]),
    ({**AURORA, "dbReadReplicas": 1}, "dbReadReplicas", "1", ["0 with dbTopology aurora"]),
    ({**MAZ, "dbReadReplicas": 2}, "dbReadReplicas", "2", ["0 with dbTopology multi-az-cluster"]),
    ({**AURORA, "dbMultiAz": True}, "dbMultiAz", "true", ["false with dbTopology aurora"]),
    ({**MAZ, "dbMultiAz": True}, "dbMultiAz", "true", ["false with dbTopology multi-az-cluster"]),
    ({**AURORA, "dbEngineVersion": "8.0"}, "dbEngineVersion", "8.0", ["8.0.mysql_aurora.3.<minor>"]),
    (
        {**AURORA, "dbEngineVersion": "5.7.mysql_aurora.2.11.2"},
        "dbEngineVersion",
        "5.7.mysql_aurora.2.11.2",
        ["Aurora MySQL 3 version"],
    ),
    ({**AURORA, "dbInstanceClass": "db.t3.micro"}, "dbInstanceClass", "db.t3.micro", ["Aurora MySQL class"]),
    ({**AURORA, "dbInstanceClass": "db.m6g.large"}, "dbInstanceClass", "db.m6g.large", ["db.r<generation>"]),
    ({**MAZ, "dbInstanceClass": "db.t3.micro"}, "dbInstanceClass", "db.t3.micro", ["db.c6gd", "db.m5d"]),
    ({**MAZ, "dbEngineVersion": "8.0.26"}, "dbEngineVersion", "8.0.26", ["8.0.28 or later", "8.4"]),
    (
        {**MAZ, "dbEngineVersion": "8.0.mysql_aurora.3.10.0"},
        "dbEngineVersion",
        "8.0.mysql_aurora.3.10.0",
        ["MySQL 8.0"],
    ),
    (
        {"dbEngineVersion": "8.0.mysql_aurora.3.10.0"},
        "dbEngineVersion",
        "8.0.mysql_aurora.3.10.0",
        ["MySQL 8.0 or 8.4"],
    ),
    ({"dbTopology": "multi-az-cluster"}, "azCount", "2", ["at least 3", "three Availability Zones"]),
]


@pytest.mark.parametrize(
    ("config", "key", "value", "fragments"), INVALID, ids=[f"{c[1]}-{c[2]}" for c in INVALID]
)
def test_invalid_read_scaling_config_names_key_value_and_what_is_allowed(config, key, value, fragments):
    found = problems(**config)
    assert len(found) == 1, found
    assert found[0].startswith(f"{key}: "), found[0]
    assert value in found[0].split(" is not allowed")[0], found[0]
    for fragment in fragments:
        assert fragment in found[0], (fragment, found[0])


def test_reader_endpoint_on_an_instance_quotes_aws_and_names_the_topologies_that_support_it():
    (problem,) = problems(proxyReaderEndpoint=True)
    assert problem.startswith(
        "proxyReaderEndpoint: true is not allowed; expected false with dbTopology instance"
    )
    assert (
        '"Requests also fail if the target of the proxy is an RDS instance instead of an Aurora cluster."'
        in (problem)
    )
    assert "https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/rds-proxy-endpoints.html" in problem
    assert "dbTopology aurora" in problem and "multi-az-cluster" in problem


def test_read_scaling_errors_come_with_the_other_config_errors_and_nothing_is_declared():
    run = deploy("dev", dbTopology="aurora", dbReadReplicas=2, iamAuth="maybe")
    assert isinstance(run.error, ConfigError)
    assert [p.split(":")[0] for p in run.error.problems] == ["iamAuth", "dbReadReplicas"]
    assert run.resources == []


def test_declared_defaults_say_the_topology_s_own_without_restating_numbers():
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    assert declared["dbInstanceClass"]["default"] == "" and declared["dbEngineVersion"]["default"] == ""
    assert declared["dbTopology"]["default"] == "instance"
    assert declared["dbReaderCount"]["default"] == -1
    assert declared["dbReaderInstanceClass"]["default"] == ""
    assert (
        declared["dbServerlessMinCapacity"]["default"],
        declared["dbServerlessMaxCapacity"]["default"],
    ) == (
        "0.5",
        "4",
    )
    assert declared["proxyReaderEndpoint"]["default"] is False and declared["dbReadReplicas"]["default"] == 0


def test_the_instance_topology_keeps_today_s_class_and_version():
    assert TOPOLOGY_DEFAULTS[Topology.INSTANCE].instance_class == "db.t3.micro"
    assert TOPOLOGY_DEFAULTS[Topology.INSTANCE].engine_version == "8.0"
    db = ok("dev").one(INSTANCE).inputs
    assert (db["instanceClass"], db["engineVersion"]) == ("db.t3.micro", "8.0")


def test_explicit_class_and_version_override_the_topology_s_own():
    run = ok("dev", **AURORA, dbInstanceClass="db.r6g.large", dbEngineVersion="8.0.mysql_aurora.3.08.2")
    assert run.one(CLUSTER).inputs["engineVersion"] == "8.0.mysql_aurora.3.08.2"
    assert {i.inputs["instanceClass"] for i in run.by_type(CLUSTER_INSTANCE)} == {"db.r6g.large"}


# --------------------------------------------------------------------------------------------------
# instance + read replicas
# --------------------------------------------------------------------------------------------------


def replicas(run):
    return [r for r in run.by_type(INSTANCE) if "-replica-" in r.name]


def source(run):
    return next(r for r in run.by_type(INSTANCE) if r.name.endswith("-db-instance"))


def test_no_replicas_and_no_replica_groups_by_default(stack_run):
    assert replicas(stack_run) == []
    assert not [g for g in stack_run.by_type(SG) if "replica" in g.name]


@pytest.mark.parametrize("count", [1, 3])
def test_read_replicas_replicate_the_instance_encrypted_private_in_the_subnet_group(count):
    run = ok("dev", dbReadReplicas=count)
    found = replicas(run)
    assert [r.name for r in found] == [f"rds-proxy-db-replica-{i + 1}" for i in range(count)]
    src = source(run)
    subnet_group = run.one("aws:rds/subnetGroup:SubnetGroup").outputs["name"]
    for r in found:
        i = r.inputs
        # With db_subnet_group_name given, a same-region source must be named by its ARN.
        assert i["replicateSourceDb"] == src.outputs["arn"]
        assert i["storageEncrypted"] is True and i["publiclyAccessible"] is False
        assert i["dbSubnetGroupName"] == subnet_group
        assert i["vpcSecurityGroupIds"] == [group_id(run, "replica")]
        assert i["instanceClass"] == src.inputs["instanceClass"]
        assert not {"username", "password", "dbName"} & set(i), "a replica takes its source's"
        assert i["skipFinalSnapshot"] is True  # RDS takes no final snapshot of a replica


def test_replicas_follow_the_stack_s_protection_and_multi_az():
    dev = replicas(ok("dev", dbReadReplicas=1))[0]
    prod = replicas(ok("prod", dbReadReplicas=1, dbBlueGreenUpdate=False))[0]
    assert (dev.inputs["deletionProtection"], dev.protect, dev.inputs["multiAz"]) == (False, False, False)
    assert (prod.inputs["deletionProtection"], prod.protect, prod.inputs["multiAz"]) == (True, True, True)


def _rules(run):
    names = {g.id: g.name.removeprefix("rds-proxy-net-").removesuffix("-sg") for g in run.by_type(SG)}
    found = {
        (
            "in",
            names[r.inputs["referencedSecurityGroupId"]],
            names[r.inputs["securityGroupId"]],
            r.inputs["fromPort"],
        )
        for r in run.by_type(INGRESS)
    }
    found |= {
        (
            "out",
            names[r.inputs["securityGroupId"]],
            names[r.inputs["referencedSecurityGroupId"]],
            r.inputs["fromPort"],
        )
        for r in run.by_type(EGRESS)
    }
    return found


def test_replicas_admit_only_their_direct_readers_and_the_database_still_only_the_proxy():
    run = ok("dev", dbReadReplicas=2)
    assert _rules(run) == {
        ("in", "probe", "proxy", 3306),
        ("out", "probe", "proxy", 3306),
        ("in", "proxy", "db", 3306),
        ("out", "proxy", "db", 3306),
        ("in", "replica-clients", "replica", 3306),
        ("out", "replica-clients", "replica", 3306),
        # The users bootstrap reaches the database directly, and Secrets Manager through its endpoint.
        ("in", "users", "db", 3306),
        ("out", "users", "db", 3306),
        ("in", "users", "secretsmanager-endpoint", 443),
        ("out", "users", "secretsmanager-endpoint", 443),
    }
    for rule in run.by_type(INGRESS) + run.by_type(EGRESS):
        assert rule.inputs["toPort"] == rule.inputs["fromPort"] == (443 if "vpce" in rule.name else 3306)
        assert rule.inputs["ipProtocol"] == "tcp" and rule.inputs["description"]
    assert source(run).inputs["vpcSecurityGroupIds"] == [group_id(run, "db")]


def test_replica_outputs_are_their_hostnames_and_the_readers_group():
    run = ok("dev", dbReadReplicas=2)
    assert run.exports["dbReplicaEndpoints"] == [r.outputs["address"] for r in replicas(run)]
    assert run.exports["replicaClientSecurityGroupId"] == group_id(run, "replica-clients")


def test_replicas_are_not_proxy_targets():
    run = ok("dev", dbReadReplicas=2)
    assert run.one(TARGET).inputs["dbInstanceIdentifier"] == source(run).outputs["identifier"]


# --------------------------------------------------------------------------------------------------
# aurora
# --------------------------------------------------------------------------------------------------


def writer_and_readers(run):
    members = {r.name: r for r in run.by_type(CLUSTER_INSTANCE)}
    writer = members.pop("rds-proxy-db-writer")
    return writer, [members[n] for n in sorted(members)]


def test_aurora_alone_gives_a_cluster_with_its_own_class_version_and_one_reader():
    run = ok("dev", **AURORA)
    assert run.by_type(INSTANCE) == []
    cluster = run.one(CLUSTER).inputs
    assert cluster["engine"] == "aurora-mysql"
    assert cluster["engineVersion"] == TOPOLOGY_DEFAULTS[Topology.AURORA].engine_version
    assert re.fullmatch(r"8\.0\.mysql_aurora\.3\.\d\d\.\d+", cluster["engineVersion"])
    writer, readers = writer_and_readers(run)
    assert len(readers) == 1
    assert {m.inputs["instanceClass"] for m in [writer, *readers]} == {"db.t4g.medium"}


def test_aurora_cluster_is_encrypted_private_backed_up_with_the_generated_password():
    run = ok("dev", **AURORA)
    c = run.one(CLUSTER).inputs
    assert c["storageEncrypted"] is True
    assert c["backupRetentionPeriod"] == 7 and c["copyTagsToSnapshot"] is True
    assert c["dbSubnetGroupName"] == run.one("aws:rds/subnetGroup:SubnetGroup").outputs["name"]
    assert c["vpcSecurityGroupIds"] == [group_id(run, "db")]
    assert c["databaseName"] == "testdb" and c["masterUsername"] == "admin"
    assert isinstance(c["masterPassword"], SecretValue) and c["masterPassword"].value == password(run)
    for member in run.by_type(CLUSTER_INSTANCE):
        assert member.inputs["publiclyAccessible"] is False, member.name
        assert member.inputs["clusterIdentifier"] == run.one(CLUSTER).id
        assert member.inputs["engine"] == "aurora-mysql"


def test_aurora_dev_tears_down_and_prod_is_protected_with_a_final_snapshot():
    dev = ok("dev", **AURORA)
    prod = ok("prod", **PROD_AURORA)
    d, p = dev.one(CLUSTER), prod.one(CLUSTER)
    assert (d.inputs["deletionProtection"], d.inputs["skipFinalSnapshot"], d.protect) == (False, True, False)
    assert "finalSnapshotIdentifier" not in d.inputs
    assert (p.inputs["deletionProtection"], p.inputs["skipFinalSnapshot"], p.protect) == (True, False, True)
    suffix = prod.one("random:index/randomId:RandomId").outputs["hex"]
    assert p.inputs["finalSnapshotIdentifier"] == f"rds-proxy-prod-final-{suffix}"
    assert p.inputs["backupRetentionPeriod"] == 14
    assert all(m.protect for m in prod.by_type(CLUSTER_INSTANCE))


@pytest.mark.parametrize("count", [0, 3])
def test_aurora_reader_count_and_class_follow_config(count):
    run = ok("dev", **AURORA, dbReaderCount=count, dbReaderInstanceClass="db.r6g.large")
    writer, readers = writer_and_readers(run)
    assert [r.name for r in readers] == [f"rds-proxy-db-reader-{i + 1}" for i in range(count)]
    assert writer.inputs["instanceClass"] == "db.t4g.medium"
    assert {r.inputs["instanceClass"] for r in readers} <= {"db.r6g.large"}


def test_aurora_readers_are_created_after_the_writer_so_the_writer_is_the_writer():
    run = ok("dev", **AURORA, dbReaderCount=2)
    writer, readers = writer_and_readers(run)
    for reader in readers:
        assert run.depends_on(reader, writer), reader.name
    assert not run.depends_on(writer, readers[0])


def test_serverless_v2_capacity_is_set_only_when_a_class_is_db_serverless():
    assert "serverlessv2ScalingConfiguration" not in ok("dev", **AURORA).one(CLUSTER).inputs
    run = ok("dev", **AURORA, dbReaderInstanceClass="db.serverless", dbServerlessMaxCapacity="8")
    assert run.one(CLUSTER).inputs["serverlessv2ScalingConfiguration"] == {
        "minCapacity": 0.5,
        "maxCapacity": 8,
    }
    _writer, (reader,) = writer_and_readers(run)
    assert reader.inputs["instanceClass"] == "db.serverless"
    writer_serverless = ok("dev", **AURORA, dbInstanceClass="db.serverless", dbServerlessMinCapacity="1.5")
    assert writer_serverless.one(CLUSTER).inputs["serverlessv2ScalingConfiguration"]["minCapacity"] == 1.5


def test_proxy_registers_the_aurora_cluster_and_waits_for_every_cluster_instance():
    run = ok("dev", **AURORA, dbReaderCount=2)
    target = run.one(TARGET)
    assert target.inputs["dbClusterIdentifier"] == run.one(CLUSTER).outputs["clusterIdentifier"]
    assert "dbInstanceIdentifier" not in target.inputs
    for member in run.by_type(CLUSTER_INSTANCE):
        assert run.depends_on(target, member), member.name
    # The proxy itself still builds while RDS does.
    for name in ("rds-proxy-proxy-proxy", "rds-proxy-probe-function"):
        assert not run.depends_on(run.named(name), run.one(CLUSTER)), name


SECRET_VERSION = "aws:secretsmanager/secretVersion:SecretVersion"


@pytest.mark.parametrize(
    ("config", "waiting"),
    [
        # The master secret's value holds the database's host and port (what AWS's rotation function
        # expects), so it is written once the database exists.
        ({**AURORA, "proxyReaderEndpoint": True}, {CLUSTER_INSTANCE, TARGET, SECRET_VERSION}),
        ({**MAZ, "proxyReaderEndpoint": True}, {TARGET, SECRET_VERSION}),
        ({"dbReadReplicas": 1}, {INSTANCE, TARGET, SECRET_VERSION}),
    ],
    ids=["aurora", "multi-az-cluster", "replicas"],
)
def test_only_the_database_s_own_instances_and_the_proxy_target_wait_for_it(config, waiting):
    """... and the users bootstrap (its function, its Invocation and the user secrets' values, which hold
    the database's host), which must reach a running database."""
    run = ok("dev", **config)
    database = run.by_type(CLUSTER)[0] if run.by_type(CLUSTER) else source(run)
    found = {r.type for r in run.resources if r.custom and run.depends_on(r, database)}
    bootstrap = {
        "aws:lambda/function:Function",
        "aws:lambda/invocation:Invocation",
        "aws:secretsmanager/secretVersion:SecretVersion",
    }
    assert found == waiting | WATCHING_THE_DATABASE | bootstrap
    assert {r.name for r in run.by_type(FUNCTION) if run.depends_on(r, database)} == {
        "rds-proxy-users-function"
    }
    assert {r.name for r in run.by_type(SECRET_VERSION) if run.depends_on(r, database)} == {
        "rds-proxy-creds-master-secret-value",
        "rds-proxy-users-rdsproxy_probe-secret-value",
    }
    for type_ in (PROXY, PROXY_ENDPOINT):
        for resource in run.by_type(type_):
            assert not run.depends_on(resource, database), resource.name
    assert not run.depends_on(run.named("rds-proxy-probe-function"), database)
    # A cluster's endpoint exists before its instances: the bootstrap also waits for every one of them.
    invocation = run.named("rds-proxy-users-bootstrap")
    for member in run.by_type(CLUSTER_INSTANCE):
        assert run.depends_on(invocation, member), member.name


def test_aurora_outputs_are_the_cluster_s():
    run = ok("dev", **AURORA)
    cluster = run.one(CLUSTER).outputs
    assert run.exports["dbClusterId"] == cluster["clusterIdentifier"]
    assert run.exports["dbReaderEndpoint"] == cluster["readerEndpoint"]
    assert run.exports["dbEndpoint"] == cluster["endpoint"]
    assert "dbInstanceId" not in run.exports


# --------------------------------------------------------------------------------------------------
# multi-az-cluster
# --------------------------------------------------------------------------------------------------


def test_multi_az_cluster_is_mysql_with_its_class_and_the_storage_aws_requires():
    run = ok("dev", **MAZ)
    c = run.one(CLUSTER).inputs
    assert c["engine"] == "mysql"
    assert c["engineVersion"] == TOPOLOGY_DEFAULTS[Topology.MULTI_AZ_CLUSTER].engine_version
    assert c["engineVersion"].startswith("8.0")
    assert c["dbClusterInstanceClass"] == "db.c6gd.medium"
    assert (c["storageType"], c["allocatedStorage"]) == ("gp3", 20)
    assert "iops" not in c  # gp3 below 400 GiB: RDS's fixed baseline, not provisionable
    assert c["storageEncrypted"] is True and c["publiclyAccessible"] is False
    assert c["backupRetentionPeriod"] == 7
    assert c["vpcSecurityGroupIds"] == [group_id(run, "db")]
    assert isinstance(c["masterPassword"], SecretValue) and c["masterPassword"].value == password(run)
    assert run.by_type(CLUSTER_INSTANCE) == [] and run.by_type(INSTANCE) == []  # RDS creates its three


def test_multi_az_cluster_prod_is_protected_with_a_final_snapshot():
    run = ok("prod", **PROD_MAZ)
    p = run.one(CLUSTER)
    assert (p.inputs["deletionProtection"], p.inputs["skipFinalSnapshot"], p.protect) == (True, False, True)
    suffix = run.one("random:index/randomId:RandomId").outputs["hex"]
    assert p.inputs["finalSnapshotIdentifier"] == f"rds-proxy-prod-final-{suffix}"


def test_multi_az_cluster_spans_three_azs_and_is_the_proxy_target():
    run = ok("dev", **MAZ)
    assert len(run.by_type("aws:ec2/subnet:Subnet")) == 3
    target = run.one(TARGET).inputs
    assert target["dbClusterIdentifier"] == run.one(CLUSTER).outputs["clusterIdentifier"]
    assert run.exports["dbReaderEndpoint"] == run.one(CLUSTER).outputs["readerEndpoint"]


# --------------------------------------------------------------------------------------------------
# The READ_ONLY proxy endpoint and the probe
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("config", [AURORA, MAZ], ids=["aurora", "multi-az-cluster"])
def test_reader_endpoint_is_read_only_in_the_proxy_s_subnets_and_group_and_replaced_with_it(config):
    run = ok("dev", **config, proxyReaderEndpoint=True)
    proxy = run.one(PROXY)
    endpoint = run.one(PROXY_ENDPOINT)
    assert endpoint.inputs["targetRole"] == "READ_ONLY"
    assert endpoint.inputs["dbProxyName"] == proxy.inputs["name"]
    assert endpoint.inputs["dbProxyEndpointName"] == "rds-proxy-dev-reader"
    assert endpoint.inputs["vpcSubnetIds"] == proxy.inputs["vpcSubnetIds"]
    assert (
        endpoint.inputs["vpcSecurityGroupIds"]
        == proxy.inputs["vpcSecurityGroupIds"]
        == [group_id(run, "proxy")]
    )
    assert endpoint.replace_with == [proxy.urn]
    assert run.exports["proxyReaderEndpoint"] == endpoint.outputs["endpoint"]


def test_probe_gets_the_reader_endpoint_only_when_it_exists():
    run = ok("dev", **AURORA, proxyReaderEndpoint=True)
    env = run.named("rds-proxy-probe-function").inputs["environment"]["variables"]
    assert env["PROXY_READER_ENDPOINT"] == run.one(PROXY_ENDPOINT).outputs["endpoint"]
    assert env["PROXY_ENDPOINT"] == run.one(PROXY).outputs["endpoint"]
    probe = ok("dev", **AURORA).named("rds-proxy-probe-function")
    assert "PROXY_READER_ENDPOINT" not in probe.inputs["environment"]["variables"]
    assert ok("dev", **AURORA).by_type(PROXY_ENDPOINT) == []


# --------------------------------------------------------------------------------------------------
# Outputs per topology, and the policy pack on every topology
# --------------------------------------------------------------------------------------------------

COMMON = {"proxyEndpoint", "proxyName", "proxyArn", "dbEndpoint", "secretArn", "probeFunctionName", "vpcId"}
COMMON |= {
    "privateSubnetIds",
    "dbUserConnectArns",
    "dbUserSecretArns",
    "alarmTopicArn",
    "dashboardName",
    "dashboardUrl",
}  # monitoring is on by default


@pytest.mark.parametrize(
    ("config", "extra"),
    [
        ({}, {"dbInstanceId"}),
        ({"dbReadReplicas": 1}, {"dbInstanceId", "dbReplicaEndpoints", "replicaClientSecurityGroupId"}),
        (AURORA, {"dbClusterId", "dbReaderEndpoint"}),
        ({**AURORA, "proxyReaderEndpoint": True}, {"dbClusterId", "dbReaderEndpoint", "proxyReaderEndpoint"}),
        ({**MAZ, "proxyReaderEndpoint": True}, {"dbClusterId", "dbReaderEndpoint", "proxyReaderEndpoint"}),
    ],
    ids=["instance", "replicas", "aurora", "aurora-reader", "maz-reader"],
)
def test_topology_specific_outputs_are_exported_only_when_the_topology_has_them(config, extra):
    from components.stack import STACK_OUTPUTS

    run = ok("dev", **config)
    assert set(run.exports) == COMMON | extra
    assert set(run.exports) <= set(STACK_OUTPUTS)


@pytest.mark.parametrize(
    ("stack", "config"),
    [
        ("dev", {**AURORA, "proxyReaderEndpoint": True}),
        ("prod", {**PROD_AURORA, "proxyReaderEndpoint": True}),
        ("dev", {**AURORA, "dbInstanceClass": "db.serverless"}),
        ("dev", {**MAZ, "proxyReaderEndpoint": True}),
        ("prod", {**PROD_MAZ, "proxyReaderEndpoint": True}),
        ("dev", {"dbReadReplicas": 2}),
        ("prod", {"dbReadReplicas": 2, "dbBlueGreenUpdate": False}),
    ],
)
def test_every_topology_passes_the_policy_pack(stack, config):
    from plan.report import policy_resources

    run = ok(stack, **config)
    assert evaluate(policy_resources(run), stack=stack) == []


def test_no_read_scaling_output_is_secret_or_holds_the_password():
    for config in ({**AURORA, "proxyReaderEndpoint": True}, MAZ, {"dbReadReplicas": 1}):
        run = ok("dev", **config)
        assert run.secret_exports == set()
        assert password(run) not in repr(run.exports)


def test_offline_plan_shows_the_new_types_key_settings_and_their_creation_times():
    from plan.report import MINUTES, critical_path, text

    run = ok("dev", **AURORA, proxyReaderEndpoint=True)
    plan = text(run, [])
    assert '+ rds.Cluster  rds-proxy-db-cluster\n        engine: "aurora-mysql"' in plan
    assert 'instanceClass: "db.t4g.medium"' in plan and "publiclyAccessible: false" in plan
    assert 'targetRole: "READ_ONLY"' in plan and "dbClusterIdentifier" in plan
    minutes, path = critical_path(run)
    # cluster, then the writer, then a reader (created after the writer), then the proxy target.
    assert [r.type for r in path if r.type in MINUTES] == [
        CLUSTER,
        CLUSTER_INSTANCE,
        CLUSTER_INSTANCE,
        TARGET,
    ]
    assert minutes == MINUTES[CLUSTER] + 2 * MINUTES[CLUSTER_INSTANCE] + MINUTES[TARGET]
    assert MINUTES[PROXY_ENDPOINT] > 0
