"""The offline mocks: one table entry per resource type, a generic default for the rest, aliases recorded."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_random as random
import pytest

from plan.engine import ACCOUNT, ANSWERS, ProgramRun, run_program

REGION = "us-east-1"
ROLE_DOC = json.dumps({"Version": "2012-10-17", "Statement": []})


def _snake(camel: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel).lower()


def _snaked(value: Any) -> Any:
    """How the SDK hands back a nested output: typed objects, keyed by Python names."""
    if isinstance(value, dict):
        return {_snake(k): _snaked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_snaked(v) for v in value]
    return value


def _one_of_each() -> dict[str, pulumi.CustomResource]:
    """One resource of every type the table answers, with only the inputs the provider requires."""
    aws.get_availability_zones()  # the subnet's AZ name comes from the region's answer, as in AWS
    vpc = aws.ec2.Vpc("t-vpc", cidr_block="10.0.0.0/16")
    key = aws.kms.Key("t-key")
    role = aws.iam.Role("t-role", assume_role_policy=ROLE_DOC)
    sg = aws.ec2.SecurityGroup("t-sg", vpc_id=vpc.id)
    return {
        r.pulumi_resource_type: r
        for r in [
            vpc,
            key,
            role,
            sg,
            aws.ec2.Subnet(
                "t-subnet", vpc_id=vpc.id, cidr_block="10.0.0.0/24", availability_zone_id="use1-az1"
            ),
            aws.ec2.DefaultSecurityGroup("t-default-sg", vpc_id=vpc.id),
            aws.vpc.SecurityGroupIngressRule("t-in", security_group_id=sg.id, ip_protocol="tcp"),
            aws.vpc.SecurityGroupEgressRule("t-out", security_group_id=sg.id, ip_protocol="tcp"),
            aws.ec2.VpcEndpoint(
                "t-vpce",
                vpc_id=vpc.id,
                service_name=f"com.amazonaws.{REGION}.secretsmanager",
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
            ),
            aws.rds.SubnetGroup("t-subnets", subnet_ids=["subnet-1"]),
            random.RandomPassword("t-password", length=20, override_special="!#"),
            random.RandomId("t-random-id", byte_length=4),
            aws.secretsmanager.Secret("t-secret"),
            aws.secretsmanager.SecretVersion("t-secret-value", secret_id="s", secret_string="x"),
            aws.iam.RolePolicy("t-role-policy", role=role.name, policy=ROLE_DOC),
            aws.iam.RolePolicyAttachment("t-attach", role=role.name, policy_arn="arn:aws:iam::aws:policy/x"),
            aws.rds.Instance("t-db", instance_class="db.t3.micro", port=3307),
            aws.rds.Cluster("t-cluster", engine="aurora-postgresql"),
            aws.rds.ClusterInstance(
                "t-cluster-1", cluster_identifier="c", instance_class="db.r6g.large", engine="aurora-mysql"
            ),
            aws.rds.Proxy(
                "t-proxy", name="t-proxy", auths=[], engine_family="MYSQL", role_arn="r", vpc_subnet_ids=[]
            ),
            aws.rds.ProxyEndpoint(
                "t-proxy-ro",
                db_proxy_name="t-proxy",
                db_proxy_endpoint_name="t-proxy-ro",
                vpc_subnet_ids=[],
                target_role="READ_ONLY",
            ),
            aws.rds.ProxyDefaultTargetGroup("t-tg", db_proxy_name="t-proxy"),
            aws.rds.ProxyTarget("t-target", db_proxy_name="t-proxy", target_group_name="default"),
            aws.cloudwatch.LogGroup("t-logs", name="/aws/rds/proxy/t"),
            aws.cloudwatch.MetricAlarm(
                "t-alarm", comparison_operator="GreaterThanThreshold", evaluation_periods=1
            ),
            aws.cloudwatch.Dashboard("t-dashboard", dashboard_name="t-dash", dashboard_body="{}"),
            aws.lambda_.Function("t-fn", role=role.arn),
            aws.lambda_.Invocation("t-invoke", function_name="t-fn", input='{"a": 1}'),
            aws.kms.Alias("t-alias", name="alias/t", target_key_id=key.key_id),
            aws.sns.Topic("t-topic"),
            aws.serverlessrepository.CloudFormationStack(
                "t-sar",
                name="t-rotation",
                application_id="arn:aws:serverlessrepo:us-east-1:1:applications/x",
                parameters={"functionName": "t-rotation"},
            ),
            aws.sns.TopicSubscription(
                "t-email",
                topic=f"arn:aws:sns:{REGION}:{ACCOUNT}:t-topic",
                protocol="email",
                endpoint="ops@example.com",
            ),
            aws.rds.EventSubscription("t-events", sns_topic=f"arn:aws:sns:{REGION}:{ACCOUNT}:t-topic"),
        ]
    }


def _run_and_export_every_output(program: Callable[[], dict[str, pulumi.CustomResource]]) -> ProgramRun:
    """Run `program` twice: once to learn which outputs the mocks add to each resource, then exporting
    each of those through the SDK's own property for it. The SDK drops an output its resource class
    doesn't declare, so a misnamed output comes back as None instead of the mock's value."""
    learned = run_program("test", {"aws:region": REGION}, program=lambda: program())
    assert learned.error is None, learned.error
    added = {r.type: sorted(set(r.outputs) - set(r.inputs)) for r in learned.resources}

    def exporting() -> None:
        for token, res in program().items():
            for key in ("id", *added[token]):
                pulumi.export(f"{token} {key}", getattr(res, _snake(key)))

    run = run_program("test", {"aws:region": REGION}, program=exporting)
    assert run.error is None, run.error
    return run


@pytest.fixture(scope="module")
def table_run() -> ProgramRun:
    return _run_and_export_every_output(_one_of_each)


def test_every_table_entry_is_exercised_here(table_run):
    assert set(ANSWERS) <= {r.type for r in table_run.resources}


def test_every_answered_output_is_one_the_provider_declares(table_run):
    for r in table_run.resources:
        for key in ("id", *sorted(set(r.outputs) - set(r.inputs))):
            expected = r.id if key == "id" else _snaked(r.outputs[key])
            assert _snaked(table_run.exports[f"{r.type} {key}"]) == expected, (r.type, key)


SHAPES: dict[str, dict[str, str]] = {
    # token → output → the shape AWS gives it (regex, fully matched)
    "aws:ec2/vpc:Vpc": {
        "id": r"vpc-[0-9a-f]{17}",
        "arn": rf"arn:aws:ec2:{REGION}:{ACCOUNT}:vpc/vpc-[0-9a-f]{{17}}",
    },
    "aws:ec2/subnet:Subnet": {"id": r"subnet-[0-9a-f]{17}", "availabilityZone": r"us-east-1[a-f]"},
    "aws:ec2/securityGroup:SecurityGroup": {"id": r"sg-[0-9a-f]{17}"},
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": {"id": r"sg-[0-9a-f]{17}"},
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": {"id": r"sgr-[0-9a-f]{17}"},
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": {"id": r"sgr-[0-9a-f]{17}"},
    "aws:ec2/vpcEndpoint:VpcEndpoint": {
        "id": r"vpce-[0-9a-f]{17}",
        "arn": rf"arn:aws:ec2:{REGION}:{ACCOUNT}:vpc-endpoint/vpce-[0-9a-f]{{17}}",
    },
    "aws:rds/subnetGroup:SubnetGroup": {
        "id": r"t-subnets-[0-9a-f]{7}",
        "arn": rf"arn:aws:rds:{REGION}:{ACCOUNT}:subgrp:t-subnets-[0-9a-f]{{7}}",
    },
    "random:index/randomPassword:RandomPassword": {
        "id": r"none-[0-9a-f]{17}",
        "result": r"[A-Za-z2-9!#]{20}",
    },
    "random:index/randomId:RandomId": {
        "id": r"[A-Za-z0-9_-]{6}",
        "hex": r"[0-9a-f]{8}",
        "b64Url": r"[A-Za-z0-9_-]{6}",
        "dec": r"[0-9]+",
    },
    "aws:secretsmanager/secret:Secret": {
        "id": rf"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:t-secret-[0-9a-f]{{7}}-[0-9a-f]{{6}}",
        "name": r"t-secret-[0-9a-f]{7}",
    },
    "aws:secretsmanager/secretVersion:SecretVersion": {"id": r"t-secret-value-[0-9a-f]{8}"},
    "aws:iam/role:Role": {
        "id": r"t-role-[0-9a-f]{7}",
        "arn": rf"arn:aws:iam::{ACCOUNT}:role/t-role-[0-9a-f]{{7}}",
    },
    "aws:iam/rolePolicy:RolePolicy": {"id": r"t-role-[0-9a-f]{7}:t-role-policy-[0-9a-f]{7}"},
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": {"id": r"t-attach-[0-9a-f]{8}"},
    "aws:rds/instance:Instance": {
        "id": r"db-[0-9A-F]{17}",
        "resourceId": r"db-[0-9A-F]{17}",
        "identifier": r"t-db-[0-9a-f]{7}",
        "address": rf"t-db-[0-9a-f]{{7}}\.c[0-9a-f]{{11}}\.{REGION}\.rds\.amazonaws\.com",
        "endpoint": rf"t-db-[0-9a-f]{{7}}\.c[0-9a-f]{{11}}\.{REGION}\.rds\.amazonaws\.com:3307",
        "arn": rf"arn:aws:rds:{REGION}:{ACCOUNT}:db:t-db-[0-9a-f]{{7}}",
    },
    "aws:rds/cluster:Cluster": {
        "id": r"t-cluster-[0-9a-f]{7}",
        "endpoint": rf"t-cluster-[0-9a-f]{{7}}\.cluster-c[0-9a-f]{{11}}\.{REGION}\.rds\.amazonaws\.com",
        "readerEndpoint": rf"t-cluster-[0-9a-f]{{7}}\.cluster-ro-c[0-9a-f]{{11}}\.{REGION}\.rds\.amazonaws\.com",
        "arn": rf"arn:aws:rds:{REGION}:{ACCOUNT}:cluster:t-cluster-[0-9a-f]{{7}}",
        "clusterResourceId": r"cluster-[0-9A-F]{26}",
    },
    "aws:rds/clusterInstance:ClusterInstance": {
        "id": r"t-cluster-1-[0-9a-f]{7}",
        "endpoint": rf"t-cluster-1-[0-9a-f]{{7}}\.c[0-9a-f]{{11}}\.{REGION}\.rds\.amazonaws\.com",
        "arn": rf"arn:aws:rds:{REGION}:{ACCOUNT}:db:t-cluster-1-[0-9a-f]{{7}}",
        "dbiResourceId": r"db-[0-9A-F]{26}",
    },
    "aws:rds/proxy:Proxy": {
        "id": "t-proxy",
        "arn": rf"arn:aws:rds:{REGION}:{ACCOUNT}:db-proxy:prx-[0-9a-f]{{17}}",
        "endpoint": rf"t-proxy\.proxy-c[0-9a-f]{{11}}\.{REGION}\.rds\.amazonaws\.com",
    },
    "aws:rds/proxyEndpoint:ProxyEndpoint": {
        "id": "t-proxy/t-proxy-ro",
        "arn": rf"arn:aws:rds:{REGION}:{ACCOUNT}:db-proxy-endpoint:prx-endpoint-[0-9a-f]{{17}}",
        "endpoint": rf"t-proxy-ro\.endpoint\.proxy-c[0-9a-f]{{11}}\.{REGION}\.rds\.amazonaws\.com",
    },
    "aws:rds/proxyDefaultTargetGroup:ProxyDefaultTargetGroup": {
        "id": "t-proxy",
        "name": "default",
        "arn": rf"arn:aws:rds:{REGION}:{ACCOUNT}:target-group:prx-tg-[0-9a-f]{{17}}",
    },
    "aws:rds/proxyTarget:ProxyTarget": {"id": r"t-target-[0-9a-f]{8}"},
    "aws:cloudwatch/logGroup:LogGroup": {
        "id": "/aws/rds/proxy/t",
        "arn": rf"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/rds/proxy/t",
    },
    "aws:cloudwatch/metricAlarm:MetricAlarm": {
        "id": r"t-alarm-[0-9a-f]{7}",
        "arn": rf"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:t-alarm-[0-9a-f]{{7}}",
    },
    "aws:cloudwatch/dashboard:Dashboard": {
        "id": "t-dash",
        "dashboardArn": rf"arn:aws:cloudwatch::{ACCOUNT}:dashboard/t-dash",
    },
    "aws:lambda/function:Function": {
        "id": r"t-fn-[0-9a-f]{7}",
        "arn": rf"arn:aws:lambda:{REGION}:{ACCOUNT}:function:t-fn-[0-9a-f]{{7}}",
    },
    "aws:lambda/invocation:Invocation": {"id": r"t-fn_\$LATEST_[0-9a-f]{32}", "result": r"\{.*\}"},
    "aws:kms/key:Key": {
        "id": r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        "keyId": r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        "arn": rf"arn:aws:kms:{REGION}:{ACCOUNT}:key/[0-9a-f]{{8}}(-[0-9a-f]{{4}}){{3}}-[0-9a-f]{{12}}",
    },
    "aws:kms/alias:Alias": {"id": "alias/t", "arn": rf"arn:aws:kms:{REGION}:{ACCOUNT}:alias/t"},
    "aws:sns/topic:Topic": {
        "id": rf"arn:aws:sns:{REGION}:{ACCOUNT}:t-topic-[0-9a-f]{{7}}",
        "arn": rf"arn:aws:sns:{REGION}:{ACCOUNT}:t-topic-[0-9a-f]{{7}}",
    },
    "aws:serverlessrepository/cloudFormationStack:CloudFormationStack": {
        "id": rf"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/serverlessrepo-t-rotation/[0-9a-f]{{17}}",
    },
    "aws:sns/topicSubscription:TopicSubscription": {
        "id": rf"arn:aws:sns:{REGION}:{ACCOUNT}:t-topic:[0-9a-f]{{8}}(-[0-9a-f]{{4}}){{3}}-[0-9a-f]{{12}}",
        "arn": rf"arn:aws:sns:{REGION}:{ACCOUNT}:t-topic:[0-9a-f]{{8}}(-[0-9a-f]{{4}}){{3}}-[0-9a-f]{{12}}",
    },
    "aws:rds/eventSubscription:EventSubscription": {
        "id": r"t-events-[0-9a-f]{7}",
        "arn": rf"arn:aws:rds:{REGION}:{ACCOUNT}:es:t-events-[0-9a-f]{{7}}",
    },
}


def test_sar_stack_exports_the_rotation_function_arn(table_run):
    outputs = table_run.one("aws:serverlessrepository/cloudFormationStack:CloudFormationStack").outputs[
        "outputs"
    ]
    assert outputs == {"RotationLambdaARN": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:t-rotation"}


@pytest.mark.parametrize("token", sorted(ANSWERS))
def test_each_type_answers_with_outputs_shaped_like_aws(table_run, token):
    r = table_run.one(token)
    for key, shape in SHAPES[token].items():
        value = r.id if key == "id" else r.outputs[key]
        assert isinstance(value, str) and re.fullmatch(shape, value), (key, value, shape)


def test_answers_that_repeat_or_combine_other_outputs(table_run):
    db = table_run.one("aws:rds/instance:Instance")
    assert db.id == db.outputs["resourceId"]
    assert db.outputs["endpoint"] == f"{db.outputs['address']}:3307"
    assert db.outputs["identifier"] in db.outputs["address"]
    cluster = table_run.one("aws:rds/cluster:Cluster")
    assert cluster.outputs["port"] == 5432  # aurora-postgresql's default; MySQL families get 3306
    assert (
        table_run.one("aws:secretsmanager/secret:Secret").outputs["arn"]
        == table_run.one("aws:secretsmanager/secret:Secret").id
    )
    vpce = table_run.one("aws:ec2/vpcEndpoint:VpcEndpoint")
    names = [e["dnsName"] for e in vpce.outputs["dnsEntries"]]
    assert names[0].startswith(f"{vpce.id}-") and names[0].endswith(
        f".secretsmanager.{REGION}.vpce.amazonaws.com"
    )
    assert names[1:] == [f"secretsmanager.{REGION}.amazonaws.com"]  # privateDnsEnabled
    assert json.loads(table_run.one("aws:lambda/invocation:Invocation").outputs["result"])


def test_random_password_uses_only_the_allowed_alphabet_and_length(table_run):
    result = table_run.one("random:index/randomPassword:RandomPassword").outputs["result"]
    assert len(result) == 20 and not set(result) - set(
        "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789!#"
    )


def test_invented_values_are_remembered_with_what_they_stand_for(table_run):
    invented = table_run.invented
    cluster = table_run.one("aws:rds/cluster:Cluster")
    assert invented[cluster.id] == "t-cluster.clusterIdentifier"
    assert invented[cluster.outputs["readerEndpoint"]] == "t-cluster.readerEndpoint"
    assert invented[table_run.one("aws:rds/instance:Instance").id] == "t-db.resourceId"
    assert invented[table_run.one("aws:kms/key:Key").id] == "t-key.keyId"
    assert invented[table_run.one("aws:lambda/invocation:Invocation").outputs["result"]] == "t-invoke.result"
    # Names the program chose are facts, not inventions.
    assert "t-proxy" not in invented and "/aws/rds/proxy/t" not in invented


def test_a_type_without_an_entry_gets_an_id_a_name_and_an_arn_in_its_service():
    def program() -> dict[str, pulumi.CustomResource]:
        return {
            "queue": aws.sqs.Queue("jobs"),
            "named": aws.sqs.Queue("named", name="orders"),
            "user": aws.iam.User("probe-user", name="probe"),
            "password": random.RandomString("token", length=8),
        }

    run = run_program("test", {"aws:region": REGION}, program=lambda: program())
    assert run.error is None, run.error
    assert "aws:sqs/queue:Queue" not in ANSWERS and "aws:iam/user:User" not in ANSWERS
    jobs, named, user, token = (run.named(n) for n in ("jobs", "named", "probe-user", "token"))
    assert re.fullmatch(r"jobs-[0-9a-f]{8}", jobs.id or "")
    assert re.fullmatch(r"jobs-[0-9a-f]{7}", jobs.outputs["name"])
    assert jobs.outputs["arn"] == f"arn:aws:sqs:{REGION}:{ACCOUNT}:queue/{jobs.outputs['name']}"
    assert run.invented[jobs.outputs["arn"]] == "jobs.arn" and run.invented[jobs.id] == "jobs.id"
    assert run.invented[jobs.outputs["name"]] == "jobs.name"
    assert named.outputs["name"] == "orders" and "orders" not in run.invented
    assert named.outputs["arn"] == f"arn:aws:sqs:{REGION}:{ACCOUNT}:queue/orders"
    assert user.outputs["arn"] == f"arn:aws:iam::{ACCOUNT}:user/probe"  # IAM is global
    assert "arn" not in token.outputs  # not an AWS resource: no ARN invented for it


def test_aliases_are_recorded_as_the_registration_carries_them():
    def program() -> None:
        parent = pulumi.ComponentResource("test:index:Parent", "parent")
        aws.sqs.Queue(
            "moved",
            opts=pulumi.ResourceOptions(
                parent=parent,
                aliases=[
                    pulumi.Alias(name="old-name"),
                    pulumi.Alias(parent=pulumi.ROOT_STACK_RESOURCE),
                    "urn:pulumi:test::rds-proxy::aws:sqs/queue:Queue::older",
                ],
            ),
        )
        aws.sqs.Queue("plain")

    run = run_program("test", {"aws:region": REGION}, program=program)
    assert run.error is None, run.error
    assert run.named("moved").aliases == [
        {"name": "old-name", "type": "", "stack": "", "project": "", "parentUrn": "", "noParent": False},
        {"name": "", "type": "", "stack": "", "project": "", "parentUrn": "", "noParent": True},
        {"urn": "urn:pulumi:test::rds-proxy::aws:sqs/queue:Queue::older"},
    ]
    assert run.named("plain").aliases == []
