"""Security hardening (issue 14): the stack key and its policy, encrypted log groups with the configured
retention, database log exports and enhanced monitoring, the parameter group, VPC flow logs, rotation, and
every validation rule of the security section. Each property in dev and prod."""

from __future__ import annotations

import json
import re

import pytest

from components.encryption import LOG_RETENTION_DAYS, key_policy
from components.rotation import ROTATION_APPLICATION_ID, ROTATION_APPLICATION_VERSION
from plan.engine import SecretValue
from tests.conftest import deploy, ok, policy_doc, reveal
from tests.test_config import problems

KEY = "aws:kms/key:Key"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
INSTANCE = "aws:rds/instance:Instance"
SECRET = "aws:secretsmanager/secret:Secret"
SECRET_VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
SAR = "aws:serverlessrepository/cloudFormationStack:CloudFormationStack"
ROTATION = "aws:secretsmanager/secretRotation:SecretRotation"
ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
SG = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
PARAMS = "aws:rds/parameterGroup:ParameterGroup"
GIVEN_KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
RETENTION = {"dev": 30, "prod": 365}


def stack_key(run):
    """The stack key (prod, a DR primary, also has its secret replicas' key in the DR region: tests/test_dr.py)."""
    (key,) = stack_keys(run)
    return key


def stack_keys(run) -> list:
    return [k for k in run.by_type(KEY) if run.by_urn(k.parent).type != "rdsproxy:index:DrReplication"]


def key_arn(run) -> str:
    return stack_key(run).outputs["arn"]


def statement(policy: dict, sid: str) -> dict:
    return next(s for s in policy["Statement"] if s.get("Sid") == sid)


# --- the key -----------------------------------------------------------------------------------------------


def test_stack_creates_one_customer_key_with_rotation_on(stack_run):
    key = stack_key(stack_run)
    assert key.inputs["enableKeyRotation"] is True
    assert stack_run.one("aws:kms/alias:Alias").inputs["name"] == f"alias/rds-proxy-{stack_run.stack}"


