"""Tests of the policy pack: every rule both ways, unknowns, the stack gate, and the pack itself.

Rules are exercised through ``policy.rules.evaluate`` (what the offline plan calls) and the pack
through pulumi_policy's own analyzer code, in-process and as the CLI starts it (a subprocess that
serves gRPC), so a rule that works in one path and not the other shows up here.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from policy import rules
from policy.rules import RULES, STACK_RULES, Violation, evaluate

ROOT = Path(__file__).resolve().parents[1]
POLICY_DIR = ROOT / "policy"

UNKNOWN_STR = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
UNKNOWN_BOOL = "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7"
UNKNOWN_NUM = "3eeb2bf0-c639-47a8-9e75-3b44932eb421"
UNKNOWN_ARRAY = "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2"
UNKNOWN_OBJECT = "dd056dcd-154b-4c76-9bd3-c8f88648b5ff"
SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"

INSTANCE = "aws:rds/instance:Instance"
CLUSTER = "aws:rds/cluster:Cluster"
PROXY = "aws:rds/proxy:Proxy"
SG = "aws:ec2/securityGroup:SecurityGroup"
DEFAULT_SG = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
SG_INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
IAM_POLICY = "aws:iam/policy:Policy"
FUNCTION = "aws:lambda/function:Function"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
CLUSTER_INSTANCE = "aws:rds/clusterInstance:ClusterInstance"
SECRET = "aws:secretsmanager/secret:Secret"
VPC = "aws:ec2/vpc:Vpc"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
KEY = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TOPIC = "aws:sns/topic:Topic"
TOPIC_ARN = "arn:aws:sns:eu-west-1:123456789012:rds-proxy-dev-alarms"
GOOD_ALARM: dict[str, Any] = {
    "name": "rds-proxy-dev-borrow-latency",
    "metricName": "DatabaseConnectionsBorrowLatency",
    "alarmActions": [TOPIC_ARN],
    "okActions": [TOPIC_ARN],
}
CMK_ARN = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"

# What our stack actually sends (components/*), the baseline each case modifies.
GOOD_INSTANCE: dict[str, Any] = {
    "engine": "mysql",
    "engineVersion": "8.0",
    "instanceClass": "db.t3.micro",
    "allocatedStorage": 20.0,
    "storageEncrypted": True,
    "publiclyAccessible": False,
    "backupRetentionPeriod": 7.0,
    "multiAz": True,
    "deletionProtection": True,
    "dbSubnetGroupName": "db-subnets",
    "monitoringInterval": 60.0,
    "monitoringRoleArn": "arn:aws:iam::123456789012:role/monitoring",
    "enabledCloudwatchLogsExports": ["error", "slowquery"],
}
GOOD_PROXY: dict[str, Any] = {"engineFamily": "MYSQL", "requireTls": True, "debugLogging": False}
# Read scaling (issue 9): what components/database.py sends for an Aurora cluster, its instances, a Multi-AZ
# DB cluster, and a read replica of the instance.
CLUSTER_INSTANCE = "aws:rds/clusterInstance:ClusterInstance"
GOOD_AURORA: dict[str, Any] = {
    "engine": "aurora-mysql",
    "storageEncrypted": True,
    "backupRetentionPeriod": 14.0,
    "deletionProtection": True,
    "skipFinalSnapshot": False,
}
GOOD_MULTI_AZ_CLUSTER: dict[str, Any] = {
    **GOOD_AURORA,
    "engine": "mysql",
    "dbClusterInstanceClass": "db.c6gd.medium",
    "storageType": "gp3",
    "publiclyAccessible": False,
}
GOOD_CLUSTER_INSTANCE: dict[str, Any] = {"engine": "aurora-mysql", "publiclyAccessible": False}
GOOD_REPLICA: dict[str, Any] = {
    "replicateSourceDb": "arn:aws:rds:eu-west-1:123456789012:db:source",
    "storageEncrypted": True,
    "publiclyAccessible": False,
    "multiAz": True,
    "deletionProtection": True,
}
GOOD_ENV = {
    "PROXY_ENDPOINT": "proxy.proxy-abc.eu-west-1.rds.amazonaws.com",
    "DB_PORT": "3306",
    "DB_USER": "probe",
    "DB_NAME": "testdb",
    "DB_AUTH": "iam",
}
GOOD_FUNCTION: dict[str, Any] = {
    "runtime": "python3.12",
    "handler": "handler.handler",
    "environment": {"variables": GOOD_ENV},
}
SCOPED_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue"],
            "Resource": ["arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf"],
        },
        {
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": "arn:aws:kms:eu-west-1:123456789012:key/1234",
            "Condition": {"StringEquals": {"kms:ViaService": "secretsmanager.eu-west-1.amazonaws.com"}},
        },
    ],
}
TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}


def policy_with(**statement: Any) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", **statement}]})


def check(type_: str, inputs: Mapping[str, Any], *, stack: str = "prod", **kw: Any) -> list[Violation]:
    return evaluate([{"type": type_, "name": "res", "inputs": inputs}], stack=stack, **kw)


def rule_ids(violations: list[Violation]) -> set[str]:
    return {v.rule for v in violations}


# --------------------------------------------------------------------------------------------------
# Every rule both ways. (rule id, type, inputs, stack, violates?)
# --------------------------------------------------------------------------------------------------

CASES: list[tuple[str, str, dict[str, Any], str, bool]] = [
    # RDS.2
    ("RDS.2", INSTANCE, GOOD_INSTANCE, "prod", False),
    ("RDS.2", INSTANCE, {**GOOD_INSTANCE, "publiclyAccessible": None}, "prod", False),  # default false
    ("RDS.2", INSTANCE, {**GOOD_INSTANCE, "publiclyAccessible": True}, "prod", True),
    ("RDS.2", INSTANCE, {**GOOD_INSTANCE, "publiclyAccessible": True}, "dev", True),
    ("RDS.2", CLUSTER, {"publiclyAccessible": True, "storageEncrypted": True}, "dev", True),
    ("RDS.2", CLUSTER, GOOD_AURORA, "prod", False),
    ("RDS.2", CLUSTER, GOOD_MULTI_AZ_CLUSTER, "prod", False),
    ("RDS.2", CLUSTER, {**GOOD_MULTI_AZ_CLUSTER, "publiclyAccessible": True}, "prod", True),
    ("RDS.2", CLUSTER_INSTANCE, GOOD_CLUSTER_INSTANCE, "prod", False),
    ("RDS.2", CLUSTER_INSTANCE, {"engine": "aurora-mysql"}, "prod", False),  # provider default false
    ("RDS.2", CLUSTER_INSTANCE, {**GOOD_CLUSTER_INSTANCE, "publiclyAccessible": True}, "dev", True),
    ("RDS.2", INSTANCE, GOOD_REPLICA, "prod", False),
    ("RDS.2", INSTANCE, {**GOOD_REPLICA, "publiclyAccessible": True}, "dev", True),
    # RDS.3
    ("RDS.3", INSTANCE, GOOD_INSTANCE, "prod", False),
    ("RDS.3", INSTANCE, {**GOOD_INSTANCE, "storageEncrypted": False}, "dev", True),
    ("RDS.3", INSTANCE, {k: v for k, v in GOOD_INSTANCE.items() if k != "storageEncrypted"}, "dev", True),
    (
        "RDS.3",
        INSTANCE,
        {**GOOD_INSTANCE, "storageEncrypted": False, "replicateSourceDb": "src"},
        "dev",
        False,
    ),
    ("RDS.3", CLUSTER, {"storageEncrypted": False}, "dev", True),
    ("RDS.3", CLUSTER, GOOD_AURORA, "dev", False),
    ("RDS.3", CLUSTER, GOOD_MULTI_AZ_CLUSTER, "dev", False),
    ("RDS.3", CLUSTER, {k: v for k, v in GOOD_AURORA.items() if k != "storageEncrypted"}, "dev", True),
    ("RDS.3", CLUSTER, {**GOOD_MULTI_AZ_CLUSTER, "storageEncrypted": False}, "prod", True),
    ("RDS.3", INSTANCE, GOOD_REPLICA, "dev", False),
    # RDS.11
    ("RDS.11", INSTANCE, GOOD_INSTANCE, "prod", False),
    ("RDS.11", INSTANCE, {**GOOD_INSTANCE, "backupRetentionPeriod": 35}, "prod", False),
    ("RDS.11", INSTANCE, {**GOOD_INSTANCE, "backupRetentionPeriod": 6.0}, "dev", True),
    ("RDS.11", INSTANCE, {**GOOD_INSTANCE, "backupRetentionPeriod": 0}, "dev", True),
    (
        "RDS.11",
        INSTANCE,
        {k: v for k, v in GOOD_INSTANCE.items() if k != "backupRetentionPeriod"},
        "dev",
        True,
    ),
    ("RDS.11", CLUSTER, {"backupRetentionPeriod": 1, "storageEncrypted": True}, "dev", True),
    ("RDS.11", CLUSTER, GOOD_AURORA, "dev", False),
    ("RDS.11", CLUSTER, GOOD_MULTI_AZ_CLUSTER, "prod", False),
    # Aurora's own default is 1 day: an absent retention is a violation.
    ("RDS.11", CLUSTER, {k: v for k, v in GOOD_AURORA.items() if k != "backupRetentionPeriod"}, "dev", True),
    ("RDS.11", CLUSTER, {**GOOD_MULTI_AZ_CLUSTER, "backupRetentionPeriod": 3}, "prod", True),
    ("RDS.11", INSTANCE, GOOD_REPLICA, "prod", False),  # a replica's backups are its source's
    # RDS.5 (production only)
    ("RDS.5", INSTANCE, GOOD_INSTANCE, "prod", False),
    ("RDS.5", INSTANCE, {**GOOD_INSTANCE, "multiAz": False}, "prod", True),
    ("RDS.5", INSTANCE, {k: v for k, v in GOOD_INSTANCE.items() if k != "multiAz"}, "prod", True),
    ("RDS.5", INSTANCE, {**GOOD_INSTANCE, "multiAz": False}, "dev", False),
    ("RDS.5", INSTANCE, GOOD_REPLICA, "prod", False),
    ("RDS.5", INSTANCE, {**GOOD_REPLICA, "multiAz": False}, "prod", True),
    ("RDS.5", CLUSTER, GOOD_AURORA, "prod", False),  # clusters place their instances over AZs themselves
    # RDS.8 (production only)
    ("RDS.8", INSTANCE, GOOD_INSTANCE, "prod", False),
    ("RDS.8", INSTANCE, {**GOOD_INSTANCE, "deletionProtection": False}, "prod", True),
    ("RDS.8", CLUSTER, {"deletionProtection": False}, "prod", True),
    ("RDS.8", CLUSTER, GOOD_AURORA, "prod", False),
    ("RDS.8", CLUSTER, GOOD_MULTI_AZ_CLUSTER, "prod", False),
    (
        "RDS.8",
        CLUSTER,
        {k: v for k, v in GOOD_MULTI_AZ_CLUSTER.items() if k != "deletionProtection"},
        "prod",
        True,
    ),
    ("RDS.8", CLUSTER, {**GOOD_AURORA, "deletionProtection": False}, "dev", False),
    ("RDS.8", INSTANCE, GOOD_REPLICA, "prod", False),
    ("RDS.8", INSTANCE, {**GOOD_REPLICA, "deletionProtection": False}, "prod", True),
    ("RDS.8", INSTANCE, {**GOOD_INSTANCE, "deletionProtection": False}, "dev", False),
    # RDS.43
    ("RDS.43", PROXY, GOOD_PROXY, "dev", False),
    ("RDS.43", PROXY, {**GOOD_PROXY, "requireTls": False}, "dev", True),
    ("RDS.43", PROXY, {"engineFamily": "MYSQL"}, "dev", True),  # provider default is false
    # EC2.18
    ("EC2.18", SG, {"vpcId": "vpc-1", "description": "db"}, "dev", False),
    (
        "EC2.18",
        SG,
        {"ingress": [{"protocol": "tcp", "fromPort": 3306, "toPort": 3306, "securityGroups": ["sg-1"]}]},
        "dev",
        False,
    ),
    (
        "EC2.18",
        SG,
        {
            "ingress": [
                {"protocol": "tcp", "fromPort": 3306.0, "toPort": 3306.0, "cidrBlocks": ["10.0.0.0/16"]}
            ]
        },
        "dev",
        False,
    ),
    (
        "EC2.18",
        SG,
        {
            "ingress": [
                {"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": ["10.0.0.0/16", "0.0.0.0/0"]}
            ]
        },
        "dev",
        True,
    ),
    (
        "EC2.18",
        SG,
        {"ingress": [{"protocol": "-1", "fromPort": 0, "toPort": 0, "ipv6CidrBlocks": ["::/0"]}]},
        "dev",
        True,
    ),
    (
        "EC2.18",
        SG,
        {"egress": [{"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["0.0.0.0/0"]}]},
        "dev",
        False,
    ),
    (
        "EC2.18",
        SG_INGRESS,
        {
            "securityGroupId": "sg-1",
            "referencedSecurityGroupId": "sg-2",
            "ipProtocol": "tcp",
            "fromPort": 3306,
            "toPort": 3306,
        },
        "dev",
        False,
    ),
    (
        "EC2.18",
        SG_INGRESS,
        {
            "securityGroupId": "sg-1",
            "cidrIpv4": "0.0.0.0/0",
            "ipProtocol": "tcp",
            "fromPort": 3306,
            "toPort": 3306,
        },
        "dev",
        True,
    ),
    ("EC2.18", SG_INGRESS, {"securityGroupId": "sg-1", "cidrIpv6": "::/0", "ipProtocol": "-1"}, "dev", True),
    (
        "EC2.18",
        SG_INGRESS,
        {"securityGroupId": "sg-1", "cidrIpv4": "10.1.0.0/16", "ipProtocol": "-1"},
        "dev",
        False,
    ),
    (
        "EC2.18",
        SG_RULE,
        {"type": "ingress", "cidrBlocks": ["0.0.0.0/0"], "protocol": "tcp", "fromPort": 443, "toPort": 443},
        "dev",
        True,
    ),
    (
        "EC2.18",
        SG_RULE,
        {"type": "ingress", "ipv6CidrBlocks": ["::/0"], "protocol": "tcp", "fromPort": 443, "toPort": 443},
        "dev",
        True,
    ),
    (
        "EC2.18",
        SG_RULE,
        {"type": "egress", "cidrBlocks": ["0.0.0.0/0"], "protocol": "-1", "fromPort": 0, "toPort": 0},
        "dev",
        False,
    ),
    (
        "EC2.18",
        SG_RULE,
        {
            "type": "ingress",
            "sourceSecurityGroupId": "sg-9",
            "protocol": "tcp",
            "fromPort": 3306,
            "toPort": 3306,
        },
        "dev",
        False,
    ),
    ("EC2.18", DEFAULT_SG, {"vpcId": "vpc-1", "ingress": [], "egress": []}, "dev", False),
    (
        "EC2.18",
        DEFAULT_SG,
        {"ingress": [{"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["0.0.0.0/0"]}]},
        "dev",
        True,
    ),
    # EC2.2
    ("EC2.2", DEFAULT_SG, {"vpcId": "vpc-1", "ingress": [], "egress": []}, "dev", False),
    (
        "EC2.2",
        DEFAULT_SG,
        {"ingress": [{"protocol": "-1", "fromPort": 0, "toPort": 0, "self": True}]},
        "dev",
        True,
    ),
    (
        "EC2.2",
        DEFAULT_SG,
        {"egress": [{"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["10.0.0.0/8"]}]},
        "dev",
        True,
    ),
    # IAM.21
    ("IAM.21", ROLE_POLICY, {"role": "r", "policy": json.dumps(SCOPED_POLICY)}, "dev", False),
    ("IAM.21", ROLE_POLICY, {"role": "r", "policy": SCOPED_POLICY}, "dev", False),  # dict, not JSON
    (
        "IAM.21",
        ROLE_POLICY,
        {"role": "r", "policy": policy_with(Action="*", Resource="arn:aws:s3:::b")},
        "dev",
        True,
    ),
    (
        "IAM.21",
        ROLE_POLICY,
        {"role": "r", "policy": policy_with(Action=["s3:*"], Resource="arn:aws:s3:::b")},
        "dev",
        True,
    ),
    (
        "IAM.21",
        ROLE_POLICY,
        {"role": "r", "policy": policy_with(Action="s3:GetObject", Resource="*")},
        "dev",
        True,
    ),
    (
        "IAM.21",
        IAM_POLICY,
        {"policy": policy_with(NotAction="iam:*", Resource="arn:aws:s3:::b")},
        "dev",
        True,
    ),
    (
        "IAM.21",
        IAM_POLICY,
        {"policy": policy_with(Action="s3:GetObject", NotResource="arn:aws:s3:::b")},
        "dev",
        True,
    ),
    (
        "IAM.21",
        IAM_POLICY,
        {"policy": json.dumps({"Statement": {"Effect": "Deny", "Action": "*", "Resource": "*"}})},
        "dev",
        False,
    ),
    ("IAM.21", IAM_POLICY, {"policy": "{not json"}, "dev", True),
    (
        "IAM.21",
        ROLE,
        {"assumeRolePolicy": json.dumps(TRUST_POLICY)},
        "dev",
        False,
    ),  # trust policy: no Resource
    (
        "IAM.21",
        ROLE,
        {
            "assumeRolePolicy": json.dumps(TRUST_POLICY),
            "inlinePolicies": [{"name": "ok", "policy": json.dumps(SCOPED_POLICY)}],
        },
        "dev",
        False,
    ),
    (
        "IAM.21",
        ROLE,
        {
            "assumeRolePolicy": json.dumps(TRUST_POLICY),
            "inlinePolicies": [{"name": "bad", "policy": policy_with(Action="rds-db:*", Resource="*")}],
        },
        "dev",
        True,
    ),
    # Custom.1 (Lambda environment secrets)
    ("Custom.1", FUNCTION, GOOD_FUNCTION, "dev", False),
    (
        "Custom.1",
        FUNCTION,
        {**GOOD_FUNCTION, "environment": {"variables": {**GOOD_ENV, "DB_PASSWORD": "hunter2"}}},
        "dev",
        True,
    ),
    ("Custom.1", FUNCTION, {**GOOD_FUNCTION, "environment": {"variables": {"MYSQL_PWD": "x"}}}, "dev", True),
    ("Custom.1", FUNCTION, {**GOOD_FUNCTION, "environment": {"variables": {"dbPassword": "x"}}}, "dev", True),
    ("Custom.1", FUNCTION, {**GOOD_FUNCTION, "environment": {"variables": {"API_TOKEN": "x"}}}, "dev", True),
    (
        "Custom.1",
        FUNCTION,
        {**GOOD_FUNCTION, "environment": {"variables": {"CLIENT_SECRET": "x"}}},
        "dev",
        True,
    ),
    (
        "Custom.1",
        FUNCTION,
        {
            **GOOD_FUNCTION,
            "environment": {"variables": {"DB_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:1:secret:x"}},
        },
        "dev",
        False,
    ),
    (
        "Custom.1",
        FUNCTION,
        {**GOOD_FUNCTION, "environment": {"variables": {"PASSWORD_PARAMETER": "/app/db/password"}}},
        "dev",
        False,
    ),
    (
        "Custom.1",
        FUNCTION,
        {
            **GOOD_FUNCTION,
            "environment": {"variables": {"DB_PASS": "arn:aws:secretsmanager:eu-west-1:1:secret:x"}},
        },
        "dev",
        False,
    ),
    ("Custom.1", FUNCTION, {"runtime": "python3.12", "handler": "h.h"}, "dev", False),  # no environment
    # Lambda.2
    ("Lambda.2", FUNCTION, GOOD_FUNCTION, "dev", False),
    ("Lambda.2", FUNCTION, {**GOOD_FUNCTION, "runtime": "python3.10"}, "dev", False),
    ("Lambda.2", FUNCTION, {**GOOD_FUNCTION, "runtime": "python3.13"}, "dev", False),
    ("Lambda.2", FUNCTION, {**GOOD_FUNCTION, "runtime": "python3.9"}, "dev", True),
    ("Lambda.2", FUNCTION, {**GOOD_FUNCTION, "runtime": "python3.8"}, "dev", True),
    ("Lambda.2", FUNCTION, {**GOOD_FUNCTION, "runtime": "nodejs16.x"}, "dev", True),
    ("Lambda.2", FUNCTION, {"packageType": "Image", "imageUri": "1.dkr.ecr/x:1"}, "dev", False),
    # CloudWatch.16
    ("CloudWatch.16", LOG_GROUP, {"name": "/aws/lambda/probe", "retentionInDays": 14.0}, "dev", False),
    ("CloudWatch.16", LOG_GROUP, {"name": "/aws/lambda/probe", "retentionInDays": 0}, "dev", True),
    ("CloudWatch.16", LOG_GROUP, {"name": "/aws/lambda/probe"}, "dev", True),
    # security hardening (issue 14)
    # RDS.6
    ("RDS.6", INSTANCE, GOOD_INSTANCE, "dev", False),
    ("RDS.6", INSTANCE, {**GOOD_INSTANCE, "monitoringInterval": 0.0}, "dev", True),
    ("RDS.6", INSTANCE, {k: v for k, v in GOOD_INSTANCE.items() if k != "monitoringInterval"}, "dev", True),
    ("RDS.6", INSTANCE, {k: v for k, v in GOOD_INSTANCE.items() if k != "monitoringRoleArn"}, "prod", True),
    ("RDS.6", CLUSTER_INSTANCE, {"monitoringInterval": 5.0, "monitoringRoleArn": "arn:r"}, "prod", False),
    ("RDS.6", CLUSTER_INSTANCE, {**GOOD_CLUSTER_INSTANCE, "instanceClass": "db.t4g.medium"}, "prod", True),
    # A Multi-AZ DB cluster is monitored on the cluster; an Aurora cluster through its instances.
    (
        "RDS.6",
        CLUSTER,
        {**GOOD_MULTI_AZ_CLUSTER, "monitoringInterval": 60.0, "monitoringRoleArn": "arn:r"},
        "prod",
        False,
    ),
    ("RDS.6", CLUSTER, GOOD_MULTI_AZ_CLUSTER, "dev", True),
    ("RDS.6", CLUSTER, GOOD_AURORA, "prod", False),
    # RDS.9
    ("RDS.9", INSTANCE, GOOD_INSTANCE, "dev", False),
    ("RDS.9", INSTANCE, {**GOOD_INSTANCE, "enabledCloudwatchLogsExports": ["general", "slowquery", "error"]}, "dev",
     False),
    ("RDS.9", INSTANCE, {**GOOD_INSTANCE, "enabledCloudwatchLogsExports": ["error"]}, "dev", True),
    ("RDS.9", INSTANCE, {k: v for k, v in GOOD_INSTANCE.items() if k != "enabledCloudwatchLogsExports"}, "prod",
     True),
    # Custom.2
    ("Custom.2", SECRET, {"kmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/k"}, "dev", False),
    ("Custom.2", SECRET, {}, "dev", True),
    ("Custom.2", SECRET, {"kmsKeyId": "alias/aws/secretsmanager"}, "prod", True),
    # Custom.3
    ("Custom.3", LOG_GROUP, {"retentionInDays": 30.0, "kmsKeyId": "arn:aws:kms:us-east-1:1:key/k"}, "dev", False),
    ("Custom.3", LOG_GROUP, {"retentionInDays": 30.0}, "prod", True),
    ("Custom.3", LOG_GROUP, {"retentionInDays": 30.0, "kmsKeyId": ""}, "dev", True),
    # CloudWatch.15 (alarm and OK actions)
    ("CloudWatch.15", ALARM, GOOD_ALARM, "dev", False),
    ("CloudWatch.15", ALARM, {**GOOD_ALARM, "alarmActions": []}, "dev", True),
    ("CloudWatch.15", ALARM, {k: v for k, v in GOOD_ALARM.items() if k != "alarmActions"}, "prod", True),
    ("CloudWatch.15", ALARM, {k: v for k, v in GOOD_ALARM.items() if k != "okActions"}, "dev", True),
    ("CloudWatch.15", ALARM, {**GOOD_ALARM, "okActions": [""]}, "dev", True),
    # SNS.1 (customer-managed key)
    ("SNS.1", TOPIC, {"name": "alarms", "kmsMasterKeyId": CMK_ARN}, "dev", False),
    ("SNS.1", TOPIC, {"name": "alarms", "kmsMasterKeyId": "alias/rds-proxy-dev-alarms"}, "dev", False),
    ("SNS.1", TOPIC, {"name": "alarms"}, "dev", True),
    ("SNS.1", TOPIC, {"name": "alarms", "kmsMasterKeyId": ""}, "dev", True),
    ("SNS.1", TOPIC, {"name": "alarms", "kmsMasterKeyId": "alias/aws/sns"}, "dev", True),
    (
        "SNS.1",
        TOPIC,
        {"name": "alarms", "kmsMasterKeyId": "arn:aws:kms:eu-west-1:123456789012:alias/aws/sns"},
        "prod",
        True,
    ),
]  # fmt: skip


def _case_id(case: tuple[str, str, dict[str, Any], str, bool]) -> str:
    rule_id, type_, _inputs, stack, bad = case
    return f"{rule_id}-{type_.rsplit(':', 1)[-1]}-{stack}-{'violates' if bad else 'passes'}"


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_rule_case(case: tuple[str, str, dict[str, Any], str, bool]) -> None:
    rule_id, type_, inputs, stack, bad = case
    found = check(type_, inputs, stack=stack)
    mine = [v for v in found if v.rule == rule_id]
    if bad:
        assert mine, f"{rule_id} should flag {inputs}"
        assert all(v.resource == "res" and v.type == type_ and v.message for v in mine)
    else:
        assert not mine, f"{rule_id} flagged a compliant resource: {mine}"


def test_every_rule_is_tested_both_ways() -> None:
    for rule in RULES:
        outcomes = {bad for rule_id, *_rest, bad in CASES if rule_id == rule.id}
        assert outcomes == {True, False}, f"{rule.id} needs a compliant and a violating case"


def test_rules_are_unique_and_described() -> None:
    assert len({r.id for r in RULES}) == len(RULES)
    assert len({r.name for r in RULES}) == len(RULES)
    for rule in RULES:
        assert rule.description and rule.resource_types and rule.url.startswith("https://")
        assert rule.severity in {"low", "medium", "high", "critical"}
    expected = {"RDS.2", "RDS.3", "RDS.11", "RDS.5", "RDS.8", "RDS.43", "EC2.2", "EC2.18", "IAM.21"}
    expected |= {"Lambda.2", "CloudWatch.16", "CloudWatch.15", "SNS.1"}
    assert expected <= {r.id for r in RULES}


def test_compliant_stack_resources_pass_in_every_stack() -> None:
    resources = [
        {"type": INSTANCE, "name": "db", "inputs": GOOD_INSTANCE},
        {"type": PROXY, "name": "proxy", "inputs": GOOD_PROXY},
        {"type": FUNCTION, "name": "probe", "inputs": GOOD_FUNCTION},
        {"type": ROLE, "name": "role", "inputs": {"assumeRolePolicy": json.dumps(TRUST_POLICY)}},
        {"type": ROLE_POLICY, "name": "pol", "inputs": {"role": "r", "policy": json.dumps(SCOPED_POLICY)}},
        {"type": LOG_GROUP, "name": "logs", "inputs": {"retentionInDays": 14, "kmsKeyId": KEY}},
        {"type": ALARM, "name": "alarm", "inputs": GOOD_ALARM},
        {"type": TOPIC, "name": "topic", "inputs": {"kmsMasterKeyId": CMK_ARN}},
        {"type": DEFAULT_SG, "name": "default", "inputs": {"ingress": [], "egress": []}},
        {"type": VPC, "name": "vpc", "urn": "urn:vpc", "inputs": {"cidrBlock": "10.0.0.0/16"}},
        {"type": FLOW_LOG, "name": "flow", "inputs": {"trafficType": "ALL"}, "dependencies": ["urn:vpc"]},
        {"type": SECRET, "name": "secret", "inputs": {"kmsKeyId": KEY}},
    ]
    for stack in ("dev", "prod"):
        assert evaluate(resources, stack=stack) == []


# --------------------------------------------------------------------------------------------------
# Unknown values never cause a violation (and never crash)
# --------------------------------------------------------------------------------------------------


class _OpaqueUnknown:
    """Like pulumi.output.Unknown / an Output under mocks: not plain data."""


def _unknown_cases() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for value in (UNKNOWN_STR, UNKNOWN_BOOL, UNKNOWN_NUM, _OpaqueUnknown()):
        yield "RDS.2", INSTANCE, {**GOOD_INSTANCE, "publiclyAccessible": value}
        yield "RDS.3", INSTANCE, {**GOOD_INSTANCE, "storageEncrypted": value}
        yield "RDS.11", INSTANCE, {**GOOD_INSTANCE, "backupRetentionPeriod": value}
        yield "RDS.5", INSTANCE, {**GOOD_INSTANCE, "multiAz": value}
        yield "RDS.8", INSTANCE, {**GOOD_INSTANCE, "deletionProtection": value}
        yield "RDS.43", PROXY, {**GOOD_PROXY, "requireTls": value}
        yield "EC2.18", SG, {"ingress": value}
        yield "EC2.18", SG, {"ingress": [value]}
        yield "EC2.18", SG, {"ingress": [{"protocol": "tcp", "cidrBlocks": value}]}
        yield "EC2.18", SG, {"ingress": [{"protocol": "tcp", "cidrBlocks": [value, "10.0.0.0/8"]}]}
        yield "EC2.18", SG_INGRESS, {"cidrIpv4": value, "ipProtocol": "tcp"}
        yield "EC2.18", SG_RULE, {"type": value, "cidrBlocks": ["0.0.0.0/0"]}
        yield "EC2.2", DEFAULT_SG, {"ingress": value, "egress": value}
        yield "IAM.21", ROLE_POLICY, {"role": "r", "policy": value}
        yield "IAM.21", ROLE_POLICY, {"role": "r", "policy": {"Statement": [value]}}
        yield (
            "IAM.21",
            ROLE_POLICY,
            {
                "role": "r",
                "policy": {"Statement": [{"Effect": "Allow", "Action": [value], "Resource": [value]}]},
            },
        )
        yield "IAM.21", ROLE, {"inlinePolicies": value}
        yield "IAM.21", ROLE, {"inlinePolicies": [{"name": value, "policy": value}]}
        yield "Custom.1", FUNCTION, {**GOOD_FUNCTION, "environment": value}
        yield "Custom.1", FUNCTION, {**GOOD_FUNCTION, "environment": {"variables": value}}
        yield "Custom.1", FUNCTION, {**GOOD_FUNCTION, "environment": {"variables": {"DB_USER": value}}}
        yield "Lambda.2", FUNCTION, {**GOOD_FUNCTION, "runtime": value}
        yield "CloudWatch.16", LOG_GROUP, {"retentionInDays": value}
        yield "RDS.6", INSTANCE, {**GOOD_INSTANCE, "monitoringInterval": value}
        yield "RDS.6", INSTANCE, {**GOOD_INSTANCE, "monitoringRoleArn": value}
        yield "RDS.9", INSTANCE, {**GOOD_INSTANCE, "enabledCloudwatchLogsExports": value}
        yield "Custom.2", SECRET, {"kmsKeyId": value}
        yield "Custom.3", LOG_GROUP, {"retentionInDays": 30, "kmsKeyId": value}
        yield "CloudWatch.15", ALARM, {**GOOD_ALARM, "alarmActions": value, "okActions": value}
        yield "CloudWatch.15", ALARM, {**GOOD_ALARM, "alarmActions": [value], "okActions": [value]}
        yield "SNS.1", TOPIC, {"name": "alarms", "kmsMasterKeyId": value}
    yield "EC2.18", SG, {"ingress": UNKNOWN_ARRAY}
    yield "EC2.18", SG, {"ingress": [UNKNOWN_OBJECT]}
    yield "Custom.1", FUNCTION, {**GOOD_FUNCTION, "environment": UNKNOWN_OBJECT}


UNKNOWN_CASES = list(_unknown_cases())


@pytest.mark.parametrize(
    ("rule_id", "type_", "inputs"),
    UNKNOWN_CASES,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(UNKNOWN_CASES)],
)
def test_unknown_values_are_not_violations(rule_id: str, type_: str, inputs: dict[str, Any]) -> None:
    assert [v for v in check(type_, inputs, stack="prod") if v.rule == rule_id] == []


def test_every_rule_has_an_unknown_case() -> None:
    assert {rule.id for rule in RULES} <= {c[0] for c in UNKNOWN_CASES}


def test_pulumi_unknown_object_from_mocks_is_unknown() -> None:
    pulumi_output = pytest.importorskip("pulumi.output")
    assert rules.is_unknown(pulumi_output.Unknown())
    assert check(INSTANCE, {**GOOD_INSTANCE, "storageEncrypted": pulumi_output.Unknown()}) == []


def test_unknown_sentinels_match_pulumi() -> None:
    from pulumi.runtime import rpc
    from pulumi_policy import proxy

    engine = {getattr(proxy, n) for n in dir(proxy) if n.startswith("UNKNOWN_") and n.endswith("_VALUE")}
    assert engine == set(rules.UNKNOWN_SENTINELS)
    assert rpc.UNKNOWN in rules.UNKNOWN_SENTINELS
    assert (rpc._special_sig_key, rpc._special_secret_sig) == (SECRET_SIG_KEY, SECRET_SIG)


# --------------------------------------------------------------------------------------------------
# Input shapes: floats, secrets, strings, objects
# --------------------------------------------------------------------------------------------------


def secret(value: Any) -> dict[str, Any]:
    return {SECRET_SIG_KEY: SECRET_SIG, "value": value}


def test_secret_wrapped_values_are_checked() -> None:
    env = {"variables": {**GOOD_ENV, "DB_PASSWORD": secret("hunter2")}}
    assert rule_ids(check(FUNCTION, {**GOOD_FUNCTION, "environment": secret(env)})) == {"Custom.1"}
    assert check(INSTANCE, {**GOOD_INSTANCE, "storageEncrypted": secret(True)}) == []
    assert rule_ids(check(INSTANCE, {**GOOD_INSTANCE, "publiclyAccessible": secret(True)})) == {"RDS.2"}


@pytest.mark.parametrize(("value", "bad"), [(7, False), (7.0, False), ("7", False), (6.9, True), ("1", True)])
def test_backup_retention_number_forms(value: Any, bad: bool) -> None:
    assert ("RDS.11" in rule_ids(check(INSTANCE, {**GOOD_INSTANCE, "backupRetentionPeriod": value}))) is bad


@pytest.mark.parametrize("cidr", ["0.0.0.0/0", "::/0", "0::/0", " 0.0.0.0/0", "0.0.0.0/00"])
def test_open_cidr_spellings(cidr: str) -> None:
    assert rules.ec2._is_open_cidr(cidr)


@pytest.mark.parametrize("cidr", ["10.0.0.0/8", "0.0.0.0/1", "::/1", "not-a-cidr", UNKNOWN_STR])
def test_not_open_cidrs(cidr: str) -> None:
    assert not rules.ec2._is_open_cidr(cidr)


@pytest.mark.parametrize("name", ["PROXY_ENDPOINT", "DB_PORT", "DB_USER", "DB_NAME", "DB_AUTH", "LOG_LEVEL"])
def test_our_env_names_are_not_secret_like(name: str) -> None:
    assert not rules.secret_like_env_name(name)


@pytest.mark.parametrize(
    "name",
    ["PASSWORD", "DB_PASSWORD", "DBPASSWORD", "PASSWD", "MYSQL_PWD", "SECRET", "AWS_SECRET_ACCESS_KEY",
     "TOKEN", "GITHUB_TOKEN", "API_KEY", "apiKey", "PRIVATE_KEY", "DB_PASS", "Passphrase"],
)  # fmt: skip
def test_secret_like_env_names(name: str) -> None:
    assert rules.secret_like_env_name(name)


def test_evaluate_accepts_objects_like_mock_resource_args() -> None:
    class MockArgs:  # attributes of pulumi.runtime.MockResourceArgs
        def __init__(self, typ: str, name: str, inputs: dict[str, Any]) -> None:
            self.typ, self.name, self.inputs = typ, name, inputs

    class Planned:
        def __init__(self, type: str, name: str, inputs: dict[str, Any]) -> None:
            self.type, self.name, self.inputs = type, name, inputs

    bad = {**GOOD_INSTANCE, "storageEncrypted": False}
    found = evaluate([MockArgs(INSTANCE, "a", bad), Planned(INSTANCE, "b", bad)], stack="dev")
    assert [(v.rule, v.resource, v.type) for v in found] == [
        ("RDS.3", "a", INSTANCE),
        ("RDS.3", "b", INSTANCE),
    ]


def test_evaluate_skips_other_types_and_bad_entries() -> None:
    other = {"type": "aws:s3/bucket:Bucket", "name": "b", "inputs": {"acl": "public-read"}}
    assert evaluate([other, {"name": "no-type"}], stack="prod") == []
    # No inputs at all: provider defaults apply (unencrypted, 1 day of backups, no monitoring, no exports).
    found = evaluate([{"type": INSTANCE, "name": "bare"}], stack="dev")
    assert rule_ids(found) == {"RDS.3", "RDS.11", "RDS.6", "RDS.9"}


# --------------------------------------------------------------------------------------------------
# Stack-level rules (EC2.6: a flow log for each VPC), both ways, in evaluate and in the pack
# --------------------------------------------------------------------------------------------------

VPC_RES = {
    "type": VPC,
    "name": "vpc",
    "urn": "urn:vpc",
    "id": "vpc-1",
    "inputs": {"cidrBlock": "10.0.0.0/16"},
}


@pytest.mark.parametrize(
    ("flow_logs", "bad"),
    [
        ([], True),
        ([{"type": FLOW_LOG, "name": "f", "inputs": {"vpcId": "vpc-1", "trafficType": "REJECT"}}], False),
        (
            [{"type": FLOW_LOG, "name": "f", "inputs": {"vpcId": UNKNOWN_STR}, "dependencies": ["urn:vpc"]}],
            False,
        ),
        (
            [{"type": FLOW_LOG, "name": "f", "inputs": {"vpcId": "vpc-other"}, "dependencies": ["urn:x"]}],
            True,
        ),
    ],
    ids=["no-flow-log", "flow-log-by-id", "flow-log-by-dependency", "flow-log-of-another-vpc"],
)
def test_every_vpc_needs_a_flow_log(flow_logs: list[dict[str, Any]], bad: bool) -> None:
    found = [v for v in evaluate([VPC_RES, *flow_logs], stack="dev") if v.rule == "EC2.6"]
    assert [(v.resource, v.type) for v in found] == ([("vpc", VPC)] if bad else [])


def test_each_vpc_is_checked_on_its_own() -> None:
    second = {**VPC_RES, "name": "vpc2", "urn": "urn:vpc2", "id": "vpc-2"}
    flow = {"type": FLOW_LOG, "name": "f", "inputs": {"vpcId": "vpc-1"}}
    assert [v.resource for v in evaluate([VPC_RES, second, flow], stack="dev") if v.rule == "EC2.6"] == [
        "vpc2"
    ]


def test_stack_rule_can_be_disabled() -> None:
    assert evaluate([VPC_RES], stack="dev", config={"vpc-flow-logs": "disabled"}) == []


def test_pack_stack_policy_reports_a_vpc_without_flow_log(pack: Any) -> None:
    from pulumi_policy.policy import (
        PolicyCustomTimeouts,
        PolicyResource,
        PolicyResourceOptions,
        StackValidationArgs,
    )

    def resource(type_: str, name: str, props: dict[str, Any], deps: list[Any]) -> Any:
        opts = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])
        return PolicyResource(type_, props, f"urn:{name}", name, opts, None, None, deps, {})

    (policy,) = [p for p in pack.build_policies() if p.name == "vpc-flow-logs"]
    vpc = resource(VPC, "vpc", {"cidrBlock": "10.0.0.0/16"}, [])
    reported: list[tuple[str, str | None]] = []
    policy.validate(StackValidationArgs([vpc]), lambda m, urn: reported.append((m, urn)))
    assert [urn for _, urn in reported] == ["urn:vpc"]
    reported.clear()
    flow = resource(FLOW_LOG, "flow", {"trafficType": "ALL"}, [vpc])
    policy.validate(StackValidationArgs([vpc, flow]), lambda m, urn: reported.append((m, urn)))
    assert reported == []


def test_violation_is_frozen_dataclass() -> None:
    v = Violation(rule="RDS.2", resource="db", type=INSTANCE, message="m")
    with pytest.raises(AttributeError):
        v.rule = "x"  # type: ignore[misc]
    assert v == Violation("RDS.2", "db", INSTANCE, "m")


# --------------------------------------------------------------------------------------------------
# Stack gate and settings
# --------------------------------------------------------------------------------------------------

NOT_PROD_READY = {**GOOD_INSTANCE, "multiAz": False, "deletionProtection": False}


@pytest.mark.parametrize(
    ("stack", "production"),
    [("prod", True), ("dev", False), ("organization/rds-proxy/prod", True), ("acme/rds-proxy/dev", False),
     ("", True), ("production", False)],
)  # fmt: skip
def test_production_gate(stack: str, production: bool) -> None:
    expected = {"RDS.5", "RDS.8"} if production else set()
    assert rule_ids(check(INSTANCE, NOT_PROD_READY, stack=stack)) == expected


def test_production_stacks_setting() -> None:
    config = {
        "rds-multi-az-prod": {"productionStacks": ["staging"]},
        "RDS.8": {"productionStacks": ["staging"]},
    }
    assert rule_ids(check(INSTANCE, NOT_PROD_READY, stack="staging", config=config)) == {"RDS.5", "RDS.8"}
    assert rule_ids(check(INSTANCE, NOT_PROD_READY, stack="prod", config=config)) == set()


def test_disabled_rule_setting() -> None:
    bad = {**GOOD_INSTANCE, "storageEncrypted": False}
    assert check(INSTANCE, bad, config={"rds-storage-encrypted": "disabled"}) == []
    assert check(INSTANCE, bad, config={"RDS.3": {"enforcementLevel": "disabled"}}) == []


def test_log_retention_minimum_setting() -> None:
    config = {"log-group-retention": {"minRetentionDays": 365}}
    assert rule_ids(check(LOG_GROUP, {"retentionInDays": 14, "kmsKeyId": KEY}, config=config)) == {
        "CloudWatch.16"
    }
    assert check(LOG_GROUP, {"retentionInDays": 400, "kmsKeyId": KEY}, config=config) == []


def test_supported_runtimes_are_known_to_the_provider() -> None:
    from pulumi_aws.lambda_ import Runtime

    known = {r.value for r in Runtime}
    assert known >= rules.SUPPORTED_PYTHON_RUNTIMES
    assert all(r.startswith("python3.") for r in rules.SUPPORTED_PYTHON_RUNTIMES)


# The rules read inputs by their engine names; a typo there makes a rule silently pass.
PROPERTY_NAMES = [
    ("pulumi_aws.rds", "Instance", ["publiclyAccessible", "storageEncrypted", "backupRetentionPeriod", "multiAz",
                                    "deletionProtection", "replicateSourceDb"]),
    ("pulumi_aws.rds", "Cluster", ["publiclyAccessible", "storageEncrypted", "backupRetentionPeriod",
                                   "deletionProtection", "replicationSourceIdentifier"]),
    ("pulumi_aws.rds", "Proxy", ["requireTls"]),
    ("pulumi_aws.ec2", "SecurityGroup", ["ingress", "egress"]),
    ("pulumi_aws.ec2.outputs", "SecurityGroupIngress", ["cidrBlocks", "ipv6CidrBlocks", "protocol", "fromPort",
                                                        "toPort"]),
    ("pulumi_aws.ec2", "DefaultSecurityGroup", ["ingress", "egress"]),
    ("pulumi_aws.ec2.outputs", "DefaultSecurityGroupIngress", ["cidrBlocks", "ipv6CidrBlocks"]),
    ("pulumi_aws.ec2", "SecurityGroupRule", ["type", "cidrBlocks", "ipv6CidrBlocks", "protocol"]),
    ("pulumi_aws.vpc", "SecurityGroupIngressRule", ["cidrIpv4", "cidrIpv6", "ipProtocol", "fromPort", "toPort"]),
    ("pulumi_aws.iam", "Role", ["inlinePolicies", "assumeRolePolicy"]),
    ("pulumi_aws.iam.outputs", "RoleInlinePolicy", ["name", "policy"]),
    ("pulumi_aws.iam", "RolePolicy", ["policy"]),
    ("pulumi_aws.iam", "Policy", ["policy"]),
    ("pulumi_aws.lambda_", "Function", ["runtime", "environment", "packageType"]),
    ("pulumi_aws.lambda_.outputs", "FunctionEnvironment", ["variables"]),
    ("pulumi_aws.cloudwatch", "LogGroup", ["retentionInDays", "kmsKeyId"]),
    ("pulumi_aws.rds", "Instance", ["monitoringInterval", "monitoringRoleArn", "enabledCloudwatchLogsExports"]),
    ("pulumi_aws.rds", "ClusterInstance", ["monitoringInterval", "monitoringRoleArn"]),
    ("pulumi_aws.rds", "Cluster", ["enabledCloudwatchLogsExports"]),
    ("pulumi_aws.secretsmanager", "Secret", ["kmsKeyId"]),
    ("pulumi_aws.ec2", "FlowLog", ["vpcId", "trafficType"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("module", "cls", "names"), PROPERTY_NAMES, ids=[f"{m}.{c}" for m, c, _ in PROPERTY_NAMES]
)
def test_property_names_exist_in_pulumi_aws(module: str, cls: str, names: list[str]) -> None:
    import importlib

    klass = getattr(importlib.import_module(module), cls)
    engine_names = {
        getattr(attr.fget, "_pulumi_name", None)
        for attr in vars(klass).values()
        if isinstance(attr, property)
    }
    assert set(names) <= engine_names, set(names) - engine_names


def test_rules_package_is_standalone() -> None:
    """policy/rules is imported as `rules` by the CLI and as `policy.rules` by the plan: no pulumi, and
    only relative imports inside the package (they resolve under either name)."""
    import ast

    modules = sorted((POLICY_DIR / "rules").glob("*.py"))
    assert {m.stem for m in modules} >= {"__init__", "base", "rds", "ec2", "iam", "awslambda", "cloudwatch"}
    forbidden = {"pulumi", "pulumi_policy", "policy", "rules"}
    for module in modules:
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert node.level in (0, 1), f"{module.name}: import reaching outside the package"
                if node.level == 0:
                    assert (node.module or "").split(".")[0] not in forbidden, f"{module.name}: {node.module}"
            elif isinstance(node, ast.Import):
                assert all(a.name.split(".")[0] not in forbidden for a in node.names), module.name
    code = (
        "import rules, sys; "
        "assert 'pulumi' not in sys.modules and 'pulumi_policy' not in sys.modules; "
        "assert 'policy' not in sys.modules and rules.rds.__name__ == 'rules.rds'; "
        "print(len(rules.RULES))"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # as under the CLI: only policy/
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=POLICY_DIR, env=env, capture_output=True, text=True, check=True
    )
    assert int(out.stdout) == len(RULES)


SERVICE_MODULES = {
    "RDS": "rds",
    "EC2": "ec2",
    "IAM": "iam",
    "Lambda": "awslambda",
    "CloudWatch": "cloudwatch",
    "SecretsManager": "secretsmanager",
    "SNS": "sns",
}
# Rules with no Security Hub control live with the service whose resources they read.
CUSTOM_SERVICES = {"Custom.1": "Lambda", "Custom.2": "SecretsManager", "Custom.3": "CloudWatch"}


def test_each_rule_lives_in_its_services_module_next_to_its_check() -> None:
    import importlib

    for rule in RULES:
        service = CUSTOM_SERVICES.get(rule.id, rule.id.split(".")[0])
        module = importlib.import_module(f"policy.rules.{SERVICE_MODULES[service]}")
        assert rule.check.__module__ == module.__name__, rule.id
        assert getattr(module, rule.id.replace(".", "_").upper()) is rule, (
            f"{rule.id} is not named after its id"
        )


def test_every_rule_declared_in_a_service_module_is_in_rules() -> None:
    import importlib

    declared = [
        value
        for name in SERVICE_MODULES.values()
        for value in vars(importlib.import_module(f"policy.rules.{name}")).values()
        if isinstance(value, rules.Rule)
    ]
    assert sorted(r.id for r in declared) == sorted(r.id for r in RULES)


# --------------------------------------------------------------------------------------------------
# The CrossGuard pack
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pack() -> Any:
    import policy.__main__ as pack_module

    return pack_module


def test_pack_has_one_policy_per_rule(pack: Any) -> None:
    from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, StackValidationPolicy

    arguments = pack.pack_arguments()
    assert arguments["name"] == "rds-proxy-guardrails"
    assert arguments["enforcement_level"] is EnforcementLevel.MANDATORY
    policies = arguments["policies"]
    assert [p.name for p in policies] == [r.name for r in RULES] + [r.name for r in STACK_RULES]
    assert all(isinstance(p, ResourceValidationPolicy) for p in policies[: len(RULES)])
    assert all(isinstance(p, StackValidationPolicy) for p in policies[len(RULES) :])
    for policy, rule in zip(policies, [*RULES, *STACK_RULES], strict=True):
        assert rule.id in policy.description
        assert policy.enforcement_level is None  # inherits the pack's MANDATORY
    names = {p.name: p for p in policies}
    assert names["rds-multi-az-prod"].config_schema.properties["productionStacks"]["default"] == ["prod"]


def test_pulumi_policy_yaml() -> None:
    import yaml

    meta = yaml.safe_load((POLICY_DIR / "PulumiPolicy.yaml").read_text())
    assert meta["runtime"] == "python"
    assert set(meta) <= {"runtime", "version", "main", "description", "author", "website", "license"}
    pins = (POLICY_DIR / "requirements.txt").read_text()
    import pulumi_policy.version

    assert f"pulumi-policy=={pulumi_policy.version.VERSION}" in pins


def _servicer(pack: Any) -> Any:
    from pulumi_policy.policy import _PolicyAnalyzerServicer

    arguments = pack.pack_arguments()
    return _PolicyAnalyzerServicer(
        arguments["name"], "0.0.1", arguments["policies"], arguments["enforcement_level"],
        description=arguments["description"],
    )  # fmt: skip


def _request(type_: str, inputs: Mapping[str, Any]) -> Any:
    from google.protobuf import struct_pb2
    from pulumi.runtime.proto import analyzer_pb2

    props = struct_pb2.Struct()
    props.update(dict(inputs))
    return analyzer_pb2.AnalyzeRequest(
        type=type_, properties=props, urn=f"urn:pulumi:dev::rds-proxy::{type_}::res", name="res"
    )


def _diagnostics(servicer: Any, type_: str, inputs: Mapping[str, Any]) -> list[tuple[str, str, int]]:
    response = servicer.Analyze(_request(type_, inputs), None)
    return [(d.policyName, d.message, d.enforcementLevel) for d in response.diagnostics]


def test_pack_analyze_reports_violations_as_mandatory(pack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from pulumi.runtime.proto import analyzer_pb2

    monkeypatch.setenv("PULUMI_STACK", "dev")
    monkeypatch.delenv("PULUMI_PROJECT", raising=False)
    servicer = _servicer(pack)
    found = _diagnostics(
        servicer, INSTANCE, {**GOOD_INSTANCE, "storageEncrypted": False, "publiclyAccessible": True}
    )
    assert {name for name, _, _ in found} == {"rds-storage-encrypted", "rds-not-public"}
    assert all(level == analyzer_pb2.MANDATORY for _, _, level in found)
    # pulumi_policy puts the policy description (which starts with the rule id) above our message.
    assert any(msg.startswith("RDS.3: ") and "storageEncrypted" in msg for _, msg, _ in found)
    assert _diagnostics(servicer, INSTANCE, GOOD_INSTANCE) == []


def test_pack_reads_stack_from_pulumi_stack(pack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PULUMI_PROJECT", raising=False)
    servicer = _servicer(pack)
    monkeypatch.setenv("PULUMI_STACK", "dev")
    assert _diagnostics(servicer, INSTANCE, NOT_PROD_READY) == []
    response = servicer.Analyze(_request(INSTANCE, NOT_PROD_READY), None)
    assert {n.policy_name for n in response.not_applicable} == {
        "rds-multi-az-prod",
        "rds-deletion-protection-prod",
    }
    monkeypatch.setenv("PULUMI_STACK", "prod")
    assert {n for n, _, _ in _diagnostics(servicer, INSTANCE, NOT_PROD_READY)} == {
        "rds-multi-az-prod",
        "rds-deletion-protection-prod",
    }
    monkeypatch.delenv("PULUMI_STACK")  # unknown stack: fail closed
    assert len(_diagnostics(servicer, INSTANCE, NOT_PROD_READY)) == 2


def test_pack_ignores_unknowns_instead_of_skipping_the_policy(
    pack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pulumi_policy's proxies raise on unknowns; the pack must still check the known fields."""
    monkeypatch.setenv("PULUMI_STACK", "prod")
    monkeypatch.delenv("PULUMI_PROJECT", raising=False)
    servicer = _servicer(pack)
    inputs = {
        "ingress": [
            {"protocol": "tcp", "fromPort": 22.0, "toPort": 22.0, "cidrBlocks": ["0.0.0.0/0"]},
            {"protocol": "tcp", "fromPort": 3306.0, "toPort": 3306.0, "cidrBlocks": [UNKNOWN_STR]},
        ],
        "vpcId": UNKNOWN_STR,
    }
    found = _diagnostics(servicer, SG, inputs)
    assert [n for n, _, _ in found] == ["sg-no-open-ingress"]
    assert found[0][1].endswith("\ningress[0] allows tcp port 22 from 0.0.0.0/0")
    unknown_only = {**GOOD_INSTANCE, "multiAz": UNKNOWN_BOOL, "backupRetentionPeriod": UNKNOWN_NUM}
    response = servicer.Analyze(_request(INSTANCE, unknown_only), None)
    assert list(response.diagnostics) == []  # no violation, and no "can't run policy" advisory either


