"""Cross-region DR (issue 12): prod keeps its secrets replicated to us-west-2; the `dr` stack is its standby
there, and nothing of it lives in, or calls, prod's region."""

from __future__ import annotations

import json
import re
from typing import Any

import pulumi
import pytest

from plan.__main__ import main
from plan.config import load_stack_config
from plan.engine import ReferencedStack, run_program
from plan.report import planned_inputs
from tests.conftest import deploy, ok, policy_doc
from tools.failover import DR_OUTPUTS

PRIMARY_REGION, DR_REGION = "us-east-1", "us-west-2"
PRIMARY_STACK = "organization/rds-proxy/prod"
STACK_REFERENCE = "pulumi:pulumi:StackReference"
INSTANCE = "aws:rds/instance:Instance"
ARN = re.compile(r"arn:aws[a-z-]*:[a-z0-9-]+:([a-z0-9-]*):")


def strings(value: Any) -> list[str]:
    """Every string inside an input (policy documents arrive as JSON text: those are searched as text)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return strings(value.value) if hasattr(value, "value") else []


def declared(run) -> list:
    """What `pulumi up` would create (the StackReference is only read)."""
    return [r for r in run.resources if r.custom and r.type != STACK_REFERENCE]


# --- the standby lives in the DR region only ------------------------------------------------------------


@pytest.mark.parametrize("promoted", [False, True])
def test_every_standby_resource_is_in_the_dr_region_and_none_in_the_primarys(promoted):
    run = ok("dr", drPromoted=promoted)
    assert load_stack_config("dr")["aws:region"] == DR_REGION
    # No explicit provider at all: every resource uses the stack's default provider, i.e. aws:region.
    assert [r.name for r in run.resources if r.type.startswith("pulumi:providers:")] == []
    assert [r.name for r in declared(run) if r.provider is not None] == []
    for r in declared(run):
        for key, value in r.inputs.items():
            for text in strings(value):
                if key == "replicateSourceDb":
                    continue  # the primary's ARN, named in a call made in the DR region (checked below)
                assert PRIMARY_REGION not in text, (r.name, key, text)
                for region in ARN.findall(text):
                    assert region in ("", DR_REGION), (r.name, key, text)
            if key == "region":
                assert value == DR_REGION, r.name
        for text in strings(r.outputs):  # what the mocks answered, e.g. ARNs, endpoints
            if text != r.inputs.get("replicateSourceDb"):
                assert PRIMARY_REGION not in text, (r.name, text)
    # Invokes run on the default provider too, and name no other region.
    assert run.invokes and all(PRIMARY_REGION not in json.dumps(i.args, default=str) for i in run.invokes)


def test_the_failover_command_finds_every_output_it_reads_and_the_dr_region_in_proxy_arn():
    run = ok("dr")
    assert set(DR_OUTPUTS) <= set(run.exports)
    assert ARN.match(run.exports["proxyArn"]).group(1) == DR_REGION
    assert run.exports["drState"] == "standby"
    assert ok("dr", drPromoted=True).exports["drState"] == "promoted"
    assert set(run.exports) == {
        "proxyEndpoint", "proxyName", "proxyArn", "dbInstanceId", "dbEndpoint", "secretArn",
        "probeFunctionName", "vpcId", "privateSubnetIds", "dbArn", "vpcCidr", "drState",
        "alarmTopicArn", "dashboardName", "dashboardUrl",  # monitoring, as on the primary (issue 10)
        "dbUserConnectArns",  # the DR proxy's rds-db:connect ARNs (issue 8)
    }  # fmt: skip


def test_a_replicating_standby_alarms_on_replica_lag_and_a_promoted_one_does_not():
    run = ok("dr")
    alarm = next(
        a for a in run.by_type("aws:cloudwatch/metricAlarm:MetricAlarm") if a.name.endswith("replica-lag")
    )
    assert alarm.inputs["metricName"] == "ReplicaLag" and alarm.inputs["namespace"] == "AWS/RDS"
    assert alarm.inputs["dimensions"] == {"DBInstanceIdentifier": run.one(INSTANCE).outputs["identifier"]}
    assert (alarm.inputs["statistic"], alarm.inputs["threshold"]) == ("Maximum", 60)
    assert alarm.inputs["treatMissingData"] == "breaching"
    topic = run.one("aws:sns/topic:Topic").outputs["arn"]
    assert alarm.inputs["alarmActions"] == [topic] and alarm.inputs["okActions"] == [topic]
    promoted = ok("dr", drPromoted=True)
    assert not [
        a for a in promoted.by_type("aws:cloudwatch/metricAlarm:MetricAlarm") if "replica-lag" in a.name
    ]
    assert not [
        a for a in ok("prod").by_type("aws:cloudwatch/metricAlarm:MetricAlarm") if "replica-lag" in a.name
    ]


def test_replica_replicates_the_primary_instance_by_arn_encrypted_with_a_dr_region_key():
    prod, run = ok("prod"), ok("dr")
    replica = run.one(INSTANCE)
    source = replica.inputs["replicateSourceDb"]
    assert source == prod.exports["dbArn"] == prod.one(INSTANCE).outputs["arn"]
    assert source.startswith(f"arn:aws:rds:{PRIMARY_REGION}:") and source != prod.exports["dbInstanceId"]
    key = run.named("rds-proxy-db-key")  # the replica's own (the stack key encrypts logs and the topic)
    assert replica.inputs["kmsKeyId"] == key.outputs["arn"]
    assert ARN.match(key.outputs["arn"]).group(1) == DR_REGION
    assert key.inputs["enableKeyRotation"] is True
    # A replica copies the primary's users and databases: none of its own.
    assert not {"username", "password", "dbName", "engine", "engineVersion"} & set(replica.inputs)
    assert replica.inputs["storageEncrypted"] is True
    assert replica.inputs["publiclyAccessible"] is False
    assert replica.inputs["backupRetentionPeriod"] == 14
    assert replica.inputs["dbSubnetGroupName"] == run.one("aws:rds/subnetGroup:SubnetGroup").outputs["name"]
    # AWS refuses a final snapshot of a read replica.
    assert replica.inputs["skipFinalSnapshot"] is True and "finalSnapshotIdentifier" not in replica.inputs


def test_replica_carries_the_primarys_security_controls():
    run = ok("dr")
    replica = run.one(INSTANCE)
    groups = {g.inputs["name"]: g for g in run.by_type("aws:cloudwatch/logGroup:LogGroup")}
    assert replica.inputs["identifier"] == "rds-proxy-dr-db"
    assert replica.inputs["enabledCloudwatchLogsExports"] == ["error", "slowquery"]
    for log in ("error", "slowquery"):
        group = groups[f"/aws/rds/instance/rds-proxy-dr-db/{log}"]
        assert group.inputs["retentionInDays"] == 365 and group.inputs["kmsKeyId"]
        assert run.depends_on(replica, group)
    assert replica.inputs["monitoringInterval"] == 60 and replica.inputs["monitoringRoleArn"]
    assert (
        replica.inputs["parameterGroupName"]
        == run.one("aws:rds/parameterGroup:ParameterGroup").outputs["name"]
    )
    assert "identifier" in replica.ignore_changes


@pytest.mark.parametrize("protect", [True, False])
def test_replica_deletion_protection_follows_the_dr_stacks_own_setting(protect):
    replica = ok("dr", dbDeletionProtection=protect).one(INSTANCE)
    assert replica.inputs["deletionProtection"] is protect
    assert replica.protect is protect


def test_standby_proxy_has_no_target_and_the_promoted_one_serves_the_same_instance():
    standby, promoted = ok("dr"), ok("dr", drPromoted=True)
    assert standby.by_type("aws:rds/proxyTarget:ProxyTarget") == []
    # The proxy, its role, log group and default target group exist while standing by.
    for t in (
        "aws:rds/proxy:Proxy",
        "aws:cloudwatch/logGroup:LogGroup",
        "aws:rds/proxyDefaultTargetGroup:ProxyDefaultTargetGroup",
    ):
        assert standby.by_type(t), t
    before, after = standby.one(INSTANCE), promoted.one(INSTANCE)
    assert standby.real_urn(before) == promoted.real_urn(after)  # the same resource: promoted in place
    assert "replicateSourceDb" not in after.inputs
    assert after.inputs["kmsKeyId"] == before.inputs["kmsKeyId"]
    target = promoted.one("aws:rds/proxyTarget:ProxyTarget")
    assert target.inputs["dbInstanceIdentifier"] == after.outputs["identifier"]
    assert target.inputs["dbProxyName"] == promoted.one("aws:rds/proxy:Proxy").inputs["name"]
    assert promoted.depends_on(target, after)
    # Once promoted, the stack's own final-snapshot setting applies again (Pulumi.dr.yaml: keep one).
    assert after.inputs["skipFinalSnapshot"] is False and after.inputs["finalSnapshotIdentifier"]


def test_standby_proxy_keeps_the_primarys_pool_settings():
    def pool(run):
        tg = run.one("aws:rds/proxyDefaultTargetGroup:ProxyDefaultTargetGroup").inputs["connectionPoolConfig"]
        return tg, run.one("aws:rds/proxy:Proxy").inputs["idleClientTimeout"]

    assert pool(ok("dr")) == pool(ok("prod"))
    assert pool(ok("dr", maxConnectionsPercent=60))[0]["maxConnectionsPercent"] == 60


def test_standby_proxy_reads_exactly_the_replicated_secrets_and_decrypts_only_via_dr_secrets_manager():
    prod, run = ok("prod"), ok("dr")
    replicas = prod.exports["drReplicaSecretArns"]
    proxy = run.one("aws:rds/proxy:Proxy")
    arns = [a["secretArn"] for a in proxy.inputs["auths"]]
    # The master first, then every user the primary has (the probe user, dbUsers), as on the primary.
    assert arns == [replicas["admin"], replicas["rdsproxy_probe"]]
    assert set(replicas) == {"admin", "rdsproxy_probe"}
    assert all(ARN.match(a).group(1) == DR_REGION for a in arns)
    assert run.exports["secretArn"] == replicas["admin"]
    role_policies = [
        p for p in run.by_type("aws:iam/rolePolicy:RolePolicy") if p.name == "rds-proxy-proxy-secret-access"
    ]
    statements = {s["Sid"]: s for s in policy_doc(role_policies[0].inputs)["Statement"]}
    assert statements["ReadProxySecrets"]["Resource"] == arns
    decrypt = statements["DecryptProxySecrets"]
    assert decrypt["Resource"] == prod.exports["drKeyArn"]
    assert ARN.match(decrypt["Resource"]).group(1) == DR_REGION
    assert decrypt["Condition"] == {
        "StringEquals": {"kms:ViaService": [f"secretsmanager.{DR_REGION}.amazonaws.com"]}
    }


# --- the primary's half ---------------------------------------------------------------------------------


def test_primary_replicates_every_secret_to_the_dr_region_with_a_rotating_key_there():
    prod = ok("prod")
    provider = prod.one("pulumi:providers:aws")
    assert provider.inputs["region"] == DR_REGION
    assert prod.by_urn(provider.parent).type == "rdsproxy:index:DrReplication"
    key = prod.named("rds-proxy-dr-key")
    assert key.provider is not None and key.provider.startswith(provider.urn + "::")
    assert ARN.match(key.outputs["arn"]).group(1) == DR_REGION
    assert key.inputs["enableKeyRotation"] is True
    secrets = prod.by_type("aws:secretsmanager/secret:Secret")
    proxy_arns = {a["secretArn"] for a in prod.one("aws:rds/proxy:Proxy").inputs["auths"]}
    assert proxy_arns <= {s.outputs["arn"] for s in secrets}
    for secret in secrets:  # every secret of the stack, whoever declares it
        assert secret.inputs["replicas"] == [{"region": DR_REGION, "kmsKeyId": key.outputs["arn"]}], (
            secret.name
        )
    # The replica ARNs the standby reads: each secret's ARN with the DR region (Secrets Manager docs).
    by_user = {
        "admin": prod.named("rds-proxy-creds-master-secret").outputs["arn"],
        "rdsproxy_probe": prod.named("rds-proxy-users-rdsproxy_probe-secret").outputs["arn"],
    }
    assert prod.exports["drReplicaSecretArns"] == {
        u: arn.replace(f":{PRIMARY_REGION}:", f":{DR_REGION}:") for u, arn in by_user.items()
    }
    assert prod.exports["drRegion"] == DR_REGION
    assert prod.exports["drKeyArn"] == key.outputs["arn"]
    assert prod.exports["vpcCidr"] == "10.0.0.0/16"
    # Only the DR half leaves the primary's region.
    for r in declared(prod):
        if r.provider is None and "arn" in r.outputs:
            assert ARN.match(r.outputs["arn"]).group(1) in ("", PRIMARY_REGION), r.name


def test_turning_dr_on_updates_the_deployed_secret_in_place_and_only_adds_resources():
    with_dr, without = ok("prod"), ok("prod", drRegion="")
    assert without.by_type("rdsproxy:index:DrReplication") == []
    old = {with_dr.real_urn(r): r for r in without.resources}
    new = {with_dr.real_urn(r): r for r in with_dr.resources}
    assert set(old) <= set(new)  # nothing moves or disappears
    changed = [
        new[u].name
        for u in old
        if planned_inputs(with_dr, new[u]) != planned_inputs(without, old[u])
        or new[u].protect != old[u].protect
    ]
    assert sorted(changed) == ["rds-proxy-creds-master-secret", "rds-proxy-users-rdsproxy_probe-secret"]
    for name in changed:
        secret_old, secret_new = without.named(name), with_dr.named(name)
        # Only `replicas` changes; name/namePrefix (the provider's only replace-triggering inputs) stay.
        assert {k: v for k, v in secret_new.inputs.items() if k != "replicas"} == secret_old.inputs
        assert "replicas" not in secret_old.inputs


# --- validation -----------------------------------------------------------------------------------------


def _problems(run) -> str:
    assert run.error is not None, "expected the program to refuse this config"
    return str(run.error)


@pytest.mark.parametrize(
    ("config", "key", "needle"),
    [
        ({"drRegion": "us-east-1"}, "drRegion", "a region other than this stack's aws:region (us-east-1)"),
        ({"drRegion": "uswest2"}, "drRegion", "an AWS region name"),
        ({"drPromoted": True}, "drPromoted", "false unless drPrimaryStack"),
        ({"drPrimaryStack": "prod"}, "drPrimaryStack", "<organization>/rds-proxy/<stack>"),
        (
            {"drPrimaryStack": PRIMARY_STACK, "drRegion": "us-west-2"},
            "drPrimaryStack",
            "a stack is either a primary (drRegion) or a standby (drPrimaryStack)",
        ),
        (
            {"drRegion": "us-west-2", "dbTopology": "aurora"},
            "drRegion",
            "DR covers the instance topology only",
        ),
        ({"stack": "dr", "dbReadReplicas": 1}, "dbReadReplicas", "0 on a DR standby"),
        (
            {"stack": "dr", "secretRotationDays": 30},
            "secretRotationDays",
            "0 on a DR standby: the primary rotates",
        ),
    ],
)
def test_config_only_rules_refuse_before_anything_is_declared(config, key, needle):
    run = deploy("dr" if config.pop("stack", None) else "dev", **config)
    message = _problems(run)
    assert f"- {key}: " in message and needle in message
    assert run.resources == []


@pytest.mark.parametrize(
    ("config", "needle"),
    [
        ({"aws:region": "eu-west-1"}, "aws:region: 'eu-west-1' is not allowed; expected the primary's drRegion 'us-west-2'"),
        ({"vpcCidr": "10.0.128.0/17"}, "vpcCidr: '10.0.128.0/17' is not allowed; expected a range that does not overlap the primary's vpcCidr '10.0.0.0/16'"),
        ({"dbUsername": "other"}, "dbUsername: 'other' is not allowed; expected a user whose secret the primary replicates (admin, rdsproxy_probe)"),
    ],
)  # fmt: skip
def test_rules_on_the_primarys_outputs_fail_before_any_resource_registers(config, needle):
    run = deploy("dr", **config)
    assert needle in _problems(run)
    assert "nothing was created" in str(run.error)
    assert [r.type for r in run.resources] == [STACK_REFERENCE]  # only the read of the primary's state


@pytest.mark.parametrize(
    ("config", "needle"),
    [
        ({"dbUsers": [{"name": "app"}]}, "dbUsers: 'app' is not allowed; expected a user whose secret the primary replicates (admin, rdsproxy_probe)"),
        ({"probeUser": "other_probe"}, "probeUser: 'other_probe' is not allowed; expected a user whose secret the primary replicates"),
    ],
)  # fmt: skip
def test_a_standby_user_the_primary_does_not_replicate_is_refused_by_name_before_anything_registers(
    config, needle
):
    run = deploy("dr", **config)
    assert needle in _problems(run)
    assert "give both stacks the same dbUsers and probeUser" in _problems(run)
    assert [r.type for r in run.resources] == [STACK_REFERENCE]


def test_promoted_under_end_to_end_iam_the_proxy_connects_on_the_promoted_instances_own_resource_id():
    standby = ok("dr", proxyDefaultAuthScheme="IAM_AUTH")
    # A replica cannot be a proxy target, so there is nothing to connect to yet and no grant.
    assert not [
        p for p in standby.by_type("aws:iam/rolePolicy:RolePolicy") if p.name.endswith("proxy-db-connect")
    ]
    promoted = ok("dr", proxyDefaultAuthScheme="IAM_AUTH", drPromoted=True)
    instance = promoted.one(INSTANCE)
    # The proxy logs in to the promoted instance with IAM: its IAM database authentication is on.
    assert standby.one(INSTANCE).inputs["iamDatabaseAuthenticationEnabled"] is True
    assert instance.inputs["iamDatabaseAuthenticationEnabled"] is True
    assert "iamDatabaseAuthenticationEnabled" not in ok("dr").one(INSTANCE).inputs
    resource_id = instance.outputs["resourceId"]
    assert resource_id.startswith("db-")
    (statement,) = policy_doc(promoted.named("rds-proxy-proxy-db-connect").inputs)["Statement"]
    assert statement["Action"] == "rds-db:connect"
    assert statement["Resource"] == [
        f"arn:aws:rds-db:{DR_REGION}:123456789012:dbuser:{resource_id}/rdsproxy_probe"
    ]
    assert (
        promoted.named("rds-proxy-proxy-db-connect").urn
        in promoted.one("aws:rds/proxyTarget:ProxyTarget").dependencies
    )


def test_a_primary_without_dr_outputs_is_refused_with_the_command_that_fixes_it():
    dev = ok("dev")  # a stack without drRegion exports none of what the standby reads
    config = load_stack_config("dr")
    run = run_program("dr", config, stack_references={PRIMARY_STACK: ReferencedStack("dev", dev.exports)})
    message = _problems(run)
    assert "exports no drRegion, vpcCidr, dbArn, drReplicaSecretArns, drKeyArn" in message
    assert "pulumi config set drRegion us-west-2" in message
    assert [r.type for r in run.resources] == [STACK_REFERENCE]


def test_a_primary_stack_that_does_not_exist_is_an_error():
    run = deploy("dr", drPrimaryStack="organization/rds-proxy/nope")
    assert 'unknown stack "organization/rds-proxy/nope"' in _problems(run)
    assert declared(run) == []


# --- offline plan ---------------------------------------------------------------------------------------


def test_offline_plan_of_dr_answers_the_reference_from_prods_plan_and_shows_unknowns(capsys):
    assert main(["--stack", "dr"]) == 0
    out = capsys.readouterr().out
    assert "pulumi.StackReference  dr-primary  [read]" in out
    assert 'replicateSourceDb: "(known after deploy)"' in out
    assert "answered with the offline plan of stack 'prod'" in out
    assert "rds-proxy-proxy-target" not in out


def test_offline_plan_diff_shows_what_promotion_changes(capsys):
    assert main(["--stack", "dr", "--diff", "dr", "--diff-config", "drPromoted=true"]) == 0
    out = capsys.readouterr().out
    assert "+ rds-proxy-proxy-target (only in dr)" in out
    assert '    replicateSourceDb: "(known after deploy)" -> null' in out
    assert "~ rds-proxy-proxy-proxy: 0.00 -> 21.90 (+21.90)" in out  # a proxy with no target bills nothing


def test_diff_config_needs_diff(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--stack", "dr", "--diff-config", "drPromoted=true"])
    assert exit_.value.code == 1
    assert "--diff-config needs --diff" in capsys.readouterr().err


def test_mocks_place_a_resource_in_its_explicit_providers_region():
    def program():
        import pulumi_aws as aws

        other = aws.Provider("p", region="eu-central-1")
        aws.kms.Key("here")
        aws.kms.Key("there", opts=pulumi.ResourceOptions(provider=other))

    run = run_program("t", {"aws:region": "us-east-1"}, program=program)
    assert run.error is None
    assert ":kms:us-east-1:" in run.named("here").outputs["arn"]
    assert ":kms:eu-central-1:" in run.named("there").outputs["arn"]