def test_key_admin_is_the_account_and_it_cannot_use_the_key_directly(stack_run):
    admin = statement(policy_doc(stack_key(stack_run).inputs), "AccountAdministersTheKey")
    assert admin["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}
    assert not {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*", "kms:*"} & set(admin["Action"])


def test_secrets_manager_uses_the_key_only_through_the_service_in_this_account(stack_run):
    s = statement(policy_doc(stack_key(stack_run).inputs), "SecretsThroughSecretsManager")
    assert s["Condition"] == {
        "StringEquals": {
            "kms:ViaService": "secretsmanager.us-east-1.amazonaws.com",
            "kms:CallerAccount": "123456789012",
        }
    }


def test_cloudwatch_logs_may_use_the_key_for_exactly_this_stacks_log_groups(stack_run):
    s = statement(policy_doc(stack_key(stack_run).inputs), "ThisStacksLogGroups")
    assert s["Principal"] == {"Service": "logs.us-east-1.amazonaws.com"}
    allowed = s["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
    created = [g.outputs["arn"] for g in stack_run.by_type(LOG_GROUP)]
    assert sorted(allowed) == sorted(created)
    assert all("*" not in a for a in allowed)


def test_alarm_topic_principals_may_use_the_key(stack_run):
    policy = policy_doc(stack_key(stack_run).inputs)
    # The alarm and event publishers' exact conditions are tested with the topic (tests/test_monitoring.py).
    for sid, service in (("CloudWatchAlarmsPublish", "cloudwatch"), ("RdsEventsPublish", "events.rds")):
        assert statement(policy, sid)["Principal"] == {"Service": f"{service}.amazonaws.com"}
        assert sorted(statement(policy, sid)["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    via_sns = statement(policy, "AlarmTopicThroughSns")["Condition"]["StringEquals"]
    assert via_sns["kms:ViaService"] == "sns.us-east-1.amazonaws.com"


def test_key_policy_names_the_partition_region_and_account_it_is_given():
    p = key_policy(
        partition="aws-cn",
        region="cn-north-1",
        account="111122223333",
        log_group_names=["/a"],
        alarm_prefix="x",
    )
    assert statement(p, "AccountAdministersTheKey")["Principal"] == {
        "AWS": "arn:aws-cn:iam::111122223333:root"
    }
    assert statement(p, "ThisStacksLogGroups")["Condition"]["ArnLike"] == {
        "kms:EncryptionContext:aws:logs:arn": ["arn:aws-cn:logs:cn-north-1:111122223333:log-group:/a"]
    }


def test_a_given_key_is_used_everywhere_and_none_is_created():
    run = ok("prod", kmsKeyArn=GIVEN_KEY)
    assert stack_keys(run) == []
    assert run.named("rds-proxy-creds-master-secret").inputs["kmsKeyId"] == GIVEN_KEY
    assert {g.inputs["kmsKeyId"] for g in run.by_type(LOG_GROUP)} == {GIVEN_KEY}
    assert run.one(SAR).inputs["parameters"]["kmsKeyArn"] == GIVEN_KEY


# --- what the key encrypts ---------------------------------------------------------------------------------


def test_master_secret_uses_the_stack_key(stack_run):
    assert stack_run.named("rds-proxy-creds-master-secret").inputs["kmsKeyId"] == key_arn(stack_run)


def test_proxy_role_decrypts_with_the_key_only_via_secrets_manager(stack_run):
    policy = next(r for r in stack_run.by_type(ROLE_POLICY) if "secret-access" in r.name)
    decrypt = statement(policy_doc(policy.inputs), "DecryptProxySecrets")
    assert decrypt["Action"] == "kms:Decrypt" and decrypt["Resource"] == key_arn(stack_run)
    assert decrypt["Condition"] == {
        "StringEquals": {"kms:ViaService": ["secretsmanager.us-east-1.amazonaws.com"]}
    }


def test_every_log_group_has_the_key_and_the_configured_retention(stack_run):
    groups = stack_run.by_type(LOG_GROUP)
    assert len(groups) >= 5  # proxy, probe, two database logs, flow logs (+ rotation in prod)
    for g in groups:
        assert g.inputs["kmsKeyId"] == key_arn(stack_run), g.name
        assert g.inputs["retentionInDays"] == RETENTION[stack_run.stack], g.name


def test_log_retention_follows_config():
    assert {g.inputs["retentionInDays"] for g in ok("dev", logRetentionDays=90).by_type(LOG_GROUP)} == {90}


# --- database ----------------------------------------------------------------------------------------------


def test_database_exports_its_logs_into_groups_created_first(stack_run):
    db = stack_run.one(INSTANCE)
    assert db.inputs["enabledCloudwatchLogsExports"] == ["error", "slowquery"]
    ident = db.inputs["identifier"]
    for log in ("error", "slowquery"):
        group = next(
            g for g in stack_run.by_type(LOG_GROUP) if g.inputs["name"] == f"/aws/rds/instance/{ident}/{log}"
        )
        assert group.urn in db.dependencies


def test_log_exports_follow_config():
    run = ok("dev", dbLogExports=["error", "general"])
    assert run.one(INSTANCE).inputs["enabledCloudwatchLogsExports"] == ["error", "general"]
    names = {g.inputs["name"] for g in run.by_type(LOG_GROUP)}
    assert "/aws/rds/instance/rds-proxy-dev-db/general" in names
    assert "/aws/rds/instance/rds-proxy-dev-db/slowquery" not in names


def test_deployed_instance_keeps_its_identifier(stack_run):
    """A new explicit identifier would replace a deployed instance (a new, empty database): ignore it."""
    db = stack_run.one(INSTANCE)
    assert db.inputs["identifier"] == f"rds-proxy-{stack_run.stack}-db"
    assert "identifier" in db.ignore_changes


def test_a_deployed_stack_names_its_current_identifier_and_gets_the_right_log_groups():
    run = ok("prod", dbInstanceIdentifier="rds-proxy-db-instance-1a2b3c4")
    db = run.one(INSTANCE)
    assert db.inputs["identifier"] == "rds-proxy-db-instance-1a2b3c4"
    names = {g.inputs["name"] for g in run.by_type(LOG_GROUP)}
    assert {
        "/aws/rds/instance/rds-proxy-db-instance-1a2b3c4/error",
        "/aws/rds/instance/rds-proxy-db-instance-1a2b3c4/slowquery",
    } <= names
    assert not [n for n in names if "rds-proxy-prod-db" in n]


def test_enhanced_monitoring_with_its_own_role(stack_run):
    db = stack_run.one(INSTANCE)
    assert db.inputs["monitoringInterval"] == 60
    role = next(r for r in stack_run.by_type(ROLE) if "monitoring-role" in r.name)
    trust = policy_doc(role.inputs, "assumeRolePolicy")
    assert [s["Principal"] for s in trust["Statement"]] == [{"Service": "monitoring.rds.amazonaws.com"}]
    attachment = next(a for a in stack_run.by_type(ATTACHMENT) if "monitoring" in a.name)
    assert attachment.inputs["role"] == role.outputs["name"]
    assert (
        attachment.inputs["policyArn"]
        == "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
    )
    assert db.inputs["monitoringRoleArn"] == role.outputs["arn"]
    assert stack_run.depends_on(db, attachment)


def test_monitoring_off_means_no_role():
    run = ok("dev", dbMonitoringInterval=0)
    assert run.one(INSTANCE).inputs["monitoringInterval"] == 0
    assert "monitoringRoleArn" not in run.one(INSTANCE).inputs
    assert not [r for r in run.by_type(ROLE) if "monitoring" in r.name]


@pytest.mark.parametrize(
    ("version", "family"), [("8.0", "mysql8.0"), ("8.4", "mysql8.4"), ("8.0.39", "mysql8.0")]
)
def test_custom_parameter_group_of_the_engine_family_is_attached(version, family):
    run = ok("dev", dbEngineVersion=version)
    params = run.one(PARAMS)
    assert params.inputs["family"] == family
    assert run.one(INSTANCE).inputs["parameterGroupName"] == params.outputs["name"]
    # Auto-named: a family change (major upgrade) creates the new group before deleting the old one.
    assert "name" not in params.inputs


def test_parameter_group_does_not_force_tls_on_the_proxy_leg():
    """README, "Security": no AWS documentation found that RDS Proxy speaks TLS to a database that requires
    it; forcing it could refuse every proxy connection (MySQL error 3159). Changing this needs that source."""
    params = ok("prod").one(PARAMS).inputs
    assert "require_secure_transport" not in json.dumps(params.get("parameters", []))


# --- flow logs ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("stack", "traffic"), [("dev", "REJECT"), ("prod", "ALL")])
def test_vpc_flow_log_traffic_per_stack(stack, traffic):
    run = ok(stack)
    flow = run.one(FLOW_LOG).inputs
    assert flow["trafficType"] == traffic
    assert flow["vpcId"] == run.one("aws:ec2/vpc:Vpc").id
    group = next(g for g in run.by_type(LOG_GROUP) if g.inputs["name"].startswith("/aws/vpc/flow-logs/"))
    assert flow["logDestination"] == group.outputs["arn"] and flow["logDestinationType"] == "cloud-watch-logs"


def test_no_flow_log_when_none():
    run = ok("prod", vpcFlowLogs="NONE")
    assert run.by_type(FLOW_LOG) == []
    assert not [g for g in run.by_type(LOG_GROUP) if "flow-logs" in g.inputs["name"]]


def test_flow_log_role_is_trusted_only_for_this_accounts_flow_logs_and_writes_only_its_group(stack_run):
    flow = stack_run.one(FLOW_LOG)
    role = next(r for r in stack_run.by_type(ROLE) if "flow-logs-role" in r.name)
    assert flow.inputs["iamRoleArn"] == role.outputs["arn"]
    (trust,) = policy_doc(role.inputs, "assumeRolePolicy")["Statement"]
    assert trust["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    assert trust["Condition"] == {
        "StringEquals": {"aws:SourceAccount": "123456789012"},
        "ArnLike": {"aws:SourceArn": "arn:aws:ec2:us-east-1:123456789012:vpc-flow-log/*"},
    }
    group_arn = flow.inputs["logDestination"]
    policy = next(r for r in stack_run.by_type(ROLE_POLICY) if "flow-logs-write" in r.name)
    (write,) = policy_doc(policy.inputs)["Statement"]
    assert write["Resource"] == [group_arn, f"{group_arn}:log-stream:*"]
    assert all(a.startswith("logs:") and "*" not in a for a in write["Action"])


# --- rotation ----------------------------------------------------------------------------------------------


def test_dev_has_no_rotation_and_only_the_users_bootstrap_reaches_the_endpoint():
    run = ok("dev")
    for type_ in (SAR, ROTATION):
        assert run.by_type(type_) == [], type_
    # The endpoint exists for issue 8's users bootstrap; nothing of the rotation's reaches it.
    endpoint_group = run.one(ENDPOINT).inputs["securityGroupIds"]
    ingress = run.by_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    sources = {
        r.inputs["referencedSecurityGroupId"]
        for r in ingress
        if [r.inputs["securityGroupId"]] == endpoint_group
    }
    assert sources == {run.named("rds-proxy-net-users-sg").id}
    assert run.named("rds-proxy-creds-master-secret-value").ignore_changes == []
    assert "password" not in run.one(INSTANCE).ignore_changes


def test_prod_rotates_the_master_secret_every_30_days_with_awss_function():
    run = ok("prod")
    app = run.one(SAR).inputs
    assert app["applicationId"] == ROTATION_APPLICATION_ID
    assert app["semanticVersion"] == ROTATION_APPLICATION_VERSION == "1.1.671"
    assert sorted(app["capabilities"]) == ["CAPABILITY_IAM", "CAPABILITY_RESOURCE_POLICY"]
    rotation = run.named("rds-proxy-rotation-schedule").inputs
    assert rotation["secretId"] == run.named("rds-proxy-creds-master-secret").outputs["arn"]
    assert rotation["rotationRules"] == {"automaticallyAfterDays": 30}
    assert rotation["rotationLambdaArn"] == run.one(SAR).outputs["outputs"]["RotationLambdaARN"]
    assert rotation["rotateImmediately"] is False


def test_rotation_days_follow_config():
    assert ok("dev", secretRotationDays=7).named("rds-proxy-rotation-schedule").inputs["rotationRules"] == {
        "automaticallyAfterDays": 7
    }


def test_rotation_function_runs_in_the_private_subnets_in_its_own_group():
    run = ok("prod")
    params = run.one(SAR).inputs["parameters"]
    assert params["vpcSubnetIds"].split(",") == [s.id for s in run.by_type("aws:ec2/subnet:Subnet")]
    group = next(g for g in run.by_type(SG) if g.name.endswith("-rotation-sg"))
    assert params["vpcSecurityGroupIds"] == group.id
    assert params["functionName"] == "rds-proxy-prod-rotation"
    assert params["endpoint"] == "https://secretsmanager.us-east-1.amazonaws.com"
    log = next(g for g in run.by_type(LOG_GROUP) if g.inputs["name"] == "/aws/lambda/rds-proxy-prod-rotation")
    assert log.urn in run.one(SAR).dependencies


def test_rotation_reaches_only_the_database_port_and_secrets_manager_https():
    run = ok("prod")
    groups = {g.id: g.name for g in run.by_type(SG)}
    rotation = next(i for i, n in groups.items() if n.endswith("-rotation-sg"))
    out = {
        (
            groups[r.inputs["referencedSecurityGroupId"]].rsplit("-", 2)[-2],
            r.inputs["fromPort"],
            r.inputs["toPort"],
        )
        for r in run.by_type(EGRESS)
        if r.inputs["securityGroupId"] == rotation
    }
    assert out == {("db", 3306, 3306), ("endpoint", 443, 443)}
    into = {
        (groups[r.inputs["securityGroupId"]].rsplit("-", 2)[-2], r.inputs["fromPort"])
        for r in run.by_type(INGRESS)
        if r.inputs["referencedSecurityGroupId"] == rotation
    }
    assert into == {("db", 3306), ("endpoint", 443)}


def test_secrets_manager_endpoint_is_private_and_in_the_private_subnets():
    run = ok("prod")
    endpoint = run.one(ENDPOINT).inputs
    assert endpoint["serviceName"] == "com.amazonaws.us-east-1.secretsmanager"
    assert endpoint["vpcEndpointType"] == "Interface" and endpoint["privateDnsEnabled"] is True
    assert endpoint["subnetIds"] == [s.id for s in run.by_type("aws:ec2/subnet:Subnet")]
    assert all(run.depends_on(r, run.one(ENDPOINT)) for r in run.by_type(ROTATION))


def test_after_rotation_pulumi_never_writes_the_old_password_back():
    run = ok("prod")
    assert run.named("rds-proxy-creds-master-secret-value").ignore_changes == ["secretString"]
    assert "password" in run.one(INSTANCE).ignore_changes


def test_secret_has_the_shape_rotation_functions_read_and_stays_secret(stack_run):
    version = stack_run.named("rds-proxy-creds-master-secret-value").inputs
    assert isinstance(version["secretString"], SecretValue)
    body = json.loads(version["secretString"].value)
    db = stack_run.one(INSTANCE)
    assert body == {
        "engine": "mysql",
        "host": db.outputs["address"],
        "port": 3306,
        "dbname": "testdb",
        "username": "admin",
        "password": reveal(stack_run.named("rds-proxy-creds-master-password").outputs["result"]),
    }


# --- the security section's validation ---------------------------------------------------------------------


def test_retention_values_are_cloudwatchs():
    import pulumi_aws.cloudwatch.log_group as module

    listed = re.search(r"Possible values are: ([0-9, ]+), and 0\.", module.__doc__ or "") or re.search(
        r"Possible values are: ([0-9, ]+), and 0\.", module.LogGroupArgs.__init__.__doc__ or ""
    )
    assert listed, "the provider's list of retention values moved"
    assert tuple(int(v) for v in listed.group(1).split(", ")) == LOG_RETENTION_DAYS


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("kmsKeyArn", "alias/my-key", "a KMS key ARN"),
        ("kmsKeyArn", "arn:aws:kms:us-east-1:123:key/x", "a KMS key ARN"),
        ("logRetentionDays", 0, "one of CloudWatch Logs' 1, 3, 5"),
        ("logRetentionDays", 31, "one of CloudWatch Logs'"),
        ("logRetentionDays", "a month", "an integer"),
        ("dbMonitoringInterval", 2, "0 (off), 1, 5, 10, 15, 30, 60"),
        ("dbLogExports", ["audit"], "MARIADB_AUDIT_PLUGIN option group"),
        ("dbLogExports", ["errors"], "a list of error, slowquery, general"),
        ("dbLogExports", ["error", "error"], "each log at most once"),
        ("dbLogExports", "error", "a list of strings"),
        ("vpcFlowLogs", "ACCEPT", "ALL, REJECT or NONE"),
        ("secretRotationDays", -1, "from 0 to 365 (0 turns rotation off)"),
        ("secretRotationDays", 366, "from 0 to 365"),
        ("dbInstanceIdentifier", "Db-1", "an RDS identifier"),
        ("dbInstanceIdentifier", "db--1", "no '--'"),
        ("dbInstanceIdentifier", "db-", "not ending in '-'"),
        ("dbInstanceIdentifier", "d" * 64, "at most 63"),
    ],
)
def test_invalid_security_settings_are_refused(key, value, expected):
    found = problems(**{key: value})
    assert len(found) == 1 and found[0].startswith(f"{key}: ") and expected in found[0], found


def test_nothing_is_declared_when_the_security_section_is_invalid():
    run = deploy("dev", logRetentionDays=0, vpcFlowLogs="SOME")
    assert run.error is not None and [r for r in run.resources if r.custom] == []


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("kmsKeyArn", GIVEN_KEY),
        ("logRetentionDays", 3653),
        ("dbMonitoringInterval", 1),
        ("dbLogExports", []),
        ("vpcFlowLogs", "NONE"),
        ("secretRotationDays", 365),
        ("dbInstanceIdentifier", "d" * 63),
    ],
)
def test_valid_edges_are_accepted(key, value):
    ok("dev", **{key: value})


# --- The same controls on every topology (read scaling, issue 9) -----------------------------------------

CLUSTER = "aws:rds/cluster:Cluster"
CLUSTER_INSTANCE = "aws:rds/clusterInstance:ClusterInstance"


def _key_covers_every_log_group(run):
    allowed = statement(policy_doc(stack_key(run).inputs), "ThisStacksLogGroups")["Condition"]["ArnLike"][
        "kms:EncryptionContext:aws:logs:arn"
    ]
    assert sorted(allowed) == sorted(g.outputs["arn"] for g in run.by_type(LOG_GROUP))


def test_read_replicas_export_their_logs_into_their_own_groups_created_first_and_are_monitored():
    run = ok("dev", dbReadReplicas=2)
    replicas = [r for r in run.by_type(INSTANCE) if r.inputs.get("replicateSourceDb")]
    assert len(replicas) == 2
    role = next(r for r in run.by_type(ROLE) if "monitoring-role" in r.name)
    for replica in replicas:
        ident = replica.inputs["identifier"]
        assert replica.inputs["enabledCloudwatchLogsExports"] == ["error", "slowquery"]
        for log in ("error", "slowquery"):
            group = next(
                g for g in run.by_type(LOG_GROUP) if g.inputs["name"] == f"/aws/rds/instance/{ident}/{log}"
            )
            assert group.urn in replica.dependencies
            assert group.inputs["kmsKeyId"] == stack_key(run).outputs["arn"]
        assert replica.inputs["monitoringInterval"] == 60
        assert replica.inputs["monitoringRoleArn"] == role.outputs["arn"]
    _key_covers_every_log_group(run)


@pytest.mark.parametrize(
    "config",
    [{"dbTopology": "aurora"}, {"dbTopology": "multi-az-cluster", "azCount": 3}],
    ids=["aurora", "multi-az-cluster"],
)
def test_clusters_export_their_logs_into_groups_created_first(config):
    run = ok("dev", **config)
    cluster = run.one(CLUSTER)
    ident = cluster.inputs["clusterIdentifier"]
    assert cluster.inputs["enabledCloudwatchLogsExports"] == ["error", "slowquery"]
    for log in ("error", "slowquery"):
        group = next(
            g for g in run.by_type(LOG_GROUP) if g.inputs["name"] == f"/aws/rds/cluster/{ident}/{log}"
        )
        assert group.urn in cluster.dependencies
        assert group.inputs["retentionInDays"] == 30
    _key_covers_every_log_group(run)


def test_aurora_instances_and_multi_az_clusters_get_enhanced_monitoring():
    aurora = ok("dev", dbTopology="aurora")
    role = next(r for r in aurora.by_type(ROLE) if "monitoring-role" in r.name)
    for member in aurora.by_type(CLUSTER_INSTANCE):
        assert (member.inputs["monitoringInterval"], member.inputs["monitoringRoleArn"]) == (
            60,
            role.outputs["arn"],
        )
    maz = ok("dev", dbTopology="multi-az-cluster", azCount=3)
    role = next(r for r in maz.by_type(ROLE) if "monitoring-role" in r.name)
    cluster = maz.one(CLUSTER).inputs
    assert (cluster["monitoringInterval"], cluster["monitoringRoleArn"]) == (60, role.outputs["arn"])


def test_a_rotated_cluster_password_is_never_written_back():
    # ignore_changes travels with the registration; the mocks keep what the program asked for.
    from plan.config import load_stack_config
    from plan.engine import run_program

    run = run_program(
        "prod", load_stack_config("prod", ["dbTopology=aurora", "dbMultiAz=false", "drRegion="])
    )
    assert run.error is None, run.error
    assert "masterPassword" in run.one(CLUSTER).ignore_changes


def test_the_users_secrets_rotate_on_the_masters_schedule_and_are_never_written_back():
    """Issue 14: rotate the master secret *and the users' secrets*; each user's schedule is named by user."""
    run = ok("prod", dbUsers=[{"name": "app"}])
    schedules = {r.name: r.inputs for r in run.by_type(ROTATION)}
    users = {
        "app": run.named("rds-proxy-users-app-secret").outputs["arn"],
        "rdsproxy_probe": run.named("rds-proxy-users-rdsproxy_probe-secret").outputs["arn"],
    }
    for user, arn in users.items():
        schedule = schedules[f"rds-proxy-rotation-{user}-schedule"]
        assert schedule["secretId"] == arn
        assert schedule["rotationRules"] == {"automaticallyAfterDays": 30}
        assert schedule["rotateImmediately"] is False
        assert run.named(f"rds-proxy-users-{user}-secret-value").ignore_changes == ["secretString"]
    master = schedules["rds-proxy-rotation-schedule"]
    assert master["secretId"] == run.named("rds-proxy-creds-master-secret").outputs["arn"]
    assert len(schedules) == 3


def test_without_rotation_user_secrets_are_managed_by_pulumi():
    run = ok("dev", dbUsers=[{"name": "app"}])
    assert run.by_type(ROTATION) == []
    assert run.named("rds-proxy-users-app-secret-value").ignore_changes == []