def test_pack_analyzer_info(pack: Any) -> None:
    info = _servicer(pack).GetAnalyzerInfo(None, None)
    assert info.name == "rds-proxy-guardrails"
    assert sorted(p.name for p in info.policies) == sorted(r.name for r in [*RULES, *STACK_RULES])
    assert info.supportsConfig


def _read_port(proc: subprocess.Popen[bytes], timeout: float) -> int:
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    if not sel.select(timeout):
        raise AssertionError("policy pack did not print its port")
    line = proc.stdout.readline().decode().strip()
    return int(line)


def test_pack_serves_like_the_cli_runs_it() -> None:
    """Start the pack as `pulumi-analyzer-policy-python` does and talk gRPC to it."""
    import grpc
    from google.protobuf import empty_pb2
    from pulumi.runtime.proto import analyzer_pb2_grpc

    env = {**os.environ, "PULUMI_STACK": "prod", "PULUMI_PROJECT": "rds-proxy", "PULUMI_DRY_RUN": "true"}
    env.pop("PYTHONPATH", None)  # as under the CLI: only policy/ is importable, so `import rules` is used
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:1", "."],
        cwd=POLICY_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        port = _read_port(proc, timeout=60)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = analyzer_pb2_grpc.AnalyzerStub(channel)
            info = stub.GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
            assert sorted(p.name for p in info.policies) == sorted(r.name for r in [*RULES, *STACK_RULES])
            response = stub.Analyze(_request(PROXY, {**GOOD_PROXY, "requireTls": False}), timeout=30)
            assert [d.policyName for d in response.diagnostics] == ["rds-proxy-require-tls"]
            response = stub.Analyze(_request(INSTANCE, NOT_PROD_READY), timeout=30)
            assert sorted(d.policyName for d in response.diagnostics) == [
                "rds-deletion-protection-prod",
                "rds-multi-az-prod",
            ]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()
        assert proc.stdout is not None
        proc.stdout.close()
