"""Networking: private subnets in distinct, proxy-capable AZs; security groups chained probe → proxy → db."""

from __future__ import annotations

import ipaddress

import pytest

from components.networking import PROXY_UNSUPPORTED_AZ_IDS, pick_zone_ids, subnet_cidrs
from tests.conftest import deploy, ok

SG = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"


def test_vpc_uses_configured_cidr_with_dns_on():
    vpc = ok("dev", vpcCidr="10.20.0.0/16").one("aws:ec2/vpc:Vpc").inputs
    assert vpc["cidrBlock"] == "10.20.0.0/16"
    assert vpc["enableDnsSupport"] is True and vpc["enableDnsHostnames"] is True


@pytest.mark.parametrize("count", [2, 3])
def test_one_private_subnet_per_az_in_distinct_azs(count):
    subnets = ok("dev", azCount=count).by_type("aws:ec2/subnet:Subnet")
    assert len(subnets) == count
    zones = [s.inputs["availabilityZoneId"] for s in subnets]
    assert len(set(zones)) == count
    assert all(s.inputs["mapPublicIpOnLaunch"] is False for s in subnets)


def test_subnets_fit_inside_the_vpc_and_do_not_overlap():
    run = ok("dev", vpcCidr="10.1.0.0/20", azCount=3)
    vpc = ipaddress.ip_network("10.1.0.0/20")
    nets = [ipaddress.ip_network(s.inputs["cidrBlock"]) for s in run.by_type("aws:ec2/subnet:Subnet")]
    assert all(n.subnet_of(vpc) for n in nets)
    assert all(not a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1 :])


def test_subnets_never_land_in_an_az_rds_proxy_does_not_serve():
    run = ok("dev", azCount=3)
    zones = {s.inputs["availabilityZoneId"] for s in run.by_type("aws:ec2/subnet:Subnet")}
    assert not zones & set(PROXY_UNSUPPORTED_AZ_IDS)
    (invoke,) = [i for i in run.invokes if i.token.endswith("getAvailabilityZones")]
    assert "use1-az3" in invoke.args["excludeZoneIds"]


def test_zone_picking_drops_unsupported_ids_even_if_aws_returns_them():
    assert pick_zone_ids(["use1-az3", "use1-az1", "use1-az2"], 2) == ["use1-az1", "use1-az2"]


def test_too_few_azs_is_a_clear_error():
    with pytest.raises(Exception, match=r"azCount: 3 is not allowed here; this region has 2"):
        pick_zone_ids(["use1-az3", "use1-az1", "use1-az2"], 3)
    run = deploy("dev", azCount=6)  # us-east-1 has six AZs, five of them served by RDS Proxy (plan/zones.py)
    assert run.error is not None and "azCount: 6 is not allowed here; this region has 5" in str(run.error)
    assert [r for r in run.resources if r.custom] == []  # nothing declared before the check


def test_subnet_cidrs_are_carved_from_the_vpc():
    assert subnet_cidrs("10.0.0.0/16", 2) == ["10.0.0.0/24", "10.0.1.0/24"]
    assert subnet_cidrs("10.0.0.0/24", 2) == ["10.0.0.0/28", "10.0.0.16/28"]


def test_db_subnet_group_spans_all_private_subnets(stack_run):
    group = stack_run.one("aws:rds/subnetGroup:SubnetGroup").inputs
    subnet_ids = [s.id for s in stack_run.by_type("aws:ec2/subnet:Subnet")]
    assert group["subnetIds"] == subnet_ids


def _rules(run):
    """(kind, from role, to role, port) for every rule; roles resolved through the group ids."""
    role_of = {g.id: g.name.rsplit("-", 2)[-2] for g in run.by_type(SG)}
    found = set()
    for r in run.by_type(INGRESS):
        found.add(
            (
                "in",
                role_of[r.inputs["referencedSecurityGroupId"]],
                role_of[r.inputs["securityGroupId"]],
                r.inputs["fromPort"],
                r.inputs["toPort"],
            )
        )
    for r in run.by_type(EGRESS):
        found.add(
            (
                "out",
                role_of[r.inputs["securityGroupId"]],
                role_of[r.inputs["referencedSecurityGroupId"]],
                r.inputs["fromPort"],
                r.inputs["toPort"],
            )
        )
    return found


def test_security_groups_chain_probe_to_proxy_to_db_on_the_db_port_only(stack_run):
    """The probe → proxy → db chain on the DB port; the users bootstrap straight to the database on the DB
    port; HTTPS to the Secrets Manager endpoint only from the bootstrap (the probe logs in with IAM here).
    The rotation function's own hops (issue 14, prod) are tested in tests/test_security.py."""
    assert {r for r in _rules(stack_run) if "rotation" not in r} == {
        ("in", "probe", "proxy", 3306, 3306),
        ("out", "probe", "proxy", 3306, 3306),
        ("in", "proxy", "db", 3306, 3306),
        ("out", "proxy", "db", 3306, 3306),
        ("in", "users", "db", 3306, 3306),
        ("out", "users", "db", 3306, 3306),
        ("in", "users", "endpoint", 443, 443),
        ("out", "users", "endpoint", 443, 443),
    }


def test_a_probe_that_reads_a_password_also_reaches_the_secrets_endpoint_on_443_only():
    run = ok("dev", iamAuth="DISABLED")
    rules = _rules(run)
    assert {r for r in rules if r[2] == "endpoint"} == {
        ("in", "users", "endpoint", 443, 443),
        ("out", "users", "endpoint", 443, 443),
        ("in", "probe", "endpoint", 443, 443),
        ("out", "probe", "endpoint", 443, 443),
    }
    assert {r for r in rules if r[0] == "out" and r[1] == "probe"} == {
        ("out", "probe", "proxy", 3306, 3306),
        ("out", "probe", "endpoint", 443, 443),
    }


def test_database_admits_only_the_proxy_and_the_users_bootstrap(stack_run):
    db_group = next(g for g in stack_run.by_type(SG) if g.name.endswith("-db-sg")).id
    sources = {
        r.inputs.get("referencedSecurityGroupId") or r.inputs.get("cidrIpv4") or r.inputs.get("cidrIpv6")
        for r in stack_run.by_type(INGRESS)
        if r.inputs["securityGroupId"] == db_group
    }
    proxy_group = next(g for g in stack_run.by_type(SG) if g.name.endswith("-proxy-sg")).id
    users_group = next(g for g in stack_run.by_type(SG) if g.name.endswith("-users-sg")).id
    # With rotation on (prod), the rotation function's group too: tests/test_security.py.
    rotation = {g.id for g in stack_run.by_type(SG) if g.name.endswith("-rotation-sg")}
    assert sources - rotation == {proxy_group, users_group}


def test_secrets_manager_endpoint_is_private_dns_interface_in_every_subnet_behind_its_group(stack_run):
    endpoint = stack_run.one("aws:ec2/vpcEndpoint:VpcEndpoint").inputs
    assert endpoint["serviceName"] == "com.amazonaws.us-east-1.secretsmanager"
    assert endpoint["vpcEndpointType"] == "Interface"
    assert endpoint["privateDnsEnabled"] is True
    assert endpoint["vpcId"] == stack_run.one("aws:ec2/vpc:Vpc").id
    assert endpoint["subnetIds"] == [s.id for s in stack_run.by_type("aws:ec2/subnet:Subnet")]
    endpoint_group = next(
        g for g in stack_run.by_type(SG) if g.name.endswith("-secretsmanager-endpoint-sg")
    ).id
    assert endpoint["securityGroupIds"] == [endpoint_group]


def test_no_endpoint_and_no_extra_groups_unless_something_needs_them():
    from components.networking import Networking, NetworkingArgs, NetworkSettings
    from plan.engine import run_program

    def program():
        Networking(
            "n", NetworkingArgs(settings=NetworkSettings(vpc_cidr="10.0.0.0/16", az_count=2), db_port=3306)
        )

    run = run_program("dev", {"aws:region": "us-east-1"}, program=program)
    assert run.error is None, run.error
    assert run.by_type("aws:ec2/vpcEndpoint:VpcEndpoint") == []
    assert {g.name for g in run.by_type(SG)} == {"n-probe-sg", "n-proxy-sg", "n-db-sg"}


def test_rules_reference_groups_use_tcp_and_are_described(stack_run):
    for rule in stack_run.by_type(INGRESS) + stack_run.by_type(EGRESS):
        assert rule.inputs["ipProtocol"] == "tcp"
        assert rule.inputs.get("referencedSecurityGroupId")
        assert "cidrIpv4" not in rule.inputs and "cidrIpv6" not in rule.inputs
        assert rule.inputs.get("description")


def test_groups_have_no_inline_rules_and_no_open_ingress(stack_run):
    for group in stack_run.by_type(SG):
        assert not group.inputs.get("ingress") and not group.inputs.get("egress")
        assert group.inputs.get("description")


def test_default_security_group_is_taken_over_with_no_rules(stack_run):
    default = stack_run.one("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup").inputs
    assert default["vpcId"] == stack_run.one("aws:ec2/vpc:Vpc").id
    assert default.get("ingress", []) == [] and default.get("egress", []) == []
